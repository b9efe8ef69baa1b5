//! The BIMT circuit-discovery study as a library (STUDY §1-§8).
//!
//! * [`results`]: the types of `results.json`, readable by anyone
//!   ([`Results`], [`ModelResult`], [`DiscoveryResult`], …).
//! * [`discovery`]: one discovery on a checkpoint and task, and the
//!   `discover` JSON ([`DiscoverOutput`]).
//! * [`beyond`]: STUDY §8 on one model and task ([`analyse`]).
//! * [`structure`]: STUDY §9 on one model: wiring length, modularity,
//!   circuit locality, stability and specialisation.
//! * [`seeds`]: every metric across training seeds, and the hypotheses
//!   judged on those intervals; [`findings`]: STUDY §9's questions,
//!   decided by stated rules.
//! * [`paper`]: the paper's Table 3, as printed.
//! * [`verdicts`]: the rule that decides each of the paper's hypotheses.
//! * [`report`], [`figures`]: `REPORT.md`, `table3.csv` and the figures.
//! * [`check`]: whether an output directory is complete.
//! * [`cache`]: cached results that are checked against their recorded
//!   SHA-256 before reuse.
//! * [`measure`]: inference timing and the environment.
//! * [`sweep`]: sweep plans, their units and shards; [`claim`]: one
//!   writer per unit when shards share an output directory.
//!
//! The pipeline that trains the models and calls these, with caching and
//! progress bars, is `cargo xtask reproduce`.
//!
//! ```
//! use modcirc_study::{paper::PAPER_TABLE3, verdicts::verdicts};
//! // No results: no hypothesis can be decided, and each verdict says so.
//! let v = verdicts(&[], &[], &[]);
//! assert!(v.iter().all(|v| v.verdict.starts_with("not evaluated")));
//! assert_eq!(PAPER_TABLE3.len(), 10);
//! ```

#![warn(missing_docs)]

pub mod beyond;
pub mod cache;
pub mod check;
pub mod claim;
pub mod discovery;
mod error;
pub mod export;
pub mod figures;
pub mod findings;
pub mod html;
pub mod measure;
pub mod paper;
pub mod report;
pub mod results;
pub mod seeds;
pub mod structure;
pub mod sweep;
pub mod verdicts;

pub use beyond::{analyse, BeyondResult};
pub use discovery::{discover_checkpoint, DiscoverOutput, DiscoverySettings, Split};
pub use error::StudyError;
pub use results::{DiscoveryResult, InferenceResult, ModelResult, Profile, Results};
