//! The crate's errors, each naming the tensor, file or shape it is about.

use std::path::PathBuf;

/// What can go wrong building, loading or saving a network.
#[derive(Debug, thiserror::Error)]
pub enum MlpError {
    /// Layers that do not make an MLP.
    #[error("{0}")]
    Shape(String),
    /// A file that is not the network it should be.
    #[error("{path}: {reason}")]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither the file nor the caller says which activation the network uses.
    #[error(
        "{path}: the file does not say which activation its hidden layers use; give one \
         (silu, relu, gelu, gelu-tanh, tanh, sigmoid or identity)"
    )]
    NoActivation {
        /// The file.
        path: PathBuf,
    },
    /// An activation name that is not one of ours.
    #[error("unknown activation {0:?} (expected silu, relu, gelu, gelu-tanh, tanh, sigmoid or identity)")]
    UnknownActivation(String),
    /// A device name that is not `cpu`, `cuda` or `cuda:N`, or a device that cannot be opened.
    #[error("{0}")]
    Device(String),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file atomically.
    #[error(transparent)]
    Store(#[from] modcirc_store::StoreError),
}

impl MlpError {
    pub(crate) fn file(path: &std::path::Path, reason: impl Into<String>) -> Self {
        MlpError::File { path: path.into(), reason: reason.into() }
    }
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        MlpError::Io { path: path.into(), source }
    }
}
