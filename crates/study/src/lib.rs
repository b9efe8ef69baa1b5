//! The BIMT circuit-discovery study as a library: its analyses and its
//! judgement. Executing them (plans, units, caching, shards) is
//! `modcirc-engine`'s; presenting them (REPORT.md, figures, REPORT.html,
//! exports) is `modcirc-present`'s.
//!
//! Analyses, each on one model:
//! * [`discovery`]: one discovery on a checkpoint and task, and the
//!   `discover` JSON ([`DiscoverOutput`]).
//! * [`beyond`]: STUDY §8 on one model and task ([`analyse`]).
//! * [`compare`]: several models on one task, side by side (the smallest
//!   faithful circuit, CPR/CMD, ACDC, modularity), by condition.
//! * [`evaluate`]: a circuit the user chose, scored with every metric,
//!   under every ablation, against random circuits of its size.
//! * [`controls`]: STUDY §10 on one discovery: random circuits of its
//!   size, disjoint alternatives, the any-digit control, other ablations.
//! * [`structure`]: STUDY §9: wiring length, modularity, circuit
//!   locality, stability and specialisation.
//! * [`stability`]: STUDY §12: each edge method's circuit across the
//!   discovery's bootstrap resamples.
//! * [`measure`]: inference timing and the environment.
//!
//! Judgement, on the results of many:
//! * [`results`]: every type of `results.json` ([`Results`],
//!   [`ModelResult`], [`DiscoveryResult`], the rows across seeds, …), and
//!   the study's [`Profile`]s; [`sweep`]: the types of a sweep's results.
//! * [`paper`]: the paper's Table 3, as printed.
//! * [`verdicts`]: the rule that decides each of the paper's hypotheses;
//!   [`seeds`]: every metric across training seeds, and the hypotheses
//!   judged on those intervals; [`findings`]: STUDY §9's questions,
//!   decided by stated rules; [`judged_controls`]: STUDY §10 across the
//!   study (ablation sensitivity, permutation tests, F4-F7).
//!
//! ```
//! use modcirc_study::{paper::PAPER_TABLE3, verdicts::verdicts};
//! // No results: no hypothesis can be decided, and each verdict says so.
//! let v = verdicts(&[], &[], &[]);
//! assert!(v.iter().all(|v| v.verdict.starts_with("not evaluated")));
//! assert_eq!(PAPER_TABLE3.len(), 10);
//! ```

#![deny(missing_docs)]

pub mod beyond;
pub mod boolean;
pub mod compare;
pub mod controls;
pub mod discovery;
mod error;
pub mod evaluate;
pub mod findings;
pub mod judge;
pub mod judged_controls;
pub mod measure;
pub mod options;
pub mod paper;
pub mod planted;
pub mod planted_results;
pub mod profile;
pub mod results;
pub mod rows;
pub mod seeds;
pub mod stability;
pub mod structure;
pub mod sweep;
pub mod verdicts;

pub use beyond::{analyse, BeyondResult};
pub use discovery::{discover_checkpoint, discover_pairs, DiscoverOutput, DiscoverySettings, ModelSource, Split};
pub use error::StudyError;
pub use results::{DiscoveryResult, InferenceResult, ModelResult, Profile, Results};
