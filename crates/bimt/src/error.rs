//! The crate's errors: a configuration, a non-finite loss, a checkpoint that
//! cannot be read.

use std::path::PathBuf;

/// What can go wrong training, relocating or reading a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum BimtError {
    /// The loss became NaN or infinite.
    #[error("training diverged: the loss is {loss} at step {step}")]
    NonFinite {
        /// The 1-based step.
        step: usize,
        /// The loss there.
        loss: f64,
    },
    /// A configuration that cannot be trained.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// A regime name that is not one of the five.
    #[error("unknown regime {0:?} (expected one of vanilla, l1, l1-local, l1-swap, bimt)")]
    UnknownRegime(String),
    /// A device that cannot be used.
    #[error("{0}")]
    Device(String),
    /// Training data the model cannot take.
    #[error("data: {0}")]
    Data(String),
    /// A checkpoint or sidecar that is not what it should be.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
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
    /// The network or its file.
    #[error(transparent)]
    Model(#[from] modcirc_mlp::MlpError),
    /// A candle operation (the `candle` feature).
    #[cfg(feature = "candle")]
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

impl BimtError {
    pub(crate) fn checkpoint(path: &std::path::Path, reason: impl Into<String>) -> Self {
        BimtError::Checkpoint { path: path.into(), reason: reason.into() }
    }
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        BimtError::Io { path: path.into(), source }
    }
}
