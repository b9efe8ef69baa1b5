//! Learned masks (Edge Pruning, Bhaskar et al. 2024; UGS; STUDY §12): a
//! mask value `σ(θ)` in [0, 1] per edge (or per hidden neuron), a masked
//! edge carrying `mask·a_u + (1 − mask)·a'_u`, trained by Adam to minimise
//! `KL(model ‖ masked) + λ · Σ mask` on the task's pairs.
//!
//! A sweep of λ, ascending and each fit starting where the last one ended,
//! gives circuits of every size: at each λ the units whose mask is above
//! one half. An edge's score is the sum of its mask values over the sweep,
//! so the edges that survive the larger penalties rank first, and the
//! sweep's faithfulness curve is taken as EAP's is
//! ([`crate::faithfulness_curve`] on [`LearnedMasks::scores`]).

use std::fmt;
use std::str::FromStr;

use modcirc_mlp::linalg::{mm_nn, mm_nt, mm_tn};
use modcirc_mlp::sigmoid;
use serde::{Deserialize, Serialize};

use crate::{AcdcError, EdgeScores, NodeEffects, PatchingSweep};

/// What one mask value gates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskUnit {
    /// One weight `u→v`: what `v` receives from `u`.
    Edges,
    /// One hidden neuron: what it sends along every outgoing weight.
    Neurons,
}

impl FromStr for MaskUnit {
    type Err = AcdcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "edges" => Ok(MaskUnit::Edges),
            "neurons" => Ok(MaskUnit::Neurons),
            _ => Err(AcdcError::BadOption(format!("unknown mask unit {s:?} (expected edges or neurons)"))),
        }
    }
}

impl fmt::Display for MaskUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MaskUnit::Edges => "edges",
            MaskUnit::Neurons => "neurons",
        })
    }
}

/// The penalties of the default sweep: decades from 1e-8 to 1e-2, per kept
/// unit, against a KL in nats per pair. MSE-trained models answer with
/// nearly flat distributions (their corrupted run is about 0.1 nats from
/// the model), so a sweep that starts at 1e-5 already prunes all but a few
/// hundred of 89 400 edges; from 1e-8 the circuits span every size.
pub const DEFAULT_MASK_LAMBDAS: [f64; 7] = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2];

/// Adam steps per penalty of the sweep.
pub const DEFAULT_MASK_STEPS: usize = 200;

/// The mask logits' Adam learning rate.
pub const DEFAULT_MASK_LR: f64 = 0.05;

/// The logit every mask starts at: `σ(3) ≈ 0.95`, near the full model.
pub const MASK_INIT_LOGIT: f32 = 3.0;

/// The learned masks' options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskConfig {
    /// Edges or neurons.
    pub unit: MaskUnit,
    /// The penalties, ascending, each positive.
    pub lambdas: Vec<f64>,
    /// Adam steps per penalty.
    pub steps: usize,
    /// Adam's learning rate.
    pub lr: f64,
}

impl Default for MaskConfig {
    fn default() -> Self {
        MaskConfig {
            unit: MaskUnit::Edges,
            lambdas: DEFAULT_MASK_LAMBDAS.to_vec(),
            steps: DEFAULT_MASK_STEPS,
            lr: DEFAULT_MASK_LR,
        }
    }
}

impl MaskConfig {
    /// Refuses an empty or unsorted sweep, a penalty that is not a positive
    /// number, no steps, or a learning rate that is not a positive number.
    pub fn validate(&self) -> Result<(), AcdcError> {
        if self.lambdas.is_empty()
            || self.lambdas.iter().any(|l| !l.is_finite() || *l <= 0.0)
            || self.lambdas.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(AcdcError::BadOption(format!(
                "mask penalties {:?}: need at least one, each a positive number, ascending",
                self.lambdas
            )));
        }
        if self.steps == 0 || self.steps > 1_000_000 {
            return Err(AcdcError::BadOption(format!("mask steps = {}: must be in 1..=1000000", self.steps)));
        }
        if !self.lr.is_finite() || self.lr <= 0.0 {
            return Err(AcdcError::BadOption(format!("mask learning rate = {}: must be a positive number", self.lr)));
        }
        Ok(())
    }
}

/// One penalty of the sweep, fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskPoint {
    /// The penalty.
    pub lambda: f64,
    /// Units (edges or neurons) whose mask ended above one half.
    pub kept: usize,
    /// `KL(model ‖ masked)` of the soft mask at the end of the fit, nats per pair.
    pub kl: f64,
    /// Which units are kept, `[layer][index]` as the weights (edges) or the
    /// hidden layers (neurons) are laid out.
    pub mask: Vec<Vec<bool>>,
}

/// A sweep of learned masks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedMasks {
    /// Its options.
    pub config: MaskConfig,
    /// One fit per penalty, in the sweep's order.
    pub points: Vec<MaskPoint>,
    /// Per unit, the sum of its mask values over the sweep (edges: laid out
    /// as [`EdgeScores`]; neurons: one layer per hidden layer).
    pub scores: Vec<Vec<f32>>,
    /// Per hidden neuron, its score (STUDY §12): its own mask (neuron
    /// masks) or the largest of its edges' masks, incoming and outgoing
    /// (edge masks), summed over the sweep. Never a sum over its edges,
    /// which would rank neurons by their number of edges.
    #[serde(default)]
    pub nodes: Vec<Vec<f32>>,
}

impl LearnedMasks {
    /// The edge scores of an edge sweep, for [`crate::faithfulness_curve`]
    /// (`None` for a neuron sweep).
    pub fn edge_scores(&self) -> Option<EdgeScores> {
        (self.config.unit == MaskUnit::Edges).then(|| EdgeScores { layers: self.scores.clone() })
    }

    /// Every hidden neuron's score ([`LearnedMasks::nodes`]).
    pub fn node_scores(&self) -> NodeEffects {
        NodeEffects { layers: self.nodes.iter().map(|l| l.iter().map(|&s| s as f64).collect()).collect() }
    }
}

/// Adam on a flat vector of logits.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    lr: f32,
}

impl Adam {
    fn new(n: usize, lr: f64) -> Adam {
        Adam { m: vec![0.0; n], v: vec![0.0; n], t: 0, lr: lr as f32 }
    }

    fn step(&mut self, theta: &mut [f32], grad: &[f32]) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.t += 1;
        let (c1, c2) = (1.0 - B1.powi(self.t), 1.0 - B2.powi(self.t));
        for (((th, g), m), v) in theta.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *th -= self.lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }
}

/// `log softmax` of each row.
pub(crate) fn log_softmax(z: &[f32], classes: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(z.len());
    for row in z.chunks_exact(classes) {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|&v| v as f64 - lse));
    }
    out
}

/// The masked model's logits on the clean images, the pre-activations and
/// the layer inputs the backward pass needs: edge masks `gate[l]`
/// (`W ⊙ mask` per layer), or neuron masks `mix[h]`.
struct MaskedRun {
    /// Each layer's input as the masked model feeds it (`[n, n_in]`).
    inputs: Vec<Vec<f32>>,
    /// Each hidden layer's output before mixing (neurons) or as sent (edges).
    hidden: Vec<Vec<f32>>,
    pre: Vec<Vec<f32>>,
    logits: Vec<f32>,
}

fn masked_forward(sweep: &PatchingSweep<'_>, unit: MaskUnit, masks: &[Vec<f32>]) -> MaskedRun {
    let (model, n) = (sweep.model, sweep.images.n);
    let last = model.layers.len() - 1;
    let mut inputs: Vec<Vec<f32>> = vec![sweep.images.clean.clone()];
    let (mut hidden, mut pre) = (Vec::new(), Vec::new());
    for (l, layer) in model.layers.iter().enumerate() {
        let a = &inputs[l];
        let mut z = sweep.corrupted.pre[l].clone();
        match unit {
            MaskUnit::Edges => {
                // z = W·a' + b + (W ⊙ M)·(a − a').
                let corr = if l == 0 { &sweep.images.corrupted } else { &sweep.corrupted.post[l - 1] };
                let diff: Vec<f32> = a.iter().zip(corr).map(|(x, y)| x - y).collect();
                let gated: Vec<f32> = layer.weight.iter().zip(&masks[l]).map(|(w, m)| w * m).collect();
                mm_nt(&mut z, &diff, &gated, n, layer.n_out, layer.n_in, true);
            }
            MaskUnit::Neurons => {
                z.iter_mut().for_each(|v| *v = 0.0);
                model.layer_forward_into(l, a, n, &mut z);
            }
        }
        let mut out = z.clone();
        if l != last {
            model.activation.apply_in_place(&mut out);
            let next = match unit {
                MaskUnit::Edges => out.clone(),
                MaskUnit::Neurons => {
                    let width = layer.n_out;
                    let corr = &sweep.corrupted.post[l];
                    out.iter().zip(corr).enumerate().map(|(i, (a, c))| c + masks[l][i % width] * (a - c)).collect()
                }
            };
            hidden.push(out);
            inputs.push(next);
        } else {
            pre.push(z);
            return MaskedRun { inputs, hidden, pre, logits: out };
        }
        pre.push(z);
    }
    unreachable!("a model has an output layer")
}

/// `KL(model ‖ masked)` per pair, and its gradient in the masked logits.
pub(crate) fn kl_and_gradient(reference: &[f64], logits: &[f32], classes: usize) -> (f64, Vec<f32>) {
    let n = logits.len() / classes;
    let lq = log_softmax(logits, classes);
    let mut kl = 0.0;
    let mut g = vec![0f32; logits.len()];
    for i in 0..logits.len() {
        let lp = reference[i];
        kl += lp.exp() * (lp - lq[i]);
        g[i] = ((lq[i].exp() - lp.exp()) / n as f64) as f32;
    }
    (kl / n as f64, g)
}

/// The gradient of the KL in every mask value, by backpropagation through
/// the masked run.
fn mask_gradient(
    sweep: &PatchingSweep<'_>,
    unit: MaskUnit,
    masks: &[Vec<f32>],
    run: &MaskedRun,
    dlogits: Vec<f32>,
) -> Vec<Vec<f32>> {
    let (model, n) = (sweep.model, sweep.images.n);
    let last = model.layers.len() - 1;
    let mut grads: Vec<Vec<f32>> = masks.iter().map(|m| vec![0.0; m.len()]).collect();
    let mut dz = dlogits;
    for l in (0..=last).rev() {
        let layer = &model.layers[l];
        let (gated, stop) = match unit {
            MaskUnit::Edges => {
                let corr = if l == 0 { &sweep.images.corrupted } else { &sweep.corrupted.post[l - 1] };
                let diff: Vec<f32> = run.inputs[l].iter().zip(corr).map(|(x, y)| x - y).collect();
                // ∂/∂M = W ⊙ (dzᵀ · (a − a')).
                let mut outer = vec![0f32; layer.n_out * layer.n_in];
                mm_tn(&mut outer, &dz, &diff, layer.n_out, layer.n_in, n, false);
                grads[l].iter_mut().zip(outer.iter().zip(&layer.weight)).for_each(|(g, (o, w))| *g = o * w);
                (layer.weight.iter().zip(&masks[l]).map(|(w, m)| w * m).collect::<Vec<f32>>(), l == 0)
            }
            MaskUnit::Neurons => (layer.weight.clone(), l == 0),
        };
        if stop {
            break;
        }
        // ∂/∂(layer l's input).
        let mut da = vec![0f32; n * layer.n_in];
        mm_nn(&mut da, &dz, &gated, n, layer.n_in, layer.n_out, false);
        let h = l - 1;
        if unit == MaskUnit::Neurons {
            let width = layer.n_in;
            let corr = &sweep.corrupted.post[h];
            for (i, g) in da.iter_mut().enumerate() {
                let u = i % width;
                grads[h][u] += *g * (run.hidden[h][i] - corr[i]);
                *g *= masks[h][u];
            }
        }
        model.activation.scale_by_derivative(&run.pre[h], &mut da);
        dz = da;
    }
    grads
}

fn unit_shapes(sweep: &PatchingSweep<'_>, unit: MaskUnit) -> Vec<usize> {
    let model = sweep.model;
    match unit {
        MaskUnit::Edges => model.layers.iter().map(|l| l.weight.len()).collect(),
        MaskUnit::Neurons => model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect(),
    }
}

/// Per hidden neuron, its mask (`masks` of neurons) or the largest mask of
/// its incoming and outgoing edges (`masks` of edges, as the weights lie).
fn neuron_masks(model: &modcirc_mlp::Mlp, unit: MaskUnit, masks: &[Vec<f32>]) -> Vec<Vec<f32>> {
    if unit == MaskUnit::Neurons {
        return masks.to_vec();
    }
    let hidden = model.layers.len() - 1;
    (0..hidden)
        .map(|h| {
            let (into, out) = (&model.layers[h], &model.layers[h + 1]);
            (0..into.n_out)
                .map(|u| {
                    let incoming = masks[h][u * into.n_in..(u + 1) * into.n_in].iter();
                    let outgoing = (0..out.n_out).map(|o| &masks[h + 1][o * out.n_in + u]);
                    incoming.chain(outgoing).fold(0.0f32, |m, &x| m.max(x))
                })
                .collect()
        })
        .collect()
}

/// Fits the masks of `config` on `sweep`'s pairs, one penalty after the
/// other, every logit starting at [`MASK_INIT_LOGIT`].
pub fn learn_masks(sweep: &PatchingSweep<'_>, config: &MaskConfig) -> Result<LearnedMasks, AcdcError> {
    learn_masks_from(sweep, config, None)
}

/// The logits a warm start begins from (STUDY §12): each edge's normalised
/// rank `r` in (0, 1] by |score| (ties at their mean rank) mapped to
/// `MASK_INIT_LOGIT · (2r − 1)`, so the strongest edges start where a cold
/// start does (kept), the median at 0.5 and the weakest near pruned. Ranks,
/// not the scores themselves: the scores' scale spans orders of magnitude
/// across regimes, and the penalties of the sweep are the same for all.
pub fn warm_logits(scores: &EdgeScores) -> Vec<Vec<f32>> {
    let flat: Vec<f64> = scores.layers.iter().flatten().map(|s| s.abs() as f64).collect();
    let ranks = crate::method::normalised_ranks(&flat);
    let mut at = 0;
    scores
        .layers
        .iter()
        .map(|l| {
            let layer = ranks[at..at + l.len()].iter().map(|&r| MASK_INIT_LOGIT * (2.0 * r as f32 - 1.0)).collect();
            at += l.len();
            layer
        })
        .collect()
}

/// [`learn_masks`] with the logits starting at `start` (one per mask, as
/// [`warm_logits`] gives them) where given.
pub fn learn_masks_from(
    sweep: &PatchingSweep<'_>,
    config: &MaskConfig,
    start: Option<&[Vec<f32>]>,
) -> Result<LearnedMasks, AcdcError> {
    config.validate()?;
    crate::attribution::check_labels(sweep.model, &sweep.images)?;
    let classes = sweep.model.n_classes();
    let reference = log_softmax(sweep.clean.post.last().expect("an output layer"), classes);
    let shapes = unit_shapes(sweep, config.unit);
    let mut theta: Vec<Vec<f32>> = match start {
        None => shapes.iter().map(|&k| vec![MASK_INIT_LOGIT; k]).collect(),
        Some(s) => {
            let got: Vec<usize> = s.iter().map(Vec::len).collect();
            if got != shapes || s.iter().flatten().any(|v| !v.is_finite()) {
                return Err(AcdcError::Shape(format!(
                    "starting mask logits of shape {got:?} (each a number) for masks of shape {shapes:?}"
                )));
            }
            s.to_vec()
        }
    };
    let total: usize = shapes.iter().sum();
    let mut scores: Vec<Vec<f32>> = shapes.iter().map(|&k| vec![0.0; k]).collect();
    let hidden = &sweep.model.layers[..sweep.model.layers.len() - 1];
    let mut nodes: Vec<Vec<f32>> = hidden.iter().map(|l| vec![0.0; l.n_out]).collect();
    let mut points = Vec::with_capacity(config.lambdas.len());
    for &lambda in &config.lambdas {
        let mut adam = Adam::new(total, config.lr);
        let mut kl = 0.0;
        for _ in 0..config.steps {
            let masks: Vec<Vec<f32>> = theta.iter().map(|t| t.iter().map(|&v| sigmoid(v)).collect()).collect();
            let run = masked_forward(sweep, config.unit, &masks);
            let (k, dlogits) = kl_and_gradient(&reference, &run.logits, classes);
            kl = k;
            let grads = mask_gradient(sweep, config.unit, &masks, &run, dlogits);
            // d/dθ (KL + λ Σ σ(θ)) = (∂KL/∂m + λ)·σ(θ)(1 − σ(θ)).
            let flat: Vec<f32> = grads
                .iter()
                .zip(&masks)
                .flat_map(|(g, m)| g.iter().zip(m).map(|(g, m)| (g + lambda as f32) * m * (1.0 - m)))
                .collect();
            let mut flat_theta: Vec<f32> = theta.concat();
            adam.step(&mut flat_theta, &flat);
            let mut rest = flat_theta.as_slice();
            for t in &mut theta {
                let (head, tail) = rest.split_at(t.len());
                t.copy_from_slice(head);
                rest = tail;
            }
        }
        if !kl.is_finite() {
            return Err(AcdcError::Degenerate(format!("the learned mask's KL at lambda = {lambda} is not finite")));
        }
        let mask: Vec<Vec<bool>> = theta.iter().map(|t| t.iter().map(|&v| v > 0.0).collect()).collect();
        let soft: Vec<Vec<f32>> = theta.iter().map(|t| t.iter().map(|&v| sigmoid(v)).collect()).collect();
        scores.iter_mut().zip(&soft).for_each(|(s, m)| s.iter_mut().zip(m).for_each(|(s, &v)| *s += v));
        let point_nodes = neuron_masks(sweep.model, config.unit, &soft);
        nodes.iter_mut().zip(&point_nodes).for_each(|(s, m)| s.iter_mut().zip(m).for_each(|(s, &v)| *s += v));
        points.push(MaskPoint { lambda, kept: mask.iter().flatten().filter(|k| **k).count(), kl, mask });
    }
    Ok(LearnedMasks { config: config.clone(), points, scores, nodes })
}

#[cfg(test)]
mod tests {
    use modcirc_mlp::{Activation, Linear, Mlp};

    use super::*;
    use crate::TaskImages;

    /// A neuron's score is the largest of its edges' masks, not their sum:
    /// on layers whose widths differ 8x, weak edges in number do not
    /// outrank one strong edge (STUDY §12).
    #[test]
    fn node_scores_do_not_grow_with_a_neurons_number_of_edges() {
        let mut u = uniform(7);
        let model = Mlp::init(&[64, 32, 4, 3], Activation::Relu, &mut u).unwrap();
        let mut masks: Vec<Vec<f32>> = model.layers.iter().map(|l| vec![0.1; l.weight.len()]).collect();
        // Every edge the same: every neuron the same, whatever its edges' number.
        let same = neuron_masks(&model, MaskUnit::Edges, &masks);
        assert!(same.iter().flatten().all(|&s| s == 0.1), "{same:?}");
        // One strong edge out of neuron 0 of the narrow layer (32 + 3 edges)
        // against the wide layer's neurons (64 + 4 edges of 0.1 each).
        masks[2][0] = 0.9;
        let nodes = neuron_masks(&model, MaskUnit::Edges, &masks);
        let (wide, narrow) = (&nodes[0], &nodes[1]);
        assert_eq!(narrow[0], 0.9);
        assert!(wide.iter().all(|&s| s < narrow[0]), "{wide:?}");
        // Summed over its edges the wide layer's neuron would win: the bias
        // the largest mask avoids.
        let (into, out) = (&model.layers[0], &model.layers[1]);
        let sum_wide: f32 =
            masks[0][..into.n_in].iter().sum::<f32>() + (0..out.n_out).map(|o| masks[1][o * out.n_in]).sum::<f32>();
        let sum_narrow: f32 = masks[1][..out.n_in].iter().sum::<f32>() + (0..3).map(|o| masks[2][o * 4]).sum::<f32>();
        assert!(sum_wide > sum_narrow, "{sum_wide} against {sum_narrow}");
        // Neuron masks are their own scores.
        let own = vec![vec![0.2; 32], vec![0.4; 4]];
        assert_eq!(neuron_masks(&model, MaskUnit::Neurons, &own), own);
    }

    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
        move || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn random_case(sizes: &[usize], act: Activation, n: usize, seed: u64) -> (Mlp, TaskImages) {
        let mut u = uniform(seed);
        let mut model = Mlp::init(sizes, act, &mut u).unwrap();
        model.layers.iter_mut().for_each(|l| l.weight.iter_mut().for_each(|w| *w *= 2.0));
        let px = sizes[0];
        let classes = *sizes.last().unwrap();
        let mut draw = |k: usize| (0..k).map(|_| u() as f32).collect::<Vec<f32>>();
        let (clean, corrupted) = (draw(n * px), draw(n * px));
        let clean_labels: Vec<u8> = (0..n).map(|b| (b % classes) as u8).collect();
        let corrupted_labels = clean_labels.iter().map(|&c| (c + 1) % classes as u8).collect();
        (model, TaskImages { n, pixels: px, clean, corrupted, clean_labels, corrupted_labels })
    }

    /// The KL of the masked run, computed the plain way for the checks.
    fn kl(sweep: &PatchingSweep<'_>, unit: MaskUnit, masks: &[Vec<f32>]) -> f64 {
        let classes = sweep.model.n_classes();
        let reference = log_softmax(sweep.clean.post.last().unwrap(), classes);
        kl_and_gradient(&reference, &masked_forward(sweep, unit, masks).logits, classes).0
    }

    #[test]
    fn the_mask_gradient_is_the_kl_central_difference() {
        for (i, (sizes, act)) in [
            (vec![5, 7, 3], Activation::Silu),
            (vec![4, 6, 5, 3], Activation::Tanh),
            (vec![3, 8, 4, 6, 2], Activation::Gelu),
            (vec![6, 9, 4], Activation::Sigmoid),
        ]
        .into_iter()
        .enumerate()
        {
            let (model, images) = random_case(&sizes, act, 4, i as u64);
            let sweep = PatchingSweep::new(&model, &images).unwrap();
            for unit in [MaskUnit::Edges, MaskUnit::Neurons] {
                let mut u = uniform(100 + i as u64);
                let masks: Vec<Vec<f32>> = unit_shapes(&sweep, unit)
                    .iter()
                    .map(|&k| (0..k).map(|_| 0.2 + 0.6 * u() as f32).collect())
                    .collect();
                let classes = model.n_classes();
                let reference = log_softmax(sweep.clean.post.last().unwrap(), classes);
                let run = masked_forward(&sweep, unit, &masks);
                let (_, dlogits) = kl_and_gradient(&reference, &run.logits, classes);
                let grads = mask_gradient(&sweep, unit, &masks, &run, dlogits);
                for l in 0..masks.len() {
                    for k in 0..masks[l].len() {
                        let step = 1e-2;
                        let mut up = masks.clone();
                        up[l][k] += step;
                        let mut down = masks.clone();
                        down[l][k] -= step;
                        let fd = (kl(&sweep, unit, &up) - kl(&sweep, unit, &down)) / (2.0 * step as f64);
                        let g = grads[l][k] as f64;
                        assert!((g - fd).abs() <= 1e-3 * fd.abs().max(1e-2), "{unit} {act} ({l}, {k}): {g} vs {fd}");
                    }
                }
            }
        }
    }

    #[test]
    fn masks_of_one_are_the_model_and_of_zero_the_corrupted_run() {
        let (model, images) = random_case(&[5, 7, 6, 3], Activation::Silu, 3, 9);
        let sweep = PatchingSweep::new(&model, &images).unwrap();
        for unit in [MaskUnit::Edges, MaskUnit::Neurons] {
            let ones: Vec<Vec<f32>> = unit_shapes(&sweep, unit).iter().map(|&k| vec![1.0; k]).collect();
            let run = masked_forward(&sweep, unit, &ones);
            let clean = sweep.clean.post.last().unwrap();
            assert!(run.logits.iter().zip(clean).all(|(a, b)| (a - b).abs() < 1e-5), "{unit}");
        }
        // Every edge at zero carries only corrupted values.
        let zeros: Vec<Vec<f32>> = unit_shapes(&sweep, MaskUnit::Edges).iter().map(|&k| vec![0.0; k]).collect();
        let run = masked_forward(&sweep, MaskUnit::Edges, &zeros);
        let corrupted = sweep.corrupted.post.last().unwrap();
        assert!(run.logits.iter().zip(corrupted).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    /// A network with one path that carries the answer (x0 → h0 → both
    /// outputs), one that carries a little of it (x1 → h1, weights 0.01 to
    /// the outputs) and one that carries nothing (x2 is the same on clean
    /// and corrupted images): at a penalty between what the two paths are
    /// worth, the mask keeps exactly the first path.
    #[test]
    fn the_learned_mask_recovers_a_known_circuit() {
        let w1 =
            Linear { n_in: 3, n_out: 3, weight: vec![2.0, 0.5, 0.0, 0.0, 1.0, 0.0, 0.3, 0.0, 1.0], bias: vec![0.0; 3] };
        let w2 = Linear { n_in: 3, n_out: 2, weight: vec![1.5, 0.01, 0.7, -1.5, -0.01, 0.7], bias: vec![0.0, 0.5] };
        let model = Mlp::new(vec![w1, w2], Activation::Relu).unwrap();
        let n = 8;
        let mut clean = Vec::new();
        let mut corrupted = Vec::new();
        for b in 0..n {
            let x2 = 0.2 + 0.1 * b as f32;
            clean.extend([1.0 + 0.05 * b as f32, 1.0, x2]);
            corrupted.extend([0.0, 0.0, x2]);
        }
        let images =
            TaskImages { n, pixels: 3, clean, corrupted, clean_labels: vec![0; n], corrupted_labels: vec![1; n] };
        let sweep = PatchingSweep::new(&model, &images).unwrap();
        let config = MaskConfig { unit: MaskUnit::Edges, lambdas: vec![1e-2], steps: 2_000, lr: 0.05 };
        let found = learn_masks(&sweep, &config).unwrap();
        let point = &found.points[0];
        // x0 → h0 (weight index 0), h0 → out0 (0) and h0 → out1 (3).
        let expected = vec![
            vec![true, false, false, false, false, false, false, false, false],
            vec![true, false, false, true, false, false],
        ];
        assert_eq!(point.mask, expected, "kl {}", point.kl);
        // Far below what the little path is worth, it is kept too.
        let low = learn_masks(&sweep, &MaskConfig { lambdas: vec![1e-9], ..config.clone() }).unwrap();
        let little = &low.points[0].mask;
        assert!(little[0][4] && little[1][1] && little[1][4], "{little:?}");
        // Neuron masks keep h0 alone.
        let neurons = learn_masks(&sweep, &MaskConfig { unit: MaskUnit::Neurons, ..config }).unwrap();
        assert_eq!(neurons.points[0].mask, vec![vec![true, false, false]]);
    }
}
