use std::time::Instant;

use modcirc_dataset::ImageSet;
use serde::{Deserialize, Serialize};

use crate::adamw::{adamw, penalised_adamw};
use crate::batches::BatchSampler;
use crate::history::{HistoryPoint, HistoryWindow};
use crate::relocate::{Relocation, Relocator, TOP_POSITIONS};
use crate::{init_model, BimtError, ConnectionCost, Layout, Mlp, Regime, STUDY_ACTIVATION, STUDY_SIZES};
use modcirc_mlp::linalg::{mm_nn, mm_tn};
use modcirc_mlp::{
    argmax, forward_sparse, silu_derivative, silu_keeping_sigmoid, weight_gradient_sparse, Activation, InputMajor,
    PackedRows, SparseInputs,
};

/// Bumped whenever a change to the training code changes the weights it
/// produces for the same configuration, so that cached models are retrained.
pub const TRAINER_REVISION: u32 = 3;

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
    /// bytes, beyond the data set: each weight six times (itself, its
    /// gradient, the AdamW moments, the wiring cost's factor, and its bytes
    /// in the checkpoint being saved) and once more where a penalty has its
    /// own factors; the first layer's input-major weights and gradient (and
    /// penalty factors); a batch's activations and their gradients, the
    /// evaluation's chunks of 1 000 images, the batch's nonzero inputs;
    /// and, for the regimes that swap, each hidden layer's `C[neuron,
    /// position]`. Sizes come from a flag or a plan: this is checked before
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
        4 * ((6 + penalty) * weights + first + activations + batch_inputs + positions)
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

    fn validate(&self) -> Result<(), BimtError> {
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

/// What the progress callback sees after every step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The 1-based step just taken.
    pub step: usize,
    /// Steps in the run.
    pub steps: usize,
    /// This step's loss.
    pub loss: f64,
    /// This step's penalty.
    pub penalty: f64,
    /// Accuracy on the batches since the last history point.
    pub running_accuracy: f64,
}

/// Wall time, split into the phases RQ2 compares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainTiming {
    /// Forward, backward and AdamW.
    pub optimizer_s: f64,
    /// Swaps.
    pub relocation_s: f64,
    /// History points (test accuracy, wiring cost).
    pub evaluation_s: f64,
    /// The whole run.
    pub total_s: f64,
    /// Relocations made.
    pub relocations: usize,
    /// Swaps made.
    pub swaps: usize,
    /// CPU time of the training thread over the optimizer steps and swaps
    /// (`optimizer_s + relocation_s` as CPU time, not wall time): what other
    /// jobs and the machine's load leave unchanged, so RQ2-H2 is judged on
    /// it. `None` where the platform has no per-thread clock, for the GPU
    /// trainer, and in sidecars written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
}

/// The calling thread's CPU time in seconds, where the platform has a
/// per-thread clock.
fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid timespec for the call to fill.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9);
        }
    }
    None
}

/// Device memory in use during a GPU training, sampled around every phase
/// of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceMemory {
    /// In use when training started (the context and the uploaded data).
    pub at_start_bytes: u64,
    /// The largest sample.
    pub peak_bytes: u64,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained network.
    pub model: Mlp,
    /// Its neuron coordinates (swaps move neurons).
    pub layout: Layout,
    /// The training curves.
    pub history: Vec<HistoryPoint>,
    /// Wall time per phase.
    pub timing: TrainTiming,
    /// Device memory samples (GPU runs only).
    pub device_memory: Option<DeviceMemory>,
}

/// The trainer: a fused forward/backward/AdamW step on reused buffers.
pub struct Trainer {
    config: TrainConfig,
    layout: Layout,
    model: Mlp,
    penalty: Option<ConnectionCost>,
    wiring: ConnectionCost,
    relocator: Option<Relocator>,
    adam: Vec<AdamState>,
    buf: Buffers,
    /// The first layer by the dense products instead (benchmarks, and the
    /// twin the sparse step is tested against).
    dense_first_layer: bool,
    /// The model's first-layer weights lag the input-major ones AdamW
    /// updates: they are copied out when the model is read, not after
    /// every step.
    first_layer_stale: bool,
}

struct AdamState {
    m_w: Vec<f32>,
    v_w: Vec<f32>,
    m_b: Vec<f32>,
    v_b: Vec<f32>,
}

struct Buffers {
    /// The batch, for the dense first layer (the sparse one reads it from
    /// `nonzero`).
    x: Vec<f32>,
    labels: Vec<u8>,
    pre: Vec<Vec<f32>>,
    post: Vec<Vec<f32>>,
    /// σ(pre) of the hidden layers, kept from the forward pass for SiLU's
    /// derivative (SiLU models only).
    sigmoid: Vec<Vec<f32>>,
    delta: Vec<Vec<f32>>,
    gw: Vec<Vec<f32>>,
    gb: Vec<Vec<f32>>,
    /// The batch's nonzero inputs, found once per step: the first layer's
    /// forward and weight gradient skip the zeros (MNIST's are about 81%).
    nonzero: SparseInputs,
    /// The first layer's weights input-major: the forward reads them, and
    /// AdamW updates them (its moments in the same layout), after which
    /// they are copied into the model's `[n_out, n_in]` weights.
    w0: InputMajor,
    /// The first layer's weight gradient, input-major (`gw[0]` is unused).
    g0: InputMajor,
    /// The penalty's factors of the first layer's weights, input-major
    /// (regimes with a penalty).
    factors0: Option<InputMajor>,
}

/// Hidden activations to replace in one step ([`Trainer::step_patched`]):
/// per hidden layer, `[batch, width]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Patches {
    /// Where a value replaces the activation.
    pub mask: Vec<Vec<bool>>,
    /// The values (read where `mask` is set).
    pub values: Vec<Vec<f32>>,
}

impl Patches {
    /// No patch, for `batch` rows of hidden layers of `widths`.
    pub fn none(batch: usize, widths: &[usize]) -> Patches {
        Patches {
            mask: widths.iter().map(|w| vec![false; batch * w]).collect(),
            values: widths.iter().map(|w| vec![0.0; batch * w]).collect(),
        }
    }
}

/// What one optimizer step measured.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// `mse + lambda·penalty`.
    pub loss: f64,
    /// The step's MSE.
    pub mse: f64,
    /// The regime's penalty `cc(wf)` before the update (0 for Vanilla).
    pub penalty: f64,
    /// Correct argmax predictions in the batch.
    pub correct: usize,
}

impl Trainer {
    /// A trainer for `config`: the seeded initial weights, the layout, the regime's penalty and relocator.
    pub fn new(config: TrainConfig) -> Result<Trainer, BimtError> {
        config.validate()?;
        let layout = Layout::study(&config.sizes)?;
        let model = init_model(&config.sizes, config.activation, config.seed)?;
        let penalty = config.regime.penalty_weight_factor().map(|wf| ConnectionCost::training(&layout, wf));
        let relocator =
            config.regime.swaps().then(|| Relocator::new(&ConnectionCost::swap(&layout)).top(config.swap_top));
        let b = config.batch_size;
        let first = &model.layers[0];
        let mut w0 = InputMajor::zeros(first.n_in, first.n_out);
        w0.set_from(&first.weight);
        let factors0 = penalty.as_ref().map(|p| {
            let mut f = InputMajor::zeros(first.n_in, first.n_out);
            f.set_from(&p.weight_factors[0]);
            f
        });
        let adam = model
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                // The first layer's moments are input-major, as its weights are.
                let n = if l == 0 { w0.values().len() } else { layer.weight.len() };
                AdamState {
                    m_w: vec![0.0; n],
                    v_w: vec![0.0; n],
                    m_b: vec![0.0; layer.bias.len()],
                    v_b: vec![0.0; layer.bias.len()],
                }
            })
            .collect();
        let buf = Buffers {
            x: vec![0.0; b * model.n_inputs()],
            labels: vec![0; b],
            pre: model.layers.iter().map(|l| vec![0.0; b * l.n_out]).collect(),
            post: model.layers.iter().map(|l| vec![0.0; b * l.n_out]).collect(),
            sigmoid: model.layers.iter().map(|l| vec![0.0; b * l.n_out]).collect(),
            delta: model.layers.iter().map(|l| vec![0.0; b * l.n_out]).collect(),
            // The first layer's gradient is `g0` (input-major); `gw[0]` is
            // the dense twin's only.
            gw: model
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| vec![0.0; if i == 0 { 0 } else { l.weight.len() }])
                .collect(),
            gb: model.layers.iter().map(|l| vec![0.0; l.bias.len()]).collect(),
            nonzero: SparseInputs::new(),
            g0: InputMajor::zeros(first.n_in, first.n_out),
            w0,
            factors0,
        };
        Ok(Trainer {
            wiring: ConnectionCost::training(&layout, 2.0),
            config,
            layout,
            model,
            penalty,
            relocator,
            adam,
            buf,
            dense_first_layer: false,
            first_layer_stale: false,
        })
    }

    /// Runs the first layer by the dense products (`gemm`) instead of
    /// over the nonzero inputs: the step before the sparse one, kept for
    /// benchmarks and as the twin it is tested against. The two agree
    /// within f32 rounding (their sums run in other orders), not to the bit.
    pub fn with_dense_first_layer(mut self) -> Trainer {
        self.dense_first_layer = true;
        self.buf.gw[0] = vec![0.0; self.model.layers[0].weight.len()];
        self
    }

    /// The network as it is now.
    pub fn model(&mut self) -> &Mlp {
        self.sync_first_layer();
        &self.model
    }

    /// Copies the first layer's input-major weights into the model if a
    /// step changed them since.
    fn sync_first_layer(&mut self) {
        if std::mem::take(&mut self.first_layer_stale) {
            self.buf.w0.write_to(&mut self.model.layers[0].weight);
        }
    }

    /// Starts from `model` instead of the seeded initialisation (fine-tuning
    /// a checkpoint, or a perturbed start). Its layer sizes must be the
    /// config's.
    pub fn with_model(mut self, model: Mlp) -> Result<Trainer, BimtError> {
        let sizes: Vec<usize> =
            model.layers.first().map(|l| l.n_in).into_iter().chain(model.layers.iter().map(|l| l.n_out)).collect();
        if sizes != self.config.sizes || model.activation != self.config.activation {
            return Err(BimtError::Config(format!(
                "the model ({sizes:?}, {}) is not the config's ({:?}, {})",
                model.activation, self.config.sizes, self.config.activation
            )));
        }
        self.buf.w0.set_from(&model.layers[0].weight);
        self.model = model;
        self.first_layer_stale = false;
        Ok(self)
    }

    /// Trains on `train`; if `test` is given, its accuracy is recorded at each
    /// history point (outside the optimizer timer).
    pub fn run(
        mut self,
        train: &ImageSet,
        test: Option<&ImageSet>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<TrainOutcome, BimtError> {
        let cfg = self.config.clone();
        cfg.check_data(train, test)?;
        let start = Instant::now();
        let mut timing = TrainTiming::default();
        let mut history = Vec::new();
        let mut sampler = BatchSampler::new(train.len(), cfg.batch_size, cfg.seed);
        let mut window = HistoryWindow::default();
        // The images' nonzeros found once, not at every step.
        let images = PackedRows::new(&train.images, train.pixels());
        let (mut batch, mut labels) = (Vec::with_capacity(cfg.batch_size), vec![0u8; cfg.batch_size]);
        let mut cpu = Some(0.0);
        for s in 0..cfg.steps {
            let t0 = Instant::now();
            let c0 = thread_cpu_seconds();
            batch.clear();
            batch.extend_from_slice(sampler.batch(s));
            images.prefetch(sampler.upcoming(s).unwrap_or_default());
            labels.iter_mut().zip(&batch).for_each(|(l, &i)| *l = train.labels[i]);
            let stats = self.step_packed(&images, &batch, &labels, s);
            let loss = stats.loss;
            if !loss.is_finite() {
                return Err(BimtError::NonFinite { step: s + 1, loss });
            }
            timing.optimizer_s += t0.elapsed().as_secs_f64();
            window.add(loss, stats.mse, stats.correct, cfg.batch_size);

            if self.relocation_due(s) {
                let t1 = Instant::now();
                let r = self.relocate();
                timing.relocation_s += t1.elapsed().as_secs_f64();
                timing.relocations += 1;
                timing.swaps += r.map_or(0, |r| r.swaps.len());
            }
            cpu = cpu.zip(c0).zip(thread_cpu_seconds()).map(|((cpu, c0), c1)| cpu + (c1 - c0));
            let running_accuracy = window.running_accuracy();
            progress(&Progress { step: s + 1, steps: cfg.steps, loss, penalty: stats.penalty, running_accuracy });
            if HistoryWindow::due(&cfg, s) {
                let t2 = Instant::now();
                self.sync_first_layer();
                let (wiring, test_accuracy) =
                    (self.wiring.value(&self.model), test.map(|t| self.model.accuracy(&t.images, &t.labels)));
                history.push(window.point(&cfg, s, stats.penalty, wiring, test_accuracy));
                timing.evaluation_s += t2.elapsed().as_secs_f64();
            }
        }
        self.sync_first_layer();
        timing.total_s = start.elapsed().as_secs_f64();
        timing.cpu_s = cpu;
        Ok(TrainOutcome { model: self.model, layout: self.layout, history, timing, device_memory: None })
    }

    /// One optimizer step on a batch of `batch_size` images (row-major) and
    /// labels; `s` is the 0-based step index (it sets lambda and Adam's bias
    /// correction). [`Trainer::run`] calls this; it is public for benchmarks
    /// and for callers with their own data loop.
    pub fn step_batch(&mut self, x: &[f32], labels: &[u8], s: usize) -> StepStats {
        let n_in = self.model.n_inputs();
        self.load_batch(x.chunks_exact(n_in), n_in);
        self.buf.labels.copy_from_slice(labels);
        self.step(s)
    }

    /// [`Trainer::step_batch`] on the rows `batch` of `images` (packed
    /// once, before the first step): the step [`Trainer::run`] takes.
    ///
    /// # Panics
    /// If `batch` is not `batch_size` rows of `images`, or `images` rows
    /// not the model's inputs wide.
    pub fn step_packed(&mut self, images: &PackedRows, batch: &[usize], labels: &[u8], s: usize) -> StepStats {
        let n_in = self.model.n_inputs();
        assert!(batch.len() == self.config.batch_size && images.n_in() == n_in, "a batch of the model's inputs");
        if self.dense_first_layer {
            for (dst, &r) in self.buf.x.chunks_exact_mut(n_in).zip(batch) {
                images.unpack_into(r, dst);
            }
        } else {
            self.buf.nonzero.fill_packed(images, batch);
        }
        self.buf.labels.copy_from_slice(labels);
        self.step(s)
    }

    /// Takes the batch's rows (each `n_in` long, `batch_size` of them):
    /// their nonzeros for the sparse first layer, a copy for the dense one.
    fn load_batch<'a>(&mut self, rows: impl Iterator<Item = &'a [f32]>, n_in: usize) {
        let b = self.config.batch_size;
        if self.dense_first_layer {
            for (dst, row) in self.buf.x.chunks_exact_mut(n_in).zip(rows) {
                dst.copy_from_slice(row);
            }
        } else {
            self.buf.nonzero.fill_rows(rows.take(b), n_in);
        }
    }

    /// [`Trainer::step_batch`] with some hidden activations replaced: row
    /// `r`'s neuron `i` of hidden layer `h` takes `patches.values[h][r * width + i]`
    /// wherever `patches.mask[h]` is set there, and no gradient flows
    /// through it (the patched value is a constant). This is the forward of
    /// interchange intervention training (STUDY §11).
    ///
    /// # Panics
    /// If the patches do not cover every hidden layer at `batch_size` rows.
    pub fn step_patched(&mut self, x: &[f32], labels: &[u8], patches: &Patches, s: usize) -> StepStats {
        let b = self.config.batch_size;
        let widths: Vec<usize> = self.model.layers[..self.model.layers.len() - 1].iter().map(|l| l.n_out).collect();
        assert_eq!(patches.mask.len(), widths.len(), "patches per hidden layer");
        for (h, w) in widths.iter().enumerate() {
            assert_eq!(patches.mask[h].len(), b * w, "patch mask of hidden layer {h}");
            assert_eq!(patches.values[h].len(), b * w, "patch values of hidden layer {h}");
        }
        let n_in = self.model.n_inputs();
        self.load_batch(x.chunks_exact(n_in), n_in);
        self.buf.labels.copy_from_slice(labels);
        self.step_with(s, Some(patches))
    }

    /// Whether a relocation follows the 0-based step `s` (regimes with swaps).
    pub fn relocation_due(&self, s: usize) -> bool {
        self.relocator.is_some() && (s + 1).is_multiple_of(self.config.swap_every)
    }

    /// Relocates now (STUDY §2), returning the swaps made; `None` for the
    /// regimes without swaps. [`Trainer::run`] calls it after every
    /// `swap_every` steps; callers with their own loop call it when
    /// [`Trainer::relocation_due`] says so.
    pub fn relocate(&mut self) -> Option<Relocation> {
        self.sync_first_layer();
        let relocation = self.relocator.as_ref().map(|r| r.relocate(&mut self.model));
        self.buf.w0.set_from(&self.model.layers[0].weight);
        relocation
    }

    /// The neuron coordinates.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The network, ending the training.
    pub fn into_model(mut self) -> Mlp {
        self.sync_first_layer();
        self.model
    }

    /// The last step's weight and bias gradients (tests of other modules).
    #[cfg(test)]
    pub(crate) fn gradients(&mut self) -> (&[Vec<f32>], &[Vec<f32>]) {
        self.buf.gw[0].resize(self.model.layers[0].weight.len(), 0.0);
        self.buf.g0.write_to(&mut self.buf.gw[0]);
        (&self.buf.gw, &self.buf.gb)
    }

    fn step(&mut self, s: usize) -> StepStats {
        self.step_with(s, None)
    }

    fn step_with(&mut self, s: usize, patches: Option<&Patches>) -> StepStats {
        let lambda = self.config.lambda_at(s);
        self.forward(patches);
        let (mse, correct) = self.mse_gradient();
        self.backward(patches);
        let penalty = self.update(s, lambda);
        StepStats { loss: mse + lambda as f64 * penalty, mse, penalty, correct }
    }

    /// Pre- and post-activations of every layer on the batch in `buf.x`,
    /// with the patched hidden values in place. The first layer sums over
    /// the nonzero inputs only (`modcirc_mlp::forward_sparse`: the same
    /// bits on every CPU).
    fn forward(&mut self, patches: Option<&Patches>) {
        let b = self.config.batch_size;
        let n_layers = self.model.layers.len();
        let buf = &mut self.buf;
        for l in 0..n_layers {
            let layer = &self.model.layers[l];
            let (done, rest) = buf.post.split_at_mut(l);
            if l == 0 && self.dense_first_layer {
                layer.forward_into(&buf.x, b, &mut buf.pre[0]);
            } else if l == 0 {
                forward_sparse(&buf.w0, &layer.bias, &buf.nonzero, &mut buf.pre[0]);
            } else {
                layer.forward_tiles_into(&done[l - 1], b, &mut buf.pre[l]);
            }
            if l + 1 < n_layers {
                let act = self.model.activation;
                if act == Activation::Silu {
                    silu_keeping_sigmoid(&buf.pre[l], &mut buf.sigmoid[l], &mut rest[0]);
                } else {
                    rest[0].iter_mut().zip(&buf.pre[l]).for_each(|(a, &z)| *a = act.apply(z));
                }
                if let Some(p) = patches {
                    for ((a, &m), &v) in rest[0].iter_mut().zip(&p.mask[l]).zip(&p.values[l]) {
                        if m {
                            *a = v;
                        }
                    }
                }
            }
        }
    }

    /// The MSE against the one-hot labels (in output-position order), its
    /// gradient into the last layer's delta, and the correct predictions.
    fn mse_gradient(&mut self) -> (f64, usize) {
        let b = self.config.batch_size;
        let n_layers = self.model.layers.len();
        let buf = &mut self.buf;
        let classes = self.model.n_classes();
        let y = &buf.pre[n_layers - 1];
        let dy = &mut buf.delta[n_layers - 1];
        let scale = 2.0 / (b * classes) as f32;
        let mut sq = 0.0f64;
        let mut correct = 0;
        for r in 0..b {
            let label = buf.labels[r] as usize;
            let row = &y[r * classes..(r + 1) * classes];
            for (p, &class) in self.model.out_perm.iter().enumerate() {
                let e = row[p] - (class == label) as u8 as f32;
                sq += (e * e) as f64;
                dy[r * classes + p] = scale * e;
            }
            if self.model.out_perm[argmax(row)] == label {
                correct += 1;
            }
        }
        (sq / (b * classes) as f64, correct)
    }

    /// Every layer's weight and bias gradients from the last layer's
    /// delta; the first layer's weight gradient over the nonzero inputs
    /// the forward found (`modcirc_mlp::weight_gradient_sparse`).
    fn backward(&mut self, patches: Option<&Patches>) {
        let b = self.config.batch_size;
        let n_layers = self.model.layers.len();
        let buf = &mut self.buf;
        for l in (0..n_layers).rev() {
            let layer = &self.model.layers[l];
            let input = if l == 0 { &buf.x[..] } else { &buf.post[l - 1][..] };
            let (lower, upper) = buf.delta.split_at_mut(l);
            let delta = &upper[0];
            if l == 0 && !self.dense_first_layer {
                weight_gradient_sparse(delta, &buf.nonzero, &mut buf.g0);
            } else {
                mm_tn(&mut buf.gw[l], delta, input, layer.n_out, layer.n_in, b, false);
                if l == 0 {
                    buf.g0.set_from(&buf.gw[0]);
                }
            }
            let gb = &mut buf.gb[l];
            gb.fill(0.0);
            for row in delta.chunks_exact(layer.n_out) {
                for (g, d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            if l > 0 {
                let prev = &mut lower[l - 1];
                mm_nn(prev, delta, &layer.weight, b, layer.n_in, layer.n_out, false);
                let act = self.model.activation;
                if act == Activation::Silu {
                    for ((d, &z), &s) in prev.iter_mut().zip(&buf.pre[l - 1]).zip(&buf.sigmoid[l - 1]) {
                        *d *= silu_derivative(z, s);
                    }
                } else {
                    act.scale_by_derivative(&buf.pre[l - 1], prev);
                }
                if let Some(p) = patches {
                    prev.iter_mut().zip(&p.mask[l - 1]).filter(|(_, &m)| m).for_each(|(d, _)| *d = 0.0);
                }
            }
        }
    }

    /// The penalty's gradient, then AdamW, layer by layer (one pass over
    /// each tensor where there is a penalty); returns the penalty before
    /// the update.
    fn update(&mut self, s: usize, lambda: f32) -> f64 {
        let t = s + 1;
        let buf = &mut self.buf;
        let mut penalty = 0.0;
        let c = &self.config;
        let bc1 = 1.0 - c.beta1.powi(t as i32);
        let bc2_sqrt = (1.0 - c.beta2.powi(t as i32)).sqrt();
        let step = (c.lr / bc1, bc2_sqrt);
        let Buffers { gw, gb, w0, g0, factors0, .. } = buf;
        for l in 0..self.model.layers.len() {
            let layer = &mut self.model.layers[l];
            let st = &mut self.adam[l];
            // The first layer's weights, gradient and factors input-major.
            let (w, g) =
                if l == 0 { (w0.values_mut(), g0.values_mut()) } else { (&mut layer.weight[..], &mut gw[l][..]) };
            if let Some(cost) = &self.penalty {
                let wf = match (l, &*factors0) {
                    (0, Some(f)) => f.values(),
                    _ => &cost.weight_factors[l][..],
                };
                let bf = vec![cost.bias_factors[l]; layer.bias.len()];
                penalty += penalised_adamw(w, g, &mut st.m_w, &mut st.v_w, wf, lambda, c, step);
                penalty += penalised_adamw(&mut layer.bias, &mut gb[l], &mut st.m_b, &mut st.v_b, &bf, lambda, c, step);
            } else {
                adamw(w, g, &mut st.m_w, &mut st.v_w, c, step.0, bc2_sqrt);
                adamw(&mut layer.bias, &gb[l], &mut st.m_b, &mut st.v_b, c, step.0, bc2_sqrt);
            }
            if l == 0 && self.dense_first_layer {
                w0.write_to(&mut layer.weight);
            } else if l == 0 {
                self.first_layer_stale = true;
            }
        }
        penalty
    }
}

/// Runs one step and returns the gradients it computed (before AdamW), for
/// the candle cross-check.
#[cfg(all(test, feature = "candle"))]
pub(crate) fn gradients_for_test(
    model: &Mlp,
    x: &[f32],
    labels: &[u8],
    regime: Regime,
    lambda: f32,
) -> (f64, Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let cfg = TrainConfig::new(regime).batch_size(labels.len()).lr(1e-30).lambda(lambda);
    let tr = Trainer::new(TrainConfig { sizes: model.sizes(), activation: model.activation, ..cfg }).expect("config");
    let mut tr = tr.with_model(model.clone()).expect("the model's own sizes");
    let s = tr.step_batch(x, labels, 0);
    let (gw, gb) = tr.gradients();
    (s.loss, gw.to_vec(), gb.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_schedule_boosts_at_a_quarter_and_a_half() {
        let c = TrainConfig::new(Regime::Bimt);
        assert_eq!(c.lambda_at(0), 0.01);
        assert_eq!(c.lambda_at(9_999), 0.01);
        assert!((c.lambda_at(10_000) - 0.1).abs() < 1e-7);
        assert!((c.lambda_at(39_999) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_sparse_first_layer_agrees_with_the_dense_twin() {
        // MNIST-like rows: most inputs exactly zero, a few whole rows dense.
        let (b, n_in) = (40, 784);
        let x: Vec<f32> = (0..b * n_in)
            .map(|k| if (k / n_in) % 13 == 0 || (k * 7919) % 5 == 0 { ((k % 97) as f32 / 97.0) - 0.2 } else { 0.0 })
            .collect();
        let labels: Vec<u8> = (0..b).map(|r| (r % 10) as u8).collect();
        for regime in [Regime::Vanilla, Regime::Bimt] {
            let cfg = TrainConfig::new(regime).batch_size(b).lr(1e-30);
            let mut sparse = Trainer::new(cfg.clone()).unwrap();
            let mut dense = Trainer::new(cfg).unwrap().with_dense_first_layer();
            let (a, z) = (sparse.step_batch(&x, &labels, 0), dense.step_batch(&x, &labels, 0));
            assert!((a.loss - z.loss).abs() <= 1e-6 * z.loss, "{regime}: loss {} vs {}", a.loss, z.loss);
            let (ga, gz) = (sparse.gradients().0.to_vec(), dense.gradients().0.to_vec());
            for (l, (ga, gz)) in ga.iter().zip(&gz).enumerate() {
                let scale = gz.iter().fold(0f32, |m, g| m.max(g.abs()));
                assert!(scale > 0.0);
                for (p, q) in ga.iter().zip(gz) {
                    assert!((p - q).abs() <= 1e-5 * scale, "{regime} layer {l}: {p} vs {q}");
                }
            }
        }
    }

    #[test]
    fn packed_rows_train_as_the_rows_themselves() {
        // Batches drawn from packed rows, each step after the last, give
        // the bits of the same rows passed whole (sparse and dense alike).
        let (b, n_in, n) = (8, 784, 30);
        let x: Vec<f32> = (0..n * n_in).map(|k| if (k * 31) % 7 == 0 { (k % 89) as f32 / 89.0 } else { 0.0 }).collect();
        let labels: Vec<u8> = (0..n).map(|r| (r % 10) as u8).collect();
        let packed = PackedRows::new(&x, n_in);
        for dense in [false, true] {
            let cfg = TrainConfig::new(Regime::Bimt).batch_size(b);
            let twin = |t: Trainer| if dense { t.with_dense_first_layer() } else { t };
            let (mut whole, mut drawn) = (twin(Trainer::new(cfg.clone()).unwrap()), twin(Trainer::new(cfg).unwrap()));
            for s in 0..4 {
                let batch: Vec<usize> = (0..b).map(|r| (r * 7 + s * 11) % n).collect();
                let rows: Vec<f32> = batch.iter().flat_map(|&r| x[r * n_in..(r + 1) * n_in].to_vec()).collect();
                let y: Vec<u8> = batch.iter().map(|&r| labels[r]).collect();
                let (a, z) = (whole.step_batch(&rows, &y, s), drawn.step_packed(&packed, &batch, &y, s));
                assert_eq!(a.loss.to_bits(), z.loss.to_bits(), "dense {dense}, step {s}");
            }
            assert_eq!(whole.model(), drawn.model(), "dense {dense}");
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(Trainer::new(TrainConfig::new(Regime::L1).steps(0)).is_err());
        assert!(Trainer::new(TrainConfig::new(Regime::Bimt).swap_every(0)).is_err());
        assert!(Trainer::new(TrainConfig::new(Regime::L1).lr(f32::NAN)).is_err());
    }

    #[test]
    fn with_model_starts_from_the_given_weights_and_checks_their_sizes() {
        let cfg = TrainConfig::new(Regime::L1).steps(5);
        let mut t = Trainer::new(cfg.clone()).unwrap();
        let mut start = t.model().clone();
        start.layers[1].weight[7] += 0.5;
        assert_eq!(t.with_model(start.clone()).unwrap().model(), &start);
        let e = Trainer::new(cfg)
            .unwrap()
            .with_model(init_model(&[784, 50, 10], STUDY_ACTIVATION, 0).unwrap())
            .err()
            .unwrap();
        assert!(e.to_string().contains("[784, 50, 10]"), "{e}");
    }

    #[test]
    fn data_the_model_cannot_take_is_refused_before_training() {
        let set = |n: usize, side: usize, label: u8| ImageSet {
            images: vec![0.5; n * side * side],
            labels: vec![label; n],
            rows: side,
            cols: side,
        };
        let run = |train: &ImageSet, test: &ImageSet| {
            Trainer::new(TrainConfig::new(Regime::Vanilla).steps(5)).unwrap().run(train, Some(test), &mut |_| {})
        };
        let e = run(&set(200, 28, 3), &set(10, 32, 3)).err().unwrap().to_string();
        assert!(e.contains("test images have 1024 pixels (32x32), the model takes 784"), "{e}");
        let e = run(&set(200, 28, 3), &set(10, 28, 12)).err().unwrap().to_string();
        assert!(e.contains("test label 12 is outside the model's 10 classes"), "{e}");
        let e = run(&set(50, 28, 3), &set(10, 28, 3)).err().unwrap().to_string();
        assert!(e.contains("50 training images are fewer than one batch of 100"), "{e}");
    }

    #[test]
    fn a_nan_stops_training_with_the_step_number() {
        let n = 300;
        let mut set = ImageSet {
            images: vec![0.5; n * 784],
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: 28,
            cols: 28,
        };
        // A NaN pixel in the second epoch's data: every batch sees it eventually.
        set.images[5 * 784 + 3] = f32::NAN;
        let err = Trainer::new(TrainConfig::new(Regime::Vanilla).steps(10))
            .unwrap()
            .run(&set, None, &mut |_| {})
            .unwrap_err();
        match err {
            BimtError::NonFinite { step, .. } => assert!((1..=3).contains(&step), "step {step}"),
            e => panic!("unexpected {e}"),
        }
    }
}
