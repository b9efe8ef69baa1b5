//! The first layer's products shared by many circuits judged on one sweep.

use modcirc_mlp::Linear;

use crate::edges::edge_threshold;
use crate::{AcdcError, Circuit, PatchingSweep};

/// The first layer's eps-masked product (no bias) on a sweep's clean and
/// corrupted images, for every neuron of hidden layer 1. Every circuit of
/// [`Circuit::new`] keeps all inputs, so its first-layer product is these
/// columns for its neurons: many circuits judged on one sweep (random
/// circuits, alternatives) multiply the first layer once.
#[derive(Debug, Clone)]
pub struct SharedFirstLayer {
    eps: f64,
    n: usize,
    width: usize,
    /// `[clean; corrupted]` rows, `[2n, width]`.
    pub(crate) both: Vec<f32>,
}

impl SharedFirstLayer {
    /// The products on `sweep`'s images under the edge rule `eps`.
    pub fn new(sweep: &PatchingSweep<'_>, eps: f64) -> Result<SharedFirstLayer, AcdcError> {
        if !(0.0..1.0).contains(&eps) {
            return Err(AcdcError::BadEps(eps));
        }
        let layer = &sweep.model.layers[0];
        let threshold = edge_threshold(&layer.weight, eps);
        let weight = layer.weight.iter().map(|&w| if w.abs() >= threshold { w } else { 0.0 }).collect();
        let masked = Linear { n_in: layer.n_in, n_out: layer.n_out, weight, bias: vec![0.0; layer.n_out] };
        let n = sweep.images.n;
        let mut both = vec![0.0; 2 * n * layer.n_out];
        let (clean, corrupted) = both.split_at_mut(n * layer.n_out);
        masked.forward_sparse_into(&sweep.images.clean, n, clean);
        masked.forward_sparse_into(&sweep.images.corrupted, n, corrupted);
        Ok(SharedFirstLayer { eps, n, width: layer.n_out, both })
    }

    /// The products for `c` on a sweep of `n` pairs, where they apply.
    pub(crate) fn for_circuit(&self, c: &Circuit, n: usize) -> Option<&Self> {
        (c.all_inputs && c.eps == self.eps && self.n == n && c.kept[0].n_out == self.width).then_some(self)
    }

    pub(crate) fn clean(&self) -> &[f32] {
        &self.both[..self.n * self.width]
    }

    pub(crate) fn corrupted(&self) -> &[f32] {
        &self.both[self.n * self.width..]
    }
}
