//! STUDY §10's controls judged across the study: the RQ1 verdicts under
//! other ablations, permutation tests of BIMT against each regime over
//! seeds, and findings F4-F6 and the any-digit lines, each by a stated rule.

use modcirc_acdc::{Ablation, Pool};
use modcirc_bimt::Regime;
use modcirc_metrics::{
    holm, permutation_p, permutation_test, seeds_needed, smallest_one_sided_p, standardised_difference, Alternative,
};
use serde::{Deserialize, Serialize};

use crate::controls::ControlsResult;
use crate::paper::TASKS;
use crate::rows::{DiscoveryResult, Verdict};
use crate::verdicts::{rq1_circuit_verdicts, NOT_EVALUATED};

/// How close the any-digit circuit's faithfulness may come to the task's
/// before the task's circuit is called unspecific (STUDY §10).
pub const SPECIFICITY_MARGIN: f64 = 0.1;

/// RQ1-H1 and RQ1-H3 decided again on the seed-0 circuits judged under
/// another ablation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AblationRow {
    /// The ablation.
    pub ablation: Ablation,
    /// RQ1-H1 and RQ1-H3 under it.
    pub verdicts: Vec<Verdict>,
}

/// RQ1-H1 and RQ1-H3 under each ablation the seed-0 controls judged the
/// circuits with: the same circuits (the patching scores do not depend on
/// the ablation), so the overlap of their neurons is 1 by construction.
pub fn ablation_sensitivity(ds: &[DiscoveryResult], controls: &[ControlsResult]) -> Vec<AblationRow> {
    let seed0: Vec<&ControlsResult> = controls.iter().filter(|c| c.seed == Some(0)).collect();
    let mut ablations: Vec<Ablation> = Vec::new();
    for a in seed0.iter().flat_map(|c| &c.ablations) {
        if !ablations.contains(&a.ablation) {
            ablations.push(a.ablation);
        }
    }
    ablations
        .into_iter()
        .map(|ablation| {
            let under: Vec<DiscoveryResult> = seed0
                .iter()
                .filter_map(|c| {
                    let regime = c.regime?;
                    let d = ds.iter().find(|d| d.regime == regime && d.seed == 0 && d.task == c.task)?;
                    let a = c.ablations.iter().find(|a| a.ablation == ablation)?;
                    Some(DiscoveryResult::of_metrics(
                        regime,
                        0,
                        &c.task,
                        [a.logit_difference, a.accuracy, a.sparsity, d.discovery_s],
                    ))
                })
                .collect();
            AblationRow { ablation, verdicts: rq1_circuit_verdicts(&under) }
        })
        .collect()
}

/// One RQ1 metric of BIMT against another regime over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DifferenceTest {
    /// The task.
    pub task: String,
    /// The metric.
    pub metric: String,
    /// The hypothesis whose direction the test takes (its family).
    #[serde(default)]
    pub hypothesis: String,
    /// That direction: BIMT's mean `greater` or `less` than the other's.
    #[serde(default = "two_sided")]
    pub alternative: Alternative,
    /// The regime BIMT is compared with.
    pub other: Regime,
    /// BIMT's mean over seeds (of each seed's bootstrap mean).
    pub bimt_mean: f64,
    /// The other regime's.
    pub other_mean: f64,
    /// Seeds on each side.
    pub seeds: [usize; 2],
    /// The two-sided exact permutation p-value of the difference of means.
    pub p: f64,
    /// The one-sided p, in the hypothesis's direction.
    #[serde(default)]
    pub p_one_sided: f64,
    /// The one-sided p, Holm-adjusted within the hypothesis's family (its
    /// regimes × tasks).
    pub p_holm: f64,
    /// The smallest adjusted p these seeds can give in this family.
    #[serde(default)]
    pub smallest_p_holm: Option<f64>,
    /// The difference in pooled standard deviations (Cohen's d, signed
    /// so that positive is the hypothesis's direction); `None` where
    /// neither side varies (JSON has no infinity).
    #[serde(default)]
    pub effect: Option<f64>,
    /// The seeds per regime a difference of this size would need to be
    /// called at 0.05 in this family ([`modcirc_metrics::seeds_needed`]);
    /// `None`: not in the hypothesis's direction, or over [`MAX_SEEDS_NEEDED`].
    #[serde(default)]
    pub seeds_needed: Option<usize>,
}

fn two_sided() -> Alternative {
    Alternative::TwoSided
}

/// The most seeds [`DifferenceTest::seeds_needed`] looks for.
pub const MAX_SEEDS_NEEDED: usize = 1_000;

/// The level the tests of differences are read at.
pub const TEST_ALPHA: f64 = 0.05;

/// How a metric is read off a discovery.
type Metric = fn(&DiscoveryResult) -> f64;

/// The RQ1 metrics tested (STUDY §10), each with the hypothesis that names
/// it and the direction that hypothesis states for BIMT: RQ1-H1 (modularity
/// helps discovery: a lower logit difference, a sparser circuit), RQ1-H2
/// (it speeds discovery up), RQ1-H3 (it hampers finding optimal circuits:
/// a lower circuit accuracy).
const RQ1_METRICS: [(&str, Metric, &str, Alternative); 4] = [
    ("logit difference", |d| d.logit_difference.mean, "RQ1-H1", Alternative::Less),
    ("sparsity", |d| d.sparsity.mean, "RQ1-H1", Alternative::Greater),
    ("accuracy", |d| d.accuracy.mean, "RQ1-H3", Alternative::Less),
    ("discovery time", |d| d.discovery_s.mean, "RQ1-H2", Alternative::Less),
];

/// For each task and RQ1 metric, BIMT against each other regime over
/// seeds (STUDY §10): where both have at least two seeds, the exact
/// permutation test one-sided in the metric's hypothesis's direction (the
/// two-sided p beside it), Holm-corrected within each metric's family.
pub fn differences(ds: &[DiscoveryResult]) -> Vec<DifferenceTest> {
    let values = |r: Regime, t: &str, f: Metric| -> Vec<f64> {
        ds.iter().filter(|d| d.regime == r && d.task == t).map(f).collect()
    };
    let mut out = Vec::new();
    for (metric, f, hypothesis, alternative) in RQ1_METRICS {
        let (mut family, mut effects) = (Vec::new(), Vec::new());
        for t in TASKS {
            let bimt = values(Regime::Bimt, t, f);
            for other in Regime::ALL.into_iter().filter(|r| *r != Regime::Bimt) {
                let rest = values(other, t, f);
                if bimt.len() < 2 || rest.len() < 2 {
                    continue;
                }
                let (Some(p), Some(p_one_sided)) =
                    (permutation_p(&bimt, &rest), permutation_test(&bimt, &rest, alternative))
                else {
                    continue;
                };
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                let sign = if alternative == Alternative::Less { -1.0 } else { 1.0 };
                family.push(DifferenceTest {
                    task: t.into(),
                    metric: metric.into(),
                    hypothesis: hypothesis.into(),
                    alternative,
                    other,
                    bimt_mean: mean(&bimt),
                    other_mean: mean(&rest),
                    seeds: [bimt.len(), rest.len()],
                    p,
                    p_one_sided,
                    p_holm: p_one_sided,
                    smallest_p_holm: None,
                    effect: None,
                    seeds_needed: None,
                });
                effects.push(standardised_difference(&bimt, &rest).map(|d| sign * d));
            }
        }
        let m = family.len();
        let adjusted = holm(&family.iter().map(|t| t.p_one_sided).collect::<Vec<_>>());
        for ((t, a), e) in family.iter_mut().zip(adjusted).zip(effects) {
            t.p_holm = a;
            t.smallest_p_holm = smallest_one_sided_p(t.seeds[0], t.seeds[1]).map(|p| (p * m as f64).min(1.0));
            t.seeds_needed = e.and_then(|e| seeds_needed(e, m, TEST_ALPHA, MAX_SEEDS_NEEDED));
            t.effect = e.filter(|e| e.is_finite());
        }
        out.extend(family);
    }
    out
}

/// F4-F6 and a line per regime whose circuits the any-digit control comes
/// within [`SPECIFICITY_MARGIN`] of; `rq1` are the seed-0 RQ1 verdicts.
pub fn control_findings(controls: &[ControlsResult], ablations: &[AblationRow], rq1: &[Verdict]) -> Vec<Verdict> {
    let mut out = vec![beats_random(controls), more_unique(controls), ablation_free(ablations, rq1)];
    out.extend(unspecific(controls));
    out
}

/// The mean over seeds of `f` of `regime`'s controls on task `t`, where
/// every one has it.
fn regime_mean(
    controls: &[ControlsResult],
    regime: Regime,
    t: &str,
    f: impl Fn(&ControlsResult) -> Option<f64>,
) -> Option<f64> {
    let v: Vec<f64> =
        controls.iter().filter(|c| c.regime == Some(regime) && c.task == t).map(f).collect::<Option<_>>()?;
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Whether BIMT's mean of `f` is strictly `better` than every other
/// regime's on both tasks, and the numbers; `None` where one is missing.
fn bimt_best(
    controls: &[ControlsResult],
    f: impl Fn(&ControlsResult) -> Option<f64> + Copy,
    better: fn(f64, f64) -> bool,
) -> Option<(bool, String)> {
    let mut all = true;
    let mut evidence = Vec::new();
    for t in TASKS {
        let b = regime_mean(controls, Regime::Bimt, t, f)?;
        let mut row = vec![format!("BIMT {b:.3}")];
        for r in Regime::ALL.into_iter().filter(|r| *r != Regime::Bimt) {
            let o = regime_mean(controls, r, t, f)?;
            all &= better(b, o);
            row.push(format!("{} {o:.3}", r.label()));
        }
        evidence.push(format!("{t}: {}", row.join(", ")));
    }
    Some((all, evidence.join("; ")))
}

fn finding(id: &str, hypothesis: &str, rule: &str, decided: Option<(bool, String)>) -> Verdict {
    let (verdict, evidence) = match decided {
        Some((yes, e)) => (if yes { "supported" } else { "not supported" }.to_string(), e),
        None => (NOT_EVALUATED.to_string(), String::new()),
    };
    Verdict { id: id.into(), hypothesis: hypothesis.into(), rule: rule.into(), verdict, evidence }
}

fn beats_random(controls: &[ControlsResult]) -> Verdict {
    let margin = |c: &ControlsResult| {
        let a = c.against(Pool::Live)?.faithfulness?;
        Some(a.circuit - a.random.mean)
    };
    finding(
        "F4",
        "BIMT's circuits beat random circuits of their size by more than other regimes' do.",
        "Supported if, on both tasks, BIMT's margin (the circuit's faithfulness minus the mean of random circuits of its size from live neurons, averaged over seeds) exceeds every other regime's; not supported otherwise.",
        bimt_best(controls, margin, |b, o| b > o),
    )
}

fn more_unique(controls: &[ControlsResult]) -> Verdict {
    finding(
        "F5",
        "BIMT's circuits are more unique: fewer faithful circuits disjoint from them.",
        "Supported if, on both tasks, BIMT has fewer disjoint alternatives reaching the faithfulness threshold (averaged over seeds) than every other regime; not supported otherwise.",
        bimt_best(controls, |c| Some(c.faithful_alternatives as f64), |b, o| b < o),
    )
}

fn ablation_free(ablations: &[AblationRow], rq1: &[Verdict]) -> Verdict {
    let decided = (!ablations.is_empty() && ablations.iter().all(|a| a.verdicts.len() == 2)).then(|| {
        let own = |id: &str| rq1.iter().find(|v| v.id == id).map(|v| v.verdict.as_str());
        let mut same = true;
        let mut evidence = Vec::new();
        for row in ablations {
            for v in &row.verdicts {
                same &= own(&v.id) == Some(v.verdict.as_str());
                evidence.push(format!("{} under {} ablation: {}", v.id, row.ablation, v.verdict));
            }
        }
        for id in ["RQ1-H1", "RQ1-H3"] {
            evidence.push(format!("{id} as the study decides it: {}", own(id).unwrap_or("missing")));
        }
        (same, evidence.join("; "))
    });
    finding(
        "F6",
        "The RQ1 verdicts do not depend on the ablation.",
        "Supported if RQ1-H1 and RQ1-H3, decided again on the seed-0 circuits judged under each other ablation (mean, resample, optimal), come out as the study decides them; not supported otherwise.",
        decided,
    )
}

/// A line per regime where, on some task, the any-digit circuit's
/// faithfulness comes within [`SPECIFICITY_MARGIN`] of the task's (mean
/// over seeds).
fn unspecific(controls: &[ControlsResult]) -> Vec<Verdict> {
    let mut out = Vec::new();
    for r in Regime::ALL {
        let mut close = Vec::new();
        for t in TASKS {
            let task = regime_mean(controls, r, t, |c| c.circuit.faithfulness);
            let any = regime_mean(controls, r, t, |c| c.any_digit.circuit.faithfulness);
            if let (Some(task), Some(any)) = (task, any) {
                if any >= task - SPECIFICITY_MARGIN {
                    close.push(format!("{t}: task {task:.3}, any-digit {any:.3}"));
                }
            }
        }
        if !close.is_empty() {
            out.push(Verdict {
                id: format!("F7 {}", r.label()),
                hypothesis: format!("{}'s circuits are specific to their task.", r.label()),
                rule: format!("Not supported where, on a task, the any-digit circuit's faithfulness (mean over seeds) comes within {SPECIFICITY_MARGIN} of the task circuit's or above it."),
                verdict: "not supported".into(),
                evidence: close.join("; "),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use modcirc_bimt::Regime;
    use modcirc_metrics::{Alternative, Summary};

    use super::differences;
    use crate::paper::TASKS;
    use crate::rows::DiscoveryResult;

    /// BIMT's circuits fully separated from every other regime's over 5 + 5
    /// seeds, in each hypothesis's direction: every test is called (8/252 <
    /// 0.05 in a family of 8), with 5 seeds needed; the other way round,
    /// none is, and no seeds would do.
    #[test]
    fn complete_separation_over_five_seeds_is_called_in_its_direction_only() {
        let point = |v: f64| Summary { mean: v, lo: v, hi: v, n: 1 };
        let runs = |bimt_better: bool| -> Vec<DiscoveryResult> {
            let mut out = Vec::new();
            for r in Regime::ALL {
                for seed in 0..5u64 {
                    // Lower logit difference, higher sparsity, lower accuracy and time for BIMT.
                    let x = seed as f64 * 0.01 + if (r == Regime::Bimt) == bimt_better { 0.0 } else { 1.0 };
                    let m = [point(x), point(x), point(2.0 - x), point(x)];
                    out.extend(TASKS.iter().map(|t| DiscoveryResult::of_metrics(r, seed, t, m)));
                }
            }
            out
        };
        let tests = differences(&runs(true));
        assert_eq!(tests.len(), 4 * 2 * 4);
        for t in &tests {
            assert!(t.p_holm < 0.05, "{t:?}");
            assert_eq!(t.p_one_sided, 1.0 / 252.0);
            assert_eq!(t.p, 2.0 / 252.0);
            assert_eq!(t.smallest_p_holm, Some(8.0 / 252.0));
            assert_eq!(t.seeds_needed, Some(5), "{t:?}");
            assert!(t.effect.is_some_and(|e| e > 0.0) && t.alternative != Alternative::TwoSided);
        }
        for t in &differences(&runs(false)) {
            assert_eq!(t.p_holm, 1.0, "{t:?}");
            assert_eq!(t.seeds_needed, None);
        }
    }
}
