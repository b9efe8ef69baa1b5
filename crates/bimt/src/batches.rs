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

    /// The batch of step `s + 1` where it is already known (within the
    /// epoch of step `s`, after `batch(s)`): a trainer prefetches it.
    pub fn upcoming(&self, s: usize) -> Option<&[usize]> {
        let per_epoch = self.n / self.batch;
        let next = (s + 1) % per_epoch;
        (next != 0 && !self.order.is_empty()).then(|| &self.order[next * self.batch..(next + 1) * self.batch])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upcoming_batch_is_the_next_one_within_an_epoch() {
        let mut sampler = BatchSampler::new(23, 5, 9);
        let (mut known, mut told) = (0, None::<Vec<usize>>);
        for s in 0..14 {
            let batch = sampler.batch(s).to_vec();
            if let Some(t) = told.take() {
                assert_eq!(t, batch, "step {s}");
                known += 1;
            }
            told = sampler.upcoming(s).map(<[usize]>::to_vec);
            // Four batches per epoch: the first of the next is not known yet.
            assert_eq!(told.is_none(), s % 4 == 3, "step {s}");
        }
        assert_eq!(known, 10);
    }
}
