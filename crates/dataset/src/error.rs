use std::path::PathBuf;

/// Everything that can go wrong while loading or pairing data. Each variant
/// names the file (or the spec) it is about.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an IDX file of unsigned bytes (magic bytes {found:02x?}; expected 00 00 08 <rank>)")]
    BadMagic { path: PathBuf, found: Vec<u8> },
    #[error("{path}: IDX rank is {found}, expected {expected}")]
    WrongRank { path: PathBuf, expected: usize, found: usize },
    #[error("{path}: truncated: the header promises {expected} bytes of data, the file holds {found}")]
    Truncated { path: PathBuf, expected: u64, found: u64 },
    #[error("{path}: {extra} trailing bytes after the data the header describes")]
    TrailingBytes { path: PathBuf, extra: u64 },
    #[error("{path}: unexpected image shape {rows}x{cols}, expected {expected_rows}x{expected_cols}")]
    WrongImageShape { path: PathBuf, rows: usize, cols: usize, expected_rows: usize, expected_cols: usize },
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch { images: PathBuf, labels: PathBuf, n_images: usize, n_labels: usize },
    #[error("{path}: SHA-256 of the decompressed bytes is {found}, {listing} says {expected}")]
    Checksum { path: PathBuf, listing: PathBuf, expected: String, found: String },
    #[error("{path}: malformed checksum listing at line {line}: {reason}")]
    BadChecksumListing { path: PathBuf, line: usize, reason: String },
    #[error("{dir}: no file named {name} or {name}.gz")]
    MissingFile { dir: PathBuf, name: String },
    #[error("pair spec {spec:?}: {reason}")]
    BadPairSpec { spec: String, reason: String },
    #[error("pair {clean}:{corrupted}: no images (digit {missing} has none in this split)")]
    EmptyPair { clean: u8, corrupted: u8, missing: u8 },
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatasetError::Io { path: path.into(), source }
    }
}
