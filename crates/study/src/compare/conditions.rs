//! A comparison's conditions: each summarised over its checkpoints (mean
//! and 95% t interval), every metric tested between conditions by the
//! exact permutation test over checkpoints (two-sided, STUDY §10's test),
//! Holm-corrected within the metric, and said in one line per metric.

use modcirc_metrics::{holm, permutation_test, smallest_permutation_p, Alternative, Summary};
use serde::{Deserialize, Serialize};

use super::ComparedModel;

/// The level at which a Holm-corrected p separates two conditions.
pub const ALPHA: f64 = 0.05;

/// Edge rules whose kept shares of two models' weights differ by more than
/// this factor make edge counts compare the rule as much as the circuits.
pub const EDGE_SHARE_RATIO: f64 = 1.25;

/// Which way a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Higher is better (faithfulness, accuracy, CPR, stability).
    Higher,
    /// Lower is better (circuit size, CMD).
    Lower,
    /// Neither: a property (Q, shares of weights).
    Neither,
}

/// One metric of a condition over its checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionValue {
    /// The metric.
    pub metric: String,
    /// Which way it is better.
    pub better: Better,
    /// Mean and 95% t interval over the checkpoints where it is defined (a
    /// point with one); `None` where it is defined for none.
    pub summary: Option<Summary>,
}

/// One condition over its checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionRow {
    /// The condition.
    pub condition: String,
    /// Its checkpoints.
    pub models: usize,
    /// Every metric, in [`metrics`]' order.
    pub values: Vec<ConditionValue>,
}

impl ConditionRow {
    /// The summary of `metric`, where defined.
    pub fn value(&self, metric: &str) -> Option<&Summary> {
        self.values.iter().find(|v| v.metric == metric)?.summary.as_ref()
    }
}

/// One metric tested between two conditions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionTest {
    /// The metric.
    pub metric: String,
    /// The first condition.
    pub a: String,
    /// The second (the baseline, where one is named).
    pub b: String,
    /// `a`'s checkpoints with the metric defined.
    pub n_a: usize,
    /// `b`'s.
    pub n_b: usize,
    /// `a`'s mean.
    pub mean_a: f64,
    /// `b`'s mean.
    pub mean_b: f64,
    /// The exact two-sided permutation p of `mean_a − mean_b` over the checkpoints.
    pub p: f64,
    /// Holm-corrected over the metric's tests.
    pub p_holm: f64,
    /// The smallest p these group sizes can give: above [`ALPHA`], no
    /// difference could be called.
    pub smallest_p: f64,
}

/// Two conditions the tests separate on a metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Separated {
    /// The condition with the higher mean.
    pub higher: String,
    /// The other.
    pub lower: String,
    /// Their means.
    pub means: (f64, f64),
    /// Holm's p.
    pub p_holm: f64,
}

/// What the tests of one metric say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricAnswer {
    /// The metric.
    pub metric: String,
    /// Which way it is better.
    pub better: Better,
    /// The pairs separated at [`ALPHA`], Holm-corrected.
    pub separated: Vec<Separated>,
    /// The smallest Holm p of its tests; `None`: no test could be formed.
    pub smallest_p_holm: Option<f64>,
    /// Where no p of its tests could reach [`ALPHA`] (too few checkpoints):
    /// the group sizes and the smallest p they allow.
    pub too_few: Option<(usize, usize, f64)>,
    /// Whether the tests were against a baseline.
    pub against_baseline: bool,
    /// Why no test was formed, where none was.
    pub no_test: Option<String>,
    /// The answer in a line, names as given.
    pub line: String,
}

impl MetricAnswer {
    /// The answer in a line, each condition's name written by `name` (an
    /// escaper for the format it goes into); `floor_said`: the comparison
    /// already says that no p can reach [`ALPHA`], so the line does not.
    pub fn line_with(&self, name: &dyn Fn(&str) -> String, floor_said: bool) -> String {
        let metric = &self.metric;
        let direction = match self.better {
            Better::Higher => " (higher is better)",
            Better::Lower => " (lower is better)",
            Better::Neither => "",
        };
        if let Some(why) = &self.no_test {
            return format!("{metric}: no test ({why})");
        }
        if !self.separated.is_empty() {
            let pairs: Vec<String> = self
                .separated
                .iter()
                .map(|s| {
                    format!(
                        "{} above {} ({} vs {}, Holm p = {})",
                        name(&s.higher),
                        name(&s.lower),
                        num(s.means.0),
                        num(s.means.1),
                        num(s.p_holm)
                    )
                })
                .collect();
            return format!("{metric}{direction}: {}", pairs.join("; "));
        }
        let of = if self.against_baseline { "against the baseline" } else { "between any two conditions" };
        let floor = match self.too_few {
            Some((a, b, p)) if !floor_said => {
                format!("; with {a} and {b} checkpoints no p can be below {}: more seeds are needed", num(p))
            }
            _ => String::new(),
        };
        format!(
            "{metric}{direction}: not separable {of} (smallest Holm p = {}{floor})",
            num(self.smallest_p_holm.unwrap_or(1.0))
        )
    }
}

/// Where no test of the comparison could reach [`ALPHA`]: said once,
/// rather than on every metric's line.
pub fn floor_note(answers: &[MetricAnswer]) -> Option<String> {
    let tested: Vec<&MetricAnswer> = answers.iter().filter(|a| a.no_test.is_none()).collect();
    let (a, b, p) = tested.first()?.too_few?;
    tested.iter().all(|t| t.too_few.is_some()).then(|| {
        format!(
            "With {a} and {b} checkpoints per condition, no two-sided permutation p can be below {}: no difference can be called at {ALPHA}, whatever the data. More seeds are needed (5 and 5 allow {}).",
            num(p),
            num(smallest_permutation_p(5, 5).unwrap_or(f64::NAN))
        )
    })
}

type Value = Box<dyn Fn(&ComparedModel) -> Option<f64>>;

/// Every metric a comparison summarises and tests, with which way it is
/// better: the headline faithfulness first, then accuracy, the circuits'
/// sizes, the controls, each method's numbers (the methods in the order
/// the models ran them), ACDC, Q and the edge rules' shares.
pub fn metrics(models: &[ComparedModel]) -> Vec<(String, Better, Value)> {
    use Better::*;
    let mut out: Vec<(String, Better, Value)> = vec![
        ("faithfulness".into(), Higher, Box::new(|m: &ComparedModel| m.faithfulness)),
        ("test accuracy".into(), Higher, Box::new(|m: &ComparedModel| Some(m.test_accuracy))),
        ("circuit accuracy".into(), Higher, Box::new(|m: &ComparedModel| Some(m.circuit_accuracy))),
        (
            "circuit edges (share of the model's eps edges)".into(),
            Lower,
            Box::new(|m: &ComparedModel| Some(m.circuit_edges as f64 / m.edges.eps_edges.max(1) as f64)),
        ),
        ("smallest K".into(), Lower, Box::new(|m: &ComparedModel| m.smallest.k.map(|k| k as f64))),
        (
            "smallest per-layer neurons".into(),
            Lower,
            Box::new(|m: &ComparedModel| m.smallest.per_layer.as_ref().map(|p| p.kept.iter().sum::<usize>() as f64)),
        ),
        ("smallest EAP edges".into(), Lower, Box::new(|m: &ComparedModel| m.smallest.eap_edges.map(|e| e as f64))),
        (
            "smallest EAP edges (share of weights)".into(),
            Lower,
            Box::new(|m: &ComparedModel| m.smallest.eap_edges.map(|e| e as f64 / m.edges.weights as f64)),
        ),
        ("margin over random circuits".into(), Higher, Box::new(|m: &ComparedModel| m.controls.as_ref()?.margin)),
        (
            "any-digit faithfulness".into(),
            Neither,
            Box::new(|m: &ComparedModel| m.controls.as_ref()?.any_digit_faithfulness),
        ),
    ];
    let mut names: Vec<String> = Vec::new();
    for m in models.iter().flat_map(|m| &m.methods) {
        if !names.contains(&m.method) {
            names.push(m.method.clone());
        }
    }
    for name in names {
        let of = |name: &str, f: fn(&super::CompareMethod) -> Option<f64>| -> Value {
            let name = name.to_string();
            Box::new(move |m: &ComparedModel| f(m.methods.iter().find(|x| x.method == name)?))
        };
        out.push((format!("{name} CPR"), Higher, of(&name, |x| Some(x.cpr))));
        out.push((format!("{name} CMD"), Lower, of(&name, |x| Some(x.cmd))));
        out.push((format!("{name} same-size faithfulness"), Higher, of(&name, |x| Some(x.same_size_faithfulness))));
        out.push((format!("{name} stability"), Higher, of(&name, |x| x.stability)));
    }
    out.push(("ACDC edges".into(), Lower, Box::new(|m: &ComparedModel| Some(m.acdc_edges as f64))));
    out.push(("ACDC faithfulness".into(), Higher, Box::new(|m: &ComparedModel| Some(m.acdc_faithfulness))));
    out.push(("Q".into(), Neither, Box::new(|m: &ComparedModel| Some(m.modularity_q))));
    out.push(("eps-edge share of weights".into(), Neither, Box::new(|m: &ComparedModel| Some(m.edges.eps_share))));
    out.push((
        "activation-edge share of weights".into(),
        Neither,
        Box::new(|m: &ComparedModel| Some(m.edges.activation_share)),
    ));
    out
}

/// The conditions of `models`, in the order first given.
fn names(models: &[ComparedModel]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for m in models {
        if !names.contains(&m.condition.as_str()) {
            names.push(&m.condition);
        }
    }
    names
}

/// `metric`'s values over `condition`'s checkpoints where defined.
fn values(models: &[ComparedModel], condition: &str, f: &Value) -> Vec<f64> {
    models.iter().filter(|m| m.condition == condition).filter_map(f).filter(|v| v.is_finite()).collect()
}

/// Every condition of `models` over its checkpoints.
pub fn conditions(models: &[ComparedModel]) -> Vec<ConditionRow> {
    let metrics = metrics(models);
    names(models)
        .into_iter()
        .map(|name| ConditionRow {
            condition: name.to_string(),
            models: models.iter().filter(|m| m.condition == name).count(),
            values: metrics
                .iter()
                .map(|(metric, better, f)| {
                    let v = values(models, name, f);
                    ConditionValue {
                        metric: metric.clone(),
                        better: *better,
                        summary: Summary::t_interval(&v).or_else(|| Summary::of(&v)),
                    }
                })
                .collect(),
        })
        .collect()
}

/// The pairs of conditions tested: each against `baseline`, or every pair
/// in the order given.
fn pairs<'a>(names: &[&'a str], baseline: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    match baseline {
        Some(b) => names.iter().filter(|n| **n != b).map(|n| (*n, b)).collect(),
        None => names.iter().enumerate().flat_map(|(i, a)| names[i + 1..].iter().map(move |b| (*a, *b))).collect(),
    }
}

/// Every metric tested between the pairs of conditions (each against `baseline`, or every pair): the exact
/// two-sided permutation test over the checkpoints where the metric is
/// defined on both sides, Holm-corrected within the metric.
pub fn tests(models: &[ComparedModel], baseline: Option<&str>) -> Vec<ConditionTest> {
    let names = names(models);
    let mut out = Vec::new();
    for (metric, _, f) in metrics(models) {
        let mut these: Vec<ConditionTest> = pairs(&names, baseline)
            .into_iter()
            .filter_map(|(a, b)| {
                let (va, vb) = (values(models, a, &f), values(models, b, &f));
                let p = permutation_test(&va, &vb, Alternative::TwoSided)?;
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                Some(ConditionTest {
                    metric: metric.clone(),
                    a: a.to_string(),
                    b: b.to_string(),
                    n_a: va.len(),
                    n_b: vb.len(),
                    mean_a: mean(&va),
                    mean_b: mean(&vb),
                    p,
                    p_holm: p,
                    smallest_p: smallest_permutation_p(va.len(), vb.len())?,
                })
            })
            .collect();
        let adjusted = holm(&these.iter().map(|t| t.p).collect::<Vec<_>>());
        these.iter_mut().zip(adjusted).for_each(|(t, p)| t.p_holm = p);
        out.extend(these);
    }
    out
}

/// A number as the answers print it: three significant digits.
fn num(v: f64) -> String {
    let digits = (2 - v.abs().max(1e-12).log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// One answer per metric: the pairs of conditions the tests separate
/// (which is higher, with the means and Holm's p), or that none is, with
/// the smallest p and, where the checkpoints are too few for any p to
/// reach [`ALPHA`], that.
pub fn answers(models: &[ComparedModel], tests: &[ConditionTest], baseline: Option<&str>) -> Vec<MetricAnswer> {
    metrics(models)
        .into_iter()
        .map(|(metric, better, _)| {
            let these: Vec<&ConditionTest> = tests.iter().filter(|t| t.metric == metric).collect();
            let no_test = these.is_empty().then(|| {
                if names(models).len() < 2 { "one condition" } else { "not defined on both sides" }.to_string()
            });
            let separated = these
                .iter()
                .filter(|t| t.p_holm <= ALPHA)
                .map(|t| {
                    let a_higher = t.mean_a >= t.mean_b;
                    let (higher, lower) = if a_higher { (&t.a, &t.b) } else { (&t.b, &t.a) };
                    Separated {
                        higher: higher.clone(),
                        lower: lower.clone(),
                        means: if a_higher { (t.mean_a, t.mean_b) } else { (t.mean_b, t.mean_a) },
                        p_holm: t.p_holm,
                    }
                })
                .collect();
            let best = these.iter().min_by(|x, y| x.p_holm.total_cmp(&y.p_holm));
            let too_few =
                best.filter(|_| these.iter().all(|t| t.smallest_p > ALPHA)).map(|b| (b.n_a, b.n_b, b.smallest_p));
            let mut a = MetricAnswer {
                metric,
                better,
                separated,
                smallest_p_holm: best.map(|b| b.p_holm),
                too_few,
                against_baseline: baseline.is_some(),
                no_test,
                line: String::new(),
            };
            a.line = a.line_with(&|n| n.to_string(), false);
            a
        })
        .collect()
}

/// Warnings for a reader: edge rules keeping very different shares of the
/// models' weights (then edge counts compare the rule as much as the
/// circuits).
pub fn warnings(models: &[ComparedModel]) -> Vec<String> {
    let mut out = Vec::new();
    let shares = |f: fn(&ComparedModel) -> f64| {
        let lo = models.iter().min_by(|a, b| f(a).total_cmp(&f(b)));
        let hi = models.iter().max_by(|a, b| f(a).total_cmp(&f(b)));
        lo.zip(hi)
    };
    if let Some((lo, hi)) = shares(|m| m.edges.eps_share) {
        if hi.edges.eps_share > EDGE_SHARE_RATIO * lo.edges.eps_share {
            out.push(format!(
                "the eps rule keeps {:.0}% of {}'s weights ({}) but {:.0}% of {}'s ({}): edge counts under it compare the rule as much as the circuits. \
                 The activation-aware rule keeps {:.0}% and {:.0}% ({})",
                100.0 * hi.edges.eps_share,
                hi.condition,
                hi.model,
                100.0 * lo.edges.eps_share,
                lo.condition,
                lo.model,
                100.0 * hi.edges.activation_share,
                100.0 * lo.edges.activation_share,
                hi.edges.activation_rule
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use modcirc_acdc::SmallestFaithful;

    use super::super::{CompareMethod, EdgeCounts};
    use super::*;

    fn model(condition: &str, faithfulness: f64, eap_edges: usize, eps_share: f64) -> ComparedModel {
        let s = |v: f64| Summary { mean: v, lo: v, hi: v, n: 1 };
        ComparedModel {
            condition: condition.into(),
            model: format!("{condition}.safetensors"),
            model_sha256: "0".into(),
            sizes: vec![4, 3, 2],
            activation: "relu".into(),
            test_accuracy: 0.9,
            faithfulness: Some(faithfulness),
            faithfulness_resampled: None,
            circuit_accuracy: 0.9,
            logit_difference: s(1.0),
            circuit_edges: 10,
            edges: EdgeCounts {
                weights: 1000,
                eps_edges: (eps_share * 1000.0) as usize,
                eps_share,
                activation_edges: 500,
                activation_share: 0.5,
                activation_rule: "rule".into(),
            },
            smallest: SmallestFaithful {
                target: 0.8,
                growth: String::new(),
                k: None,
                kept: vec![],
                edges: 0,
                sparsity: None,
                faithfulness: None,
                faithfulness_resampled: None,
                k_resampled: None,
                resamples_reaching: (0, 0),
                edge_growth: String::new(),
                eap_edges: Some(eap_edges),
                eap_faithfulness: None,
                per_layer: None,
            },
            node_curve: None,
            controls: None,
            methods: vec![CompareMethod {
                method: "eap".into(),
                cpr: faithfulness,
                cmd: 1.0 - faithfulness,
                same_size_faithfulness: faithfulness,
                stability: Some(0.9),
                seconds: 0.0,
            }],
            acdc_edges: 10,
            acdc_faithfulness: 0.7,
            modularity_q: 0.3,
            seconds: 0.0,
        }
    }

    /// Three conditions of five seeds: "wide" separates from the others on
    /// EAP edges (every split but the observed ones is less extreme), the
    /// faithfulness of "plain" and "dropout" overlaps.
    fn three() -> Vec<ComparedModel> {
        let mut ms = Vec::new();
        for (i, f) in [0.80, 0.82, 0.84, 0.86, 0.88].into_iter().enumerate() {
            ms.push(model("plain", f, 500 + i, 0.9));
            ms.push(model("dropout", f + 0.01 * (i % 2) as f64, 500 + (i * 3) % 5, 0.88));
            ms.push(model("wide", f, 900 + i, 0.6));
        }
        ms
    }

    #[test]
    fn every_pair_is_tested_exactly_and_holm_corrected_within_the_metric() {
        let ms = three();
        let all = tests(&ms, None);
        let eap: Vec<&ConditionTest> = all.iter().filter(|t| t.metric == "smallest EAP edges").collect();
        assert_eq!(
            eap.iter().map(|t| (t.a.as_str(), t.b.as_str())).collect::<Vec<_>>(),
            [("plain", "dropout"), ("plain", "wide"), ("dropout", "wide")]
        );
        // 5 against 5: C(10, 5) = 252 splits; "wide" is above both in every seed: p = 2/252.
        let wide = eap.iter().find(|t| t.a == "plain" && t.b == "wide").unwrap();
        assert!((wide.p - 2.0 / 252.0).abs() < 1e-12 && (wide.smallest_p - 2.0 / 252.0).abs() < 1e-12);
        let raw: Vec<f64> = eap.iter().map(|t| t.p).collect();
        let want = holm(&raw);
        assert!(eap.iter().zip(&want).all(|(t, w)| (t.p_holm - w).abs() < 1e-12));
        // Against a named baseline: one test per other condition.
        let vs = tests(&ms, Some("plain"));
        assert!(vs.iter().all(|t| t.b == "plain" && t.a != "plain"));
        assert_eq!(vs.iter().filter(|t| t.metric == "faithfulness").count(), 2);
    }

    #[test]
    fn each_metric_is_answered_in_one_line() {
        let ms = three();
        let t = tests(&ms, None);
        let said = answers(&ms, &t, None);
        let line = |m: &str| said.iter().find(|a| a.metric == m).unwrap().line.clone();
        let eap = line("smallest EAP edges");
        assert!(eap.starts_with("smallest EAP edges (lower is better): wide above plain"), "{eap}");
        assert!(eap.contains("Holm p = 0.0238"), "3 × 2/252: {eap}");
        let f = line("faithfulness");
        assert!(f.contains("not separable between any two conditions"), "{f}");
        // Two seeds each: no p can be below 1/3, and the answer says so.
        let two: Vec<ComparedModel> = three().into_iter().filter(|m| m.model_sha256 == "0").take(6).collect();
        let t2 = tests(&two, None);
        let a2 = answers(&two, &t2, None);
        let eap2 = &a2.iter().find(|a| a.metric == "smallest EAP edges").unwrap().line;
        assert!(eap2.contains("with 2 and 2 checkpoints no p can be below 0.333: more seeds are needed"), "{eap2}");
        // ... said once for the comparison, where it holds for every metric, and then not on each line.
        let note = floor_note(&a2).expect("no p can reach 0.05 with 2 and 2");
        assert!(note.starts_with("With 2 and 2 checkpoints per condition"), "{note}");
        let plain = a2[0].line_with(&|n| n.to_string(), true);
        assert!(!plain.contains("more seeds"), "{plain}");
        assert!(floor_note(&said).is_none(), "5 and 5 seeds can reach it");
        // Names go through the escaper the format needs.
        let sep = said.iter().find(|a| !a.separated.is_empty()).unwrap();
        assert!(sep.line_with(&|n| format!("<{n}>"), false).contains("<wide> above <plain>"));
        // One condition: no test.
        let one: Vec<ComparedModel> = three().into_iter().filter(|m| m.condition == "plain").collect();
        assert!(answers(&one, &tests(&one, None), None)[0].line.ends_with("no test (one condition)"));
    }

    #[test]
    fn conditions_keep_their_order_and_a_rule_keeping_different_shares_is_warned_of() {
        let ms = three();
        let rows = conditions(&ms);
        assert_eq!(rows.iter().map(|r| r.condition.as_str()).collect::<Vec<_>>(), ["plain", "dropout", "wide"]);
        assert_eq!(rows[0].models, 5);
        let f = rows[0].value("faithfulness").unwrap();
        assert!((f.mean - 0.84).abs() < 1e-12 && f.lo < f.mean && f.hi > f.mean);
        let w = warnings(&ms);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("90% of plain's") && w[0].contains("60% of wide's"), "{}", w[0]);
        let same: Vec<ComparedModel> = ms.into_iter().filter(|m| m.condition != "wide").collect();
        assert!(warnings(&same).is_empty());
    }
}
