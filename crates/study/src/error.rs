//! The study's errors, with the file or setting they are about.

use std::path::PathBuf;

/// What can go wrong running or reporting the study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A model that does not fit the data, or results that cannot make a report.
    #[error("{0}")]
    Invalid(String),
    /// Training or a checkpoint.
    #[error(transparent)]
    Bimt(#[from] modcirc_bimt::BimtError),
    /// Circuit discovery.
    #[error(transparent)]
    Acdc(#[from] modcirc_acdc::AcdcError),
    /// The data set.
    #[error(transparent)]
    Dataset(#[from] modcirc_dataset::DatasetError),
    /// Storage.
    #[error(transparent)]
    Store(#[from] modcirc_store::StoreError),
    /// A JSON file that does not parse, or a value that does not serialise.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Refuses a result with a non-finite metric: a NaN in the JSON would read
/// as a number and make every comparison false.
pub(crate) fn ensure_finite(metrics: &[(&str, f64)]) -> Result<(), StudyError> {
    match metrics.iter().find(|(_, v)| !v.is_finite()) {
        Some((name, v)) => Err(StudyError::Invalid(format!("the {name} came out {v}: refusing a non-finite result"))),
        None => Ok(()),
    }
}
