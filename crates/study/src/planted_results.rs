//! The planted-truth suite's tables and findings (STUDY §11): each
//! method's AUROC per regime over seeds, the planted models' quality, the
//! Boolean networks' circuits, and findings P1-P4.

use modcirc_acdc::Method;
use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::boolean::{BooleanMethod, BooleanModel};
use crate::judge::{method_names, over_seeds, roc_grid, MethodScore};
use crate::planted::PlantedScores;
use crate::rows::Verdict;
use crate::verdicts::NOT_EVALUATED;
use modcirc_bimt::iit::PlantedQuality;
use modcirc_bimt::Regime;

/// One method under one regime, over seeds: each seed's value the mean
/// over its three tasks; the interval a 95% t-interval over seeds (with one
/// seed, the value alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AurocRow {
    /// The method.
    pub method: String,
    /// The regime.
    pub regime: Regime,
    /// Node AUROC.
    pub node_auroc: Summary,
    /// Edge AUROC (edge methods).
    pub edge_auroc: Option<Summary>,
    /// Node precision of the selected circuit.
    pub node_precision: Summary,
    /// Node recall of the selected circuit.
    pub node_recall: Summary,
    /// Edge precision of the selected circuit (edge methods).
    #[serde(default)]
    pub edge_precision: Option<Summary>,
    /// Edge recall of the selected circuit (edge methods).
    #[serde(default)]
    pub edge_recall: Option<Summary>,
    /// The mean node ROC (true-positive rate at [`roc_grid`]) over seeds and tasks.
    pub node_roc: Vec<f64>,
}

/// A regime's planted models, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRow {
    /// The regime.
    pub regime: Regime,
    /// Task accuracy.
    pub task_accuracy: Summary,
    /// IIA.
    pub iia: Summary,
    /// Strictness failure.
    pub strictness_failure: Summary,
}

/// A regime's Boolean networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanRow {
    /// The regime.
    pub regime: Regime,
    /// Networks trained.
    pub networks: usize,
    /// Networks that reached zero error (the rest are not counted below).
    pub exact: usize,
    /// Valid circuits per exact network: mean and median.
    pub valid_mean: f64,
    /// Median of valid circuits.
    pub valid_median: f64,
    /// Minimal valid circuits per exact network, mean.
    pub minimal_mean: f64,
    /// Per method: the share of exact networks whose circuit is valid, and minimal.
    pub methods: Vec<(String, f64, f64)>,
}

/// The planted-truth suite's results: every model and network, the tables
/// across seeds, and the findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedResults {
    /// Each planted model (regime, seed): quality and scores.
    pub models: Vec<PlantedScores>,
    /// Each Boolean network.
    pub boolean: Vec<BooleanModel>,
    /// Methods x regimes.
    pub auroc: Vec<AurocRow>,
    /// Task accuracy, IIA, strictness per regime.
    pub quality: Vec<QualityRow>,
    /// The Boolean suite per regime.
    pub boolean_rows: Vec<BooleanRow>,
    /// Findings, each by its stated rule.
    pub findings: Vec<Verdict>,
    /// Wall time of the suite's units computed in this run.
    pub seconds: f64,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The tables and findings of the suite from its models and networks.
pub fn planted_results(models: Vec<PlantedScores>, boolean: Vec<BooleanModel>, seconds: f64) -> PlantedResults {
    let regimes: Vec<Regime> = Regime::ALL.into_iter().filter(|r| models.iter().any(|m| m.regime == *r)).collect();
    let mut auroc = Vec::new();
    let names = method_names(models.iter().flat_map(|m| &m.tasks).flat_map(|t| t.methods.iter().map(|m| &m.method)));
    for method in names.iter().map(String::as_str) {
        for &regime in &regimes {
            let of: Vec<&PlantedScores> = models.iter().filter(|m| m.regime == regime).collect();
            let per_seed = |f: &dyn Fn(&MethodScore) -> Option<f64>| -> Option<Summary> {
                let v: Option<Vec<f64>> = of
                    .iter()
                    .map(|m| {
                        let t: Option<Vec<f64>> = m.tasks.iter().map(|t| t.method(method).and_then(f)).collect();
                        t.map(|t| mean(&t))
                    })
                    .collect();
                v.and_then(|v| over_seeds(&v))
            };
            let (Some(node_auroc), Some(node_precision), Some(node_recall)) = (
                per_seed(&|s| Some(s.node_auroc)),
                per_seed(&|s| Some(s.node_precision)),
                per_seed(&|s| Some(s.node_recall)),
            ) else {
                continue;
            };
            let rocs: Vec<&Vec<f64>> =
                of.iter().flat_map(|m| m.tasks.iter().filter_map(|t| Some(&t.method(method)?.node_roc))).collect();
            let node_roc =
                (0..roc_grid().len()).map(|i| mean(&rocs.iter().map(|r| r[i]).collect::<Vec<_>>())).collect();
            auroc.push(AurocRow {
                method: method.to_string(),
                regime,
                node_auroc,
                edge_auroc: per_seed(&|s| s.edge_auroc),
                node_precision,
                node_recall,
                edge_precision: per_seed(&|s| s.edge_precision),
                edge_recall: per_seed(&|s| s.edge_recall),
                node_roc,
            });
        }
    }
    let quality = regimes
        .iter()
        .filter_map(|&regime| {
            let of: Vec<&PlantedQuality> = models.iter().filter(|m| m.regime == regime).map(|m| &m.quality).collect();
            let col = |f: fn(&PlantedQuality) -> f64| over_seeds(&of.iter().map(|q| f(q)).collect::<Vec<_>>());
            Some(QualityRow {
                regime,
                task_accuracy: col(|q| q.task_accuracy)?,
                iia: col(|q| q.iia)?,
                strictness_failure: col(|q| q.strictness_failure)?,
            })
        })
        .collect();
    let boolean_rows = Regime::ALL
        .into_iter()
        .filter(|r| boolean.iter().any(|b| b.regime == *r))
        .map(|regime| {
            let all: Vec<&BooleanModel> = boolean.iter().filter(|b| b.regime == regime).collect();
            let exact: Vec<&&BooleanModel> = all.iter().filter(|b| b.exact).collect();
            let mut valid: Vec<f64> = exact.iter().map(|b| b.valid as f64).collect();
            valid.sort_by(f64::total_cmp);
            let median = if valid.is_empty() {
                0.0
            } else if valid.len() % 2 == 1 {
                valid[valid.len() / 2]
            } else {
                (valid[valid.len() / 2 - 1] + valid[valid.len() / 2]) / 2.0
            };
            let share = |f: fn(&BooleanMethod) -> bool, m: &str| -> f64 {
                let hits = exact.iter().filter(|b| b.methods.iter().any(|x| x.method == m && f(x))).count();
                hits as f64 / exact.len().max(1) as f64
            };
            BooleanRow {
                regime,
                networks: all.len(),
                exact: exact.len(),
                valid_mean: mean(&valid),
                valid_median: median,
                minimal_mean: mean(&exact.iter().map(|b| b.minimal as f64).collect::<Vec<_>>()),
                methods: method_names(all.iter().flat_map(|b| b.methods.iter().map(|m| &m.method)))
                    .iter()
                    .map(|m| (m.to_string(), share(|x| x.valid, m), share(|x| x.minimal, m)))
                    .collect(),
            }
        })
        .collect::<Vec<_>>();
    let findings = planted_findings(&auroc, &boolean_rows);
    PlantedResults { models, boolean, auroc, quality, boolean_rows, findings, seconds }
}

fn fmt_summary(s: &Summary) -> String {
    format!("{:.3} [{:.3}, {:.3}]", s.mean, s.lo, s.hi)
}

/// The verdict on "BIMT has fewer": supported when `bimt` is below
/// `vanilla`, contradicted when above, not supported when equal.
fn fewer(bimt: f64, vanilla: f64) -> &'static str {
    match bimt.total_cmp(&vanilla) {
        std::cmp::Ordering::Less => "supported",
        std::cmp::Ordering::Greater => "contradicted",
        std::cmp::Ordering::Equal => "not supported",
    }
}

/// P1-P4, each by its stated rule.
fn planted_findings(auroc: &[AurocRow], boolean: &[BooleanRow]) -> Vec<Verdict> {
    let row = |m: &str, r: Regime| auroc.iter().find(|a| a.method == m && a.regime == r);
    let mut p1 = Verdict {
        id: "P1".into(),
        hypothesis: "BIMT's planted models let every method find the planted circuit better than Vanilla's (node AUROC).".into(),
        rule: "Supported if, for every method, BIMT's mean node AUROC over seeds is above Vanilla's and their 95% t-intervals do not overlap; contradicted if for every method it is below with no overlap; not supported otherwise; at least 2 seeds per regime.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let methods = method_names(auroc.iter().map(|a| &a.method));
    let pairs: Vec<(&str, &AurocRow, &AurocRow)> =
        methods.iter().filter_map(|m| Some((m.as_str(), row(m, Regime::Bimt)?, row(m, Regime::Vanilla)?))).collect();
    if pairs.len() == methods.len() && pairs.iter().all(|(_, b, v)| b.node_auroc.n >= 2 && v.node_auroc.n >= 2) {
        let above = pairs.iter().all(|(_, b, v)| b.node_auroc.lo > v.node_auroc.hi);
        let below = pairs.iter().all(|(_, b, v)| b.node_auroc.hi < v.node_auroc.lo);
        p1.verdict = if above {
            "supported"
        } else if below {
            "contradicted"
        } else {
            "not supported"
        }
        .into();
        p1.evidence = pairs
            .iter()
            .map(|(m, b, v)| {
                format!("{m}: BIMT {} vs Vanilla {}", fmt_summary(&b.node_auroc), fmt_summary(&v.node_auroc))
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let mut p2 = Verdict {
        id: "P2".into(),
        hypothesis: "BIMT's Boolean networks have fewer valid circuits than Vanilla's (modular training makes the circuit unique).".into(),
        rule: "Supported if BIMT's median number of valid circuits per exact network is below Vanilla's, contradicted if above, not supported if equal; each regime needs at least 5 exact networks.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let b_of = |r: Regime| boolean.iter().find(|b| b.regime == r && b.exact >= 5);
    if let (Some(b), Some(v)) = (b_of(Regime::Bimt), b_of(Regime::Vanilla)) {
        p2.verdict = fewer(b.valid_median, v.valid_median).into();
        p2.evidence = format!(
            "median valid circuits: BIMT {} ({} of {} networks exact), Vanilla {} ({} of {} exact)",
            b.valid_median, b.exact, b.networks, v.valid_median, v.exact, v.networks
        );
    }
    let mut p4 = Verdict {
        id: "P4".into(),
        hypothesis: "BIMT's Boolean networks have fewer minimal circuits than Vanilla's (one mechanism, however many supersets of it are valid).".into(),
        rule: "Supported if BIMT's mean number of minimal valid circuits per exact network is below Vanilla's, contradicted if above, not supported if equal; each regime needs at least 5 exact networks. (A dead neuron doubles the valid circuits, which P2 counts, but adds no minimal one.)".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    if let (Some(b), Some(v)) = (b_of(Regime::Bimt), b_of(Regime::Vanilla)) {
        p4.verdict = fewer(b.minimal_mean, v.minimal_mean).into();
        p4.evidence = format!(
            "mean minimal circuits: BIMT {:.2} ({} exact networks), Vanilla {:.2} ({} exact)",
            b.minimal_mean, b.exact, v.minimal_mean, v.exact
        );
    }
    let mut p3 = Verdict {
        id: "P3".into(),
        hypothesis: "Exact patching (the paper's method) ranks the planted circuit at least as well as every cheaper estimate.".into(),
        rule: "Over every regime's models, supported if exact patching's mean node AUROC is the highest of the methods (ties included); not supported otherwise.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let overall: Vec<(&str, f64)> = methods
        .iter()
        .map(|m| {
            (m.as_str(), mean(&auroc.iter().filter(|a| a.method == *m).map(|a| a.node_auroc.mean).collect::<Vec<_>>()))
        })
        .collect();
    if !auroc.is_empty() {
        let best = overall.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
        let patching = overall.iter().find(|(m, _)| *m == Method::Patching.name()).map_or(f64::NAN, |(_, v)| *v);
        p3.verdict = if patching >= best { "supported" } else { "not supported" }.into();
        p3.evidence =
            overall.iter().map(|(m, v)| format!("{m} {v:.3}")).collect::<Vec<_>>().join(", ") + " (mean over regimes)";
    }
    vec![p1, p2, p3, p4]
}
