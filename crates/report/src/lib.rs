//! Figures and tables of the study. Each figure is written as PNG and SVG
//! (through temporary files, renamed when complete). Text uses the bundled
//! DejaVu Sans, so rendering needs no system fonts.
//!
//! The functions take plain data (labels, numbers, [`Summary`] intervals),
//! so they draw any model's results, not only the study's.
//!
//! ```
//! use modcirc_report::{bar_chart, Bar};
//! let stem = std::env::temp_dir().join(format!("modcirc-doc-fig5-{}", std::process::id()));
//! let written = bar_chart(&stem, "Peak training memory", "MiB",
//!     &[Bar { label: "BIMT".into(), segments: vec![("heap".into(), 3.2)], interval: None }])?;
//! assert_eq!(written.len(), 2); // PNG and SVG
//! # for p in written { std::fs::remove_file(p).unwrap(); }
//! # Ok::<(), modcirc_report::ReportError>(())
//! ```

#![warn(missing_docs)]

/// Renders a figure to `<stem>.png` and `<stem>.svg` by calling the generic
/// drawing function `$f(&root, args...)` once per backend; each file goes
/// through a temporary name. Evaluates to `Result<Vec<PathBuf>, ReportError>`.
macro_rules! render {
    ($stem:expr, $size:expr, $f:path $(, $arg:expr)*) => {{
        let stem: &std::path::Path = $stem;
        let mut written = Vec::new();
        {
            let (tmp, path) = $crate::prepare(stem, "png")?;
            // The backend is dropped (and writes what it holds) before the
            // temporary file is removed or renamed.
            let drawn = {
                let root = plotters::prelude::BitMapBackend::new(tmp.path(), $size).into_drawing_area();
                $f(&root $(, $arg)*)
                    .and_then(|_| root.present().map_err(|e| -> $crate::DrawError { e.to_string().into() }))
            };
            $crate::finish(tmp, &path, drawn)?;
            written.push(path);
        }
        {
            let (tmp, path) = $crate::prepare(stem, "svg")?;
            let drawn = {
                let root = plotters::prelude::SVGBackend::new(tmp.path(), $size).into_drawing_area();
                $f(&root $(, $arg)*)
                    .and_then(|_| root.present().map_err(|e| -> $crate::DrawError { e.to_string().into() }))
            };
            $crate::finish(tmp, &path, drawn)?;
            written.push(path);
        }
        Ok::<Vec<std::path::PathBuf>, $crate::ReportError>(written)
    }};
}

mod charts;
mod network;
mod strips;
mod table;

pub use charts::{bar_chart, line_chart, scatter_ci, Bar, Legend, LinePanel, Point, ScatterPanel, Series};
pub use modcirc_metrics::Summary;
pub use network::{network_figure, NetworkView};
pub use strips::{strip_chart, Strip, StripPanel};
pub use table::{csv_table, markdown_table, markdown_text};

use std::path::{Path, PathBuf};

/// What can go wrong writing a figure or a table.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Drawing failed.
    #[error("{path}: {reason}")]
    Draw {
        /// The figure.
        path: PathBuf,
        /// The backend's complaint.
        reason: String,
    },
    /// Data that cannot make the figure.
    #[error("{0}")]
    Data(String),
    /// Writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file safely.
    #[error(transparent)]
    Store(#[from] modcirc_store::StoreError),
}

use modcirc_store::atomic::TempFile;

static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled DejaVu Sans is a valid font"));
    });
}

pub(crate) type DrawError = Box<dyn std::error::Error>;

/// Renames a drawn figure into place; a figure that failed to draw has its
/// temporary file removed (when `tmp` drops): no temporary file outlives a
/// failed figure.
pub(crate) fn finish(tmp: TempFile, path: &Path, drawn: Result<(), DrawError>) -> Result<(), ReportError> {
    match drawn {
        Ok(()) => Ok(tmp.persist(path)?),
        Err(e) => Err(draw_err(path, e)),
    }
}

/// A temporary file for `<stem>.<ext>`, created exclusively under an
/// unpredictable name that ends in `.<ext>` (the backend picks its format
/// by the extension), and the figure's path.
pub(crate) fn prepare(stem: &Path, ext: &str) -> Result<(TempFile, PathBuf), ReportError> {
    register_font();
    let path = stem.with_extension(ext);
    let (tmp, _) = TempFile::create(&path, Some(ext))?;
    Ok((tmp, path))
}

pub(crate) fn draw_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw { path: path.into(), reason: e.to_string() }
}
