//! The crate's errors, each naming the file or spec it is about.

use std::path::PathBuf;

/// Everything that can go wrong while loading or pairing data. Each variant
/// names the file (or the spec) it is about.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// Reading a file failed.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The first bytes are not an IDX header of unsigned bytes.
    #[error("{path}: not an IDX file of unsigned bytes (magic bytes {found:02x?}; expected 00 00 08 <rank>)")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Its first four bytes.
        found: Vec<u8>,
    },
    /// An image file that is not rank 3, or a label file that is not rank 1.
    #[error("{path}: IDX rank is {found}, expected {expected}")]
    WrongRank {
        /// The file.
        path: PathBuf,
        /// The rank its kind has.
        expected: usize,
        /// The rank its header states.
        found: usize,
    },
    /// Less data than the header promises.
    #[error("{path}: truncated: the header promises {expected} bytes of data, the file holds {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header promises.
        expected: u64,
        /// Bytes there are.
        found: u64,
    },
    /// A header that declares more data than any data set here needs.
    #[error("{path}: the header declares {declared} bytes of data, more than the limit of {limit}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Bytes the header declares.
        declared: u64,
        /// [`crate::idx::MAX_IDX_BYTES`].
        limit: u64,
    },
    /// More data than the header describes.
    #[error("{path}: {extra} trailing bytes after the data the header describes")]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes too many.
        extra: u64,
    },
    /// Images of another size than the split's others.
    #[error("{path}: unexpected image shape {rows}x{cols}, expected {expected_rows}x{expected_cols}")]
    WrongImageShape {
        /// The file.
        path: PathBuf,
        /// Its rows per image.
        rows: usize,
        /// Its columns per image.
        cols: usize,
        /// The rows expected.
        expected_rows: usize,
        /// The columns expected.
        expected_cols: usize,
    },
    /// An image file and a label file of different lengths.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images in it.
        n_images: usize,
        /// Labels in it.
        n_labels: usize,
    },
    /// A file whose SHA-256 is not the one its directory's listing records.
    #[error("{path}: SHA-256 of the decompressed bytes is {found}, {listing} says {expected}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The `SHA256SUMS` listing.
        listing: PathBuf,
        /// The hash the listing records.
        expected: String,
        /// The hash of the file.
        found: String,
    },
    /// A `SHA256SUMS` line that is not `<64 hex digits>  <name>`.
    #[error("{path}: malformed checksum listing at line {line}: {reason}")]
    BadChecksumListing {
        /// The listing.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// One of the four IDX files is not in the directory.
    #[error("{dir}: no file named {name} or {name}.gz")]
    MissingFile {
        /// The data directory.
        dir: PathBuf,
        /// The file's name.
        name: String,
    },
    /// A data file's path that exists but is not a readable regular file: a
    /// directory, a device, a dangling link or a loop of links.
    #[error("{path}: {what}, where the data file {name} should be")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// The data file expected there.
        name: String,
        /// What is there instead.
        what: String,
    },
    /// A `SHA256SUMS` that lists some of the data files but not all: the
    /// others would be loaded unchecked.
    #[error("{listing} does not list {}: add their hashes, or load without checking", files.join(", "))]
    NotListed {
        /// The listing.
        listing: PathBuf,
        /// The data files it does not cover.
        files: Vec<String>,
    },
    /// A task that is not `circle`, `line` or `c:k` pairs of digits.
    #[error("pair spec {spec:?}: {reason}")]
    BadPairSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pair of digits one of which has no image in the split.
    #[error("pair {clean}:{corrupted}: no images (digit {missing} has none in this split)")]
    EmptyPair {
        /// The clean digit.
        clean: u8,
        /// The corrupted digit.
        corrupted: u8,
        /// The digit without images.
        missing: u8,
    },
    /// Bootstrap settings that cannot be sampled.
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    /// Images or labels a model of these inputs and classes cannot take.
    #[error("{0}")]
    Misfit(String),
    /// A pointer value retrieval data set or task that cannot be built (STUDY §11).
    #[error("pointer value retrieval: {0}")]
    Pvr(String),
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatasetError::Io { path: path.into(), source }
    }
}
