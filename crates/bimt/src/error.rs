use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BimtError {
    #[error("training diverged: the loss is {loss} at step {step}")]
    NonFinite { step: usize, loss: f64 },
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("unknown regime {0:?} (expected one of vanilla, l1, l1-local, l1-swap, bimt)")]
    UnknownRegime(String),
    #[error("{0}")]
    Device(String),
    #[error("data: {0}")]
    Data(String),
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] modcirc_mlp::MlpError),
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
