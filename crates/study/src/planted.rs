//! Planted ground truth (STUDY §11): does each discovery method find the
//! circuit a model is known, by construction, to use?
//!
//! * MNIST-PVR models trained by interchange intervention
//!   ([`modcirc_bimt::iit`]): on the task of value quadrant `q`, the truth
//!   is `q`'s blocks ([`planted_truth`]); [`score_planted`] scores exact
//!   patching, node attribution, EAP and ACDC against it (AUROC, precision,
//!   recall, ROC), and [`score_planted_newer`] STUDY §12's EAP-IG and
//!   learned masks.
//! * Small Boolean MLPs ([`boolean_model`]): every circuit enumerated
//!   ([`modcirc_acdc::boolean`]); each method's circuit judged valid and
//!   minimal.

use std::time::Instant;

use modcirc_acdc::boolean::{enumerate_circuits, BooleanProbe, TruthTable};
use modcirc_acdc::{
    edge_acdc, edge_attribution, edge_attribution_ig, faithfulness_curve, learn_masks, node_attribution,
    smallest_edges, touched_neurons, AcdcConfig, EdgeScores, IgPath, MaskConfig, PatchingSweep, TaskImages,
    DEFAULT_FRACTIONS, DEFAULT_IG_STEPS, DEFAULT_K,
};
use modcirc_bimt::iit::{Alignment, PlantedConfig, PlantedQuality, DEFAULT_BLOCK, QUALITY_TRIALS};
use modcirc_bimt::{Regime, TrainConfig, Trainer};
use modcirc_dataset::pvr::{quadrant_pixels, PvrSource, PVR_NODES};
use modcirc_dataset::ImageSet;
use modcirc_metrics::{auroc, roc_tpr_at, Summary};
use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::beyond::edge_list;
use crate::results::Verdict;
use crate::verdicts::NOT_EVALUATED;
use crate::StudyError;

/// Pairs per planted task.
pub const PLANTED_PAIRS: usize = 500;

/// Pairs ACDC runs on (its cost grows with them; the other methods use all).
pub const PLANTED_ACDC_PAIRS: usize = 100;

/// The faithfulness EAP's circuit must reach: the smallest top-|EAP| edge
/// set at or above it is EAP's selected circuit.
pub const EAP_TARGET_FAITHFULNESS: f64 = 0.8;

/// The false-positive rates at which each ROC curve's true-positive rate is
/// kept (0, 0.02, …, 1), so curves of many models can be averaged.
pub fn roc_grid() -> Vec<f64> {
    (0..=50).map(|i| i as f64 / 50.0).collect()
}

/// The discovery methods scored against planted truth.
pub const METHODS: [&str; 6] = ["patching", "attribution", "eap", "acdc", "eap-ig", "mask"];

/// The methods of STUDY §12 among [`METHODS`], scored by
/// [`score_planted_newer`]: EAP-IG on the inputs' path
/// ([`DEFAULT_IG_STEPS`] points) and learned edge masks (the default sweep
/// on the task's first [`crate::beyond::MASK_PAIRS`] pairs).
pub const NEWER_METHODS: [&str; 2] = ["eap-ig", "mask"];

/// A method's circuit on a planted task, judged against the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    /// One of [`METHODS`].
    pub method: String,
    /// AUROC of its per-neuron scores against truth membership.
    pub node_auroc: f64,
    /// AUROC of its per-edge scores against the true edges (edge methods).
    pub edge_auroc: Option<f64>,
    /// Share of the neurons it selects that are true.
    pub node_precision: f64,
    /// Share of the true neurons it selects.
    pub node_recall: f64,
    /// Share of the edges it selects that are true (edge methods).
    pub edge_precision: Option<f64>,
    /// Share of the true edges it selects (edge methods).
    pub edge_recall: Option<f64>,
    /// Neurons it selects.
    pub selected_nodes: usize,
    /// The node ROC's true-positive rate at each of [`roc_grid`]'s rates.
    pub node_roc: Vec<f64>,
    /// Wall time of the scores and the selection.
    pub seconds: f64,
}

/// Every method on one planted task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    /// The value quadrant (1, 2 or 3).
    pub quadrant: usize,
    /// Pairs.
    pub pairs: usize,
    /// True neurons and true edges.
    pub true_nodes: usize,
    /// True edges.
    pub true_edges: usize,
    /// One score per method, in [`METHODS`]' order.
    pub methods: Vec<MethodScore>,
}

impl TaskScores {
    /// The score of `method`, if it ran.
    pub fn method(&self, method: &str) -> Option<&MethodScore> {
        self.methods.iter().find(|m| m.method == method)
    }
}

/// The truth of the task of value quadrant `q` (STUDY §11): `q`'s blocks
/// in every hidden layer, the edges between consecutive blocks, from `q`'s
/// pixels into the first block, and from the last block to every output.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedTruth {
    /// `nodes[h][i]`: neuron `i` of hidden layer `h` is true.
    pub nodes: Vec<Vec<bool>>,
    /// `edges[l][o * n_in + i]`, as weights are stored.
    pub edges: Vec<Vec<bool>>,
}

/// The truth of value quadrant `q`'s task on `model` aligned by `alignment`.
pub fn planted_truth(model: &Mlp, alignment: &Alignment, q: usize) -> Result<PlantedTruth, StudyError> {
    alignment.check(model).map_err(|e| StudyError::Invalid(e.to_string()))?;
    if !(1..PVR_NODES).contains(&q) || model.n_inputs() != 784 {
        return Err(StudyError::Invalid(format!(
            "no planted task of quadrant {q} on a model of {} inputs",
            model.n_inputs()
        )));
    }
    let hidden = model.layers.len() - 1;
    let nodes: Vec<Vec<bool>> = (0..hidden)
        .map(|h| {
            let mut v = vec![false; model.layers[h].n_out];
            alignment.positions(h, q).into_iter().for_each(|i| v[i] = true);
            v
        })
        .collect();
    let mut pixels = vec![false; 784];
    quadrant_pixels(q).into_iter().for_each(|i| pixels[i] = true);
    let edges = model
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let into = |o: usize| l == hidden || nodes[l][o];
            let from = |i: usize| if l == 0 { pixels[i] } else { nodes[l - 1][i] };
            (0..layer.n_out * layer.n_in).map(|k| into(k / layer.n_in) && from(k % layer.n_in)).collect()
        })
        .collect();
    Ok(PlantedTruth { nodes, edges })
}

/// The pairs of value quadrant `q`'s task as patching takes them.
pub fn planted_images(test: &PvrSource, q: usize, pairs: usize, seed: u64) -> Result<TaskImages, StudyError> {
    let pairs = test.planted_pairs(q, pairs, seed)?;
    let n = pairs.len();
    let (mut clean, mut corrupted) = (vec![0.0f32; n * 784], vec![0.0f32; n * 784]);
    for (b, (c, k)) in pairs.iter().enumerate() {
        test.compose(*c, &mut clean[b * 784..(b + 1) * 784]);
        test.compose(*k, &mut corrupted[b * 784..(b + 1) * 784]);
    }
    Ok(TaskImages {
        n,
        pixels: 784,
        clean,
        corrupted,
        clean_labels: pairs.iter().map(|(c, _)| test.label(c[q])).collect(),
        corrupted_labels: pairs.iter().map(|(_, k)| test.label(k[q])).collect(),
    })
}

fn flat<T: Copy>(layers: &[Vec<T>]) -> Vec<T> {
    layers.iter().flatten().copied().collect()
}

/// Precision and recall of `selected` against `truth` (flattened alike).
fn precision_recall(selected: &[bool], truth: &[bool]) -> (f64, f64) {
    let hit = selected.iter().zip(truth).filter(|(s, t)| **s && **t).count() as f64;
    let (s, t) = (selected.iter().filter(|s| **s).count() as f64, truth.iter().filter(|t| **t).count() as f64);
    (if s > 0.0 { hit / s } else { 0.0 }, if t > 0.0 { hit / t } else { 0.0 })
}

/// The `k` highest `scores` of each layer, ties to the lower index.
fn top_k_per_layer(scores: &[Vec<f64>], k: usize) -> Vec<Vec<bool>> {
    scores
        .iter()
        .map(|s| {
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let mut keep = vec![false; s.len()];
            order.into_iter().take(k).for_each(|i| keep[i] = true);
            keep
        })
        .collect()
}

/// Each neuron's score from edge scores: the sum of |s| over its incoming
/// and outgoing edges.
fn node_sums(model: &Mlp, edges: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let hidden = model.layers.len() - 1;
    (0..hidden)
        .map(|h| {
            let (into, out) = (&model.layers[h], &model.layers[h + 1]);
            (0..into.n_out)
                .map(|u| {
                    let incoming: f64 = (0..into.n_in).map(|i| edges[h][u * into.n_in + i].abs()).sum();
                    let outgoing: f64 = (0..out.n_out).map(|o| edges[h + 1][o * out.n_in + u].abs()).sum();
                    incoming + outgoing
                })
                .collect()
        })
        .collect()
}

fn mask_of_nodes(widths: &[usize], nodes: &[Vec<usize>]) -> Vec<Vec<bool>> {
    widths
        .iter()
        .zip(nodes)
        .map(|(&w, n)| {
            let mut v = vec![false; w];
            n.iter().for_each(|&i| v[i] = true);
            v
        })
        .collect()
}

/// An edge method's per-edge scores and selected edges.
type EdgeJudgement<'a> = (&'a [Vec<f64>], &'a [Vec<bool>]);

/// Judges an edge method's scores against the truth: per neuron the sum of
/// |s| over its edges; its circuit the fewest top-|s| edges reaching
/// faithfulness [`EAP_TARGET_FAITHFULNESS`] (every edge where none does),
/// and the neurons they touch. `t` started with the scores.
fn judge_edges(
    method: &str,
    scores: &EdgeScores,
    sweep: &PatchingSweep<'_>,
    truth: &PlantedTruth,
    t: Instant,
) -> Result<MethodScore, StudyError> {
    let model = sweep.model();
    let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
    let edge_scores: Vec<Vec<f64>> =
        scores.layers.iter().map(|l| l.iter().map(|&s| s.abs() as f64).collect()).collect();
    let curve = faithfulness_curve(sweep, scores, &DEFAULT_FRACTIONS)?;
    let n_edges = match smallest_edges(sweep, scores, &curve, EAP_TARGET_FAITHFULNESS)? {
        Some((n, _)) => n,
        None => model.n_weights(),
    };
    let mask = scores.top_edges(n_edges);
    let nodes = mask_of_nodes(&widths, &touched_neurons(&widths, edge_list(model, &mask)));
    let node_scores = node_sums(model, &edge_scores);
    let seconds = t.elapsed().as_secs_f64();
    judge(method, &node_scores, &nodes, Some((&edge_scores, &mask)), truth, seconds)
}

/// Judges one method's scores and selection against the truth.
fn judge(
    method: &str,
    node_scores: &[Vec<f64>],
    selected_nodes: &[Vec<bool>],
    edges: Option<EdgeJudgement<'_>>,
    truth: &PlantedTruth,
    seconds: f64,
) -> Result<MethodScore, StudyError> {
    let (scores, positive) = (flat(node_scores), flat(&truth.nodes));
    let undefined =
        |what: &str| StudyError::Invalid(format!("{method}: the {what} AUROC is undefined (a non-finite score)"));
    let node_auroc = auroc(&scores, &positive).ok_or_else(|| undefined("node"))?;
    let node_roc = roc_tpr_at(&scores, &positive, &roc_grid()).ok_or_else(|| undefined("node"))?;
    let (node_precision, node_recall) = precision_recall(&flat(selected_nodes), &positive);
    let (mut edge_auroc, mut edge_precision, mut edge_recall) = (None, None, None);
    if let Some((edge_scores, selected_edges)) = edges {
        let truth_edges = flat(&truth.edges);
        edge_auroc = Some(auroc(&flat(edge_scores), &truth_edges).ok_or_else(|| undefined("edge"))?);
        let (p, r) = precision_recall(&flat(selected_edges), &truth_edges);
        (edge_precision, edge_recall) = (Some(p), Some(r));
    }
    Ok(MethodScore {
        method: method.into(),
        node_auroc,
        edge_auroc,
        node_precision,
        node_recall,
        edge_precision,
        edge_recall,
        selected_nodes: selected_nodes.iter().flatten().filter(|s| **s).count(),
        node_roc,
        seconds,
    })
}

/// Every method of [`METHODS`] on value quadrant `q`'s planted task:
/// * exact patching: `|baseline − LD|` per neuron (STUDY §4: how far
///   patching it moves the logits' distance from the clean ones),
///   selecting the K = 15 lowest LD per layer;
/// * node attribution: `|s|`, the top K per layer;
/// * EAP: `|s|` per edge, per neuron the sum over its edges; its circuit
///   the fewest top-|s| edges reaching faithfulness
///   [`EAP_TARGET_FAITHFULNESS`];
/// * ACDC on the first [`PLANTED_ACDC_PAIRS`] pairs: its kept edges
///   (score 1, the others 0) and the neurons they touch.
pub fn score_task(
    model: &Mlp,
    alignment: &Alignment,
    test: &PvrSource,
    q: usize,
    pairs: usize,
    seed: u64,
) -> Result<TaskScores, StudyError> {
    let truth = planted_truth(model, alignment, q)?;
    let images = planted_images(test, q, pairs, seed)?;
    let sweep = PatchingSweep::new(model, &images)?;
    let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
    let k = DEFAULT_K.min(*widths.iter().min().expect("a hidden layer"));
    let mut methods = Vec::with_capacity(METHODS.len());

    let t = Instant::now();
    let scores = sweep.scores();
    let effects: Vec<Vec<f64>> =
        scores.layers.iter().map(|l| l.iter().map(|s| (scores.baseline - s).abs()).collect()).collect();
    let selected = mask_of_nodes(&widths, &scores.select(k)?.nodes);
    methods.push(judge("patching", &effects, &selected, None, &truth, t.elapsed().as_secs_f64())?);

    let t = Instant::now();
    let attribution: Vec<Vec<f64>> =
        node_attribution(&sweep)?.layers.iter().map(|l| l.iter().map(|s| s.abs()).collect()).collect();
    let selected = top_k_per_layer(&attribution, k);
    methods.push(judge("attribution", &attribution, &selected, None, &truth, t.elapsed().as_secs_f64())?);

    let t = Instant::now();
    let eap = edge_attribution(&sweep)?;
    methods.push(judge_edges("eap", &eap, &sweep, &truth, t)?);

    let t = Instant::now();
    let head: Vec<usize> = (0..sweep.len().min(PLANTED_ACDC_PAIRS)).collect();
    let found = edge_acdc(&sweep.subset(&head), &AcdcConfig::default())?;
    let kept = mask_of_nodes(&widths, &touched_neurons(&widths, edge_list(model, &found.mask)));
    let binary =
        |m: &[Vec<bool>]| -> Vec<Vec<f64>> { m.iter().map(|l| l.iter().map(|&k| k as u8 as f64).collect()).collect() };
    let (edge_binary, node_binary) = (binary(&found.mask), binary(&kept));
    let seconds = t.elapsed().as_secs_f64();
    methods.push(judge("acdc", &node_binary, &kept, Some((&edge_binary, &found.mask)), &truth, seconds)?);

    Ok(TaskScores {
        quadrant: q,
        pairs: images.n,
        true_nodes: truth.nodes.iter().flatten().filter(|t| **t).count(),
        true_edges: truth.edges.iter().flatten().filter(|t| **t).count(),
        methods,
    })
}

/// A planted model's quality and every method on each of its three tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedScores {
    /// The training regime.
    pub regime: Regime,
    /// The training seed.
    pub seed: u64,
    /// Task accuracy, IIA and strictness failure.
    pub quality: PlantedQuality,
    /// Quadrants 1, 2 and 3.
    pub tasks: Vec<TaskScores>,
}

/// STUDY §12's methods ([`NEWER_METHODS`]) on value quadrant `q`'s planted
/// task, each judged as EAP is in [`score_task`].
pub fn score_task_newer(
    model: &Mlp,
    alignment: &Alignment,
    test: &PvrSource,
    q: usize,
    pairs: usize,
    seed: u64,
    mask: &MaskConfig,
) -> Result<Vec<MethodScore>, StudyError> {
    let truth = planted_truth(model, alignment, q)?;
    let images = planted_images(test, q, pairs, seed)?;
    let sweep = PatchingSweep::new(model, &images)?;
    let t = Instant::now();
    let ig = edge_attribution_ig(&sweep, DEFAULT_IG_STEPS, IgPath::Inputs)?;
    let mut out = vec![judge_edges(NEWER_METHODS[0], &ig, &sweep, &truth, t)?];
    let t = Instant::now();
    let head: Vec<usize> = (0..sweep.len().min(crate::beyond::MASK_PAIRS)).collect();
    let learned = learn_masks(&sweep.subset(&head), mask)?;
    let scores = learned.edge_scores().ok_or_else(|| StudyError::Invalid("edge masks expected".into()))?;
    out.push(judge_edges(NEWER_METHODS[1], &scores, &sweep, &truth, t)?);
    Ok(out)
}

/// [`score_task_newer`] on the three planted tasks of a planted model.
pub fn score_planted_newer(
    model: &Mlp,
    alignment: &Alignment,
    test: &PvrSource,
    pairs: usize,
    seed: u64,
    mask: &MaskConfig,
) -> Result<Vec<Vec<MethodScore>>, StudyError> {
    (1..PVR_NODES).map(|q| score_task_newer(model, alignment, test, q, pairs, seed, mask)).collect()
}

/// Scores the methods of STUDY §4 and §8 (the first four of [`METHODS`]) on
/// the three planted tasks of a planted model.
pub fn score_planted(
    model: &Mlp,
    alignment: &Alignment,
    test: &PvrSource,
    pairs: usize,
    seed: u64,
) -> Result<Vec<TaskScores>, StudyError> {
    (1..PVR_NODES).map(|q| score_task(model, alignment, test, q, pairs, seed)).collect()
}

/// A Boolean function of the suite (STUDY §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BooleanFunction {
    /// `a XOR b`.
    Xor,
    /// The parity of three bits.
    Parity3,
    /// The majority of three bits.
    Majority3,
    /// `(a XOR b) AND (c OR d)`.
    XorAndOr,
}

impl BooleanFunction {
    /// Every function of the suite.
    pub const ALL: [BooleanFunction; 4] =
        [BooleanFunction::Xor, BooleanFunction::Parity3, BooleanFunction::Majority3, BooleanFunction::XorAndOr];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            BooleanFunction::Xor => "xor",
            BooleanFunction::Parity3 => "parity3",
            BooleanFunction::Majority3 => "majority3",
            BooleanFunction::XorAndOr => "xor-and-or",
        }
    }

    /// Its truth table.
    pub fn table(self) -> TruthTable {
        let bit = |r: u32, j: u32| (r >> j) & 1 == 1;
        let t = match self {
            BooleanFunction::Xor => TruthTable::of(2, |r| bit(r, 0) ^ bit(r, 1)),
            BooleanFunction::Parity3 => TruthTable::of(3, |r| r.count_ones() % 2 == 1),
            BooleanFunction::Majority3 => TruthTable::of(3, |r| r.count_ones() >= 2),
            BooleanFunction::XorAndOr => TruthTable::of(4, |r| (bit(r, 0) ^ bit(r, 1)) && (bit(r, 2) || bit(r, 3))),
        };
        t.expect("2 to 4 inputs")
    }
}

/// The hidden widths of the suite's networks (one or two hidden layers of
/// 3 to 8 neurons).
pub const BOOLEAN_HIDDEN: [&[usize]; 3] = [&[4], &[8], &[5, 5]];

/// Optimizer steps per Boolean network (each step the whole table).
pub const BOOLEAN_STEPS: usize = 3_000;

/// The learning rate of the Boolean networks (tables of 4 to 16 rows learn
/// slowly at the study's 1e-3).
pub const BOOLEAN_LR: f32 = 1e-2;

/// A method's circuit on a Boolean network: the shortest prefix of its
/// ranking (all hidden neurons, highest score first) that is valid, or,
/// for ACDC, the neurons its edges touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanMethod {
    /// One of [`METHODS`].
    pub method: String,
    /// Neurons in its circuit.
    pub size: usize,
    /// Whether its circuit is valid.
    pub valid: bool,
    /// Whether its circuit is a minimal valid one.
    pub minimal: bool,
}

/// One Boolean network: its training and its circuits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanModel {
    /// The function.
    pub function: BooleanFunction,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// The regime.
    pub regime: Regime,
    /// The seed.
    pub seed: u64,
    /// Whether training reached zero error (the rest is empty otherwise).
    pub exact: bool,
    /// Valid circuits.
    pub valid: usize,
    /// Minimal valid circuits.
    pub minimal: usize,
    /// Neurons of the smallest valid circuit.
    pub smallest: Option<u32>,
    /// Hidden neurons in all.
    pub neurons: usize,
    /// Each method's circuit.
    pub methods: Vec<BooleanMethod>,
}

/// Trains one Boolean network under `regime` and checks every circuit.
pub fn boolean_model(
    function: BooleanFunction,
    hidden: &[usize],
    regime: Regime,
    seed: u64,
    steps: usize,
) -> Result<BooleanModel, StudyError> {
    let table = function.table();
    let rows = table.rows();
    let sizes: Vec<usize> = std::iter::once(table.inputs).chain(hidden.iter().copied()).chain([2]).collect();
    let config = TrainConfig::new(regime)
        .sizes(&sizes)
        .steps(steps)
        .batch_size(rows)
        .seed(seed)
        .lr(BOOLEAN_LR)
        .history_every(steps);
    let set = ImageSet { images: table.x.clone(), labels: table.y.clone(), rows: 1, cols: table.inputs };
    let model = Trainer::new(config)?.run(&set, None, &mut |_| {})?.model;
    let census = enumerate_circuits(&model, &table)?;
    let mut out = BooleanModel {
        function,
        hidden: hidden.to_vec(),
        regime,
        seed,
        exact: census.model_correct,
        valid: census.valid.len(),
        minimal: census.minimal.len(),
        smallest: census.smallest(),
        neurons: census.neurons,
        methods: Vec::new(),
    };
    if !census.model_correct {
        return Ok(out);
    }
    // Every ordered pair of rows with different answers.
    let (mut clean_idx, mut corrupt_idx) = (Vec::new(), Vec::new());
    for a in 0..rows {
        for b in 0..rows {
            if table.y[a] != table.y[b] {
                clean_idx.push(a);
                corrupt_idx.push(b);
            }
        }
    }
    let gather = |idx: &[usize]| -> Vec<f32> {
        idx.iter().flat_map(|&r| table.x[r * table.inputs..(r + 1) * table.inputs].to_vec()).collect()
    };
    let images = TaskImages {
        n: clean_idx.len(),
        pixels: table.inputs,
        clean: gather(&clean_idx),
        corrupted: gather(&corrupt_idx),
        clean_labels: clean_idx.iter().map(|&r| table.y[r]).collect(),
        corrupted_labels: corrupt_idx.iter().map(|&r| table.y[r]).collect(),
    };
    let sweep = PatchingSweep::new(&model, &images)?;
    let probe = BooleanProbe::new(&model, &table)?;
    let widths: Vec<usize> = hidden.to_vec();
    let bits = |layers: &[Vec<bool>]| -> u64 {
        flat(layers).iter().enumerate().filter(|(_, k)| **k).fold(0u64, |m, (i, _)| m | 1 << i)
    };
    let prefix = |method: &str, scores: Vec<f64>| -> BooleanMethod {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let mut mask = 0u64;
        for (n, &i) in order.iter().enumerate() {
            if probe.is_valid(mask) {
                return BooleanMethod { method: method.into(), size: n, valid: true, minimal: census.is_minimal(mask) };
            }
            mask |= 1 << i;
        }
        BooleanMethod { method: method.into(), size: order.len(), valid: true, minimal: census.is_minimal(mask) }
    };
    let scores = sweep.scores();
    out.methods.push(prefix("patching", scores.layers.iter().flatten().map(|s| (scores.baseline - s).abs()).collect()));
    out.methods.push(prefix("attribution", flat(&node_attribution(&sweep)?.layers).iter().map(|s| s.abs()).collect()));
    let eap = edge_attribution(&sweep)?;
    let edge_scores: Vec<Vec<f64>> = eap.layers.iter().map(|l| l.iter().map(|&s| s.abs() as f64).collect()).collect();
    out.methods.push(prefix("eap", flat(&node_sums(&model, &edge_scores))));
    let abs = |e: &EdgeScores| -> Vec<Vec<f64>> {
        e.layers.iter().map(|l| l.iter().map(|&s| s.abs() as f64).collect()).collect()
    };
    let ig = edge_attribution_ig(&sweep, DEFAULT_IG_STEPS, IgPath::Inputs)?;
    out.methods.push(prefix("eap-ig", flat(&node_sums(&model, &abs(&ig)))));
    let learned = learn_masks(&sweep, &MaskConfig::default())?;
    let masks = learned.edge_scores().ok_or_else(|| StudyError::Invalid("edge masks expected".into()))?;
    out.methods.push(prefix("mask", flat(&node_sums(&model, &abs(&masks)))));
    let found = edge_acdc(&sweep, &AcdcConfig::default())?;
    let mask = bits(&mask_of_nodes(&widths, &touched_neurons(&widths, edge_list(&model, &found.mask))));
    out.methods.push(BooleanMethod {
        method: "acdc".into(),
        size: mask.count_ones() as usize,
        valid: census.is_valid(mask),
        minimal: census.is_minimal(mask),
    });
    Ok(out)
}

/// What the suite runs: the planted models (each regime x seed), their
/// tasks and measures, and the Boolean networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedSettings {
    /// Regimes.
    pub regimes: Vec<Regime>,
    /// Seeds of the planted models.
    pub seeds: Vec<u64>,
    /// Optimizer steps per planted model.
    pub steps: usize,
    /// Neurons per node and hidden layer.
    pub block: usize,
    /// Pairs per planted task.
    pub pairs: usize,
    /// Trials per quality measure.
    pub trials: usize,
    /// Seeds of the Boolean networks.
    pub boolean_seeds: Vec<u64>,
    /// Optimizer steps per Boolean network.
    pub boolean_steps: usize,
    /// The learned masks' sweep on the planted tasks (STUDY §12): the
    /// study's own at the profile's size ([`crate::beyond::BeyondSettings::of`]).
    #[serde(default)]
    pub mask: MaskConfig,
}

/// Optimizer steps of the full profile's planted models (STUDY §11 leaves
/// it open). Measured on seed 0 under Vanilla (block 16): 4 000 steps give
/// task accuracy 0.80 and IIA 0.69, 20 000 give 0.90 and 0.85, 40 000 give
/// 0.91 and 0.88; 20 000 keeps the suite's 15 models within half an hour
/// on two cores.
pub const PLANTED_STEPS: usize = 20_000;

impl PlantedSettings {
    /// The suite at `profile`'s size.
    pub fn of(profile: crate::Profile) -> PlantedSettings {
        let (seeds, steps, pairs, trials, boolean_seeds, boolean_steps) = match profile {
            crate::Profile::Full => (3, PLANTED_STEPS, PLANTED_PAIRS, QUALITY_TRIALS, 10, BOOLEAN_STEPS),
            crate::Profile::Quick => (2, 4_000, 200, 2_000, 3, BOOLEAN_STEPS),
            crate::Profile::Smoke => (1, 40, 40, 200, 1, 300),
        };
        PlantedSettings {
            regimes: Regime::ALL.to_vec(),
            seeds: (0..seeds).collect(),
            steps,
            block: DEFAULT_BLOCK,
            pairs,
            trials,
            boolean_seeds: (0..boolean_seeds).collect(),
            boolean_steps,
            mask: crate::beyond::BeyondSettings::of(profile).mask,
        }
    }

    /// The training of the planted model of `regime` and `seed`.
    pub fn config(&self, regime: Regime, seed: u64) -> PlantedConfig {
        PlantedConfig { train: TrainConfig::new(regime).steps(self.steps).seed(seed), block: self.block }
    }

    /// Units: one per planted model, one Boolean suite per regime.
    pub fn units(&self) -> usize {
        self.regimes.len() * (self.seeds.len() + 1)
    }
}

/// Every Boolean network of `settings` under `regime`: each function,
/// hidden widths and seed.
pub fn boolean_suite(settings: &PlantedSettings, regime: Regime) -> Result<Vec<BooleanModel>, StudyError> {
    let mut out = Vec::new();
    for f in BooleanFunction::ALL {
        for hidden in BOOLEAN_HIDDEN {
            for &seed in &settings.boolean_seeds {
                out.push(boolean_model(f, hidden, regime, seed, settings.boolean_steps)?);
            }
        }
    }
    Ok(out)
}

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

pub(crate) fn over_seeds(values: &[f64]) -> Option<Summary> {
    if values.len() >= 2 {
        Summary::t_interval(values)
    } else {
        Summary::of(values)
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The tables and findings of the suite from its models and networks.
pub fn planted_results(models: Vec<PlantedScores>, boolean: Vec<BooleanModel>, seconds: f64) -> PlantedResults {
    let regimes: Vec<Regime> = Regime::ALL.into_iter().filter(|r| models.iter().any(|m| m.regime == *r)).collect();
    let mut auroc = Vec::new();
    for method in METHODS {
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
                methods: METHODS
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
    let pairs: Vec<(&str, &AurocRow, &AurocRow)> =
        METHODS.iter().filter_map(|m| Some((*m, row(m, Regime::Bimt)?, row(m, Regime::Vanilla)?))).collect();
    if pairs.len() == METHODS.len() && pairs.iter().all(|(_, b, v)| b.node_auroc.n >= 2 && v.node_auroc.n >= 2) {
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
    let overall: Vec<(&str, f64)> = METHODS
        .iter()
        .map(|m| (*m, mean(&auroc.iter().filter(|a| a.method == *m).map(|a| a.node_auroc.mean).collect::<Vec<_>>())))
        .collect();
    if !auroc.is_empty() {
        let best = overall.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
        p3.verdict = if overall[0].1 >= best { "supported" } else { "not supported" }.into();
        p3.evidence =
            overall.iter().map(|(m, v)| format!("{m} {v:.3}")).collect::<Vec<_>>().join(", ") + " (mean over regimes)";
    }
    vec![p1, p2, p3, p4]
}

#[cfg(test)]
mod tests {
    use super::*;
    use modcirc_dataset::{ChecksumPolicy, Mnist};
    use modcirc_mlp::{Activation, Linear};

    /// A network whose quadrant blocks share no weights: block `q` of the
    /// first hidden layer reads only quadrant `q`'s pixels, block `q` of
    /// the second only block `q` of the first, and each block writes the
    /// outputs; the free neurons and other blocks' cross weights are zero.
    fn hand_wired() -> (Mlp, Alignment) {
        let alignment = Alignment::blocks(&[100, 100], DEFAULT_BLOCK).unwrap();
        let mut state = 0x1234_5678u64;
        let mut u = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let node = |h: usize, i: usize| alignment.nodes[h][i];
        let quadrant: Vec<Option<u8>> = {
            let mut v = vec![None; 784];
            for q in 0..4 {
                quadrant_pixels(q).into_iter().for_each(|i| v[i] = Some(q as u8));
            }
            v
        };
        let mut w1 = vec![0.0; 100 * 784];
        for o in 0..100 {
            for i in 0..784 {
                if node(0, o).is_some() && node(0, o) == quadrant[i] {
                    w1[o * 784 + i] = u();
                }
            }
        }
        let mut w2 = vec![0.0; 100 * 100];
        for o in 0..100 {
            for i in 0..100 {
                if node(1, o).is_some() && node(1, o) == node(0, i) {
                    w2[o * 100 + i] = u() * 2.0;
                }
            }
        }
        let mut w3 = vec![0.0; 10 * 100];
        for o in 0..10 {
            for i in 0..100 {
                if node(1, i).is_some() {
                    w3[o * 100 + i] = u() * 2.0;
                }
            }
        }
        let layers = vec![
            Linear { n_in: 784, n_out: 100, weight: w1, bias: (0..100).map(|_| u() * 0.1).collect() },
            Linear { n_in: 100, n_out: 100, weight: w2, bias: (0..100).map(|_| u() * 0.1).collect() },
            Linear { n_in: 100, n_out: 10, weight: w3, bias: vec![0.0; 10] },
        ];
        (Mlp::new(layers, Activation::Silu).unwrap(), alignment)
    }

    #[test]
    fn a_network_whose_blocks_share_no_weights_gives_patching_node_auroc_one() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
        let mnist = Mnist::load(dir, ChecksumPolicy::Auto).unwrap();
        let test = PvrSource::new(&mnist.test).unwrap();
        let (model, alignment) = hand_wired();
        for q in 1..4 {
            let scores = score_task(&model, &alignment, &test, q, 60, 0).unwrap();
            let patching = &scores.methods[0];
            assert_eq!(patching.method, "patching");
            assert_eq!(patching.node_auroc, 1.0, "quadrant {q}: {patching:?}");
            assert_eq!(scores.true_nodes, 2 * DEFAULT_BLOCK);
            assert_eq!(scores.true_edges, 196 * 16 + 16 * 16 + 16 * 10);
            // Nothing outside the quadrant's blocks moves, so attribution
            // and EAP rank the truth first too.
            assert_eq!(scores.methods[1].node_auroc, 1.0, "{:?}", scores.methods[1]);
            assert!(patching.node_roc.iter().skip(1).all(|&t| t == 1.0));
        }
    }

    #[test]
    fn a_wrong_truth_would_not_score_one() {
        // The same network judged against quadrant 2's truth on quadrant 1's
        // pairs: the true neurons never move, so AUROC falls to at most 0.5.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
        let mnist = Mnist::load(dir, ChecksumPolicy::Auto).unwrap();
        let test = PvrSource::new(&mnist.test).unwrap();
        let (model, alignment) = hand_wired();
        let images = planted_images(&test, 1, 40, 0).unwrap();
        let sweep = PatchingSweep::new(&model, &images).unwrap();
        let s = sweep.scores();
        let effects: Vec<f64> = s.layers.iter().flatten().map(|v| s.baseline - v).collect();
        let wrong = planted_truth(&model, &alignment, 2).unwrap();
        assert!(auroc(&effects, &flat(&wrong.nodes)).unwrap() <= 0.5);
    }

    #[test]
    fn boolean_networks_train_and_every_method_gets_a_verdict() {
        let m = boolean_model(BooleanFunction::Xor, &[4], Regime::Vanilla, 0, BOOLEAN_STEPS).unwrap();
        assert!(m.exact, "{m:?}");
        assert!(m.valid >= 1 && m.minimal >= 1 && m.minimal <= m.valid);
        assert_eq!(m.methods.len(), METHODS.len());
        for f in BooleanFunction::ALL {
            let t = f.table();
            assert_eq!(t.rows(), 1 << t.inputs);
        }
    }
}
