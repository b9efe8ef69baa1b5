//! A sweep's report: `results.json`, `units.csv` (a row per unit: its
//! axes and metrics) and each metric drawn against each swept axis.

use std::path::{Path, PathBuf};

use modcirc_metrics::Summary;
use modcirc_report::{bar_chart, csv_table, scatter_ci, Bar, Point, ScatterPanel};
use modcirc_store::atomic::write_atomic;
use modcirc_study::sweep::{against_axis, metric_rows, numeric_axis, Axis, AxisPoint, Metric, SweepResults};

use crate::PresentError;

/// The files [`write_sweep`] writes, relative to the sweep's directory
/// (and its figures, under `figures/`).
pub const SWEEP_FILES: [&str; 2] = ["results.json", "units.csv"];

/// Writes a sweep's `results.json`, `units.csv` and figures into `out`;
/// returns every path written.
pub fn write_sweep(out: &Path, results: &SweepResults) -> Result<Vec<PathBuf>, PresentError> {
    let [json, csv] = SWEEP_FILES.map(|f| out.join(f));
    let bytes = serde_json::to_vec_pretty(results).map_err(|e| PresentError::Json { path: json.clone(), source: e })?;
    write_atomic(&json, &bytes)?;
    write_atomic(&csv, units_csv(results).as_bytes())?;
    let mut written = vec![json, csv];
    written.extend(draw(&out.join("figures"), results)?);
    if let Some(p) = &results.planted {
        written.push(crate::study::write_planted(out, p, &[])?);
    }
    Ok(written)
}

/// One row per unit: its kind, its axes, its metrics (blank where a kind
/// has none).
pub fn units_csv(r: &SweepResults) -> String {
    let axes: Vec<&str> = r.axes.iter().map(|a| a.name.as_str()).collect();
    let metrics = [
        "sha256",
        "test_accuracy",
        "logit_difference",
        "logit_difference_lo",
        "logit_difference_hi",
        "circuit_accuracy",
        "sparsity",
        "faithfulness",
        "model_accuracy",
        "wiring_length",
        "modularity_all_weights",
        "modularity_eps_edges",
        "modularity_eps_z",
        "margin_over_random",
        "p_random",
        "faithful_alternatives",
        "any_digit_faithfulness",
        "seconds",
    ];
    let mut header = vec!["kind", "unit"];
    header.extend(&axes);
    header.extend(metrics);
    let row = |kind: &str, unit: &str, own: &[(String, String)], vals: &[(&str, String)]| -> Vec<String> {
        let mut row = vec![kind.to_string(), unit.to_string()];
        row.extend(axes.iter().map(|a| own.iter().find(|(n, _)| n == a).map(|(_, v)| v.clone()).unwrap_or_default()));
        row.extend(
            metrics.iter().map(|m| vals.iter().find(|(n, _)| n == m).map(|(_, v)| v.clone()).unwrap_or_default()),
        );
        row
    };
    let mut rows = Vec::new();
    for m in &r.models {
        let vals = [
            ("sha256", m.sha256.clone()),
            ("test_accuracy", m.test_accuracy.to_string()),
            ("seconds", m.train_seconds.to_string()),
        ];
        rows.push(row("train", &m.path, &m.axes, &vals));
    }
    for d in &r.discoveries {
        let vals = [
            ("logit_difference", d.logit_difference.mean.to_string()),
            ("logit_difference_lo", d.logit_difference.lo.to_string()),
            ("logit_difference_hi", d.logit_difference.hi.to_string()),
            ("circuit_accuracy", d.accuracy.mean.to_string()),
            ("sparsity", d.sparsity.mean.to_string()),
            ("faithfulness", d.faithfulness.map_or(String::new(), |f| f.mean.to_string())),
            ("model_accuracy", d.model_accuracy.mean.to_string()),
            ("seconds", d.discovery_seconds.mean.to_string()),
        ];
        rows.push(row("discover", &d.path, &d.axes, &vals));
        if let Some(c) = &d.controls {
            let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            let vals = [
                ("margin_over_random", opt(c.margin_over_random)),
                ("p_random", opt(c.p_random)),
                ("faithful_alternatives", c.faithful_alternatives.to_string()),
                ("any_digit_faithfulness", opt(c.any_digit_faithfulness)),
            ];
            rows.push(row("controls", &c.path, &d.axes, &vals));
        }
    }
    for a in &r.analyses {
        let vals = [
            ("wiring_length", a.wiring_length.to_string()),
            ("modularity_all_weights", a.modularity_all_weights.to_string()),
            ("modularity_eps_edges", a.modularity_eps_edges.to_string()),
            ("modularity_eps_z", a.modularity_eps_z.map_or(String::new(), |z| z.to_string())),
            ("seconds", a.seconds.to_string()),
        ];
        rows.push(row("analyse", &a.path, &a.axes, &vals));
    }
    csv_table(&header, &rows)
}

/// Each metric against each swept axis but the seed: mean and interval
/// over seeds, one series per combination of the other swept axes.
pub fn draw(dir: &Path, r: &SweepResults) -> Result<Vec<PathBuf>, PresentError> {
    let mut written = Vec::new();
    for axis in r.axes.iter().filter(|a| a.swept() && a.name != "train.seed") {
        let short = axis.name.split('.').nth(1).unwrap_or(&axis.name);
        for (metric, rows) in metric_rows(r) {
            let points = against_axis(&r.axes, &axis.name, &rows);
            if points.is_empty() {
                continue;
            }
            let stem = dir.join(format!("{}_vs_{short}", metric.name));
            let seeds = points.iter().map(|p| p.seeds).max().unwrap_or(1);
            let title = format!(
                "{} by {short}: {}",
                metric.name.replace('_', " "),
                if seeds > 1 { format!("mean, 95% t interval over {seeds} seeds") } else { "one seed".into() }
            );
            let series: Vec<String> = points.iter().map(|p| p.series.clone()).fold(Vec::new(), |mut v, s| {
                if !v.contains(&s) {
                    v.push(s);
                }
                v
            });
            let files = if numeric_axis(axis) {
                numeric_figure(&stem, axis, short, &metric, &points, &series, title)?
            } else {
                bar_figure(&stem, short, &metric, &points, title)?
            };
            written.extend(files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "png")));
        }
    }
    Ok(written)
}

/// A metric against a numeric axis: a point per series and value.
fn numeric_figure(
    stem: &Path,
    axis: &Axis,
    short: &str,
    metric: &Metric,
    points: &[AxisPoint],
    series: &[String],
    title: String,
) -> Result<Vec<PathBuf>, PresentError> {
    // Positive values spanning a decade or more are drawn as their log10;
    // a zero among them, one decade below the smallest positive one.
    let vals: Vec<f64> = axis.values.iter().filter_map(|v| v.parse().ok()).collect();
    let (lo, hi) = vals.iter().filter(|v| **v > 0.0).fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    let log = lo.is_finite() && hi / lo >= 10.0 && vals.iter().all(|v| *v >= 0.0);
    let zero_at = lo.log10() - 1.0;
    let pts: Vec<Point> = points
        .iter()
        .map(|p| {
            let x: f64 = p.value.parse().unwrap_or(f64::NAN);
            let x = match (log, x == 0.0) {
                (true, true) => zero_at,
                (true, false) => x.log10(),
                (false, _) => x,
            };
            Point {
                label: if p.series.is_empty() { "mean; o: a seed".to_string() } else { p.series.clone() },
                x: Summary { mean: x, lo: x, hi: x, n: 1 },
                y: p.summary,
                color: series.iter().position(|s| *s == p.series).unwrap_or(0),
                reference: false,
                dots: if p.seeds > 1 { p.values.clone() } else { Vec::new() },
            }
        })
        .collect();
    let x_label = match (log, vals.contains(&0.0)) {
        (true, true) => format!("log10 {short} (0 drawn at {zero_at:.0})"),
        (true, false) => format!("log10 {short}"),
        (false, _) => short.to_string(),
    };
    let panel = ScatterPanel { title, points: pts, x_domain: None, whole_intervals: true };
    Ok(scatter_ci(stem, &x_label, metric.label, &[panel], false)?)
}

/// A metric against a categorical axis: a bar per value and series.
fn bar_figure(
    stem: &Path,
    short: &str,
    metric: &Metric,
    points: &[AxisPoint],
    title: String,
) -> Result<Vec<PathBuf>, PresentError> {
    // Bar labels are short: the other axes' values alone, in
    // the order the title names them.
    let bare = |series: &str| {
        series.split(", ").map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v)).collect::<Vec<_>>().join(", ")
    };
    let bars: Vec<Bar> = points
        .iter()
        .map(|p| Bar {
            label: if p.series.is_empty() { p.value.clone() } else { format!("{}, {}", p.value, bare(&p.series)) },
            segments: vec![(metric.name.to_string(), p.summary.mean)],
            interval: (p.seeds > 1).then_some((p.summary.lo, p.summary.hi)),
        })
        .collect();
    let others = &points[0].series_axes;
    let title = if others.is_empty() { title } else { format!("{title} (bars: {short}, {})", others.join(", ")) };
    Ok(bar_chart(stem, &title, metric.label, &bars)?)
}
