//! The results of a sweep (`results.json` of `sweep report`, schema
//! [`SWEEP_SCHEMA`]): every unit with its point on the plan's axes, and
//! each metric against each swept axis over seeds.

use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

/// The schema of a sweep's `results.json`.
pub const SWEEP_SCHEMA: &str = "modcirc.sweep/2";

/// One axis of a plan: its name and its values, as the plan gives them
/// (or the study's, where the plan is silent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// `train.lambda`, `discover.k`, …
    pub name: String,
    /// Each value, printed.
    pub values: Vec<String>,
}

impl Axis {
    /// More than one value: the axis varies, and the report draws each
    /// metric against it.
    pub fn swept(&self) -> bool {
        self.values.len() > 1
    }
}

/// A trained model in a sweep's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepModel {
    /// Its unit key.
    pub key: String,
    /// Its point on each `train.*` axis.
    pub axes: Vec<(String, String)>,
    /// The checkpoint, relative to the output directory.
    pub path: String,
    /// SHA-256 of the checkpoint's bytes.
    pub sha256: String,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// Training time.
    pub train_seconds: f64,
}

/// A discovery in a sweep's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepDiscovery {
    /// Its model's unit key.
    pub model: String,
    /// Its point on every axis.
    pub axes: Vec<(String, String)>,
    /// The discovery's JSON, relative to the output directory.
    pub path: String,
    /// Circuit logit difference (bootstrap mean and interval).
    pub logit_difference: Summary,
    /// Circuit accuracy.
    pub accuracy: Summary,
    /// Edge sparsity.
    pub sparsity: Summary,
    /// Faithfulness (STUDY §8), where the circuit's edges leave it defined.
    pub faithfulness: Option<Summary>,
    /// The model's own accuracy on the same resamples.
    pub model_accuracy: Summary,
    /// Time of one discovery.
    pub discovery_seconds: Summary,
    /// STUDY §10 on it, where the plan asks (`[controls]`).
    #[serde(default)]
    pub controls: Option<SweepControls>,
}

/// STUDY §10 on one discovery of a sweep, in a few numbers (the unit's
/// own file holds the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepControls {
    /// The controls' JSON, relative to the output directory.
    pub path: String,
    /// The circuit's faithfulness on all pairs minus the mean of random
    /// circuits of its size from live neurons.
    pub margin_over_random: Option<f64>,
    /// The p-value of its faithfulness against those random circuits.
    pub p_random: Option<f64>,
    /// Disjoint alternatives reaching the faithfulness threshold.
    pub faithful_alternatives: usize,
    /// The any-digit circuit's faithfulness on all its pairs.
    pub any_digit_faithfulness: Option<f64>,
}

impl SweepControls {
    /// The summary of `c`, whose file is `path`.
    pub fn of(c: &crate::controls::ControlsResult, path: String) -> SweepControls {
        let f = c.against(modcirc_acdc::Pool::Live).and_then(|r| r.faithfulness);
        SweepControls {
            path,
            margin_over_random: f.map(|a| a.circuit - a.random.mean),
            p_random: f.map(|a| a.p_value),
            faithful_alternatives: c.faithful_alternatives,
            any_digit_faithfulness: c.any_digit.circuit.faithfulness,
        }
    }
}

/// STUDY §9 on a model, in a sweep's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepAnalysis {
    /// Its model's unit key.
    pub model: String,
    /// Its point on every axis but the task.
    pub axes: Vec<(String, String)>,
    /// The analysis' JSON, relative to the output directory.
    pub path: String,
    /// Wiring length.
    pub wiring_length: f64,
    /// Newman's Q of the best Louvain partition of every weight.
    pub modularity_all_weights: f64,
    /// The same on the edges above eps.
    pub modularity_eps_edges: f64,
    /// Its z-score against degree-preserving rewirings (STUDY §9).
    #[serde(default)]
    pub modularity_eps_z: Option<f64>,
    /// Its time.
    pub seconds: f64,
}

/// A sweep's `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResults {
    /// [`SWEEP_SCHEMA`].
    pub schema: String,
    /// The plan's file name.
    pub plan: String,
    /// Every axis.
    pub axes: Vec<Axis>,
    /// Every model.
    pub models: Vec<SweepModel>,
    /// Every discovery.
    pub discoveries: Vec<SweepDiscovery>,
    /// Every STUDY §9 analysis.
    pub analyses: Vec<SweepAnalysis>,
    /// The planted-truth suite (a plan's `[planted]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planted: Option<crate::planted_results::PlantedResults>,
}

/// A metric of the sweep, as the CSV and figures name it.
pub struct Metric {
    /// File-name and column name.
    pub name: &'static str,
    /// The figure's y label.
    pub label: &'static str,
}

/// A unit's point on the plan's axes: (axis name, value).
pub type AxisValues = [(String, String)];

/// One unit's value of a metric, with its point on the axes.
pub type MetricRow<'a> = (&'a AxisValues, f64);

/// The metrics drawn against each swept axis: (metric, per-unit values
/// with their axes).
pub fn metric_rows(results: &SweepResults) -> Vec<(Metric, Vec<MetricRow<'_>>)> {
    let m = |name, label| Metric { name, label };
    let models = |f: fn(&SweepModel) -> f64| results.models.iter().map(|u| (u.axes.as_slice(), f(u))).collect();
    let discs = |f: fn(&SweepDiscovery) -> Option<f64>| {
        results.discoveries.iter().filter_map(|u| Some((u.axes.as_slice(), f(u)?))).collect()
    };
    let anal = |f: fn(&SweepAnalysis) -> f64| results.analyses.iter().map(|u| (u.axes.as_slice(), f(u))).collect();
    vec![
        (m("test_accuracy", "test accuracy (model)"), models(|u| u.test_accuracy)),
        (m("logit_difference", "circuit logit difference (bootstrap mean)"), discs(|u| Some(u.logit_difference.mean))),
        (m("circuit_accuracy", "circuit accuracy (bootstrap mean)"), discs(|u| Some(u.accuracy.mean))),
        (m("sparsity", "edge sparsity (bootstrap mean)"), discs(|u| Some(u.sparsity.mean))),
        (m("faithfulness", "faithfulness (bootstrap mean)"), discs(|u| u.faithfulness.map(|f| f.mean))),
        (
            m("margin_over_random", "faithfulness minus random circuits' (live neurons)"),
            discs(|u| u.controls.as_ref()?.margin_over_random),
        ),
        (m("p_random", "p-value against random circuits"), discs(|u| u.controls.as_ref()?.p_random)),
        (
            m("faithful_alternatives", "faithful disjoint alternatives"),
            discs(|u| Some(u.controls.as_ref()?.faithful_alternatives as f64)),
        ),
        (
            m("any_digit_faithfulness", "any-digit circuit faithfulness"),
            discs(|u| u.controls.as_ref()?.any_digit_faithfulness),
        ),
        (m("wiring_length", "wiring length"), anal(|u| u.wiring_length)),
        (m("modularity", "Newman's Q, every weight"), anal(|u| u.modularity_all_weights)),
    ]
}

/// One point of a metric against an axis: the other axes' values (but the
/// seed's) name its series; mean and interval over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisPoint {
    /// The series: the other swept axes' values.
    pub series: String,
    /// The axes that name the series (short names: `lambda`, `task`), in
    /// the order `series` gives their values.
    pub series_axes: Vec<String>,
    /// The axis' value.
    pub value: String,
    /// Over seeds: the mean, and Student's t interval from two seeds on
    /// (a point interval with one).
    pub summary: Summary,
    /// How many seeds.
    pub seeds: usize,
    /// Each seed's value.
    pub values: Vec<f64>,
}

/// The metrics against each swept axis but the seed, as a plain-text
/// table: a row per metric, axis value and series, with the mean and 95% t
/// interval over seeds (what `sweep report` prints).
pub fn axis_table(r: &SweepResults) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    for axis in r.axes.iter().filter(|a| a.swept() && a.name != "train.seed") {
        let short = axis.name.split('.').nth(1).unwrap_or(&axis.name);
        let _ = writeln!(t, "by {short} (mean [95% t interval] over seeds):");
        let _ = writeln!(t, "  {:<24} {:<12} {:<28} {:<34} seeds", "metric", short, "series", "value");
        for (metric, rows) in metric_rows(r) {
            for p in against_axis(&r.axes, &axis.name, &rows) {
                let v = if p.seeds > 1 {
                    format!("{:.4} [{:.4}, {:.4}]", p.summary.mean, p.summary.lo, p.summary.hi)
                } else {
                    format!("{:.4}", p.summary.mean)
                };
                let series = if p.series.is_empty() { "-" } else { p.series.as_str() };
                let _ = writeln!(t, "  {:<24} {:<12} {:<28} {:<34} {}", metric.name, p.value, series, v, p.seeds);
            }
        }
    }
    t
}

/// A metric's values against axis `axis`: grouped by every other axis but
/// the seed, summarised over seeds, in the axis' order.
pub fn against_axis(axes: &[Axis], axis: &str, rows: &[MetricRow<'_>]) -> Vec<AxisPoint> {
    // The other swept axes the rows have (an analysis has no task).
    let swept: Vec<&str> = axes
        .iter()
        .filter(|a| a.swept() && a.name != axis && a.name != "train.seed")
        .filter(|a| rows.iter().any(|(row, _)| row.iter().any(|(n, _)| *n == a.name)))
        .map(|a| a.name.as_str())
        .collect();
    let series_axes: Vec<String> = swept.iter().map(|n| n.split('.').nth(1).unwrap_or(n).to_string()).collect();
    let order = axes.iter().find(|a| a.name == axis).map(|a| a.values.clone()).unwrap_or_default();
    let get = |row: &[(String, String)], name: &str| row.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut groups: Vec<(String, String, Vec<f64>)> = Vec::new();
    for (row, v) in rows {
        let Some(value) = get(row, axis) else { continue };
        let series = swept
            .iter()
            .filter_map(|n| {
                // A regime or task names itself; other values need their axis.
                let v = get(row, n)?;
                Some(match *n {
                    "train.regime" | "discover.task" => v,
                    _ => format!("{}={v}", n.split('.').nth(1).unwrap_or(n)),
                })
            })
            .collect::<Vec<_>>()
            .join(", ");
        match groups.iter_mut().find(|g| g.0 == series && g.1 == value) {
            Some(g) => g.2.push(*v),
            None => groups.push((series, value, vec![*v])),
        }
    }
    let mut points: Vec<AxisPoint> = groups
        .into_iter()
        .filter_map(|(series, value, vals)| {
            let summary = Summary::t_interval(&vals).or_else(|| Summary::of(&vals))?;
            Some(AxisPoint {
                series,
                series_axes: series_axes.clone(),
                value,
                summary,
                seeds: vals.len(),
                values: vals,
            })
        })
        .collect();
    let rank = |v: &str| order.iter().position(|o| o == v).unwrap_or(usize::MAX);
    points.sort_by(|a, b| a.series.cmp(&b.series).then(rank(&a.value).cmp(&rank(&b.value))));
    points
}

/// The axes whose values are numbers (drawn on a number line rather than
/// as categories).
pub fn numeric_axis(axis: &Axis) -> bool {
    axis.values.iter().all(|v| v.parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_against_an_axis_summarise_over_seeds() {
        let axes = vec![
            Axis { name: "train.seed".into(), values: vec!["0".into(), "1".into()] },
            Axis { name: "train.lambda".into(), values: vec!["0.1".into(), "0.01".into()] },
            Axis { name: "train.regime".into(), values: vec!["l1".into(), "bimt".into()] },
        ];
        let row = |s: &str, l: &str, r: &str| -> Vec<(String, String)> {
            vec![("train.seed".into(), s.into()), ("train.lambda".into(), l.into()), ("train.regime".into(), r.into())]
        };
        let rows = [row("0", "0.1", "l1"), row("1", "0.1", "l1"), row("0", "0.01", "l1"), row("0", "0.1", "bimt")];
        let vals = [1.0, 3.0, 5.0, 7.0];
        let input: Vec<(&[(String, String)], f64)> = rows.iter().map(|r| r.as_slice()).zip(vals).collect();
        let pts = against_axis(&axes, "train.lambda", &input);
        assert_eq!(pts.len(), 3);
        let first = &pts[1];
        assert_eq!((first.series.as_str(), first.value.as_str(), first.seeds), ("l1", "0.1", 2));
        assert_eq!(first.series_axes, ["regime"]);
        assert_eq!(first.summary.mean, 2.0);
        assert!(first.summary.lo < 2.0 && first.summary.hi > 2.0);
        assert_eq!(pts[2].value, "0.01", "in the axis' order");
    }
}
