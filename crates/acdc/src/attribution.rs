//! Beyond the paper (STUDY §8): attribution patching of nodes and edges, and
//! the faithfulness of circuits, all on the answer metric
//! `m = L[clean digit] − L[corrupted digit]`.
//!
//! * [`node_attribution`]: `s(u) = (a_u − a'_u)·∂m/∂a_u` on the corrupted run,
//!   the first-order estimate of patching `u` to its clean value, from one
//!   backward pass; [`exact_node_effects`] is the patching it estimates.
//! * [`edge_attribution`] (EAP): `s(u→v) = W_vu·(a'_u − a_u)·∂m/∂z_v` on the
//!   clean run, averaged over pairs.
//! * [`faithfulness`] and [`faithfulness_curve`]: `(m(C) − m(∅)) / (m(M) − m(∅))`,
//!   and its curve over circuits of the top-|s| edges.

use modcirc_mlp::{Activations, Linear, Mlp};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Ablation, AcdcError, Circuit, PatchingSweep, TaskImages};

/// One value per hidden neuron: `layers[h][i]` for neuron `i` of hidden layer `h`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEffects {
    /// `layers[h][i]`: neuron `i` of hidden layer `h`.
    pub layers: Vec<Vec<f64>>,
}

/// One score per weight: `layers[l][o * n_in + i]` for the edge from input
/// `i` to output `o` of layer `l`, as the weights are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeScores {
    /// `layers[l][o * n_in + i]`: layer `l`'s edge from input `i` to output `o`.
    pub layers: Vec<Vec<f32>>,
}

impl EdgeScores {
    /// Every edge `(layer, index)`, largest |s| first; ties to the lower
    /// layer, then the lower index.
    fn ranking(&self) -> Vec<(usize, usize)> {
        let mut order: Vec<(usize, usize)> =
            self.layers.iter().enumerate().flat_map(|(l, s)| (0..s.len()).map(move |i| (l, i))).collect();
        order.sort_by(|&(la, ia), &(lb, ib)| {
            self.layers[lb][ib].abs().total_cmp(&self.layers[la][ia].abs()).then((la, ia).cmp(&(lb, ib)))
        });
        order
    }

    /// The mask of the `k` edges of largest |score| (ties as [`EdgeScores::top_circuit`] breaks them).
    pub fn top_edges(&self, k: usize) -> Vec<Vec<bool>> {
        self.top_mask(&self.ranking(), k)
    }

    fn top_mask(&self, order: &[(usize, usize)], k: usize) -> Vec<Vec<bool>> {
        let mut mask: Vec<Vec<bool>> = self.layers.iter().map(|s| vec![false; s.len()]).collect();
        for &(l, i) in &order[..k.min(order.len())] {
            mask[l][i] = true;
        }
        mask
    }

    /// The circuit of the `k` edges with the largest |s| (ties as in
    /// [`faithfulness_curve`]).
    pub fn top_circuit(&self, model: &Mlp, k: usize) -> Result<Circuit, AcdcError> {
        Circuit::from_edges(model, &self.top_edges(k))
    }
}

/// Faithfulness of the circuits made of the top-|s| edges, at each fraction
/// of all edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaithfulnessCurve {
    /// The fractions of all edges kept, ascending.
    pub fractions: Vec<f64>,
    /// The edges kept at each fraction.
    pub edges: Vec<usize>,
    /// The faithfulness at each fraction.
    pub faithfulness: Vec<f64>,
    /// Area under the curve over log10(fraction), divided by the span of
    /// log10(fraction): 1 for a curve at 1 throughout (higher is better).
    pub cpr: f64,
    /// The same area of `|1 − f|` (lower is better).
    pub cmd: f64,
}

/// The fractions of edges the curve is taken at by default: three decades,
/// 0.1% to 100%, at 1-2-5 steps.
pub const DEFAULT_FRACTIONS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

/// The output position of each class.
pub(crate) fn class_positions(model: &Mlp) -> Vec<usize> {
    let mut pos = vec![0; model.n_classes()];
    for (p, &c) in model.out_perm.iter().enumerate() {
        pos[c] = p;
    }
    pos
}

pub(crate) fn check_labels(model: &Mlp, images: &TaskImages) -> Result<(), AcdcError> {
    let classes = model.n_classes();
    match images.clean_labels.iter().chain(&images.corrupted_labels).find(|&&l| l as usize >= classes) {
        Some(bad) => Err(AcdcError::Shape(format!("label {bad} is outside the model's {classes} classes"))),
        None => Ok(()),
    }
}

/// `m = L[clean digit] − L[corrupted digit]` of each pair, from logits in
/// output-position order. Labels are checked by the public entry points.
pub(crate) fn answer_metric(model: &Mlp, logits: &[f32], images: &TaskImages) -> Vec<f64> {
    let pos = class_positions(model);
    logits
        .chunks_exact(model.n_classes())
        .zip(images.clean_labels.iter().zip(&images.corrupted_labels))
        .map(|(row, (&a, &b))| row[pos[a as usize]] as f64 - row[pos[b as usize]] as f64)
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `dst[c, r] = src[r, c]` for a row-major `rows × cols` `src`.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0.0; src.len()];
    for (r, row) in src.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
    dst
}

/// `out[r, :] = x[r, :] · m` for `x` `[rows, k]` and `m` `[k, cols]`, through
/// the model's own (gemm) product: a layer whose weight is `mᵀ`.
pub(crate) fn matmul(x: &[f32], rows: usize, m: &[f32], k: usize, cols: usize) -> Vec<f32> {
    let layer = Linear { n_in: k, n_out: cols, weight: transpose(m, k, cols), bias: vec![0.0; cols] };
    let mut out = vec![0.0; rows * cols];
    layer.forward_into(x, rows, &mut out);
    out
}

/// `∂m/∂z` of every layer (`[pairs, width]`) and `∂m/∂a` of every hidden
/// layer, on the run `acts`.
pub(crate) struct MetricGradients {
    pub(crate) dz: Vec<Vec<f32>>,
    pub(crate) da: Vec<Vec<f32>>,
}

pub(crate) fn metric_gradients(model: &Mlp, acts: &Activations, images: &TaskImages) -> MetricGradients {
    let n = acts.n;
    let last = model.layers.len() - 1;
    let classes = model.n_classes();
    let pos = class_positions(model);
    let mut top = vec![0f32; n * classes];
    for (b, (&a, &c)) in images.clean_labels.iter().zip(&images.corrupted_labels).enumerate() {
        top[b * classes + pos[a as usize]] += 1.0;
        top[b * classes + pos[c as usize]] -= 1.0;
    }
    let mut dz = vec![Vec::new(); last + 1];
    let mut da = vec![Vec::new(); last];
    dz[last] = top;
    for l in (0..last).rev() {
        let next = &model.layers[l + 1];
        let a = matmul(&dz[l + 1], n, &next.weight, next.n_out, next.n_in);
        let act = model.activation;
        let mut g = a.clone();
        act.scale_by_derivative(&acts.pre[l], &mut g);
        dz[l] = g;
        da[l] = a;
    }
    MetricGradients { dz, da }
}

/// Attribution patching of every hidden neuron: `mean_b (a_u − a'_u)·∂m/∂a_u`
/// on the corrupted run, from one backward pass (STUDY §8). It estimates
/// [`exact_node_effects`], exactly so for the last hidden layer (the logits
/// are linear in it).
pub fn node_attribution(sweep: &PatchingSweep<'_>) -> Result<NodeEffects, AcdcError> {
    let (model, images) = (sweep.model, &sweep.images);
    check_labels(model, images)?;
    let grads = metric_gradients(model, &sweep.corrupted, images);
    Ok(node_scores(sweep, &grads.da))
}

/// `mean_b (a_u − a'_u)·g_u` per hidden neuron, for `∂m/∂a` (or its path
/// average) `da` of each hidden layer, `[pairs, width]`.
pub(crate) fn node_scores(sweep: &PatchingSweep<'_>, da: &[Vec<f32>]) -> NodeEffects {
    let n = sweep.images.n;
    let layers = da
        .iter()
        .enumerate()
        .map(|(h, da)| {
            let width = sweep.model.layers[h].n_out;
            let mut s = vec![0f64; width];
            for b in 0..n {
                for (u, s) in s.iter_mut().enumerate() {
                    let i = b * width + u;
                    *s += ((sweep.clean.post[h][i] - sweep.corrupted.post[h][i]) * da[i]) as f64;
                }
            }
            s.iter().map(|v| v / n as f64).collect()
        })
        .collect();
    NodeEffects { layers }
}

/// How much patching each hidden neuron to its clean value moves the mean
/// answer metric of the corrupted runs: the exact quantity
/// [`node_attribution`] estimates.
pub fn exact_node_effects(sweep: &PatchingSweep<'_>) -> Result<NodeEffects, AcdcError> {
    let (model, images) = (sweep.model, &sweep.images);
    check_labels(model, images)?;
    let base = mean(&answer_metric(model, sweep.corrupted_logits(), images));
    let layers = (0..model.layers.len() - 1)
        .map(|h| {
            (0..model.layers[h].n_out)
                .into_par_iter()
                .map(|u| mean(&answer_metric(model, &sweep.patched_logits(h, &[u]), images)) - base)
                .collect()
        })
        .collect();
    Ok(NodeEffects { layers })
}

/// Edge attribution patching (EAP) of every weight:
/// `mean_b W_vu·(a'_u − a_u)·∂m/∂z_v` on the clean run (STUDY §8), the
/// first-order estimate of letting edge `u→v` carry its corrupted value.
pub fn edge_attribution(sweep: &PatchingSweep<'_>) -> Result<EdgeScores, AcdcError> {
    let (model, images) = (sweep.model, &sweep.images);
    check_labels(model, images)?;
    let grads = metric_gradients(model, &sweep.clean, images);
    Ok(edge_scores(sweep, &grads.dz))
}

/// `mean_b W_vu·(a'_u − a_u)·g_v` per weight, for `∂m/∂z` (or its path
/// average) `dz` of every layer, `[pairs, width]`.
pub(crate) fn edge_scores(sweep: &PatchingSweep<'_>, dz: &[Vec<f32>]) -> EdgeScores {
    let (model, images) = (sweep.model, &sweep.images);
    let n = images.n;
    let layers = model
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let (clean, corrupted) = if l == 0 {
                (&images.clean, &images.corrupted)
            } else {
                (&sweep.clean.post[l - 1], &sweep.corrupted.post[l - 1])
            };
            let diff: Vec<f32> = corrupted.iter().zip(clean).map(|(c, a)| c - a).collect();
            // Σ_b ∂m/∂z[b]ᵀ ⊗ (a' − a)[b], as one product: [n_out, n] · [n, n_in].
            let outer = matmul(&transpose(&dz[l], n, layer.n_out), layer.n_out, &diff, n, layer.n_in);
            outer.iter().zip(&layer.weight).map(|(g, w)| w * g / n as f32).collect()
        })
        .collect();
    EdgeScores { layers }
}

/// The answer metric of the model on the clean images (`m(M)`) and on the
/// corrupted ones (`m(∅)`, the empty circuit).
pub(crate) fn faithfulness_scale(sweep: &PatchingSweep<'_>) -> Result<(f64, f64), AcdcError> {
    let (model, images) = (sweep.model, &sweep.images);
    check_labels(model, images)?;
    let full = mean(&answer_metric(model, sweep.clean_logits(), images));
    let empty = mean(&answer_metric(model, sweep.corrupted_logits(), images));
    if (full - empty).abs() <= 1e-9 * full.abs().max(1.0) {
        return Err(AcdcError::Degenerate(format!(
            "the model's answer metric is the same on clean ({full}) and corrupted ({empty}) images: faithfulness is undefined"
        )));
    }
    Ok((full, empty))
}

/// `(m(C) − m(∅)) / (m(M) − m(∅))` (Hanna et al. 2024; STUDY §8): 1 when the
/// circuit recovers the model's answer, 0 when it is no better than the
/// corrupted run.
pub fn faithfulness(sweep: &PatchingSweep<'_>, circuit: &Circuit) -> Result<f64, AcdcError> {
    faithfulness_of(sweep, circuit.answer_metric(sweep)?)
}

/// [`faithfulness`] with removed edges carrying their source's value under
/// `ablation`, and the empty circuit under the same ablation as the zero
/// of the scale: `(m_a(C) − m_a(∅)) / (m(M) − m_a(∅))`. Resample ablation is
/// the corrupted-value form (STUDY §8), [`faithfulness`] itself; zero and
/// mean ask how much of the answer the circuit carries when what it leaves
/// out sends nothing, or its average.
pub fn faithfulness_under(sweep: &PatchingSweep<'_>, circuit: &Circuit, ablation: Ablation) -> Result<f64, AcdcError> {
    let (full, empty) = ablated_scale(sweep, ablation)?;
    Ok((circuit.answer_metric_under(sweep, ablation)? - empty) / (full - empty))
}

/// The scale of [`faithfulness_under`] on `sweep`: `(m(M), m_a(∅))`, the
/// model's clean metric and the empty circuit's under `ablation` (under
/// resample, the corrupted run's: [`faithfulness`]'s scale).
pub(crate) fn ablated_scale(sweep: &PatchingSweep<'_>, ablation: Ablation) -> Result<(f64, f64), AcdcError> {
    if ablation == Ablation::Resample {
        return faithfulness_scale(sweep);
    }
    let (full, _) = faithfulness_scale(sweep)?;
    let model = sweep.model;
    let none: Vec<Vec<bool>> = model.layers.iter().map(|l| vec![false; l.weight.len()]).collect();
    let empty = Circuit::from_edges(model, &none)?.answer_metric_under(sweep, ablation)?;
    if (full - empty).abs() <= 1e-9 * full.abs().max(1.0) {
        return Err(AcdcError::Degenerate(format!(
            "the model's answer metric ({full}) equals the empty circuit's under {ablation} ablation: faithfulness is undefined"
        )));
    }
    Ok((full, empty))
}

/// [`faithfulness`] of a circuit whose answer metric on `sweep` is `m`.
pub(crate) fn faithfulness_of(sweep: &PatchingSweep<'_>, m: f64) -> Result<f64, AcdcError> {
    let (full, empty) = faithfulness_scale(sweep)?;
    Ok((m - empty) / (full - empty))
}

/// Faithfulness of the circuit of the top-|s| edges (ties to the lower layer,
/// then the lower index) at each of `fractions` of all edges, ascending in
/// (0, 1], with its CPR and CMD.
pub fn faithfulness_curve(
    sweep: &PatchingSweep<'_>,
    scores: &EdgeScores,
    fractions: &[f64],
) -> Result<FaithfulnessCurve, AcdcError> {
    let model = sweep.model;
    if fractions.len() < 2
        || fractions.windows(2).any(|w| w[0] >= w[1])
        || fractions[0] <= 0.0
        || fractions[fractions.len() - 1] > 1.0
    {
        return Err(AcdcError::BadOption(format!(
            "fractions of edges {fractions:?}: need at least two, ascending, in (0, 1]"
        )));
    }
    if scores.layers.len() != model.layers.len()
        || scores.layers.iter().zip(&model.layers).any(|(s, l)| s.len() != l.weight.len())
    {
        return Err(AcdcError::Shape("the edge scores were computed for a model of another shape".into()));
    }
    let (full, empty) = faithfulness_scale(sweep)?;
    let order = scores.ranking();
    let mut edges = Vec::new();
    let mut faithfulness = Vec::new();
    for &f in fractions {
        let k = ((f * order.len() as f64).round() as usize).clamp(1, order.len());
        let circuit = Circuit::from_edges(model, &scores.top_mask(&order, k))?;
        edges.push(k);
        faithfulness.push((circuit.answer_metric(sweep)? - empty) / (full - empty));
    }
    let x: Vec<f64> = fractions.iter().map(|f| f.log10()).collect();
    let area = |y: &dyn Fn(f64) -> f64| {
        let sum: f64 =
            (1..x.len()).map(|i| (x[i] - x[i - 1]) * (y(faithfulness[i]) + y(faithfulness[i - 1])) / 2.0).sum();
        sum / (x[x.len() - 1] - x[0])
    };
    Ok(FaithfulnessCurve {
        fractions: fractions.to_vec(),
        edges,
        cpr: area(&|f| f),
        cmd: area(&|f| (1.0 - f).abs()),
        faithfulness,
    })
}
