//! `REPORT.html`: one self-contained page (data, script and styles inline,
//! nothing fetched) to explore every model's circuits, beside Table 3, the
//! faithfulness curves and the verdicts.

use std::collections::{BTreeMap, BTreeSet};

use modcirc_acdc::{touched_neurons, Circuit};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::report::{html_tables, Table};
use crate::PresentError;
use modcirc_study::beyond::{edge_list, BeyondResult};
use modcirc_study::discovery::{DiscoverOutput, FAITHFULNESS_FORM};
use modcirc_study::paper::PAPER_TABLE3;
use modcirc_study::results::{find, Results, Verdict};

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
    /// What the page's links call the model: its regime (`bimt`), or `model`.
    pub id: String,
    /// What the page shows: `BIMT`, or the file's name.
    pub label: String,
    /// Its training seed, where its sidecar says (never invented).
    pub seed: Option<u64>,
    /// The model and its layout.
    pub checkpoint: &'a Checkpoint,
    /// Its discoveries.
    pub discoveries: Vec<&'a DiscoverOutput>,
    /// STUDY §8 on its tasks, where it ran (ACDC's and EAP's circuits).
    pub beyond: Vec<&'a BeyondResult>,
    /// Circuits of its own the page shows beside the discoveries' (an
    /// `evaluate`d one), each on a task a discovery holds.
    pub extra: Vec<ExtraCircuit>,
}

/// A circuit given to the page as it is: its kind (the menu's key), task,
/// neurons, edges and what it is.
#[derive(Debug, Clone)]
pub struct ExtraCircuit {
    /// The menu's key (`evaluated`).
    pub kind: String,
    /// The task, as a discovery of the page names it.
    pub task: String,
    /// Hidden neurons per layer.
    pub nodes: Vec<Vec<usize>>,
    /// Edges `[layer, output, input]`.
    pub edges: Vec<[usize; 3]>,
    /// What it is, in a sentence.
    pub note: String,
}

/// The data the page's script reads (`DATA`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageData {
    /// [`HTML_SCHEMA`].
    pub schema: String,
    /// The page's heading.
    pub title: String,
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
    /// Other tables: across seeds, K sensitivity, structure; for one
    /// model, its rules and smallest faithful circuit.
    pub tables: Vec<Table>,
    /// The circuit the page opens on (`None`: the top-K circuit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<String>,
    /// The edge slider's starting value: other edges than the circuit's
    /// are drawn from this share of their layer's largest |w| (1: the
    /// circuit's edges alone, a model page's default).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    0.05
}

/// One model on the page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageModel {
    /// `bimt`, …
    pub regime: String,
    /// `BIMT`, …
    pub label: String,
    /// Its training seed, where known.
    pub seed: Option<u64>,
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// The digit each output position answers for.
    #[serde(default)]
    pub digits: Vec<usize>,
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
    kind: String,
    nodes: Vec<Vec<usize>>,
    edges: Vec<[usize; 3]>,
    note: String,
}

/// A `beyond` output's circuits: EAP's, ACDC's and each method's top edges.
fn beyond_circuits(b: &BeyondResult, widths: &[usize]) -> Vec<CircuitEdges> {
    let edges = |kind: &str, kept: &[[usize; 3]], note: String| CircuitEdges {
        task: b.task.clone(),
        kind: kind.into(),
        nodes: touched_neurons(widths, kept.iter().copied()),
        edges: kept.to_vec(),
        note,
    };
    let mut out = vec![
        edges(
            "eap",
            &b.eap_edges,
            format!("The {} edges of largest |EAP| score (as many as the top-K circuit has), on all pairs.", b.eap_edges.len()),
        ),
        edges(
            "acdc",
            &b.acdc.kept,
            format!(
                "Edge-level ACDC on the task's first {} pairs (tau = {}, {}); faithfulness {:.3} on them, {:.3} on all pairs.",
                b.acdc.pairs, b.acdc.config.tau, b.acdc.config.metric, b.acdc.faithfulness_own_pairs, b.acdc.faithfulness
            ),
        ),
    ];
    for m in b.methods.iter().filter(|m| m.method != "eap" && !m.same_size_edges.is_empty()) {
        let note = format!(
            "The {} edges of largest {} score (as many as the top-K circuit has); faithfulness {:.3} on all pairs.",
            m.same_size_edges.len(),
            m.method,
            m.same_size_faithfulness
        );
        out.push(edges(&m.method, &m.same_size_edges, note));
    }
    out
}

/// The smallest faithful circuits of a discovery: the uniform K's and the
/// per-layer one, where the target was set and reached.
fn smallest_circuits(model: &modcirc_mlp::Mlp, d: &DiscoverOutput) -> Result<Vec<CircuitEdges>, PresentError> {
    let Some(m) = &d.report.smallest else { return Ok(Vec::new()) };
    let eps = d.inputs.flags.config.eps;
    let scores = &d.report.scores;
    let mut out = Vec::new();
    if let (Some(k), Some(f)) = (m.k, m.faithfulness) {
        let nodes = modcirc_acdc::k_nodes(scores, k)?;
        let note = format!(
            "The smallest uniform K reaching faithfulness {}: K = {k}, faithfulness {f:.3} on all pairs.",
            m.target
        );
        out.push((String::from("smallest-k"), nodes, note));
    }
    if let Some(p) = &m.per_layer {
        let nodes = modcirc_acdc::layer_nodes(scores, &p.kept)?;
        let kept = p.kept.iter().map(usize::to_string).collect::<Vec<_>>().join(" / ");
        let note = format!(
            "The smallest circuit per layer reaching faithfulness {}: {kept} neurons, faithfulness {:.3} on all pairs ({}).",
            m.target, p.faithfulness, p.growth
        );
        out.push((String::from("per-layer"), nodes, note));
    }
    out.into_iter()
        .map(|(kind, nodes, note)| {
            let c = Circuit::new(model, nodes.clone(), eps)?;
            Ok(CircuitEdges {
                task: d.inputs.task.name.clone(),
                kind,
                nodes,
                edges: edge_list(model, c.edge_mask()),
                note,
            })
        })
        .collect()
}

/// One model's page data: its circuits, then the edges they keep and its
/// largest weights up to [`HTML_EDGE_CAP`].
fn page_model(input: &PageInput<'_>) -> Result<PageModel, PresentError> {
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
            kind: "topk".into(),
            nodes: report.selection.nodes.clone(),
            edges: edge_list(model, circuit.edge_mask()),
            note,
        });
        circuits.extend(smallest_circuits(model, d)?);
        let beyond = input.beyond.iter().find(|b| b.task == task).copied();
        if let Some(b) = beyond {
            circuits.extend(beyond_circuits(b, &widths));
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
    circuits.extend(input.extra.iter().map(|e| CircuitEdges {
        task: e.task.clone(),
        kind: e.kind.clone(),
        nodes: e.nodes.clone(),
        edges: e.edges.clone(),
        note: e.note.clone(),
    }));
    let held = held_edges(model, &circuits);
    let index: BTreeMap<[usize; 3], usize> = held.iter().enumerate().map(|(k, e)| (*e, k)).collect();
    let edges = held
        .iter()
        .map(|&[l, o, i]| (l, o, i, round(model.layers[l].weight[o * model.layers[l].n_in + i] as f64, 3)))
        .collect();
    for c in circuits {
        let edges = c.edges.iter().map(|e| index[e]).collect();
        if let Some(t) = tasks.get_mut(&c.task) {
            t.circuits.insert(c.kind, PageCircuit { nodes: c.nodes, edges, note: c.note });
        }
    }
    Ok(PageModel {
        regime: input.id.clone(),
        label: input.label.clone(),
        seed: input.seed,
        sizes: model.sizes(),
        digits: model.out_perm.clone(),
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
    let seeds: BTreeSet<u64> = inputs.iter().filter_map(|m| m.seed).collect();
    Ok(PageData {
        schema: HTML_SCHEMA.into(),
        title: "modcirc: BIMT and automated circuit discovery".into(),
        summary: format!(
            "Profile {}: {} models ({} regimes, seeds {:?}), {} training steps each, {} bootstrap resamples of {} pairs per discovery. Every number was measured by this run; results.json holds them all.",
            r.profile,
            inputs.len(),
            inputs.iter().map(|m| m.id.as_str()).collect::<BTreeSet<_>>().len(),
            seeds,
            r.settings.steps,
            r.settings.bootstraps,
            r.settings.sample
        ),
        edge_cap: HTML_EDGE_CAP,
        models: inputs.iter().map(page_model).collect::<Result<_, _>>()?,
        table3,
        curves,
        // The hypotheses, then the findings (STUDY §9 and the controls of §10).
        verdicts: r.verdicts.iter().chain(&r.findings).cloned().collect(),
        tables: html_tables(r),
        circuit: None,
        threshold: default_threshold(),
    })
}

/// The page of one model and its discoveries (any checkpoint: `discover
/// --html`): the network and its circuits, the faithfulness curves over
/// circuit size, and per task the compared rules and the smallest
/// faithful circuit.
pub fn model_page_data(input: &PageInput<'_>) -> Result<PageData, PresentError> {
    let mut curves = Vec::new();
    let mut tables = Vec::new();
    for d in &input.discoveries {
        let r = &d.report;
        let task = d.inputs.task.name.clone();
        if let Some(c) = &r.edge_curve {
            curves.push(PageCurve {
                task: task.clone(),
                model: "top-|EAP| edges".into(),
                fractions: c.fractions.clone(),
                edges: c.edges.clone(),
                faithfulness: c.faithfulness.clone(),
            });
        }
        if let Some(c) = &r.node_curve {
            // The node circuits on the same axis: their edges as a fraction of the model's.
            let all = input.checkpoint.model.n_weights() as f64;
            let points: Vec<usize> = (0..c.k.len()).filter(|&i| c.edges[i] > 0).collect();
            if points.len() >= 2 {
                curves.push(PageCurve {
                    task: task.clone(),
                    model: "K strongest neurons per layer".into(),
                    fractions: points.iter().map(|&i| c.edges[i] as f64 / all).collect(),
                    edges: points.iter().map(|&i| c.edges[i]).collect(),
                    faithfulness: points.iter().map(|&i| c.faithfulness[i]).collect(),
                });
            }
        }
        let ab = r.config.ablation;
        let mut rows: Vec<Vec<String>> = vec![rule_row(
            &format!("{} (this discovery)", r.config.selection),
            &r.summary.logit_difference,
            &r.summary.accuracy,
            &r.summary.sparsity,
            r.summary.faithfulness.as_ref(),
        )];
        rows.extend(r.compared.iter().map(|c| {
            rule_row(&c.rule.to_string(), &c.logit_difference, &c.accuracy, &c.sparsity, c.faithfulness.as_ref())
        }));
        tables.push(Table {
            title: format!("{task}: the circuit under each rule"),
            note: format!("Bootstrap mean [95% interval] over {} resamples of {} pairs. Logit difference and accuracy under {ab} ablation (the model's own accuracy on the same images: {:.3}); faithfulness: {}.", r.config.bootstraps, r.config.sample, r.summary.model_accuracy.mean, FAITHFULNESS_FORM),
            header: ["rule", "logit difference", "accuracy", "sparsity", "faithfulness"].map(String::from).to_vec(),
            rows,
        });
        tables.extend(r.smallest.as_ref().map(|m| smallest_table(&task, m)));
    }
    let d0 = input.discoveries.first().ok_or_else(|| PresentError::Invalid("a model page needs a discovery".into()))?;
    Ok(PageData {
        schema: HTML_SCHEMA.into(),
        title: format!("modcirc: {}", input.label),
        summary: format!(
            "{} ({} {}), SHA-256 {}; {} task(s), pairs from {} ({} split). Every number was measured by this run; the discover JSON holds them all.",
            d0.inputs.model,
            sizes_text(&d0.inputs.sizes),
            d0.inputs.activation,
            &d0.inputs.model_sha256[..12.min(d0.inputs.model_sha256.len())],
            input.discoveries.len(),
            d0.inputs.data_dir,
            d0.inputs.flags.split
        ),
        edge_cap: HTML_EDGE_CAP,
        models: vec![page_model(input)?],
        table3: Vec::new(),
        curves,
        verdicts: Vec::new(),
        tables,
        circuit: input.extra.first().map(|e| e.kind.clone()),
        threshold: 1.0,
    })
}

/// A discovery's smallest faithful circuits as one row.
fn smallest_table(task: &str, m: &modcirc_acdc::SmallestFaithful) -> Table {
    let row = vec![
        format!("{}", m.target),
        m.k.map_or("not reached".into(), |k| format!("K = {k} ({} edges)", m.edges)),
        m.faithfulness.map_or("–".into(), |f| format!("{f:.3}")),
        m.k_resampled.as_ref().map_or("–".into(), |k| {
            format!(
                "{:.1} [{:.0}, {:.0}] ({} of {})",
                k.mean, k.lo, k.hi, m.resamples_reaching.0, m.resamples_reaching.1
            )
        }),
        m.per_layer.as_ref().map_or("not reached".into(), |p| {
            let kept = p.kept.iter().map(usize::to_string).collect::<Vec<_>>().join(" / ");
            format!("{kept} ({} edges, {:.3})", p.edges, p.faithfulness)
        }),
        m.eap_edges
            .map_or("not reached".into(), |e| format!("{e} edges ({:.3})", m.eap_faithfulness.unwrap_or(f64::NAN))),
    ];
    Table {
        title: format!("{task}: the smallest faithful circuit"),
        note: format!(
            "Nodes: {}. Per layer: {}. Edges: {}.",
            m.growth,
            m.per_layer.as_ref().map_or(modcirc_acdc::PER_LAYER_GROWTH, |p| p.growth.as_str()),
            m.edge_growth
        ),
        header: ["target", "nodes", "faithfulness", "each resample's K", "per layer (neurons)", "top-|EAP| edges"]
            .map(String::from)
            .to_vec(),
        rows: vec![row],
    }
}

/// `784-100-100-10`.
fn sizes_text(sizes: &[usize]) -> String {
    sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
}

fn rule_row(rule: &str, ld: &Summary, acc: &Summary, sp: &Summary, f: Option<&Summary>) -> Vec<String> {
    let c = |s: &Summary, d: usize| format!("{:.d$} [{:.d$}, {:.d$}]", s.mean, s.lo, s.hi);
    vec![rule.to_string(), c(ld, 4), c(acc, 3), c(sp, 4), f.map_or("undefined".into(), |f| c(f, 3))]
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
