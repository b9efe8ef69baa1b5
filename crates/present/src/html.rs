//! `REPORT.html`: one self-contained page (data, script and styles inline,
//! nothing fetched) to explore every model's circuits, beside Table 3, the
//! faithfulness curves and the verdicts.

use std::collections::{BTreeMap, BTreeSet};

use modcirc_acdc::{touched_neurons, Circuit};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_bimt::Regime;
use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::PresentError;
use modcirc_study::beyond::{edge_list, ACDC_PAIRS};
use modcirc_study::discovery::DiscoverOutput;
use modcirc_study::paper::PAPER_TABLE3;
use modcirc_study::results::{beyond0, find, Results, Verdict};

/// Version of the page's embedded data.
pub const HTML_SCHEMA: &str = "modcirc.report-html/1";

/// Besides every edge its circuits keep, a model's page data hold its
/// largest weights (by |w| over the layer's largest) until it has this many
/// edges: enough to see the network's shape, few enough to keep the page
/// small.
pub const HTML_EDGE_CAP: usize = 3000;

const TEMPLATE: &str = include_str!("report.html");

/// One model the page shows, with its discoveries (one per task).
#[derive(Debug, Clone)]
pub struct PageInput<'a> {
    /// The model's regime.
    pub regime: Regime,
    /// Its training seed.
    pub seed: u64,
    /// The model and its layout.
    pub checkpoint: &'a Checkpoint,
    /// Its discoveries.
    pub discoveries: Vec<&'a DiscoverOutput>,
}

/// The data the page's script reads (`DATA`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageData {
    /// [`HTML_SCHEMA`].
    pub schema: String,
    /// The run in one sentence.
    pub summary: String,
    /// [`HTML_EDGE_CAP`].
    pub edge_cap: usize,
    /// Every model.
    pub models: Vec<PageModel>,
    /// Table 3, ours and the paper's.
    pub table3: Vec<PageTable3Row>,
    /// The seed-0 faithfulness curves.
    pub curves: Vec<PageCurve>,
    /// The verdicts, then the findings.
    pub verdicts: Vec<Verdict>,
}

/// One model on the page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageModel {
    /// `bimt`, …
    pub regime: String,
    /// `BIMT`, …
    pub label: String,
    /// Its training seed.
    pub seed: u64,
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// `coords[l]`: `x0, y0, x1, y1, …` of layer `l`'s neurons.
    pub coords: Vec<Vec<f32>>,
    /// `[layer, output, input, weight]` of every edge the page holds (the
    /// weight to three significant digits).
    pub edges: Vec<(usize, usize, usize, f32)>,
    /// Per task.
    pub tasks: BTreeMap<String, PageTask>,
}

/// One task of one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageTask {
    /// The unpatched logit difference.
    pub baseline: f32,
    /// `scores[h][i]`: the patching score of every hidden neuron.
    pub scores: Vec<Vec<f32>>,
    /// Dead neurons per hidden layer.
    pub dead: Vec<Vec<usize>>,
    /// Node attribution per hidden neuron (STUDY §8; seed-0 models only).
    pub attribution: Option<Vec<Vec<f32>>>,
    /// `topk` (the discovery's), and on seed 0 `eap` and `acdc`.
    pub circuits: BTreeMap<String, PageCircuit>,
}

/// One circuit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageCircuit {
    /// Its hidden neurons per hidden layer.
    pub nodes: Vec<Vec<usize>>,
    /// Indices of its edges in the model's `edges`.
    pub edges: Vec<usize>,
    /// How it was found, in words.
    pub note: String,
}

/// A row of Table 3: ours (mean, lo, hi), the paper's (mean, half-width).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageTable3Row {
    /// The task.
    pub task: String,
    /// The regime's label.
    pub model: String,
    /// Ours.
    pub logit_difference: [f64; 3],
    /// The paper's.
    pub paper_logit_difference: [f64; 2],
    /// Ours.
    pub sparsity: [f64; 3],
    /// The paper's.
    pub paper_sparsity: [f64; 2],
    /// Ours, in milliseconds.
    pub discovery_ms: [f64; 3],
    /// The paper's, in seconds.
    pub paper_discovery_s: [f64; 2],
    /// The circuit's accuracy.
    pub accuracy: [f64; 3],
    /// The model's own on the same images.
    pub model_accuracy: Option<[f64; 3]>,
}

/// A faithfulness curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageCurve {
    /// The task.
    pub task: String,
    /// The regime's label.
    pub model: String,
    /// Fractions of the edges kept.
    pub fractions: Vec<f64>,
    /// Edges kept at each.
    pub edges: Vec<usize>,
    /// Faithfulness at each.
    pub faithfulness: Vec<f64>,
}

/// `x` to `digits` significant digits: the page shows no more, and the
/// shortest form that reads back is then short.
fn round(x: f64, digits: usize) -> f32 {
    format!("{x:.*e}", digits - 1).parse().unwrap_or(x as f32)
}

fn triple(s: &Summary, scale: f64) -> [f64; 3] {
    [s.mean * scale, s.lo * scale, s.hi * scale]
}

/// A circuit of one task before its edges are numbered.
struct CircuitEdges {
    task: String,
    kind: &'static str,
    nodes: Vec<Vec<usize>>,
    edges: Vec<[usize; 3]>,
    note: String,
}

/// One model's page data: its circuits, then the edges they keep and its
/// largest weights up to [`HTML_EDGE_CAP`].
fn page_model(r: &Results, input: &PageInput<'_>) -> Result<PageModel, PresentError> {
    let model = &input.checkpoint.model;
    let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
    // Each circuit as an edge list first; indices into the model's edges at the end.
    let mut circuits: Vec<CircuitEdges> = Vec::new();
    let mut tasks = BTreeMap::new();
    for d in &input.discoveries {
        let task = d.inputs.task.name.clone();
        let report = &d.report;
        let eps = d.inputs.flags.config.eps;
        let circuit = Circuit::new(model, report.selection.nodes.clone(), eps)?;
        let note =
            format!("{}, eps = {eps}, found by activation patching on {} pairs.", report.selection.rule, d.pairs.len());
        circuits.push(CircuitEdges {
            task: task.clone(),
            kind: "topk",
            nodes: report.selection.nodes.clone(),
            edges: edge_list(model, circuit.edge_mask()),
            note,
        });
        let beyond = if input.seed == 0 { beyond0(&r.beyond, input.regime, &task) } else { None };
        if let Some(b) = beyond {
            let note = format!(
                "The {} edges of largest |EAP| score (as many as the top-K circuit has), on all pairs.",
                b.eap_edges.len()
            );
            circuits.push(CircuitEdges {
                task: task.clone(),
                kind: "eap",
                nodes: touched_neurons(&widths, b.eap_edges.iter().copied()),
                edges: b.eap_edges.clone(),
                note,
            });
            let note = format!(
                "Edge-level ACDC on the task's first {ACDC_PAIRS} pairs (tau = {}, {}); faithfulness {:.3} on them, {:.3} on all pairs.",
                b.acdc.config.tau, b.acdc.config.metric, b.acdc.faithfulness_own_pairs, b.acdc.faithfulness
            );
            circuits.push(CircuitEdges {
                task: task.clone(),
                kind: "acdc",
                nodes: touched_neurons(&widths, b.acdc.kept.iter().copied()),
                edges: b.acdc.kept.clone(),
                note,
            });
        }
        let f32s = |v: &[Vec<f64>]| v.iter().map(|l| l.iter().map(|&x| round(x, 5)).collect()).collect();
        tasks.insert(
            task,
            PageTask {
                baseline: round(report.scores.baseline, 5),
                scores: f32s(&report.scores.layers),
                dead: report.selection.dead.clone(),
                attribution: beyond.map(|b| f32s(&b.node_attribution)),
                circuits: BTreeMap::new(),
            },
        );
    }
    let held = held_edges(model, &circuits);
    let index: BTreeMap<[usize; 3], usize> = held.iter().enumerate().map(|(k, e)| (*e, k)).collect();
    let edges = held
        .iter()
        .map(|&[l, o, i]| (l, o, i, round(model.layers[l].weight[o * model.layers[l].n_in + i] as f64, 3)))
        .collect();
    for c in circuits {
        let edges = c.edges.iter().map(|e| index[e]).collect();
        if let Some(t) = tasks.get_mut(&c.task) {
            t.circuits.insert(c.kind.into(), PageCircuit { nodes: c.nodes, edges, note: c.note });
        }
    }
    Ok(PageModel {
        regime: input.regime.to_string(),
        label: input.regime.label().into(),
        seed: input.seed,
        sizes: model.sizes(),
        coords: input.checkpoint.layout.layers.iter().map(|l| l.iter().flat_map(|c| *c).collect()).collect(),
        edges,
        tasks,
    })
}

/// Every edge of every circuit, then the model's largest weights (relative
/// to their layer's largest) up to [`HTML_EDGE_CAP`].
fn held_edges(model: &modcirc_mlp::Mlp, circuits: &[CircuitEdges]) -> BTreeSet<[usize; 3]> {
    let mut held: BTreeSet<[usize; 3]> = circuits.iter().flat_map(|c| c.edges.iter().copied()).collect();
    let mut by_size: Vec<(f32, [usize; 3])> = Vec::new();
    for (l, layer) in model.layers.iter().enumerate() {
        let max = layer.weight.iter().fold(0f32, |m, w| m.max(w.abs()));
        if max > 0.0 {
            by_size.extend(
                layer.weight.iter().enumerate().map(|(k, w)| (w.abs() / max, [l, k / layer.n_in, k % layer.n_in])),
            );
        }
    }
    by_size.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, e) in by_size {
        if held.len() >= HTML_EDGE_CAP {
            break;
        }
        held.insert(e);
    }
    held
}

/// The page's data.
pub fn page_data(r: &Results, inputs: &[PageInput<'_>]) -> Result<PageData, PresentError> {
    let table3 = PAPER_TABLE3
        .iter()
        .filter_map(|row| {
            let d = find(&r.discoveries, row.regime, row.task)?;
            Some(PageTable3Row {
                task: row.task.into(),
                model: row.regime.label().into(),
                logit_difference: triple(&d.logit_difference, 1.0),
                paper_logit_difference: [row.logit_difference.0, row.logit_difference.1],
                sparsity: triple(&d.sparsity, 1.0),
                paper_sparsity: [row.sparsity.0, row.sparsity.1],
                discovery_ms: triple(&d.discovery_s, 1e3),
                paper_discovery_s: [row.discovery_s.0, row.discovery_s.1],
                accuracy: triple(&d.accuracy, 1.0),
                model_accuracy: d.model_accuracy.as_ref().map(|m| triple(m, 1.0)),
            })
        })
        .collect();
    let curves = r
        .beyond
        .iter()
        .filter(|b| b.seed == Some(0))
        .map(|b| PageCurve {
            task: b.task.clone(),
            model: b.regime_label().into(),
            fractions: b.curve.fractions.clone(),
            edges: b.curve.edges.clone(),
            faithfulness: b.curve.faithfulness.clone(),
        })
        .collect();
    let seeds: BTreeSet<u64> = inputs.iter().map(|m| m.seed).collect();
    Ok(PageData {
        schema: HTML_SCHEMA.into(),
        summary: format!(
            "Profile {}: {} models ({} regimes, seeds {:?}), {} training steps each, {} bootstrap resamples of {} pairs per discovery. Every number was measured by this run; results.json holds them all.",
            r.profile,
            inputs.len(),
            inputs.iter().map(|m| m.regime).collect::<BTreeSet<_>>().len(),
            seeds,
            r.settings.steps,
            r.settings.bootstraps,
            r.settings.sample
        ),
        edge_cap: HTML_EDGE_CAP,
        models: inputs.iter().map(|m| page_model(r, m)).collect::<Result<_, _>>()?,
        table3,
        curves,
        // The hypotheses, then the findings (STUDY §9 and the controls of §10).
        verdicts: r.verdicts.iter().chain(&r.findings).cloned().collect(),
    })
}

/// `REPORT.html`: the page with `data` inline. Every `<` in the data is
/// written as `\u003c`, so no string in it can close the script element.
pub fn report_html(data: &PageData) -> Result<String, PresentError> {
    let json = serde_json::to_string(data).map_err(|e| PresentError::Invalid(format!("REPORT.html data: {e}")))?;
    Ok(TEMPLATE.replacen("/*DATA*/", &json.replace('<', "\\u003c"), 1))
}

/// The page data embedded in a `REPORT.html`, read back (what the checks use).
pub fn embedded_data(html: &str) -> Result<PageData, PresentError> {
    let start = html
        .find(r#"<script type="application/json" id="data">"#)
        .map(|i| i + r#"<script type="application/json" id="data">"#.len())
        .ok_or_else(|| PresentError::Invalid("REPORT.html has no data element".into()))?;
    let end =
        html[start..].find("</script>").ok_or_else(|| PresentError::Invalid("REPORT.html: unclosed data".into()))?;
    serde_json::from_str(&html[start..start + end]).map_err(|e| PresentError::Invalid(format!("REPORT.html data: {e}")))
}
