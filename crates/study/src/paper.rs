//! The paper's numbers (STUDY §7).

use modcirc_bimt::Regime;
use modcirc_metrics::Summary;

/// One row of the paper's Table 3 (STUDY §7): (mean, CI half-width) of each metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperRow {
    /// `circle` or `line`.
    pub task: &'static str,
    /// The model's regime.
    pub regime: Regime,
    /// The circuit's logit difference.
    pub logit_difference: (f64, f64),
    /// Seconds per discovery.
    pub discovery_s: (f64, f64),
    /// The circuit's sparsity.
    pub sparsity: (f64, f64),
}

const fn paper(task: &'static str, regime: Regime, ld: (f64, f64), time: (f64, f64), sp: (f64, f64)) -> PaperRow {
    PaperRow { task, regime, logit_difference: ld, discovery_s: time, sparsity: sp }
}

/// The paper's Table 3, as printed.
pub const PAPER_TABLE3: [PaperRow; 10] = [
    paper("circle", Regime::Bimt, (1.2737, 0.1833), (93.7614, 0.2155), (0.9859, 0.0009)),
    paper("circle", Regime::L1Local, (1.7953, 0.2892), (94.3168, 0.3293), (0.9824, 0.0013)),
    paper("circle", Regime::L1, (2.3412, 0.4927), (94.3351, 0.1110), (0.9551, 0.0003)),
    paper("circle", Regime::L1Swap, (1.9539, 0.2829), (94.8472, 0.1105), (0.9630, 0.0010)),
    paper("circle", Regime::Vanilla, (8.9437, 1.9791), (95.3958, 0.1494), (0.8635, 0.0001)),
    paper("line", Regime::Bimt, (1.3281, 0.3006), (84.5346, 0.0792), (0.9839, 0.0013)),
    paper("line", Regime::L1Local, (1.4663, 0.3158), (86.4752, 1.0094), (0.9814, 0.0008)),
    paper("line", Regime::L1, (1.3828, 0.2701), (86.0731, 0.2072), (0.9558, 0.0003)),
    paper("line", Regime::L1Swap, (1.6913, 0.3807), (86.8943, 0.3221), (0.9584, 0.0003)),
    paper("line", Regime::Vanilla, (7.1213, 1.5863), (86.5299, 0.1028), (0.8635, 1.7738)),
];

/// The study's two tasks (STUDY §3).
pub const TASKS: [&str; 2] = ["circle", "line"];

/// A printed (mean, half-width) as an interval, over the paper's 50 resamples.
pub fn paper_summary((mean, hw): (f64, f64)) -> Summary {
    Summary { mean, lo: mean - hw, hi: mean + hw, n: 50 }
}

/// The study's tasks (STUDY §3), as [`TASKS`] names them.
pub fn study_tasks() -> [modcirc_dataset::Task; 2] {
    [modcirc_dataset::Task::circle(), modcirc_dataset::Task::line()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_study_tasks_are_the_named_ones() {
        let names = super::study_tasks().map(|t| t.name);
        assert_eq!(names, super::TASKS);
    }
}
