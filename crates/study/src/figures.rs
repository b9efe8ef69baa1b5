//! Every figure of the report, from the run's results (and, for Fig. 2, the
//! networks themselves, passed along rather than read back).

use std::path::{Path, PathBuf};

use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_bimt::{HistoryPoint, Regime};
use modcirc_metrics::Summary;
use modcirc_report::{bar_chart, line_chart, network_figure, scatter_ci, Bar, LinePanel, Point, ScatterPanel, Series};

use crate::discovery::DiscoverOutput;
use crate::paper::{paper_summary, PAPER_TABLE3, TASKS};
use crate::results::{beyond0, find, model0, DiscoveryResult, InferenceResult, ModelResult, Results};
use crate::StudyError;

/// One network of Fig. 2: a model and the discovery whose circuit it shows.
#[derive(Debug, Clone, Copy)]
pub struct NetworkPanel<'a> {
    /// The model's regime.
    pub regime: Regime,
    /// The model and its layout.
    pub checkpoint: &'a Checkpoint,
    /// Its circle discovery.
    pub discovery: &'a DiscoverOutput,
}

/// Writes every figure under `dir` (PNG and SVG); returns their paths.
pub fn figures(dir: &Path, r: &Results, networks: &[NetworkPanel<'_>]) -> Result<Vec<PathBuf>, StudyError> {
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
    }
    Ok(written)
}

/// Fig. 2: a network and its circle circuit.
fn fig2(dir: &Path, n: &NetworkPanel<'_>) -> Result<Vec<PathBuf>, StudyError> {
    let weights: Vec<&[f32]> = n.checkpoint.model.layers.iter().map(|l| l.weight.as_slice()).collect();
    Ok(network_figure(
        &dir.join(format!("fig2_network_{}", n.regime)),
        &format!("{} and its circle circuit (K = {})", n.regime.label(), n.discovery.report.config.k),
        &n.checkpoint.layout.layers,
        &weights,
        &n.discovery.report.selection.nodes,
    )?)
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
                    };
                    points.push(p);
                }
                let (x, y) = (paper_summary(row.sparsity), paper_summary(paper_y(i)));
                points.push(Point { label, x, y, color: color(row.regime), reference: true });
            }
            ScatterPanel { title: t.to_string(), points, x_domain: Some((0.0, 1.0)) }
        })
        .collect()
}

/// Figs. 3 and 4: sparsity against logit difference and discovery time.
fn fig3_4(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, StudyError> {
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
fn fig5_6(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, StudyError> {
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
fn fig7(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, StudyError> {
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
fn training_curves(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, StudyError> {
    let models = seed0_models(r);
    let series = |f: &dyn Fn(&HistoryPoint) -> Option<f64>| -> Vec<Series> {
        models
            .iter()
            .map(|m| Series {
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
fn fig8(dir: &Path, r: &Results) -> Result<Vec<PathBuf>, StudyError> {
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
        })
        .collect();
    Ok(line_chart(&dir.join("fig8_faithfulness_curves"), &panels)?)
}
