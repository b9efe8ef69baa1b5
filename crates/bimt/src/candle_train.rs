//! Training on any candle device (the GPU path of `--device cuda`): the same
//! recipe as [`crate::Trainer`], with candle autograd and candle-nn's AdamW,
//! and relocation scored on the device by the [`PositionCosts`] op.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use modcirc_dataset::ImageSet;

use crate::candle_ref::CandleMlp;
use crate::history::HistoryWindow;
use crate::position_costs::{layer_coords, PositionCosts};
use crate::relocate::{greedy_swaps, importance_ranking, Relocation, Swap};
use crate::BatchSampler;
use crate::{
    BimtError, ConnectionCost, Layout, Mlp, Progress, TrainConfig, TrainOutcome, TrainTiming, L0, SWAP_WEIGHT_FACTOR,
};
use modcirc_mlp::Linear;

pub use crate::DeviceMemory;

/// Steps whose loss, penalty and accuracy stay on the device before one read
/// brings them back (reading every step would synchronise every step).
/// Relocations and history points read first, so they see every step; a
/// non-finite loss is still reported with its own step number.
pub const READ_EVERY: usize = 50;

/// The training recipe of [`crate::Trainer`] as candle ops on any device (`--device cuda`).
pub struct CandleTrainer {
    config: TrainConfig,
    layout: Layout,
    device: Device,
    net: CandleMlp,
    opt: AdamW,
    /// Per layer: the penalty's per-weight factors on the device, and the bias factor.
    penalty: Option<Vec<(Tensor, f64)>>,
    wiring: ConnectionCost,
    /// Per neuron layer `n` (index `n - 1`): the coordinates the op takes.
    coords: Vec<Tensor>,
    memory: Option<DeviceMemory>,
}

impl CandleTrainer {
    /// Initialises as [`crate::Trainer::new`] does (the same seeded weights) on `device`.
    pub fn new(config: TrainConfig, device: Device) -> Result<CandleTrainer, BimtError> {
        let init = crate::Trainer::new(config.clone())?.model().clone();
        let layout = Layout::study(&config.sizes)?;
        let net = CandleMlp::from_mlp(&init, &device)?;
        let params = ParamsAdamW {
            lr: config.lr as f64,
            beta1: config.beta1 as f64,
            beta2: config.beta2 as f64,
            eps: config.eps as f64,
            weight_decay: config.weight_decay as f64,
        };
        let vars: Vec<Var> = net.weights.iter().chain(&net.biases).cloned().collect();
        let opt = AdamW::new(vars, params)?;
        let penalty = match config.regime.penalty_weight_factor() {
            None => None,
            Some(wf) => {
                let cost = ConnectionCost::training(&layout, wf);
                let mut per_layer = Vec::new();
                for (l, w) in net.weights.iter().enumerate() {
                    let f = Tensor::from_slice(&cost.weight_factors[l], w.shape(), &device)?;
                    per_layer.push((f, cost.bias_factors[l] as f64));
                }
                Some(per_layer)
            }
        };
        let coords = (1..=init.layers.len())
            .map(|n| {
                let c = layer_coords(&layout, n);
                let rows = c.len() / 2;
                Tensor::from_vec(c, (rows, 2), &device)
            })
            .collect::<Result<_, _>>()?;
        Ok(CandleTrainer {
            wiring: ConnectionCost::training(&layout, 2.0),
            config,
            layout,
            device,
            net,
            opt,
            penalty,
            coords,
            memory: None,
        })
    }

    /// The current weights as a host model.
    pub fn to_mlp(&self) -> Result<Mlp, BimtError> {
        let mut layers = Vec::new();
        for (w, b) in self.net.weights.iter().zip(&self.net.biases) {
            let (n_out, n_in) = w.dims2()?;
            layers.push(Linear {
                n_in,
                n_out,
                weight: w.as_tensor().flatten_all()?.to_vec1()?,
                bias: b.as_tensor().to_vec1()?,
            });
        }
        let mut m = Mlp::new(layers, self.net.activation)?;
        m.out_perm = self.net.out_perm.clone();
        Ok(m)
    }

    fn sample_memory(&mut self) {
        if let Some(used) = modcirc_mlp::device_memory_in_use(&self.device) {
            let m = self.memory.get_or_insert(DeviceMemory { at_start_bytes: used, peak_bytes: used });
            m.peak_bytes = m.peak_bytes.max(used);
        }
    }

    /// Output position `p` stands for class `out[p]`, as a device index.
    fn position_classes(&self) -> Result<Tensor, BimtError> {
        let classes: Vec<u32> = self.net.out_perm.iter().map(|&c| c as u32).collect();
        Ok(Tensor::from_vec(classes, self.net.out_perm.len(), &self.device)?)
    }

    /// Device memory sampled so far (CUDA only).
    pub fn device_memory(&self) -> Option<DeviceMemory> {
        self.memory
    }

    /// One relocation: `C` of each layer on the device, the greedy decisions on
    /// the host (from the same ranking as the CPU path), then one gather per
    /// tensor to apply the layer's permutation.
    pub fn relocate(&mut self) -> Result<Relocation, BimtError> {
        let mut host = self.to_mlp()?;
        let mut swaps = Vec::new();
        let n_layers = self.net.weights.len();
        for n in 1..=n_layers {
            let w_in = self.net.weights[n - 1].as_tensor().clone();
            let size = w_in.dims2()?.0;
            let (w_out, n_next) = match self.net.weights.get(n) {
                Some(w) => (w.as_tensor().clone(), w.dims2()?.0),
                None => (Tensor::zeros((1, size), DType::F32, &self.device)?, 0),
            };
            let op = PositionCosts { n_prev: w_in.dims2()?.1, n: size, n_next, wf: SWAP_WEIGHT_FACTOR, l0: L0 };
            let c: Vec<f64> = w_in.apply_op3_no_bwd(&w_out, &self.coords[n - 1], &op)?.flatten_all()?.to_vec1()?;
            let ranking = importance_ranking(&host, n);
            let (decisions, at) = greedy_swaps(&c, &ranking, self.config.swap_top);
            if decisions.is_empty() {
                continue;
            }
            for &(j, k) in &decisions {
                crate::relocate::apply_swap(&mut host, n, j, k);
                swaps.push(Swap { layer: n, position: j, target: k });
            }
            let idx = Tensor::from_vec(at.iter().map(|&i| i as u32).collect::<Vec<_>>(), size, &self.device)?;
            self.net.weights[n - 1].set(&self.net.weights[n - 1].as_tensor().index_select(&idx, 0)?)?;
            self.net.biases[n - 1].set(&self.net.biases[n - 1].as_tensor().index_select(&idx, 0)?)?;
            if n < n_layers {
                self.net.weights[n].set(&self.net.weights[n].as_tensor().index_select(&idx, 1)?)?;
            }
        }
        self.net.out_perm = host.out_perm;
        Ok(Relocation { swaps })
    }

    /// A relocation, timed after a sync, and the output positions' classes after it.
    fn timed_relocation(&mut self, timing: &mut TrainTiming) -> Result<Tensor, BimtError> {
        let t1 = Instant::now();
        let r = self.relocate()?;
        let positions = self.position_classes()?;
        self.device.synchronize()?;
        timing.relocation_s += t1.elapsed().as_secs_f64();
        timing.relocations += 1;
        timing.swaps += r.swaps.len();
        self.sample_memory();
        Ok(positions)
    }

    /// One optimizer step on `x` and its `target`; returns
    /// `[loss, mse, penalty, correct]`, still on the device.
    fn step(&mut self, x: &Tensor, target: &Tensor, lambda: f64, zero: &Tensor) -> Result<Tensor, BimtError> {
        let y = self.net.forward(x)?;
        let mse = (&y - target)?.sqr()?.mean_all()?;
        let (loss, penalty) = match &self.penalty {
            None => (mse.clone(), zero.clone()),
            Some(factors) => {
                let mut pen = zero.clone();
                for ((w, b), (f, bf)) in self.net.weights.iter().zip(&self.net.biases).zip(factors) {
                    pen = (pen + (w.as_tensor().abs()? * f)?.sum_all()?)?;
                    pen = (pen + (b.as_tensor().abs()?.sum_all()? * *bf)?)?;
                }
                ((&mse + (&pen * lambda)?)?, pen)
            }
        };
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        let correct = y.argmax(1)?.eq(&target.argmax(1)?)?.to_dtype(DType::F32)?.sum_all()?;
        Ok(Tensor::stack(&[loss, mse, penalty, correct], 0)?)
    }

    /// Trains on `train`; as [`crate::Trainer::run`].
    pub fn run(
        mut self,
        train: &ImageSet,
        test: Option<&ImageSet>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<TrainOutcome, BimtError> {
        let cfg = self.config.clone();
        cfg.check_data(train, test)?;
        let classes = *cfg.sizes.last().unwrap();
        let start = Instant::now();
        let images = Tensor::from_slice(&train.images, (train.len(), train.pixels()), &self.device)?;
        // One-hot labels in class order; a step's targets are its rows with
        // the columns gathered into output-position order.
        let onehot = one_hot(&train.labels, classes, &self.device)?;
        let mut positions = self.position_classes()?;
        let zero = Tensor::zeros((), DType::F32, &self.device)?;
        self.sample_memory();
        let mut sampler = BatchSampler::new(train.len(), cfg.batch_size, cfg.seed);
        let mut timing = TrainTiming::default();
        let mut history = Vec::new();
        let mut window = HistoryWindow::default();
        // Per step `[loss, mse, penalty, correct]`, still on the device.
        let mut pending: Vec<Tensor> = Vec::with_capacity(READ_EVERY);
        let mut penalty_v = 0.0;
        let mut since = Instant::now();
        for s in 0..cfg.steps {
            let batch = sampler.batch(s);
            let idx = Tensor::from_vec(batch.iter().map(|&i| i as u32).collect::<Vec<_>>(), batch.len(), &self.device)?;
            let x = images.index_select(&idx, 0)?;
            let target = onehot.index_select(&idx, 0)?.index_select(&positions, 1)?;
            pending.push(self.step(&x, &target, cfg.lambda_at(s) as f64, &zero)?);

            let relocate_now = cfg.regime.swaps() && (s + 1) % cfg.swap_every == 0;
            let history_now = HistoryWindow::due(&cfg, s);
            if !(relocate_now || history_now || s == 0 || pending.len() == READ_EVERY) {
                continue;
            }
            // Reading the stats back synchronises: the optimizer time is
            // wall time between reads, relocation and evaluation excluded.
            let rows: Vec<Vec<f32>> = Tensor::stack(&pending, 0)?.to_vec2()?;
            timing.optimizer_s += since.elapsed().as_secs_f64();
            penalty_v = report_steps(&cfg, &rows, s + 1 - rows.len(), &mut window, progress)?.unwrap_or(penalty_v);
            pending.clear();
            if s == 0 {
                self.sample_memory();
            }
            if relocate_now {
                positions = self.timed_relocation(&mut timing)?;
            }
            if history_now {
                let t2 = Instant::now();
                self.sample_memory();
                let host = self.to_mlp()?;
                history.push(window.point(
                    &cfg,
                    s,
                    penalty_v,
                    self.wiring.value(&host),
                    test.map(|t| host.accuracy(&t.images, &t.labels)),
                ));
                timing.evaluation_s += t2.elapsed().as_secs_f64();
            }
            since = Instant::now();
        }
        self.device.synchronize()?;
        timing.total_s = start.elapsed().as_secs_f64();
        Ok(TrainOutcome {
            model: self.to_mlp()?,
            layout: self.layout.clone(),
            history,
            timing,
            device_memory: self.memory,
        })
    }
}

/// `[labels, classes]` one-hot rows on `device`.
fn one_hot(labels: &[u8], classes: usize, device: &Device) -> Result<Tensor, BimtError> {
    let mut onehot = vec![0f32; labels.len() * classes];
    for (r, &l) in labels.iter().enumerate() {
        onehot[r * classes + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(onehot, (labels.len(), classes), device)?)
}

/// Steps `first + 1 ..` as read back (`[loss, mse, penalty, correct]` rows):
/// into the history window and the progress callback, in order; a
/// non-finite loss stops with its own step. Returns the last penalty.
fn report_steps(
    cfg: &TrainConfig,
    rows: &[Vec<f32>],
    first: usize,
    window: &mut HistoryWindow,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Option<f64>, BimtError> {
    let mut penalty = None;
    for (k, row) in rows.iter().enumerate() {
        let (loss, mse) = (row[0] as f64, row[1] as f64);
        if !loss.is_finite() {
            return Err(BimtError::NonFinite { step: first + k + 1, loss });
        }
        penalty = Some(row[2] as f64);
        window.add(loss, mse, row[3] as usize, cfg.batch_size);
        let running_accuracy = window.running_accuracy();
        let p = Progress { step: first + k + 1, steps: cfg.steps, loss, penalty: row[2] as f64, running_accuracy };
        progress(&p);
    }
    Ok(penalty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Regime, Trainer};
    use modcirc_dataset::Rng;

    fn data() -> ImageSet {
        let n = 400;
        let mut rng = Rng::new(5);
        ImageSet {
            images: (0..n * 784).map(|_| if rng.next_f64() < 0.2 { rng.next_f64() as f32 } else { 0.0 }).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: 28,
            cols: 28,
        }
    }

    #[test]
    fn candle_training_follows_the_fused_trainer() {
        let set = data();
        for regime in [Regime::Vanilla, Regime::Bimt] {
            let cfg = TrainConfig::new(regime).steps(30).swap_every(10).history_every(10).seed(3);
            let fused = Trainer::new(cfg.clone()).unwrap().run(&set, None, &mut |_| {}).unwrap();
            let candle = CandleTrainer::new(cfg, Device::Cpu).unwrap().run(&set, None, &mut |_| {}).unwrap();
            assert_eq!(fused.timing.relocations, candle.timing.relocations);
            assert_eq!(fused.model.out_perm, candle.model.out_perm, "{regime}");
            let mut worst = 0f32;
            for (a, b) in fused.model.layers.iter().zip(&candle.model.layers) {
                for (x, y) in a.weight.iter().zip(&b.weight).chain(a.bias.iter().zip(&b.bias)) {
                    worst = worst.max((x - y).abs());
                }
            }
            assert!(worst < 1e-4, "{regime}: weights differ by {worst}");
            for (f, c) in fused.history.iter().zip(&candle.history) {
                assert!(
                    (f.loss - c.loss).abs() < 1e-4 * f.loss.abs().max(1.0),
                    "{regime}: loss {} vs {}",
                    f.loss,
                    c.loss
                );
                assert!((f.penalty - c.penalty).abs() < 1e-3 * f.penalty.abs().max(1.0), "{regime}: penalty");
                assert!((f.train_accuracy - c.train_accuracy).abs() < 0.01, "{regime}: accuracy");
            }
        }
    }

    #[test]
    fn a_nan_between_reads_is_reported_with_its_own_step() {
        let mut set = data();
        set.images.truncate(4000 * 784);
        set.images.resize(4000 * 784, 0.25);
        set.labels = (0..4000).map(|i| (i % 10) as u8).collect();
        // The image first seen at 0-based step 17 (mid-way between reads) gets a NaN.
        let first_seen = BatchSampler::new(4000, 100, 3).batch(17)[0];
        set.images[first_seen * 784 + 400] = f32::NAN;
        let cfg = TrainConfig::new(Regime::L1).steps(3 * READ_EVERY).history_every(3 * READ_EVERY).seed(3);
        let mut steps = Vec::new();
        let fused = Trainer::new(cfg.clone()).unwrap().run(&set, None, &mut |_| {}).unwrap_err();
        let candle =
            CandleTrainer::new(cfg, Device::Cpu).unwrap().run(&set, None, &mut |p| steps.push(p.step)).unwrap_err();
        for e in [fused, candle] {
            assert!(matches!(e, BimtError::NonFinite { step: 18, .. }), "{e}");
        }
        assert_eq!(steps, (1..=17).collect::<Vec<_>>(), "progress reaches every step before the NaN, in order");
    }

    #[test]
    fn a_label_outside_the_classes_is_an_error() {
        let mut set = data();
        set.labels[7] = 12;
        let e = CandleTrainer::new(TrainConfig::new(Regime::L1).steps(5), Device::Cpu)
            .unwrap()
            .run(&set, None, &mut |_| {})
            .expect_err("label 12 must be refused");
        assert!(e.to_string().contains("label 12"), "{e}");
    }
}
