//! MNIST-style data for the modcirc study: IDX files, paired clean/corrupted
//! tasks (STUDY §3) and the seeded bootstrap sampler (STUDY §5).
//!
//! We parse IDX ourselves instead of using the `mnist` crate: that crate
//! panics on malformed files and downloads from a URL that no longer serves
//! the data. Here every malformed input is an [`DatasetError`] naming the file.
//!
//! ```
//! use modcirc_dataset::{Mnist, ChecksumPolicy, Task, PairedDataset};
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
//! let mnist = Mnist::load(dir, ChecksumPolicy::Auto)?; // dir: e.g. "fixtures/mnist"
//! let task = Task::parse("circle")?;
//! let pairs = PairedDataset::new(&mnist.test, &task, 0)?;
//! assert!(pairs.len() > 1000);
//! # Ok::<(), modcirc_dataset::DatasetError>(())
//! ```

#![warn(missing_docs)]

mod error;
pub mod idx;
mod mnist;
mod pairs;
pub mod pvr;
mod rng;

pub use error::DatasetError;
pub use mnist::{ChecksumPolicy, FileChecksum, ImageSet, Mnist, DATA_DIR_ENV, DEFAULT_DATA_DIR};
pub use pairs::{Bootstrap, Pair, PairSpec, PairedDataset, Task};
pub use rng::Rng;
