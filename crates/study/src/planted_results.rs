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
    /// Node AUROC against the live truth (STUDY §11), where every task has it.
    #[serde(default)]
    pub live_node_auroc: Option<Summary>,
    /// Edge AUROC against the live truth (edge methods).
    #[serde(default)]
    pub live_edge_auroc: Option<Summary>,
}

/// The least IIA of a planted model that counts as truth (STUDY §11).
pub const MIN_IIA: f64 = 0.9;

/// The largest strictness failure of a planted model that counts as truth (STUDY §11).
pub const MAX_STRICTNESS_FAILURE: f64 = 0.05;

/// A planted model left out of P1-P4: its mechanism does not hold well
/// enough to be the truth (STUDY §11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedModel {
    /// The regime.
    pub regime: Regime,
    /// The seed.
    pub seed: u64,
    /// Its IIA.
    pub iia: f64,
    /// Its strictness failure.
    pub strictness_failure: f64,
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
    /// Methods x regimes, over every planted model.
    pub auroc: Vec<AurocRow>,
    /// The same over the models that meet [`MIN_IIA`] and
    /// [`MAX_STRICTNESS_FAILURE`]: what P1 and P3 judge.
    #[serde(default)]
    pub auroc_judged: Vec<AurocRow>,
    /// The planted models that do not, with their numbers.
    #[serde(default)]
    pub excluded: Vec<ExcludedModel>,
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

/// Each method under each regime over `models` (STUDY §11).
fn auroc_rows(models: &[&PlantedScores]) -> Vec<AurocRow> {
    let regimes: Vec<Regime> = Regime::ALL.into_iter().filter(|r| models.iter().any(|m| m.regime == *r)).collect();
    let mut auroc = Vec::new();
    let names = method_names(models.iter().flat_map(|m| &m.tasks).flat_map(|t| t.methods.iter().map(|m| &m.method)));
    for method in names.iter().map(String::as_str) {
        for &regime in &regimes {
            let of: Vec<&PlantedScores> = models.iter().copied().filter(|m| m.regime == regime).collect();
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
                live_node_auroc: per_seed(&|s| s.live_node_auroc),
                live_edge_auroc: per_seed(&|s| s.live_edge_auroc),
            });
        }
    }
    auroc
}

/// The tables and findings of the suite from its models and networks.
pub fn planted_results(models: Vec<PlantedScores>, boolean: Vec<BooleanModel>, seconds: f64) -> PlantedResults {
    let regimes: Vec<Regime> = Regime::ALL.into_iter().filter(|r| models.iter().any(|m| m.regime == *r)).collect();
    let auroc = auroc_rows(&models.iter().collect::<Vec<_>>());
    let meets = |m: &&PlantedScores| m.quality.iia >= MIN_IIA && m.quality.strictness_failure <= MAX_STRICTNESS_FAILURE;
    let auroc_judged = auroc_rows(&models.iter().filter(meets).collect::<Vec<_>>());
    let excluded = models
        .iter()
        .filter(|m| !meets(m))
        .map(|m| ExcludedModel {
            regime: m.regime,
            seed: m.seed,
            iia: m.quality.iia,
            strictness_failure: m.quality.strictness_failure,
        })
        .collect();
    let quality: Vec<QualityRow> = regimes
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
    let findings = planted_findings(&auroc_judged, &boolean_rows, &quality);
    PlantedResults { models, boolean, auroc, auroc_judged, excluded, quality, boolean_rows, findings, seconds }
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

/// P1-P4, each by its stated rule; P1 and P3 on the full and on the live
/// truth, over the models `auroc` covers (those that meet the bar).
fn planted_findings(auroc: &[AurocRow], boolean: &[BooleanRow], quality: &[QualityRow]) -> Vec<Verdict> {
    let full = |a: &AurocRow| Some(a.node_auroc);
    let live = |a: &AurocRow| a.live_node_auroc;
    vec![
        p1(auroc, quality, ("P1", "", full)),
        p1(auroc, quality, ("P1 (live truth)", " live", live)),
        p2(boolean),
        p3(auroc, ("P3", "", full)),
        p3(auroc, ("P3 (live truth)", " live", live)),
        p4(boolean),
    ]
}

/// Which AUROC a finding reads: its id, the word for the truth in its
/// text, and how a row gives it.
type Reading = (&'static str, &'static str, fn(&AurocRow) -> Option<Summary>);

fn p1(auroc: &[AurocRow], quality: &[QualityRow], (id, truth, pick): Reading) -> Verdict {
    let row = |m: &str, r: Regime| auroc.iter().find(|a| a.method == m && a.regime == r);
    let mut v = Verdict {
        id: id.into(),
        hypothesis: format!("BIMT's planted models let every method find the planted circuit better than Vanilla's (node AUROC against the{truth} truth)."),
        rule: format!("Over the planted models with IIA >= {MIN_IIA} and strictness failure <= {MAX_STRICTNESS_FAILURE} (STUDY §11): supported if, for every method, BIMT's mean{truth} node AUROC over seeds is above Vanilla's and their 95% t-intervals do not overlap; contradicted if for every method it is below with no overlap; not supported otherwise; at least 2 seeds per regime."),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let methods = method_names(auroc.iter().map(|a| &a.method));
    let pairs: Vec<(&str, Summary, Summary)> = methods
        .iter()
        .filter_map(|m| Some((m.as_str(), pick(row(m, Regime::Bimt)?)?, pick(row(m, Regime::Vanilla)?)?)))
        .collect();
    if methods.is_empty() || pairs.len() < methods.len() || pairs.iter().any(|(_, b, v)| b.n < 2 || v.n < 2) {
        return v;
    }
    let above = pairs.iter().all(|(_, b, v)| b.lo > v.hi);
    let below = pairs.iter().all(|(_, b, v)| b.hi < v.lo);
    v.verdict = if above {
        "supported"
    } else if below {
        "contradicted"
    } else {
        "not supported"
    }
    .into();
    let iia = |r: Regime| quality.iter().find(|q| q.regime == r).map_or("–".into(), |q| fmt_summary(&q.iia));
    v.evidence = pairs
        .iter()
        .map(|(m, b, v)| format!("{m}: BIMT {} vs Vanilla {}", fmt_summary(b), fmt_summary(v)))
        .chain([format!("IIA (every model): BIMT {}, Vanilla {}", iia(Regime::Bimt), iia(Regime::Vanilla))])
        .collect::<Vec<_>>()
        .join("; ");
    v
}

fn p2(boolean: &[BooleanRow]) -> Verdict {
    let mut p2 = Verdict {
        id: "P2".into(),
        hypothesis: "BIMT's Boolean networks have fewer valid circuits than Vanilla's (modular training makes the circuit unique).".into(),
        rule: "Supported if BIMT's median number of valid circuits per exact network is below Vanilla's, contradicted if above, not supported if equal; each regime needs at least 5 exact networks.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    if let (Some(b), Some(v)) = (exact_row(boolean, Regime::Bimt), exact_row(boolean, Regime::Vanilla)) {
        p2.verdict = fewer(b.valid_median, v.valid_median).into();
        p2.evidence = format!(
            "median valid circuits: BIMT {} ({} of {} networks exact), Vanilla {} ({} of {} exact)",
            b.valid_median, b.exact, b.networks, v.valid_median, v.exact, v.networks
        );
    }
    p2
}

/// A regime's Boolean row with at least 5 exact networks.
fn exact_row(boolean: &[BooleanRow], r: Regime) -> Option<&BooleanRow> {
    boolean.iter().find(|b| b.regime == r && b.exact >= 5)
}

fn p4(boolean: &[BooleanRow]) -> Verdict {
    let mut p4 = Verdict {
        id: "P4".into(),
        hypothesis: "BIMT's Boolean networks have fewer minimal circuits than Vanilla's (one mechanism, however many supersets of it are valid).".into(),
        rule: "Supported if BIMT's mean number of minimal valid circuits per exact network is below Vanilla's, contradicted if above, not supported if equal; each regime needs at least 5 exact networks. (A dead neuron doubles the valid circuits, which P2 counts, but adds no minimal one.)".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    if let (Some(b), Some(v)) = (exact_row(boolean, Regime::Bimt), exact_row(boolean, Regime::Vanilla)) {
        p4.verdict = fewer(b.minimal_mean, v.minimal_mean).into();
        p4.evidence = format!(
            "mean minimal circuits: BIMT {:.2} ({} exact networks), Vanilla {:.2} ({} exact)",
            b.minimal_mean, b.exact, v.minimal_mean, v.exact
        );
    }
    p4
}

fn p3(auroc: &[AurocRow], (id, truth, pick): Reading) -> Verdict {
    let mut p3 = Verdict {
        id: id.into(),
        hypothesis: format!("Exact patching (the paper's method) ranks the planted circuit at least as well as every cheaper estimate (against the{truth} truth)."),
        rule: format!("Over the planted models with IIA >= {MIN_IIA} and strictness failure <= {MAX_STRICTNESS_FAILURE}, every regime's: supported if exact patching's mean{truth} node AUROC is the highest of the methods (ties included); not supported otherwise."),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let methods = method_names(auroc.iter().map(|a| &a.method));
    let overall: Option<Vec<(&str, f64)>> = methods
        .iter()
        .map(|m| {
            let v: Option<Vec<f64>> =
                auroc.iter().filter(|a| a.method == *m).map(|a| pick(a).map(|s| s.mean)).collect();
            Some((m.as_str(), mean(&v?)))
        })
        .collect();
    let Some(overall) = overall.filter(|o| !o.is_empty()) else { return p3 };
    let best = overall.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
    let patching = overall.iter().find(|(m, _)| *m == Method::Patching.name()).map_or(f64::NAN, |(_, v)| *v);
    p3.verdict = if patching >= best { "supported" } else { "not supported" }.into();
    p3.evidence =
        overall.iter().map(|(m, v)| format!("{m} {v:.3}")).collect::<Vec<_>>().join(", ") + " (mean over regimes)";
    p3
}

#[cfg(test)]
mod tests {
    use modcirc_bimt::iit::PlantedQuality;
    use modcirc_bimt::Regime;

    use super::*;
    use crate::judge::roc_grid;
    use crate::planted::TaskScores;

    fn model(regime: Regime, seed: u64, iia: f64, auroc: f64) -> PlantedScores {
        let score = MethodScore {
            method: "patching".into(),
            node_auroc: auroc,
            edge_auroc: None,
            node_precision: 0.5,
            node_recall: 0.5,
            edge_precision: None,
            edge_recall: None,
            selected_nodes: 30,
            node_roc: vec![0.5; roc_grid().len()],
            seconds: 0.1,
            live_node_auroc: Some(auroc + 0.05),
            live_edge_auroc: None,
        };
        let task = TaskScores {
            quadrant: 1,
            pairs: 10,
            true_nodes: 32,
            true_edges: 100,
            live_nodes: 20,
            methods: vec![score],
        };
        PlantedScores {
            regime,
            seed,
            quality: PlantedQuality {
                task_accuracy: 0.95,
                iia,
                iia_per_node: [iia; 4],
                strictness_failure: 0.01,
                trials: 100,
            },
            tasks: vec![task],
        }
    }

    /// A model under IIA 0.9 is reported but left out of P1 and P3; with
    /// too few models left in a regime, P1 is not evaluated.
    #[test]
    fn models_that_miss_the_bar_are_reported_and_left_out_of_p1() {
        let models = vec![
            model(Regime::Vanilla, 0, 0.95, 0.70),
            model(Regime::Vanilla, 1, 0.93, 0.71),
            model(Regime::Bimt, 0, 0.96, 0.90),
            model(Regime::Bimt, 1, 0.92, 0.91),
            model(Regime::Bimt, 2, 0.70, 0.20),
        ];
        let r = planted_results(models.clone(), Vec::new(), 0.0);
        assert_eq!(r.excluded.len(), 1);
        assert_eq!((r.excluded[0].regime, r.excluded[0].seed), (Regime::Bimt, 2));
        let bimt = |rows: &[AurocRow]| rows.iter().find(|a| a.regime == Regime::Bimt).unwrap().node_auroc;
        assert_eq!(bimt(&r.auroc).n, 3);
        assert_eq!(bimt(&r.auroc_judged).n, 2);
        let verdict = |id: &str| r.findings.iter().find(|f| f.id == id).unwrap().verdict.clone();
        assert_eq!(verdict("P1"), "supported");
        assert_eq!(verdict("P1 (live truth)"), "supported");
        assert_eq!(verdict("P3"), "supported", "patching is the only method");
        let few: Vec<PlantedScores> = models
            .into_iter()
            .map(|m| {
                if m.regime == Regime::Bimt {
                    PlantedScores { quality: PlantedQuality { iia: 0.5, ..m.quality }, ..m }
                } else {
                    m
                }
            })
            .collect();
        let r = planted_results(few, Vec::new(), 0.0);
        assert!(r.findings.iter().find(|f| f.id == "P1").unwrap().verdict.starts_with("not evaluated"));
    }
}
