//! The patching sweep as candle tensor ops, for `--device cuda`.

use candle_core::{Device, Tensor, D};
use modcirc_metrics::logit_difference;

use crate::sweep::gather_rows;
use crate::{AcdcError, NeuronScores, PatchingSweep};

/// At most this many elements in one batch of patched runs (`neurons × pairs
/// × width`): 16 MiB of f32, whatever the device.
const CHUNK_ELEMENTS: usize = 4 << 20;

/// [`PatchingSweep::scores`] on a candle device: the cached clean and
/// corrupted runs are uploaded once, and each layer's neurons are patched in
/// batches of whole `neurons × pairs` blocks, so a GPU sees a few large
/// kernels rather than one small one per neuron.
///
/// A neuron whose activation is equal on every clean and corrupted run
/// scores exactly the baseline, as on the CPU; every other score agrees with
/// the CPU sweep to f32 rounding (tested).
///
/// ```
/// use modcirc_acdc::{DeviceSweep, PatchingSweep, TaskImages};
/// use modcirc_mlp::{Activation, DeviceSpec, Mlp};
/// let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
/// let model = Mlp::init(&[4, 8, 8, 2], Activation::Tanh, &mut || u.next().unwrap()).unwrap();
/// let imgs = TaskImages {
///     n: 3,
///     pixels: 4,
///     clean: (0..12).map(|i| i as f32 / 12.0).collect(),
///     corrupted: (0..12).map(|i| 1.0 - i as f32 / 12.0).collect(),
///     clean_labels: vec![0, 1, 0],
///     corrupted_labels: vec![1, 0, 1],
/// };
/// let sweep = PatchingSweep::new(&model, &imgs)?;
/// // `DeviceSpec::Cuda(0)` on a GPU machine with the `cuda` feature.
/// let device = DeviceSpec::Cpu.open().map_err(|e| modcirc_acdc::AcdcError::Device(e.to_string()))?;
/// let on_device = DeviceSweep::new(&sweep, &device)?.scores(None)?;
/// let on_cpu = sweep.scores();
/// for (a, b) in on_device.layers.iter().flatten().zip(on_cpu.layers.iter().flatten()) {
///     assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3));
/// }
/// # Ok::<(), modcirc_acdc::AcdcError>(())
/// ```
pub struct DeviceSweep {
    device: Device,
    /// Per layer: `(weight [out, in], bias [out])`.
    layers: Vec<(Tensor, Tensor)>,
    /// Per hidden layer `h`: clean − corrupted post-activations `[pairs, width]`.
    delta: Vec<Tensor>,
    /// Per hidden layer `h`: the corrupted pre-activations of layer `h + 1`.
    next_pre: Vec<Tensor>,
    clean_logits: Tensor,
    activation: modcirc_mlp::Activation,
    /// Host copies of both runs' logits, for the baseline.
    host_clean_logits: Vec<f32>,
    host_corrupted_logits: Vec<f32>,
    n: usize,
    classes: usize,
}

impl DeviceSweep {
    /// Uploads the weights and `sweep`'s cached runs to `device`.
    pub fn new(sweep: &PatchingSweep<'_>, device: &Device) -> Result<DeviceSweep, AcdcError> {
        let n = sweep.len();
        let model = sweep.model;
        let upload = |m: &[f32], width: usize| Tensor::from_slice(m, (n, width), device);
        let layers = model
            .layers
            .iter()
            .map(|l| {
                Ok((
                    Tensor::from_slice(&l.weight, (l.n_out, l.n_in), device)?,
                    Tensor::from_slice(&l.bias, l.n_out, device)?,
                ))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let hidden = model.layers.len() - 1;
        let (mut delta, mut next_pre) = (Vec::new(), Vec::new());
        for h in 0..hidden {
            let width = model.layers[h].n_out;
            let d: Vec<f32> = sweep.clean.post[h].iter().zip(&sweep.corrupted.post[h]).map(|(c, k)| c - k).collect();
            delta.push(upload(&d, width)?);
            next_pre.push(upload(&sweep.corrupted.pre[h + 1], model.layers[h + 1].n_out)?);
        }
        let classes = model.n_classes();
        Ok(DeviceSweep {
            device: device.clone(),
            layers,
            delta,
            next_pre,
            clean_logits: upload(sweep.clean_logits(), classes)?,
            activation: model.activation,
            host_clean_logits: sweep.clean_logits().to_vec(),
            host_corrupted_logits: sweep.corrupted_logits().to_vec(),
            n,
            classes,
        })
    }

    /// The device the sweep runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every hidden neuron's score on pairs `idx` (repeats allowed; `None`:
    /// all pairs), the same quantity as `sweep.subset(idx).scores()`.
    pub fn scores(&self, idx: Option<&[usize]>) -> Result<NeuronScores, AcdcError> {
        let (rows, n) = match idx {
            None => (None, self.n),
            Some(idx) => {
                if let Some(&bad) = idx.iter().find(|&&i| i >= self.n) {
                    return Err(AcdcError::Shape(format!("pair {bad} is outside the sweep's {} pairs", self.n)));
                }
                let t = Tensor::from_vec(idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), idx.len(), &self.device)?;
                (Some(t), idx.len())
            }
        };
        if n == 0 {
            return Err(AcdcError::EmptyTask);
        }
        let pick = |t: &Tensor| match &rows {
            None => Ok(t.clone()),
            Some(r) => t.index_select(r, 0),
        };
        let baseline = match idx {
            None => logit_difference(&self.host_corrupted_logits, &self.host_clean_logits, self.classes),
            Some(idx) => logit_difference(
                &gather_rows(&self.host_corrupted_logits, self.classes, idx),
                &gather_rows(&self.host_clean_logits, self.classes, idx),
                self.classes,
            ),
        };
        let clean_logits = pick(&self.clean_logits)?;
        let mut layers = Vec::with_capacity(self.delta.len());
        for h in 0..self.delta.len() {
            let delta = pick(&self.delta[h])?;
            let next_pre = pick(&self.next_pre[h])?;
            let (weight, _) = &self.layers[h + 1];
            let (next_width, width) = weight.dims2()?;
            // Exactly the baseline where patching changes nothing, as on the CPU.
            let moved: Vec<f32> = delta.abs()?.max(0)?.to_vec1()?;
            let chunk = (CHUNK_ELEMENTS / (n * next_width).max(1)).clamp(1, width);
            let mut scores = Vec::with_capacity(width);
            for start in (0..width).step_by(chunk) {
                let len = chunk.min(width - start);
                scores.extend(self.patched_distances(&delta, &next_pre, &clean_logits, h, start, len)?);
            }
            for (s, &m) in scores.iter_mut().zip(&moved) {
                if m == 0.0 {
                    *s = baseline;
                }
            }
            layers.push(scores);
        }
        Ok(NeuronScores { baseline, layers })
    }

    /// `LD` of neurons `start..start + len` of hidden layer `h`: the next
    /// layer's pre-activation moves by `d_i ⊗ W[:, i]` per neuron (the rank-1
    /// update of [`PatchingSweep::patched_logits`]), batched over neurons.
    fn patched_distances(
        &self,
        delta: &Tensor,
        next_pre: &Tensor,
        clean_logits: &Tensor,
        h: usize,
        start: usize,
        len: usize,
    ) -> Result<Vec<f64>, AcdcError> {
        let n = delta.dim(0)?;
        let (weight, _) = &self.layers[h + 1];
        let d = delta.narrow(1, start, len)?.t()?.unsqueeze(2)?; // [len, n, 1]
        let w = weight.narrow(1, start, len)?.t()?.unsqueeze(1)?; // [len, 1, next]
        let mut z = next_pre.unsqueeze(0)?.broadcast_add(&d.broadcast_mul(&w)?)?; // [len, n, next]
        for (weight, bias) in &self.layers[h + 2..] {
            let width = z.dim(2)?;
            let out = weight.dim(0)?;
            z = self
                .activation
                .apply_tensor(&z)?
                .reshape((len * n, width))?
                .matmul(&weight.t()?)?
                .broadcast_add(bias)?
                .reshape((len, n, out))?;
        }
        // ‖L_patched − L_clean‖₂ per neuron and pair on the device; the mean
        // over pairs on the host in f64, as modcirc_metrics::logit_difference
        // takes it (an f32 mean over hundreds of pairs would move near-dead
        // neurons across the DEAD_TOLERANCE line).
        let distances = z.broadcast_sub(&clean_logits.unsqueeze(0)?)?.sqr()?.sum(D::Minus1)?.sqrt()?;
        let distances: Vec<f32> = distances.flatten_all()?.to_vec1()?;
        Ok(distances.chunks_exact(n).map(|row| row.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64).collect())
    }
}

impl std::fmt::Debug for DeviceSweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSweep").field("device", &self.device).field("pairs", &self.n).finish_non_exhaustive()
    }
}
