//! The connection cost of STUDY §2: each weight's factor from its length in the
//! layout, the penalty and its gradient.

use crate::{Layout, Mlp};

/// `l0` of STUDY §2: the cost every weight pays regardless of its length.
pub const L0: f32 = 0.5;
/// The weight factor swaps are scored with (`cc_swap = cc(2.0)` with the
/// distance term on every layer, STUDY §2).
pub const SWAP_WEIGHT_FACTOR: f32 = 2.0;

/// The connection cost of STUDY §2,
/// `cc(wf) = Σ_l mean(|W_l| ⊙ (wf_l·D_l + l0)) + mean(|b_l|·l0)`,
/// with each layer's per-weight factor `(wf_l·D_l[o,i] + l0) / |W_l|`
/// precomputed, so that the value and its gradient are one pass each.
#[derive(Debug, Clone)]
pub struct ConnectionCost {
    /// `(wf_l·D_l + l0) / |W_l|`, row-major like the weights.
    pub weight_factors: Vec<Vec<f32>>,
    /// `l0 / |b_l|`.
    pub bias_factors: Vec<f32>,
}

impl ConnectionCost {
    /// `cc(wf)` as the training penalty: `wf_l = wf` on every layer but the
    /// last, where it is 0.
    pub fn training(layout: &Layout, wf: f32) -> ConnectionCost {
        ConnectionCost::new(layout, wf, false)
    }

    /// `cc_swap`: `wf = 2.0` on every layer, the last included.
    pub fn swap(layout: &Layout) -> ConnectionCost {
        ConnectionCost::new(layout, SWAP_WEIGHT_FACTOR, true)
    }

    fn new(layout: &Layout, wf: f32, distance_on_last: bool) -> ConnectionCost {
        let n_layers = layout.layers.len() - 1;
        let mut weight_factors = Vec::with_capacity(n_layers);
        let mut bias_factors = Vec::with_capacity(n_layers);
        for l in 0..n_layers {
            let wf_l = if l + 1 == n_layers && !distance_on_last { 0.0 } else { wf };
            let d = layout.distances(l);
            let numel = d.len() as f32;
            weight_factors.push(d.iter().map(|&d| (wf_l * d + L0) / numel).collect());
            bias_factors.push(L0 / layout.layers[l + 1].len() as f32);
        }
        ConnectionCost { weight_factors, bias_factors }
    }

    /// The cost of `model`, every term and the sum in f64 (the naive swap
    /// search compares these totals, and f32 rounding would flip near-ties).
    pub fn value(&self, model: &Mlp) -> f64 {
        let mut total = 0.0f64;
        for (l, layer) in model.layers.iter().enumerate() {
            total +=
                layer.weight.iter().zip(&self.weight_factors[l]).map(|(w, a)| w.abs() as f64 * *a as f64).sum::<f64>();
            total += self.bias_factors[l] as f64 * layer.bias.iter().map(|b| b.abs() as f64).sum::<f64>();
        }
        total
    }

    /// Adds `scale · ∂cc/∂θ` to the gradients of layer `l` and returns that
    /// layer's cost. The derivative of `|x|` at 0 is taken as 0, as autograd does.
    pub fn add_layer_grad(
        &self,
        l: usize,
        weight: &[f32],
        bias: &[f32],
        scale: f32,
        gw: &mut [f32],
        gb: &mut [f32],
    ) -> f64 {
        let weights = penalty_pass(weight, &self.weight_factors[l], scale, gw);
        let bf = vec![self.bias_factors[l]; bias.len()];
        weights + penalty_pass(bias, &bf, scale, gb)
    }
}

/// Wiring length (STUDY §9): `Σ |W|·D / Σ |W|` over the weights of each
/// layer, and over every layer together; `D` is the Manhattan distance of
/// the layout (STUDY §2), which L1+Local and BIMT penalise. A layer whose
/// weights are all 0 has length 0.
pub fn wiring_length(model: &Mlp, layout: &Layout) -> (f64, Vec<f64>) {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    let per_layer = model
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let d = layout.distances(l);
            let n: f64 = layer.weight.iter().zip(&d).map(|(w, d)| w.abs() as f64 * *d as f64).sum();
            let s: f64 = layer.weight.iter().map(|w| w.abs() as f64).sum();
            (num, den) = (num + n, den + s);
            if s > 0.0 {
                n / s
            } else {
                0.0
            }
        })
        .collect();
    (if den > 0.0 { num / den } else { 0.0 }, per_layer)
}

/// `Σ |x|·a` (returned) and `g += scale·a·sign(x)`, in chunks of 8 so that
/// the loop vectorises: f32 within a chunk, f64 across chunks.
fn penalty_pass(x: &[f32], a: &[f32], scale: f32, g: &mut [f32]) -> f64 {
    const W: usize = 8;
    let mut total = 0.0f64;
    let mut xc = x.chunks_exact(W);
    let mut ac = a.chunks_exact(W);
    let mut gc = g.chunks_exact_mut(W);
    for ((x, a), g) in (&mut xc).zip(&mut ac).zip(&mut gc) {
        let mut part = 0.0f32;
        for i in 0..W {
            part += x[i].abs() * a[i];
            g[i] += scale * a[i] * sign(x[i]);
        }
        total += part as f64;
    }
    for ((x, a), g) in xc.remainder().iter().zip(ac.remainder()).zip(gc.into_remainder()) {
        total += (x.abs() * a) as f64;
        *g += scale * a * sign(*x);
    }
    total
}

/// Branch-free sign with sign(0) = 0, the derivative autograd takes for `|x|` at 0.
#[inline]
fn sign(x: f32) -> f32 {
    ((x > 0.0) as i32 - (x < 0.0) as i32) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use modcirc_mlp::Linear;

    /// A 2-2-2 network on hand-placed coordinates.
    fn toy() -> (Layout, Mlp) {
        let layout = Layout {
            layers: vec![vec![[0.0, 0.0], [1.0, 0.0]], vec![[0.0, 1.0], [1.0, 1.0]], vec![[0.0, 2.0], [0.5, 2.0]]],
        };
        let mlp = Mlp {
            layers: vec![
                Linear { n_in: 2, n_out: 2, weight: vec![1.0, -2.0, 0.5, 0.0], bias: vec![0.2, -0.4] },
                Linear { n_in: 2, n_out: 2, weight: vec![-1.0, 1.0, 3.0, 0.25], bias: vec![0.0, 1.0] },
            ],
            activation: modcirc_mlp::Activation::Silu,
            out_perm: vec![0, 1],
        };
        (layout, mlp)
    }

    #[test]
    fn wiring_length_weighs_each_distance_by_its_weight() {
        let (layout, mlp) = toy();
        // Layer 0: out 0 at (0,1) sees in 0 at D 1 (|w| 1) and in 1 at D 2 (|w| 2);
        // out 1 at (1,1) sees in 0 at D 2 (|w| 0.5), in 1 at D 1 (|w| 0).
        let l0 = (1.0 * 1.0 + 2.0 * 2.0 + 0.5 * 2.0) / 3.5;
        // Layer 1: outs at (0,2), (0.5,2); ins at (0,1), (1,1).
        let l1 = (1.0 * 1.0 + 1.0 * 2.0 + 3.0 * 1.5 + 0.25 * 1.5) / 5.25;
        let (all, per_layer) = wiring_length(&mlp, &layout);
        assert!((per_layer[0] - l0).abs() < 1e-12 && (per_layer[1] - l1).abs() < 1e-12, "{per_layer:?}");
        assert!((all - (l0 * 3.5 + l1 * 5.25) / 8.75).abs() < 1e-12);
    }

    #[test]
    fn cc_on_a_2_2_2_network_matches_the_hand_computed_value() {
        let (layout, mlp) = toy();
        // Layer 1 distances D[o][i]: o=(0,1): to (0,0)=1, to (1,0)=2; o=(1,1): 2, 1.
        // wf=2: factors 2.5 4.5 / 4.5 2.5. Sum |W|·f = 1·2.5 + 2·4.5 + 0.5·4.5 + 0 = 13.75; mean = 3.4375.
        // Bias: mean(|b|)·0.5 = 0.3·0.5 = 0.15.
        // Last layer (wf_l = 0): mean(|W|)·0.5 = (5.25/4)·0.5 = 0.65625; bias 0.5·0.5 = 0.25.
        let want = 3.4375 + 0.15 + 0.65625 + 0.25;
        let got = ConnectionCost::training(&layout, 2.0).value(&mlp);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // cc_swap also charges the last layer's distances: o=(0,2): to (0,1)=1, (1,1)=2; o=(0.5,2): 1.5, 1.5.
        // factors 2.5 4.5 / 3.5 3.5: 1·2.5 + 1·4.5 + 3·3.5 + 0.25·3.5 = 18.375; mean 4.59375.
        let want_swap = 3.4375 + 0.15 + 4.59375 + 0.25;
        let got = ConnectionCost::swap(&layout).value(&mlp);
        assert!((got - want_swap).abs() < 1e-6, "{got} vs {want_swap}");
        // cc(0) is plain L1 scaled by l0: (3.5/4 + 5.25/4)·0.5 + 0.15 + 0.25.
        let want_l1 = (3.5 / 4.0 + 5.25 / 4.0) * 0.5 + 0.15 + 0.25;
        let got = ConnectionCost::training(&layout, 0.0).value(&mlp);
        assert!((got - want_l1).abs() < 1e-6, "{got} vs {want_l1}");
    }

    #[test]
    fn gradient_is_sign_times_factor_and_layer_costs_add_up() {
        let (layout, mlp) = toy();
        let cc = ConnectionCost::training(&layout, 2.0);
        let mut total = 0.0;
        for (l, layer) in mlp.layers.iter().enumerate() {
            let mut gw = vec![0.0; 4];
            let mut gb = vec![0.0; 2];
            total += cc.add_layer_grad(l, &layer.weight, &layer.bias, 2.0, &mut gw, &mut gb);
            if l == 0 {
                assert_eq!(gw, vec![2.0 * 2.5 / 4.0, -2.0 * 4.5 / 4.0, 2.0 * 4.5 / 4.0, 0.0]);
                assert_eq!(gb, vec![0.5, -0.5]); // 2 · l0 / 2 biases
            }
        }
        assert!((total - cc.value(&mlp)).abs() < 1e-9);
    }
}
