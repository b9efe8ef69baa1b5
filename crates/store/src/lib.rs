//! Storage for modcirc runs, knowing nothing of the study:
//!
//! * [`atomic`]: files written to an exclusively created temporary file
//!   under an unpredictable name and renamed into place; only regular
//!   files are ever replaced; temporary files of killed runs removed.
//! * [`listing`]: SHA-256 listings (`<stem>.sha256`, `sha256sum` format)
//!   that make a cached unit trustworthy, and the content keys.
//! * [`claim`]: one writer per unit when processes share a directory.
//! * [`read`]: reading only regular files, through no link, within a
//!   stated size, and recorded paths only inside their run.
//!
//! ```
//! use modcirc_store::{atomic::write_atomic, listing::{fetch_json, store_json}};
//! let dir = std::env::temp_dir().join(format!("modcirc-store-doc-{}", std::process::id()));
//! let unit = dir.join("unit.json");
//! store_json(&unit, &vec![1, 2, 3]).unwrap();
//! let (v, _bytes): (Vec<u32>, _) = fetch_json(&unit).unwrap().unwrap();
//! assert_eq!(v, [1, 2, 3]);
//! write_atomic(&unit, b"[]").unwrap(); // changed behind the listing's back
//! assert!(fetch_json::<Vec<u32>>(&unit).unwrap_err().contains("does not match"));
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

#![deny(missing_docs)]

pub mod atomic;
pub mod claim;
mod error;
pub mod listing;
pub mod read;

pub use error::StoreError;
pub use listing::{sha256_hex, short_hash, FileRecord};
