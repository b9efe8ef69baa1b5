//! The store's errors, each naming the path it is about.

use std::path::PathBuf;

/// What can go wrong storing or reading a run's files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An output that exists and is not a regular file (a device, a FIFO, a
    /// socket, a directory or a link): never replaced.
    #[error("{path} is {kind}, not a regular file: refusing to replace it")]
    NotRegular {
        /// The output.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A file to read that is not a regular file (a link, a FIFO, a
    /// device, a directory): not read.
    #[error("{path} is {kind}, not a regular file: not read")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A file larger than what may be read of it (its recorded size, or a
    /// bound on its kind).
    #[error("{path} holds {bytes} bytes, at most {limit} expected: not read")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The most that may be read.
        limit: u64,
    },
    /// A recorded path that is not a relative path inside its directory.
    #[error("{path:?} is not a relative path inside {base}: refusing to read it")]
    Outside {
        /// The path as recorded.
        path: String,
        /// The directory it must stay in.
        base: PathBuf,
    },
    /// A value that does not serialise.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The serialiser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A file whose contents do not match what a listing or record says.
    #[error("{0}")]
    Mismatch(String),
    /// A claim that is no longer this process's.
    #[error("{0}: taken over by another process; not writing its unit")]
    ClaimLost(PathBuf),
    /// A unit that could not be claimed.
    #[error("{0}: could not be claimed")]
    Unclaimable(PathBuf),
}

impl StoreError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }
}
