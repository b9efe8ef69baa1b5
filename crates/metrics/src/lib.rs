//! Measurements for the study: the circuit metrics of STUDY §5, bootstrap
//! summaries, phase timers and memory (STUDY §6).
//!
//! ```
//! use modcirc_metrics::Summary;
//! let s = Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
//! assert_eq!(s.mean, 2.5);
//! assert!(s.lo <= s.mean && s.mean <= s.hi);
//! ```

#![warn(missing_docs)]

mod circuit;
mod memory;
mod stats;
mod tests_of_differences;
mod timing;

pub use circuit::{l2_distance, logit_difference};
pub use memory::{live_heap_bytes, peak_rss_bytes, reset_peak_rss, CountingAlloc, ThreadHeapWindow};
pub use stats::{auroc, ranks, roc_tpr_at, spearman, Summary};
pub use tests_of_differences::{
    holm, permutation_p, permutation_test, seeds_needed, smallest_one_sided_p, smallest_permutation_p,
    standardised_difference, Alternative, MAX_SPLITS,
};
pub use timing::PhaseTimer;
