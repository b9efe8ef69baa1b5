//! Which images each step sees.

use modcirc_dataset::Rng;

/// The batches of a run: `n` images reshuffled every epoch from the seed,
/// `batch` at a time; the last partial batch of an epoch is dropped (MNIST's
/// 60 000 divide evenly). Shared by every trainer, so that they see the same
/// batches in the same order.
pub struct BatchSampler {
    n: usize,
    batch: usize,
    seed: u64,
    order: Vec<usize>,
}

impl BatchSampler {
    /// `n` images, `batch` per step, shuffled from `seed`.
    pub fn new(n: usize, batch: usize, seed: u64) -> BatchSampler {
        BatchSampler { n, batch, seed, order: Vec::new() }
    }

    /// The image indices of 0-based step `s`; call with consecutive steps.
    pub fn batch(&mut self, s: usize) -> &[usize] {
        let per_epoch = self.n / self.batch;
        let in_epoch = s % per_epoch;
        if in_epoch == 0 || self.order.is_empty() {
            self.order = (0..self.n).collect();
            Rng::derive(self.seed, 0xE90C + (s / per_epoch) as u64).shuffle(&mut self.order);
        }
        &self.order[in_epoch * self.batch..(in_epoch + 1) * self.batch]
    }
}
