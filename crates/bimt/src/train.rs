//! The CPU trainer (STUDY §2-§3): fused forward and backward over the inputs'
//! nonzeros, the regime's penalty and AdamW, relocations, evaluation.

use std::time::Instant;

use modcirc_dataset::ImageSet;

use crate::adamw::{adamw, penalised_adamw};
use crate::batches::BatchSampler;
use crate::history::HistoryWindow;
use crate::relocate::{Relocation, Relocator};
use crate::{init_model, BimtError, ConnectionCost, Layout, Mlp};
use modcirc_mlp::linalg::{mm_nn, mm_tn};
use modcirc_mlp::{
    argmax, forward_sparse, forward_sparse_packed, silu_derivative, silu_keeping_sigmoid, weight_gradient_sparse,
    Activation, InputMajor, PackedRows, SparseInputs,
};

pub use crate::config::{TrainConfig, STUDY_STEPS};
use crate::outcome::thread_cpu_seconds;
pub use crate::outcome::{DeviceMemory, Progress, TrainOutcome, TrainTiming};

/// Bumped whenever a change to the training code changes the weights it
/// produces for the same configuration, so that cached models are retrained.
pub const TRAINER_REVISION: u32 = 3;

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
            labels.iter_mut().zip(&batch).for_each(|(l, &i)| *l = train.labels[i]);
            let stats = self.step_packed(&images, &batch, &labels, s);
            // The next batch's rows fetched after this step's optimizer
            // (whose pass over every weight would evict them from the cache).
            images.prefetch(sampler.upcoming(s).unwrap_or_default());
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
            self.buf.labels.copy_from_slice(labels);
            return self.step(s);
        }
        self.buf.nonzero.fill_packed(images, batch);
        self.buf.labels.copy_from_slice(labels);
        self.step_with(s, None, Some(images))
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
        self.step_with(s, Some(patches), None)
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
        self.step_with(s, None, None)
    }

    /// The step on the batch loaded (from `packed` where it was filled from it).
    fn step_with(&mut self, s: usize, patches: Option<&Patches>, packed: Option<&PackedRows>) -> StepStats {
        let lambda = self.config.lambda_at(s);
        self.forward(patches, packed);
        let (mse, correct) = self.mse_gradient();
        self.backward(patches);
        let penalty = self.update(s, lambda);
        StepStats { loss: mse + lambda as f64 * penalty, mse, penalty, correct }
    }

    /// Pre- and post-activations of every layer on the batch in `buf.x`,
    /// with the patched hidden values in place. The first layer sums over
    /// the nonzero inputs only (`modcirc_mlp::forward_sparse`: the same
    /// bits on every CPU).
    fn forward(&mut self, patches: Option<&Patches>, packed: Option<&PackedRows>) {
        let b = self.config.batch_size;
        let n_layers = self.model.layers.len();
        let buf = &mut self.buf;
        for l in 0..n_layers {
            let layer = &self.model.layers[l];
            let (done, rest) = buf.post.split_at_mut(l);
            if l == 0 && self.dense_first_layer {
                layer.forward_into(&buf.x, b, &mut buf.pre[0]);
            } else if let (0, Some(packed)) = (l, packed) {
                forward_sparse_packed(&buf.w0, &layer.bias, &buf.nonzero, packed, &mut buf.pre[0]);
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
use crate::Regime;

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
mod tests;
