//! modcirc's runs presented, from their results: the study's `REPORT.md`,
//! `table3.csv`, figures and `REPORT.html`; a sweep's `units.csv` and
//! figures; a circuit exported as graph JSON or DOT; and the check that a
//! run's files are complete and match what `results.json` records.
//!
//! * [`report`]: `REPORT.md` and `table3.csv`; [`figures`]: the study's
//!   figures; [`html`]: `REPORT.html`; [`study`]: all of them written for
//!   a run, with `results.json`.
//! * [`sweep`]: a sweep's `units.csv` and figures.
//! * [`chosen`]: a circuit the user chose, read from any file that holds
//!   one, and its evaluation in words.
//! * [`export`]: a circuit as graph JSON (EAP-IG's field names) or DOT.
//! * [`compare`]: several models side by side (`compare.md`, the faithfulness-by-K figure).
//! * [`check`]: whether a `reproduce` output directory is complete.
//!
//! ```
//! use modcirc_present::check::REPORT_FILES;
//! assert_eq!(REPORT_FILES, ["table3.csv", "REPORT.md", "REPORT.html", "results.json"]);
//! ```

#![deny(missing_docs)]

pub mod check;
pub mod chosen;
pub mod circuit_source;
pub mod compare;
mod error;
pub mod export;
pub mod figures;
pub mod html;
pub mod report;
pub mod study;
pub mod summary;
pub mod sweep;

pub use error::PresentError;
