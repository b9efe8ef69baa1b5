//! Relocation: the swap step of BIMT (STUDY §2).
//!
//! For each hidden layer and then the output layer, the 30 most important
//! positions are visited in order of importance; each is swapped with the
//! position that lowers `cc_swap` the most (ties to the lowest index).
//! [`Relocator`] decides from `C[neuron, position]`, the cost of a neuron's
//! weights if it sat at a position, in O(n) per decision; [`relocate_naive`]
//! evaluates the whole cost for every candidate, as the original code does,
//! and exists for tests and the benchmark.

use serde::{Deserialize, Serialize};

use crate::linalg::{mm_nt, mm_tn};
use crate::{ConnectionCost, Mlp};

/// How many positions per layer are visited (STUDY §2).
pub const TOP_POSITIONS: usize = 30;

/// One swap: in neuron layer `layer` (1 = first hidden, the last = outputs),
/// the neuron at `position` moved to `target` and the one there to `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    /// Neuron layer (1-based: a hidden or the output layer).
    pub layer: usize,
    /// The position the neuron left.
    pub position: usize,
    /// The position it took.
    pub target: usize,
}

/// What one relocation did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Relocation {
    /// Every swap, in order.
    pub swaps: Vec<Swap>,
}

/// Positions of neuron layer `n`, most important first (ties: lower index).
/// Hidden: Σ|incoming| + Σ|outgoing|; output: Σ|incoming|.
pub fn importance_ranking(model: &Mlp, n: usize) -> Vec<usize> {
    let incoming = &model.layers[n - 1];
    let mut score: Vec<f64> =
        incoming.weight.chunks_exact(incoming.n_in).map(|row| row.iter().map(|w| w.abs() as f64).sum()).collect();
    if let Some(out) = model.layers.get(n) {
        for row in out.weight.chunks_exact(out.n_in) {
            for (s, w) in score.iter_mut().zip(row) {
                *s += w.abs() as f64;
            }
        }
    }
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    order
}

/// Swaps the neurons at positions `j` and `k` of neuron layer `n`: incoming
/// rows, bias entries, outgoing columns (and the output permutation on the
/// last layer). The network computes the same function afterwards.
pub fn apply_swap(model: &mut Mlp, n: usize, j: usize, k: usize) {
    if j == k {
        return;
    }
    let last = n == model.layers.len();
    let incoming = &mut model.layers[n - 1];
    let w = incoming.n_in;
    for i in 0..w {
        incoming.weight.swap(j * w + i, k * w + i);
    }
    incoming.bias.swap(j, k);
    if last {
        model.out_perm.swap(j, k);
    } else {
        let out = &mut model.layers[n];
        let w = out.n_in;
        for o in 0..out.n_out {
            out.weight.swap(o * w + j, o * w + k);
        }
    }
}

/// The fast relocation, with the swap cost's factors held in f64.
#[derive(Debug, Clone)]
pub struct Relocator {
    factors: Vec<Vec<f64>>,
    top: usize,
}

impl Relocator {
    /// A relocator for `swap_cost`'s layout and factors.
    pub fn new(swap_cost: &ConnectionCost) -> Relocator {
        Relocator {
            factors: swap_cost.weight_factors.iter().map(|f| f.iter().map(|&x| x as f64).collect()).collect(),
            top: TOP_POSITIONS,
        }
    }

    /// Visit this many positions per layer instead of 30.
    pub fn top(mut self, top: usize) -> Relocator {
        self.top = top;
        self
    }

    /// Relocates every hidden layer, then the outputs, in place.
    pub fn relocate(&self, model: &mut Mlp) -> Relocation {
        let mut swaps = Vec::new();
        for n in 1..=model.layers.len() {
            self.relocate_layer(model, n, &mut swaps);
        }
        Relocation { swaps }
    }

    /// `C[a, p]`: the swap cost of neuron `a`'s weights were it at position `p`
    /// (only the distance-dependent part; the rest cancels in a swap).
    pub fn position_costs(&self, model: &Mlp, n: usize) -> Vec<f64> {
        let incoming = &model.layers[n - 1];
        let size = incoming.n_out;
        let mut c = vec![0.0f64; size * size];
        let abs_in: Vec<f64> = incoming.weight.iter().map(|w| w.abs() as f64).collect();
        mm_nt(&mut c, &abs_in, &self.factors[n - 1], size, size, incoming.n_in, false);
        if let Some(out) = model.layers.get(n) {
            let abs_out: Vec<f64> = out.weight.iter().map(|w| w.abs() as f64).collect();
            mm_tn(&mut c, &abs_out, &self.factors[n], size, size, out.n_out, true);
        }
        c
    }

    fn relocate_layer(&self, model: &mut Mlp, n: usize, swaps: &mut Vec<Swap>) {
        let ranking = importance_ranking(model, n);
        let c = self.position_costs(model, n);
        for (j, k) in greedy_swaps(&c, &ranking, self.top).0 {
            apply_swap(model, n, j, k);
            swaps.push(Swap { layer: n, position: j, target: k });
        }
    }
}

/// The greedy swap sequence of one layer from its `C[neuron, position]`
/// (row-major, `ranking.len()` square): for each of the `top` first positions
/// `j` of `ranking`, the position `k` whose swap with `j` lowers the cost most
/// (ties to the lowest index). Returns the swaps `(j, k)` in order, and where
/// each position's neuron came from (`at[p]` = the original position of the
/// neuron now at `p`), which is the permutation to apply in one gather.
pub fn greedy_swaps(c: &[f64], ranking: &[usize], top: usize) -> (Vec<(usize, usize)>, Vec<usize>) {
    let size = ranking.len();
    assert_eq!(c.len(), size * size, "C must be square in the layer width");
    let mut at: Vec<usize> = (0..size).collect();
    let mut swaps = Vec::new();
    for &j in ranking.iter().take(top) {
        let a = at[j];
        let (mut best, mut best_delta) = (0usize, f64::INFINITY);
        for k in 0..size {
            let delta = if k == j {
                0.0
            } else {
                let b = at[k];
                (c[a * size + k] + c[b * size + j]) - (c[a * size + j] + c[b * size + k])
            };
            if delta < best_delta {
                best = k;
                best_delta = delta;
            }
        }
        if best != j {
            at.swap(j, best);
            swaps.push((j, best));
        }
    }
    (swaps, at)
}

/// The reference relocation: the whole swap cost, in f64, for every candidate.
pub fn relocate_naive(model: &mut Mlp, swap_cost: &ConnectionCost, top: usize) -> Relocation {
    let mut swaps = Vec::new();
    for n in 1..=model.layers.len() {
        let ranking = importance_ranking(model, n);
        for &j in ranking.iter().take(top) {
            let (mut best, mut best_cost) = (0usize, f64::INFINITY);
            for k in 0..ranking.len() {
                apply_swap(model, n, j, k);
                let cost = swap_cost.value(model);
                apply_swap(model, n, j, k);
                if cost < best_cost {
                    best = k;
                    best_cost = cost;
                }
            }
            if best != j {
                apply_swap(model, n, j, best);
                swaps.push(Swap { layer: n, position: j, target: best });
            }
        }
    }
    Relocation { swaps }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Layout, STUDY_SIZES};

    #[test]
    fn swaps_keep_the_function_and_lower_the_cost_on_a_fresh_model() {
        let layout = Layout::study(&STUDY_SIZES).unwrap();
        let cost = ConnectionCost::swap(&layout);
        let mut m = crate::init_model(&STUDY_SIZES, crate::STUDY_ACTIVATION, 5).unwrap();
        let x: Vec<f32> = (0..3 * 784).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
        let before = m.forward(&x, 3);
        let c0 = cost.value(&m);
        let r = Relocator::new(&cost).relocate(&mut m);
        assert!(!r.swaps.is_empty());
        assert!(cost.value(&m) < c0);
        let after = m.forward(&x, 3);
        for (a, b) in before.iter().zip(&after) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn fast_and_naive_agree_on_a_small_model() {
        let sizes = [16, 9, 4, 3];
        let layout = Layout::study(&sizes).unwrap();
        let cost = ConnectionCost::swap(&layout);
        for seed in 0..5 {
            let mut a = crate::init_model(&sizes, crate::STUDY_ACTIVATION, seed).unwrap();
            let mut b = a.clone();
            let fast = Relocator::new(&cost).relocate(&mut a);
            let naive = relocate_naive(&mut b, &cost, TOP_POSITIONS);
            assert_eq!(fast, naive, "seed {seed}");
            assert_eq!(a, b);
        }
    }
}
