//! Every figure of the report, from the run's results (and, for Fig. 2, the
//! networks themselves, passed along rather than read back).

use std::path::{Path, PathBuf};

use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_bimt::{HistoryPoint, Regime};
use modcirc_metrics::Summary;
use modcirc_report::{
    bar_chart, line_chart, network_figure, scatter_ci, strip_chart, Bar, Legend, LinePanel, NetworkView, Point,
    ScatterPanel, Series, Strip, StripPanel,
};

use crate::PresentError;
use modcirc_acdc::DEFAULT_FRACTIONS;
use modcirc_study::discovery::DiscoverOutput;
use modcirc_study::paper::{paper_summary, PAPER_TABLE3, TASKS};
use modcirc_study::results::{beyond0, find, model0, DiscoveryResult, InferenceResult, ModelResult, Results};

/// One network of Fig. 2: a model and the discovery whose circuit it shows.
#[derive(Debug, Clone, Copy)]
pub struct NetworkPanel<'a> {
    /// The model's regime.
    pub regime: Regime,
    /// The model and its layout.
    pub checkpoint: &'a Checkpoint,
    /// One of its discoveries.
    pub discovery: &'a DiscoverOutput,
}

/// The file stem of Fig. 2 for `regime`'s seed-0 model on `task`.
pub fn fig2_stem(regime: Regime, task: &str) -> String {
    format!("fig2_network_{regime}_{task}")
}

/// Writes every figure under `dir` (PNG and SVG); returns their paths.
pub fn figures(dir: &Path, r: &Results, networks: &[NetworkPanel<'_>]) -> Result<Vec<PathBuf>, PresentError> {
    let mut written = Vec::new();
    for n in networks {
        written.extend(fig2(dir, n)?);
    }
    written.extend(fig3_4(dir, r)?);
    written.extend(fig5_6(dir, r)?);
    written.extend(fig7(dir, r)?);
    written.extend(training_curves(dir, r)?);
    if !r.beyond.is_empty() {
        written.extend(fig8(dir, r)?);
        written.extend(fig8_methods(dir, r)?);
    }
    if !r.structure.is_empty() {
        written.extend(fig9(dir, r)?);
    }
    if r.across_seeds.is_some() {
        written.extend(fig10(dir, r)?);
    }
    if let Some(p) = &r.planted {
        written.extend(planted_figures(dir, p)?);
    }
    Ok(written)
}

/// A value without an interval, as a point of a scatter chart.
fn exact(v: f64) -> Summary {
    Summary { mean: v, lo: v, hi: v, n: 1 }
}

/// Fig. 9: modularity Q (eps graph) against the circuit's faithfulness and
/// logit difference, every model a point (bootstrap interval), a panel per
/// task (STUDY §9).
fn fig9(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    let panels = |y: &dyn Fn(&DiscoveryResult) -> Option<Summary>| -> Vec<ScatterPanel> {
        TASKS
            .iter()
            .map(|t| ScatterPanel {
                title: t.to_string(),
                points: r
                    .discoveries
                    .iter()
                    .filter(|d| d.task == *t)
                    .filter_map(|d| {
                        let s = modcirc_study::seeds::structure_of(&r.structure, d.regime, d.seed)?;
                        let label = d.regime.label().to_string();
                        Some(Point {
                            label,
                            x: exact(s.eps_edges.q),
                            y: y(d)?,
                            color: color(d.regime),
                            reference: false,
                            dots: vec![],
                        })
                    })
                    .collect(),
                x_domain: None,
                whole_intervals: false,
            })
            .filter(|p| !p.points.is_empty())
            .collect()
    };
    let x = "modularity Q (weights the eps rule keeps)";
    let mut written = Vec::new();
    let faithful = panels(&|d| d.faithfulness);
    if !faithful.is_empty() {
        written.extend(scatter_ci(
            &dir.join("fig9_modularity_vs_faithfulness"),
            x,
            "circuit faithfulness",
            &faithful,
            false,
        )?);
    }
    let ld = panels(&|d| Some(d.logit_difference));
    written.extend(scatter_ci(
        &dir.join("fig9_modularity_vs_logit_difference"),
        x,
        "circuit logit difference",
        &ld,
        false,
    )?);
    Ok(written)
}

/// A regime's strip of Fig. 10.
fn strip(regime: Regime, summary: Summary, points: Vec<f64>) -> Strip {
    Strip { label: regime.label().into(), color: color(regime), summary, points }
}

/// Fig. 10: the metrics across seeds per regime: mean and 95% t-interval,
/// each seed a faint point (STUDY §9).
fn fig10(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    let Some(a) = &r.across_seeds else { return Ok(Vec::new()) };
    let mut panels = Vec::new();
    type Metric =
        (&'static str, fn(&DiscoveryResult) -> Option<f64>, fn(&modcirc_study::results::SeedRow) -> Option<Summary>);
    let metrics: [Metric; 3] = [
        ("logit difference", |d| Some(d.logit_difference.mean), |s| Some(s.logit_difference)),
        ("sparsity", |d| Some(d.sparsity.mean), |s| Some(s.sparsity)),
        ("faithfulness", |d| d.faithfulness.map(|f| f.mean), |s| s.faithfulness),
    ];
    for t in TASKS {
        for (name, per_seed, summary) in metrics {
            let strips: Vec<Strip> = a
                .rows
                .iter()
                .filter(|row| row.task == t)
                .filter_map(|row| {
                    let points = r
                        .discoveries
                        .iter()
                        .filter(|d| d.regime == row.regime && d.task == t)
                        .filter_map(per_seed)
                        .collect();
                    Some(strip(row.regime, summary(row)?, points))
                })
                .collect();
            if !strips.is_empty() {
                panels.push(StripPanel { title: format!("{t}: {name}"), y_label: name.into(), strips });
            }
        }
    }
    type Structural = (
        &'static str,
        fn(&modcirc_study::structure::StructureResult) -> Option<f64>,
        fn(&modcirc_study::results::StructureRow) -> Option<Summary>,
    );
    let structural: [Structural; 3] = [
        ("modularity Q (eps edges)", |s| Some(s.eps_edges.q), |row| Some(row.q_eps)),
        ("wiring length", |s| Some(s.wiring_length), |row| Some(row.wiring_length)),
        ("circle/line circuit overlap", |s| s.specialisation.as_ref().map(|x| x.overlap), |row| row.overlap),
    ];
    for (name, per_model, summary) in structural {
        let strips: Vec<Strip> = a
            .structure
            .iter()
            .filter_map(|row| {
                let points =
                    r.structure.iter().filter(|s| s.regime == Some(row.regime)).filter_map(per_model).collect();
                Some(strip(row.regime, summary(row)?, points))
            })
            .collect();
        if !strips.is_empty() {
            panels.push(StripPanel { title: name.into(), y_label: name.into(), strips });
        }
    }
    Ok(strip_chart(&dir.join("fig10_across_seeds"), &panels, 3)?)
}

/// Fig. 2: a network and one of its circuits.
fn fig2(dir: &Path, n: &NetworkPanel<'_>) -> Result<Vec<PathBuf>, PresentError> {
    let model = &n.checkpoint.model;
    let weights: Vec<&[f32]> = model.layers.iter().map(|l| l.weight.as_slice()).collect();
    let report = &n.discovery.report;
    let task = &n.discovery.inputs.task;
    let effects: Vec<Vec<f64>> = report
        .scores
        .layers
        .iter()
        .enumerate()
        .map(|(h, layer)| (0..layer.len()).map(|i| report.scores.effect(h, i)).collect())
        .collect();
    let side = (model.n_inputs() as f64).sqrt().round() as usize;
    let title = format!(
        "{} (seed {}) and its {} circuit: {}, {} edges; its circuit neurons labelled",
        n.regime.label(),
        n.checkpoint.meta.as_ref().map_or("?".into(), |m| m.config.seed.to_string()),
        task.name,
        report.selection.rule,
        report.full_n_edges
    );
    let view = NetworkView {
        title: &title,
        coords: &n.checkpoint.layout.layers,
        weights: &weights,
        circuit: &report.selection.nodes,
        dead: &report.selection.dead,
        effects: &effects,
        image: (side, model.n_inputs() / side.max(1)),
    };
    Ok(network_figure(&dir.join(fig2_stem(n.regime, &task.name)), &view)?)
}

fn color(reg: Regime) -> usize {
    Regime::ALL.iter().position(|r| *r == reg).unwrap_or(0)
}

/// Ours (filled) and the paper's (hollow) points of one metric against sparsity, a panel per task.
fn scatter_panels(
    r: &Results,
    y: &dyn Fn(&DiscoveryResult) -> Summary,
    paper_y: &dyn Fn(usize) -> (f64, f64),
) -> Vec<ScatterPanel> {
    TASKS
        .iter()
        .map(|t| {
            let mut points = Vec::new();
            for (i, row) in PAPER_TABLE3.iter().enumerate().filter(|(_, row)| row.task == *t) {
                let label = row.regime.label().to_string();
                if let Some(d) = find(&r.discoveries, row.regime, t) {
                    let p = Point {
                        label: label.clone(),
                        x: d.sparsity,
                        y: y(d),
                        color: color(row.regime),
                        reference: false,
                        dots: vec![],
                    };
                    points.push(p);
                }
                let (x, y) = (paper_summary(row.sparsity), paper_summary(paper_y(i)));
                points.push(Point { label, x, y, color: color(row.regime), reference: true, dots: vec![] });
            }
            ScatterPanel { title: t.to_string(), points, x_domain: Some((0.0, 1.0)), whole_intervals: false }
        })
        .collect()
}

/// Figs. 3 and 4: sparsity against logit difference and discovery time.
fn fig3_4(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    // The paper's Vanilla line sparsity interval (± 1.77) is a typo-sized outlier; keep it as printed.
    let mut written = scatter_ci(
        &dir.join("fig3_sparsity_vs_logit_difference"),
        "circuit sparsity",
        "logit difference (log scale)",
        &scatter_panels(r, &|d| d.logit_difference, &|i| PAPER_TABLE3[i].logit_difference),
        true,
    )?;
    written.extend(scatter_ci(
        &dir.join("fig4_sparsity_vs_discovery_time"),
        "circuit sparsity",
        "discovery time (s, log scale)",
        &scatter_panels(r, &|d| d.discovery_s, &|i| PAPER_TABLE3[i].discovery_s),
        true,
    )?);
    Ok(written)
}

fn seed0_models(r: &Results) -> Vec<&ModelResult> {
    Regime::ALL.iter().filter_map(|reg| model0(&r.models, *reg)).collect()
}

/// Figs. 5 and 6: training memory and time.
fn fig5_6(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    let models = seed0_models(r);
    let mem: Vec<Bar> = models
        .iter()
        .map(|m| Bar { label: m.regime.label().into(), segments: vec![("heap".into(), m.heap_mib())], interval: None })
        .collect();
    let mut written =
        bar_chart(&dir.join("fig5_training_memory"), "Peak training heap above the loaded data set", "MiB", &mem)?;
    let time: Vec<Bar> = models
        .iter()
        .map(|m| Bar {
            label: m.regime.label().into(),
            segments: vec![
                ("optimizer".into(), m.meta.timing.optimizer_s),
                ("relocation (swaps)".into(), m.meta.timing.relocation_s),
            ],
            interval: None,
        })
        .collect();
    written.extend(bar_chart(&dir.join("fig6_training_time"), "Training wall time", "seconds", &time)?);
    Ok(written)
}

/// Fig. 7: inference time per image, batched and one at a time.
fn fig7(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    let bars = |f: &dyn Fn(&InferenceResult) -> Summary| -> Vec<Bar> {
        r.inference
            .iter()
            .map(|i| {
                let s = f(i);
                Bar {
                    label: i.regime.label().into(),
                    segments: vec![("per image".into(), s.mean * 1e6)],
                    interval: Some((s.lo * 1e6, s.hi * 1e6)),
                }
            })
            .collect()
    };
    let mut written = bar_chart(
        &dir.join("fig7_inference_batched"),
        "Inference time per image, batches of 500 (95% interval)",
        "µs",
        &bars(&|i| i.batched_500_s),
    )?;
    written.extend(bar_chart(
        &dir.join("fig7_inference_batch1"),
        "Inference time per image, batch 1 (95% interval)",
        "µs",
        &bars(&|i| i.batch_1_s),
    )?);
    Ok(written)
}

/// Training MSE, test accuracy and wiring cost over the steps.
fn training_curves(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    let models = seed0_models(r);
    let series = |f: &dyn Fn(&HistoryPoint) -> Option<f64>| -> Vec<Series> {
        models
            .iter()
            .map(|m| Series {
                band: None,
                name: m.regime.label().into(),
                points: m.meta.history.iter().filter_map(|h| f(h).map(|v| (h.step as f64, v))).collect(),
            })
            .collect()
    };
    let panel = |title: &str, y: &str, s: Vec<Series>, log_y: bool| LinePanel {
        title: title.into(),
        x_label: "step".into(),
        y_label: y.into(),
        series: s,
        log_x: false,
        log_y,
        unit_square: false,
        legend: Legend::Middle,
    };
    Ok(line_chart(
        &dir.join("training_curves"),
        &[
            panel("training MSE", "mse (log)", series(&|h| Some(h.mse)), true),
            panel("test accuracy", "accuracy", series(&|h| h.test_accuracy), false),
            panel("wiring cost cc(2.0)", "cc (log)", series(&|h| Some(h.wiring_cost)), true),
        ],
    )?)
}

/// Fig. 8 (beyond the paper): faithfulness of the top-|EAP| edge circuits over their size.
fn fig8(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    let panels: Vec<LinePanel> = TASKS
        .iter()
        .map(|t| LinePanel {
            title: format!("{t}: circuits of the top-|EAP| edges"),
            x_label: "edges kept (% of all, log scale)".into(),
            y_label: "faithfulness".into(),
            series: Regime::ALL
                .iter()
                .filter_map(|reg| beyond0(&r.beyond, *reg, t))
                .map(|b| Series {
                    band: None,
                    name: b.regime_label().into(),
                    points: b
                        .curve
                        .fractions
                        .iter()
                        .map(|f| f * 100.0)
                        .zip(b.curve.faithfulness.iter().copied())
                        .collect(),
                })
                .collect(),
            log_x: true,
            log_y: false,
            unit_square: false,
            legend: Legend::UpperLeft,
        })
        .collect();
    Ok(line_chart(&dir.join("fig8_faithfulness_curves"), &panels)?)
}

/// Fig. 8 for STUDY §12: a panel per regime, a line per edge method, each
/// the mean faithfulness over seeds and tasks at each fraction of edges.
fn fig8_methods(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, PresentError> {
    let rows = modcirc_study::beyond::method_rows(&r.beyond);
    let panels: Vec<LinePanel> = Regime::ALL
        .iter()
        .filter(|reg| rows.iter().any(|m| m.regime == **reg))
        .map(|reg| LinePanel {
            title: format!("{}: faithfulness by method", reg.label()),
            x_label: "edges kept (% of all, log scale)".into(),
            y_label: "faithfulness".into(),
            series: rows
                .iter()
                .filter(|m| m.regime == *reg)
                .map(|m| Series {
                    band: None,
                    name: format!("{} (CPR {:.3})", m.method, m.cpr.mean),
                    points: DEFAULT_FRACTIONS.iter().map(|f| f * 100.0).zip(m.curve.iter().copied()).collect(),
                })
                .collect(),
            log_x: true,
            log_y: false,
            unit_square: false,
            legend: Legend::UpperLeft,
        })
        .collect();
    if panels.is_empty() {
        return Ok(Vec::new());
    }
    Ok(line_chart(&dir.join("fig8_methods"), &panels)?)
}

/// The planted suite's ROC curves (STUDY §11): a panel per regime, a line
/// per method, each the mean true-positive rate over seeds and tasks at
/// every false-positive rate of the grid.
pub(crate) fn planted_figures(
    dir: &Path,
    p: &modcirc_study::planted_results::PlantedResults,
) -> Result<Vec<PathBuf>, PresentError> {
    let grid = modcirc_study::planted::roc_grid();
    let panels: Vec<LinePanel> = Regime::ALL
        .iter()
        .filter(|reg| p.auroc.iter().any(|a| a.regime == **reg))
        .map(|reg| LinePanel {
            title: format!("{}: node ROC against the planted circuit", reg.label()),
            x_label: "false-positive rate".into(),
            y_label: "true-positive rate".into(),
            series: p
                .auroc
                .iter()
                .filter(|a| a.regime == *reg)
                .map(|a| Series {
                    band: None,
                    name: format!("{} (AUROC {:.3})", a.method, a.node_auroc.mean),
                    points: grid.iter().copied().zip(a.node_roc.iter().copied()).collect(),
                })
                .collect(),
            log_x: false,
            log_y: false,
            unit_square: true,
            legend: Legend::LowerRight,
        })
        .collect();
    if panels.is_empty() {
        return Ok(Vec::new());
    }
    Ok(line_chart(&dir.join("planted_roc"), &panels)?)
}
