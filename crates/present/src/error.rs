//! The crate's errors, each naming the file or run it is about.

use std::path::PathBuf;

/// What can go wrong presenting or checking a run.
#[derive(Debug, thiserror::Error)]
pub enum PresentError {
    /// Results that cannot make a report, or a run's files that do not
    /// check out.
    #[error("{0}")]
    Invalid(String),
    /// A JSON file that does not parse, or a value that does not serialise.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// Reading a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The study's analyses.
    #[error(transparent)]
    Study(#[from] modcirc_study::StudyError),
    /// A figure or table.
    #[error(transparent)]
    Report(#[from] modcirc_report::ReportError),
    /// Writing a file.
    #[error(transparent)]
    Store(#[from] modcirc_store::StoreError),
    /// Circuit discovery.
    #[error(transparent)]
    Acdc(#[from] modcirc_acdc::AcdcError),
    /// A checkpoint.
    #[error(transparent)]
    Bimt(#[from] modcirc_bimt::BimtError),
}

impl PresentError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        PresentError::Io { path: path.into(), source }
    }
}
