//! Every hyper-parameter of a training run ([`TrainConfig`], STUDY §2), and
//! what a training of it will hold in memory.

use modcirc_dataset::ImageSet;
use serde::{Deserialize, Serialize};

use crate::relocate::TOP_POSITIONS;
use crate::{BimtError, Regime, STUDY_ACTIVATION, STUDY_SIZES};
use modcirc_mlp::Activation;

/// The study's training length (STUDY §2): optimizer steps per model.
pub const STUDY_STEPS: usize = 40_000;

/// Every hyper-parameter of a training run (STUDY §2 defaults). Built with
/// [`TrainConfig::new`] and the chained setters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Vanilla, L1, L1+Local, L1+Swap or BIMT.
    pub regime: Regime,
    /// Layer widths, input first (STUDY §2: 784, 100, 100, 10).
    pub sizes: Vec<usize>,
    /// The hidden layers' activation (STUDY §2: SiLU). Sidecars written
    /// before it was recorded were all SiLU.
    #[serde(default = "study_activation")]
    pub activation: Activation,
    /// Optimizer steps.
    pub steps: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Seeds the initialisation and the batches.
    pub seed: u64,
    /// AdamW's learning rate.
    pub lr: f32,
    /// AdamW's first-moment decay.
    pub beta1: f32,
    /// AdamW's second-moment decay.
    pub beta2: f32,
    /// AdamW's epsilon.
    pub eps: f32,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// `lambda` before the first boost.
    pub lambda: f32,
    /// Factor applied to `lambda` at `steps/4` and again at `steps/2`.
    pub lambda_growth: f32,
    /// Swap every this many optimizer steps (regimes with swaps only).
    pub swap_every: usize,
    /// Positions visited per layer and relocation.
    pub swap_top: usize,
    /// A history point (and a test-accuracy evaluation) every this many steps.
    pub history_every: usize,
}

fn study_activation() -> Activation {
    STUDY_ACTIVATION
}

macro_rules! setters {
    ($($name:ident: $ty:ty),*) => {$(
        /// Sets this field.
        pub fn $name(mut self, v: $ty) -> Self { self.$name = v; self }
    )*};
}

impl TrainConfig {
    /// The study's configuration for `regime` (STUDY §2).
    pub fn new(regime: Regime) -> TrainConfig {
        TrainConfig {
            regime,
            sizes: STUDY_SIZES.to_vec(),
            activation: STUDY_ACTIVATION,
            steps: STUDY_STEPS,
            batch_size: 100,
            seed: 0,
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            lambda: 0.01,
            lambda_growth: 10.0,
            swap_every: 500,
            swap_top: TOP_POSITIONS,
            history_every: 500,
        }
    }

    setters!(steps: usize, batch_size: usize, seed: u64, lr: f32, lambda: f32, swap_every: usize,
             swap_top: usize, history_every: usize, weight_decay: f32, activation: Activation);

    /// Layer widths, input first (at least one hidden layer, no width of 0).
    pub fn sizes(mut self, sizes: &[usize]) -> Self {
        self.sizes = sizes.to_vec();
        self
    }

    /// What a training of this configuration will hold at its peak, in
    /// bytes, beyond the data set: each weight seven times (itself, its
    /// gradient, the AdamW moments, the wiring cost's factor, its input-major
    /// copy in the evaluation's forward, and its bytes in the checkpoint
    /// being saved), once more where a penalty has its own factors and twice
    /// more where the regime swaps (the relocator's factors, in f64); the
    /// first layer's input-major weights and gradient (and penalty factors);
    /// a batch's activations and their gradients, the evaluation's chunks of
    /// 1 000 images, the batch's nonzero inputs; and, for the regimes that
    /// swap, each hidden layer's `C[neuron, position]`. Sizes come from a flag or a plan: this is checked before
    /// anything is allocated. [`TrainConfig::estimated_bytes_on`] adds the
    /// training images' packed nonzeros.
    pub fn estimated_bytes(&self) -> u128 {
        let s: Vec<u128> = self.sizes.iter().map(|&w| w as u128).collect();
        let penalty = self.regime.penalty_weight_factor().is_some() as u128;
        let weights: u128 = s.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
        let first = s[0] * s[1].div_ceil(16) * 16 * (2 + penalty);
        let widths = s.iter().sum::<u128>();
        let activations = 4 * self.batch_size as u128 * widths + 2 * 1_000 * widths;
        let batch_inputs = 4 * self.batch_size as u128 * s[0];
        let positions: u128 =
            if self.regime.swaps() { s[1..s.len().saturating_sub(1)].iter().map(|w| w * w).sum() } else { 0 };
        let swaps = 2 * self.regime.swaps() as u128;
        4 * ((7 + penalty + swaps) * weights + first + activations + batch_inputs + positions)
    }

    /// [`TrainConfig::estimated_bytes`] on `train`, whose nonzero pixels
    /// the trainer packs once (a position and a value each).
    pub fn estimated_bytes_on(&self, train: &ImageSet) -> u128 {
        let nonzeros = train.images.iter().filter(|&&v| v != 0.0).count() as u128;
        self.estimated_bytes() + 8 * nonzeros + 8 * train.len() as u128
    }

    /// Refuses data the model cannot take, before the first step: images
    /// of the wrong pixel count or a label outside the classes in either
    /// split, or fewer training images than one batch. Every trainer checks
    /// with this.
    pub fn check_data(&self, train: &ImageSet, test: Option<&ImageSet>) -> Result<(), BimtError> {
        let (inputs, classes) = (self.sizes[0], *self.sizes.last().expect("validated sizes"));
        for (split, set) in [("training", Some(train)), ("test", test)] {
            if let Some(set) = set {
                set.check_fits(split, inputs, classes).map_err(|e| BimtError::Data(e.to_string()))?;
            }
        }
        if train.len() < self.batch_size {
            return Err(BimtError::Data(format!(
                "{} training images are fewer than one batch of {}",
                train.len(),
                self.batch_size
            )));
        }
        Ok(())
    }

    /// `lambda` for the 0-based step `s`: ×growth from `steps/4`, again from `steps/2`.
    pub fn lambda_at(&self, s: usize) -> f32 {
        let boosts = (s >= self.steps / 4) as i32 + (s >= self.steps / 2) as i32;
        self.lambda * self.lambda_growth.powi(boosts)
    }

    pub(crate) fn validate(&self) -> Result<(), BimtError> {
        let bad = |m: String| Err(BimtError::Config(m));
        if self.steps == 0 {
            return bad("steps must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if self.sizes.len() < 3 || self.sizes.contains(&0) {
            return bad(format!(
                "sizes {:?}: need an input, at least one hidden layer and an output, none of width 0",
                self.sizes
            ));
        }
        if self.regime.swaps() && self.swap_every == 0 {
            return bad("swap interval must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("learning rate {} is not a positive number", self.lr));
        }
        Ok(())
    }
}
