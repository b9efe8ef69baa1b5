//! A circuit: its neurons, the eps edge rule (STUDY §5), its sparsity and its
//! forward under an ablation.

use modcirc_metrics::logit_difference;
use modcirc_mlp::accuracy_of_logits as accuracy;
use modcirc_mlp::{Activation, Linear, Mlp};
use serde::{Deserialize, Serialize};

use crate::ablated::{ablated_rows, AblatedRows};
use crate::edges::{edge_threshold, touched_neurons};
use crate::{Ablation, AcdcError, PatchingSweep, SharedFirstLayer};

/// A circuit: every input and output, the kept hidden neurons, and the edges
/// between circuit nodes whose magnitude is at least `eps · max|W_l|`.
///
/// Its forward computes, for every node v,
/// `z_v = Σ_{edges u→v} W_vu·a_u + Σ_{other u} W_vu·ā_u + b_v`,
/// where `ā_u` is the ablated value of `u`: so a removed hidden neuron sends
/// its ablated value along all its outgoing weights, and a pruned weight
/// between circuit nodes carries the ablated value of its source. Under zero
/// ablation this is the model with non-circuit neurons and non-edges deleted.
#[derive(Debug, Clone)]
pub struct Circuit {
    /// Kept neurons per hidden layer, ascending.
    pub nodes: Vec<Vec<usize>>,
    /// The edge threshold, relative to each layer's largest |weight|.
    pub eps: f64,
    /// `W ⊙ edge mask` per layer.
    pub(crate) kept: Vec<Linear>,
    /// The model's hidden activation.
    pub(crate) activation: Activation,
    /// `W ⊙ (1 − edge mask)` per layer.
    pub(crate) removed: Vec<Vec<f32>>,
    /// `mask[l][o * n_in + i]`: whether layer `l`'s edge `i → o` is in the circuit.
    mask: Vec<Vec<bool>>,
    /// Per layer, the kept product restricted to what it touches.
    compact: Vec<CompactLayer>,
    /// Every input is in the circuit ([`Circuit::new`]): a kept neuron of
    /// hidden layer 1 keeps its whole eps-masked row, so its first-layer
    /// product can come from a [`SharedFirstLayer`].
    pub(crate) all_inputs: bool,
    n_edges: usize,
    n_weights: usize,
}

/// A layer's kept weights restricted to the outputs and inputs that have an
/// edge: a circuit of K neurons per layer multiplies K rows, not all of them.
#[derive(Debug, Clone)]
struct CompactLayer {
    rows: Vec<usize>,
    cols: Vec<usize>,
    linear: Linear,
}

impl CompactLayer {
    fn of(kept: &Linear) -> CompactLayer {
        let w = |o: usize, i: usize| kept.weight[o * kept.n_in + i];
        let rows: Vec<usize> = (0..kept.n_out).filter(|&o| (0..kept.n_in).any(|i| w(o, i) != 0.0)).collect();
        let cols: Vec<usize> = (0..kept.n_in).filter(|&i| rows.iter().any(|&o| w(o, i) != 0.0)).collect();
        let weight = rows.iter().flat_map(|&o| cols.iter().map(move |&i| w(o, i))).collect();
        let linear = Linear { n_in: cols.len(), n_out: rows.len(), weight, bias: vec![0.0; rows.len()] };
        CompactLayer { rows, cols, linear }
    }
}

/// The circuit's metrics on a set of pairs (STUDY §5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CircuitEval {
    /// Mean over the clean and corrupted images of `‖circuit − model‖₂`.
    pub logit_difference: f64,
    /// The circuit's accuracy on those images (labels: their own digits).
    pub accuracy: f64,
    /// `1 − edges / weights`.
    pub sparsity: f64,
}

impl Circuit {
    /// The circuit of `nodes` (kept neurons per hidden layer) with the edges between them of magnitude at least `eps · max|W_l|` (STUDY §5).
    pub fn new(model: &Mlp, nodes: Vec<Vec<usize>>, eps: f64) -> Result<Circuit, AcdcError> {
        if !(0.0..1.0).contains(&eps) {
            return Err(AcdcError::BadEps(eps));
        }
        let hidden = model.layers.len() - 1;
        if nodes.len() != hidden {
            return Err(AcdcError::Shape(format!("{} node sets for {hidden} hidden layers", nodes.len())));
        }
        // in_circuit[l][i]: is neuron i of neuron layer l (0 = inputs) in the circuit?
        let sizes = model.sizes();
        let mut in_circuit: Vec<Vec<bool>> = sizes.iter().map(|&n| vec![true; n]).collect();
        for (h, set) in nodes.iter().enumerate() {
            let flags = &mut in_circuit[h + 1];
            flags.fill(false);
            for &i in set {
                if i >= flags.len() {
                    return Err(AcdcError::Shape(format!(
                        "neuron {i} is outside hidden layer {} of {}",
                        h + 1,
                        flags.len()
                    )));
                }
                flags[i] = true;
            }
        }
        let mut kept = Vec::new();
        let mut removed = Vec::new();
        let mut mask = Vec::new();
        let mut n_edges = 0;
        for (l, layer) in model.layers.iter().enumerate() {
            let threshold = edge_threshold(&layer.weight, eps);
            let mut k = layer.clone();
            let mut r = vec![0.0; layer.weight.len()];
            let mut m = vec![false; layer.weight.len()];
            for o in 0..layer.n_out {
                for i in 0..layer.n_in {
                    let idx = o * layer.n_in + i;
                    let w = layer.weight[idx];
                    if in_circuit[l + 1][o] && in_circuit[l][i] && w.abs() >= threshold {
                        n_edges += 1;
                        m[idx] = true;
                    } else {
                        k.weight[idx] = 0.0;
                        r[idx] = w;
                    }
                }
            }
            kept.push(k);
            removed.push(r);
            mask.push(m);
        }
        let mut nodes = nodes;
        nodes.iter_mut().for_each(|s| s.sort_unstable());
        Ok(Circuit {
            nodes,
            eps,
            compact: kept.iter().map(CompactLayer::of).collect(),
            all_inputs: true,
            kept,
            activation: model.activation,
            removed,
            mask,
            n_edges,
            n_weights: model.n_weights(),
        })
    }

    /// The circuit whose edges are `mask[l][o * n_in + i]` (layer `l`'s weight
    /// from input `i` to output `o`), as edge-level methods find them. Its
    /// nodes are the hidden neurons an edge touches; `eps` is 0.
    pub fn from_edges(model: &Mlp, mask: &[Vec<bool>]) -> Result<Circuit, AcdcError> {
        if mask.len() != model.layers.len() {
            return Err(AcdcError::Shape(format!("{} edge masks for {} layers", mask.len(), model.layers.len())));
        }
        let hidden = model.layers.len() - 1;
        let mut kept_edges = Vec::new();
        let mut kept = Vec::new();
        let mut removed = Vec::new();
        let mut n_edges = 0;
        for (l, (layer, m)) in model.layers.iter().zip(mask).enumerate() {
            if m.len() != layer.weight.len() {
                return Err(AcdcError::Shape(format!(
                    "the edge mask of layer {} has {} entries for {} weights",
                    l + 1,
                    m.len(),
                    layer.weight.len()
                )));
            }
            let mut k = layer.clone();
            let mut r = vec![0.0; layer.weight.len()];
            for (idx, &keep) in m.iter().enumerate() {
                if keep {
                    n_edges += 1;
                    kept_edges.push([l, idx / layer.n_in, idx % layer.n_in]);
                } else {
                    r[idx] = k.weight[idx];
                    k.weight[idx] = 0.0;
                }
            }
            kept.push(k);
            removed.push(r);
        }
        let widths: Vec<usize> = model.layers[..hidden].iter().map(|l| l.n_out).collect();
        let nodes = touched_neurons(&widths, kept_edges);
        Ok(Circuit {
            nodes,
            eps: 0.0,
            compact: kept.iter().map(CompactLayer::of).collect(),
            all_inputs: false,
            kept,
            activation: model.activation,
            removed,
            mask: mask.to_vec(),
            n_edges,
            n_weights: model.n_weights(),
        })
    }

    /// `mask[l][o * n_in + i]`: whether layer `l`'s edge from input `i` to
    /// output `o` is in the circuit.
    pub fn edge_mask(&self) -> &[Vec<bool>] {
        &self.mask
    }

    /// The circuit's edges.
    pub fn n_edges(&self) -> usize {
        self.n_edges
    }

    /// Refuses a model of another shape or activation than the circuit's.
    pub(crate) fn check_model(&self, model: &Mlp) -> Result<(), AcdcError> {
        let sizes: Vec<usize> = self.kept.iter().map(|l| l.n_in).chain([model.n_classes()]).collect();
        if model.sizes() != sizes || model.activation != self.activation {
            return Err(AcdcError::Shape("the circuit was built for a model of another shape or activation".into()));
        }
        Ok(())
    }

    /// `1 − |circuit edges| / |all weights|` (STUDY §5).
    pub fn sparsity(&self) -> f64 {
        1.0 - self.n_edges as f64 / self.n_weights as f64
    }

    /// `kept[l] · a` on `n` rows of layer `l`'s inputs, without the bias:
    /// only the outputs and inputs that have an edge are multiplied.
    /// `first`, where given, holds layer 0's products of every neuron on
    /// these rows (a [`SharedFirstLayer`]'s): they are copied, not computed.
    pub(crate) fn kept_product(&self, l: usize, a: &[f32], n: usize, first: Option<&[f32]>) -> Vec<f32> {
        let (c, n_in, n_out) = (&self.compact[l], self.kept[l].n_in, self.kept[l].n_out);
        let mut out = vec![0.0; n * n_out];
        if c.rows.is_empty() {
            return out;
        }
        if let (0, Some(all)) = (l, first) {
            for (dst, src) in out.chunks_exact_mut(n_out).zip(all.chunks_exact(n_out)) {
                c.rows.iter().for_each(|&o| dst[o] = src[o]);
            }
            return out;
        }
        let gathered: Vec<f32>;
        let x = if c.cols.len() == n_in {
            a
        } else {
            let mut g = Vec::with_capacity(n * c.cols.len());
            for row in a.chunks_exact(n_in) {
                g.extend(c.cols.iter().map(|&i| row[i]));
            }
            gathered = g;
            &gathered
        };
        let mut z = vec![0.0; n * c.rows.len()];
        // The first layer's as the model computes it (see `Mlp::layer_forward_into`).
        if l == 0 {
            c.linear.forward_sparse_into(x, n, &mut z);
        } else {
            c.linear.forward_into(x, n, &mut z);
        }
        for (dst, src) in out.chunks_exact_mut(n_out).zip(z.chunks_exact(c.rows.len())) {
            c.rows.iter().zip(src).for_each(|(&o, v)| dst[o] = *v);
        }
        out
    }

    /// `g · kept[l]` on `n` rows of layer `l`'s output gradients: the
    /// gradient in layer `l`'s inputs along the kept edges.
    pub(crate) fn kept_transpose_product(&self, l: usize, g: &[f32], n: usize) -> Vec<f32> {
        let (c, n_in, n_out) = (&self.compact[l], self.kept[l].n_in, self.kept[l].n_out);
        let mut out = vec![0.0; n * n_in];
        if c.rows.is_empty() {
            return out;
        }
        let mut gathered = Vec::with_capacity(n * c.rows.len());
        for row in g.chunks_exact(n_out) {
            gathered.extend(c.rows.iter().map(|&o| row[o]));
        }
        let mut da = vec![0.0; n * c.cols.len()];
        modcirc_mlp::linalg::mm_nn(&mut da, &gathered, &c.linear.weight, n, c.cols.len(), c.rows.len(), false);
        for (dst, src) in out.chunks_exact_mut(n_in).zip(da.chunks_exact(c.cols.len())) {
            c.cols.iter().zip(src).for_each(|(&i, v)| dst[i] = *v);
        }
        out
    }

    /// Whether input `i` of layer `l` has a kept edge.
    pub(crate) fn kept_column_used(&self, l: usize, i: usize) -> bool {
        self.compact[l].cols.binary_search(&i).is_ok()
    }

    /// The circuit's edges, packed: what a joint fit of optimal ablation is kept under.
    pub(crate) fn edge_key(&self) -> Vec<u64> {
        let bits = self.mask.iter().flatten();
        let mut key = vec![0u64; self.mask.iter().map(Vec::len).sum::<usize>().div_ceil(64)];
        bits.enumerate().filter(|(_, &b)| b).for_each(|(i, _)| key[i / 64] |= 1 << (i % 64));
        key
    }

    /// The circuit's logits (output-position order) on `n` inputs; `ablated[l]`
    /// holds the ablated values of layer `l`'s inputs, either one row for all
    /// inputs or one row per input, or `None` for zero ablation.
    fn forward(&self, x: &[f32], n: usize, ablated: &[Option<AblatedRows>], first: Option<&[f32]>) -> Vec<f32> {
        let last = self.kept.len() - 1;
        let mut a = std::borrow::Cow::Borrowed(x);
        for (l, layer) in self.kept.iter().enumerate() {
            let mut z = self.kept_product(l, &a, n, first);
            for zr in z.chunks_exact_mut(layer.n_out) {
                zr.iter_mut().zip(&layer.bias).for_each(|(z, b)| *z += b);
            }
            if let Some(rows) = &ablated[l] {
                let r = Linear {
                    n_in: layer.n_in,
                    n_out: layer.n_out,
                    weight: self.removed[l].clone(),
                    bias: vec![0.0; layer.n_out],
                };
                let mut extra = vec![0.0; rows.rows() * layer.n_out];
                r.forward_into(&rows.values, rows.rows(), &mut extra);
                for (b, zr) in z.chunks_exact_mut(layer.n_out).enumerate() {
                    let e = &extra[rows.row_for(b) * layer.n_out..][..layer.n_out];
                    zr.iter_mut().zip(e).for_each(|(z, e)| *z += e);
                }
            }
            if l != last {
                self.activation.apply_in_place(&mut z);
            }
            a = std::borrow::Cow::Owned(z);
        }
        a.into_owned()
    }

    /// The circuit's metrics on the pairs of `sweep`: its logits on the clean
    /// and the corrupted images against the model's.
    pub fn evaluate(&self, sweep: &PatchingSweep<'_>, ablation: Ablation) -> Result<CircuitEval, AcdcError> {
        self.evaluate_with(sweep, ablation, None)
    }

    /// [`Circuit::evaluate`] with the first layer's products from `shared`
    /// where they apply (a circuit of [`Circuit::new`] with its eps, on the
    /// sweep `shared` was made on).
    pub fn evaluate_shared(
        &self,
        sweep: &PatchingSweep<'_>,
        ablation: Ablation,
        shared: &SharedFirstLayer,
    ) -> Result<CircuitEval, AcdcError> {
        self.evaluate_with(sweep, ablation, shared.for_circuit(self, sweep.images.n))
    }

    fn evaluate_with(
        &self,
        sweep: &PatchingSweep<'_>,
        ablation: Ablation,
        shared: Option<&SharedFirstLayer>,
    ) -> Result<CircuitEval, AcdcError> {
        let model = sweep.model;
        self.check_model(model)?;
        let n = sweep.images.n;
        // The images feed only the first layer's product, which `shared`
        // holds where it is given.
        let x = match shared {
            Some(_) => Vec::new(),
            None => [sweep.images.clean.as_slice(), &sweep.images.corrupted].concat(),
        };
        let ablated = ablated_rows(sweep, ablation, self)?;
        let circuit = self.forward(&x, 2 * n, &ablated, shared.map(|s| s.both.as_slice()));
        let mut reference = sweep.clean.post.last().unwrap().clone();
        reference.extend_from_slice(sweep.corrupted.post.last().unwrap());
        let c = model.n_classes();
        let mut labels = sweep.images.clean_labels.clone();
        labels.extend_from_slice(&sweep.images.corrupted_labels);
        Ok(CircuitEval {
            logit_difference: logit_difference(&circuit, &reference, c),
            accuracy: accuracy(&model.positions_to_classes(&circuit), &labels, c),
            sparsity: self.sparsity(),
        })
    }

    /// Mean over the pairs of the answer metric `L[clean digit] − L[corrupted
    /// digit]` of the circuit on the clean images, every removed edge carrying
    /// its source's value on the paired corrupted image (STUDY §8). The full
    /// circuit gives the model's clean metric, the empty one its corrupted
    /// metric.
    pub fn answer_metric(&self, sweep: &PatchingSweep<'_>) -> Result<f64, AcdcError> {
        self.answer_metric_with(sweep, None)
    }

    /// [`Circuit::answer_metric`] with the first layer's products from
    /// `shared` where they apply.
    pub fn answer_metric_shared(&self, sweep: &PatchingSweep<'_>, shared: &SharedFirstLayer) -> Result<f64, AcdcError> {
        self.answer_metric_with(sweep, shared.for_circuit(self, sweep.images.n))
    }

    fn answer_metric_with(
        &self,
        sweep: &PatchingSweep<'_>,
        shared: Option<&SharedFirstLayer>,
    ) -> Result<f64, AcdcError> {
        let model = sweep.model;
        self.check_model(model)?;
        crate::attribution::check_labels(model, &sweep.images)?;
        let n = sweep.images.n;
        let last = self.kept.len() - 1;
        // Removed edges carry the corrupted run's values, so a layer's
        // pre-activation is `kept·a + (W − kept)·a_corr + b = kept·a +
        // pre_corr − kept·a_corr`: two kept products, no full one.
        let mut a = std::borrow::Cow::Borrowed(sweep.images.clean.as_slice());
        for l in 0..self.kept.len() {
            let corr_in = if l == 0 { &sweep.images.corrupted } else { &sweep.corrupted.post[l - 1] };
            let mut z = self.kept_product(l, &a, n, shared.map(SharedFirstLayer::clean));
            let kept_corr = self.kept_product(l, corr_in, n, shared.map(SharedFirstLayer::corrupted));
            z.iter_mut().zip(&sweep.corrupted.pre[l]).zip(&kept_corr).for_each(|((z, p), k)| *z += p - k);
            if l != last {
                self.activation.apply_in_place(&mut z);
            }
            a = std::borrow::Cow::Owned(z);
        }
        let m = crate::attribution::answer_metric(model, &a, &sweep.images);
        Ok(m.iter().sum::<f64>() / n as f64)
    }

    /// The answer metric of [`Circuit::answer_metric`] with removed edges
    /// carrying their source's value under `ablation`: resample is the
    /// corrupted-value form itself; zero and mean send 0 or the task
    /// images' mean (STUDY §5's ablations, applied to §8's metric).
    pub fn answer_metric_under(&self, sweep: &PatchingSweep<'_>, ablation: Ablation) -> Result<f64, AcdcError> {
        if ablation == Ablation::Resample {
            return self.answer_metric(sweep);
        }
        let model = sweep.model;
        self.check_model(model)?;
        crate::attribution::check_labels(model, &sweep.images)?;
        let n = sweep.images.n;
        let ablated = ablated_rows(sweep, ablation, self)?;
        let logits = self.forward(&sweep.images.clean, n, &ablated, None);
        Ok(crate::attribution::answer_metric(model, &logits, &sweep.images).iter().sum::<f64>() / n as f64)
    }

    /// [`Circuit::answer_metric`] the plain way, every removed edge's
    /// product computed: its slow twin.
    #[cfg(test)]
    fn answer_metric_plain(&self, sweep: &PatchingSweep<'_>) -> f64 {
        let (model, n) = (sweep.model, sweep.images.n);
        let ablated: Vec<Option<AblatedRows>> = (0..self.kept.len())
            .map(|l| {
                let (values, width) = if l == 0 {
                    (sweep.images.corrupted.clone(), sweep.images.pixels)
                } else {
                    (sweep.corrupted.post[l - 1].clone(), model.layers[l - 1].n_out)
                };
                Some(AblatedRows { values, width, per_input: true, n })
            })
            .collect();
        let logits = self.forward(&sweep.images.clean, n, &ablated, None);
        crate::attribution::answer_metric(model, &logits, &sweep.images).iter().sum::<f64>() / n as f64
    }

    /// The circuit's faithfulness on the pairs of `sweep` (STUDY §8): the
    /// share of the model's answer margin it recovers, every removed edge
    /// carrying its source's value on the paired corrupted image. See
    /// [`crate::faithfulness`].
    pub fn faithfulness(&self, sweep: &PatchingSweep<'_>) -> Result<f64, AcdcError> {
        crate::attribution::faithfulness(sweep, self)
    }

    /// The circuit's logits in class order on arbitrary inputs, under zero ablation.
    pub fn logits(&self, model: &Mlp, x: &[f32], n: usize) -> Vec<f32> {
        let none: Vec<Option<AblatedRows>> = vec![None; self.kept.len()];
        model.positions_to_classes(&self.forward(x, n, &none, None))
    }
}

#[cfg(test)]
mod tests {
    use modcirc_dataset::Rng;

    use super::*;
    use crate::TaskImages;

    /// The circuit's forward with every kept product dense: the slow twin
    /// of the compact one, under zero ablation.
    fn forward_dense(c: &Circuit, x: &[f32], n: usize) -> Vec<f32> {
        let mut a = x.to_vec();
        for (l, layer) in c.kept.iter().enumerate() {
            let mut z = vec![0.0; n * layer.n_out];
            layer.forward_into(&a, n, &mut z);
            if l + 1 != c.kept.len() {
                c.activation.apply_in_place(&mut z);
            }
            a = z;
        }
        a
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn compact_products_equal_the_dense_ones_on_random_circuits_of_many_shapes() {
        let mut rng = Rng::new(5);
        for (sizes, act) in [
            (vec![6, 9, 3], Activation::Relu),
            (vec![12, 20, 16, 4], Activation::Silu),
            (vec![8, 5, 7, 6, 3], Activation::Tanh),
            (vec![30, 40, 10], Activation::Relu),
        ] {
            let model = Mlp::init(&sizes, act, &mut || rng.next_f64()).unwrap();
            let (px, n) = (sizes[0], 17);
            let mut img =
                |k: usize| (0..k).map(|_| if rng.below(3) == 0 { 0.0 } else { rng.next_f64() as f32 }).collect();
            let classes = *sizes.last().unwrap() as u8;
            let images = TaskImages {
                n,
                pixels: px,
                clean: img(n * px),
                corrupted: img(n * px),
                clean_labels: (0..n).map(|b| (b as u8) % classes).collect(),
                corrupted_labels: (0..n).map(|b| (b as u8 + 1) % classes).collect(),
            };
            let sweep = PatchingSweep::new(&model, &images).unwrap();
            for eps in [0.0, 0.01, 0.3] {
                for _ in 0..5 {
                    let nodes: Vec<Vec<usize>> = sizes[1..sizes.len() - 1]
                        .iter()
                        .map(|&w| (0..w).filter(|_| rng.below(2) == 0).collect())
                        .collect();
                    let c = Circuit::new(&model, nodes, eps).unwrap();
                    let fast = c.answer_metric(&sweep).unwrap();
                    let slow = c.answer_metric_plain(&sweep);
                    assert!(close(fast, slow), "{sizes:?} eps {eps}: {fast} vs {slow}");
                    let shared = SharedFirstLayer::new(&sweep, eps).unwrap();
                    let with = c.answer_metric_shared(&sweep, &shared).unwrap();
                    assert!(close(with, slow), "{sizes:?} eps {eps}: shared {with} vs {slow}");
                    for ablation in [Ablation::Zero, Ablation::Mean, Ablation::Resample] {
                        let (a, b) = (
                            c.evaluate(&sweep, ablation).unwrap(),
                            c.evaluate_shared(&sweep, ablation, &shared).unwrap(),
                        );
                        assert!(close(a.logit_difference, b.logit_difference), "{sizes:?} eps {eps} {ablation}");
                    }
                    let none = vec![None; c.kept.len()];
                    let (f, d) = (c.forward(&images.clean, n, &none, None), forward_dense(&c, &images.clean, n));
                    assert!(f.iter().zip(&d).all(|(a, b)| close(*a as f64, *b as f64)), "{sizes:?} eps {eps}");
                }
            }
        }
    }

    #[test]
    fn faithfulness_under_each_ablation_runs_from_the_empty_circuit_to_the_model() {
        let mut rng = Rng::new(8);
        for (sizes, act) in [(vec![7, 10, 3], Activation::Relu), (vec![9, 6, 8, 4], Activation::Tanh)] {
            let model = Mlp::init(&sizes, act, &mut || rng.next_f64()).unwrap();
            let (px, n) = (sizes[0], 11);
            let mut img = |k: usize| (0..k).map(|_| rng.next_f64() as f32).collect::<Vec<f32>>();
            let images = TaskImages {
                n,
                pixels: px,
                clean: img(n * px),
                corrupted: img(n * px),
                clean_labels: (0..n).map(|b| (b % 3) as u8).collect(),
                corrupted_labels: (0..n).map(|b| ((b + 1) % 3) as u8).collect(),
            };
            let sweep = PatchingSweep::new(&model, &images).unwrap();
            let hidden = &sizes[1..sizes.len() - 1];
            let all = Circuit::new(&model, hidden.iter().map(|&w| (0..w).collect()).collect(), 0.0).unwrap();
            let none: Vec<Vec<bool>> = model.layers.iter().map(|l| vec![false; l.weight.len()]).collect();
            let empty = Circuit::from_edges(&model, &none).unwrap();
            let half = Circuit::new(&model, hidden.iter().map(|&w| (0..w / 2).collect()).collect(), 0.0).unwrap();
            for ablation in [Ablation::Zero, Ablation::Mean, Ablation::Resample] {
                let f = |c: &Circuit| crate::faithfulness_under(&sweep, c, ablation).unwrap();
                assert!((f(&all) - 1.0).abs() < 1e-4, "{sizes:?} {ablation}: the model is 1");
                assert!(f(&empty).abs() < 1e-4, "{sizes:?} {ablation}: the empty circuit is 0");
                assert!(f(&half).is_finite());
            }
            // Resample is the corrupted-value form; zero and mean are other circuits' runs.
            assert_eq!(
                crate::faithfulness_under(&sweep, &half, Ablation::Resample).unwrap(),
                half.faithfulness(&sweep).unwrap()
            );
            let zero = crate::faithfulness_under(&sweep, &half, Ablation::Zero).unwrap();
            assert!((zero - half.faithfulness(&sweep).unwrap()).abs() > 1e-6, "{sizes:?}: zero differs");
        }
    }
}
