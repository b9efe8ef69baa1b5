//! `C[neuron, position]` of one layer as a candle op (STUDY §2), computed from
//! the neuron coordinates without distance matrices: on the CPU with rayon,
//! on CUDA with the kernel in `src/kernels/position_costs.cu`.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::{BimtError, Layout as NeuronLayout, Mlp, L0, SWAP_WEIGHT_FACTOR};

/// The op: inputs `w_in [n, n_prev]`, `w_out [n_next, n]` (any `[1, n]`
/// tensor when `n_next == 0`), `coords [(n_prev + n + n_next), 2]`; output
/// `C [n, n]` in f64.
#[derive(Debug, Clone, Copy)]
pub struct PositionCosts {
    /// Neurons of the previous layer.
    pub n_prev: usize,
    /// Neurons of this layer.
    pub n: usize,
    /// Neurons of the next layer.
    pub n_next: usize,
    /// The swap cost's weight factor.
    pub wf: f32,
    /// The cost's constant `l0`.
    pub l0: f32,
}

/// `(wf·d + l0) / numel` in f32, rounded as the CPU's `ConnectionCost`
/// factors are (and as the kernel's `_rn` intrinsics do).
#[inline]
fn factor(wf: f32, l0: f32, a: [f32; 2], b: [f32; 2], numel: f32) -> f64 {
    let d = (a[0] - b[0]).abs() + (a[1] - b[1]).abs();
    ((wf * d + l0) / numel) as f64
}

impl PositionCosts {
    /// The reference computation on host slices (row-major, contiguous).
    pub fn compute(&self, w_in: &[f32], w_out: &[f32], coords: &[f32]) -> Vec<f64> {
        let (n_prev, n, n_next) = (self.n_prev, self.n, self.n_next);
        let pt = |k: usize| [coords[2 * k], coords[2 * k + 1]];
        let numel_in = (n * n_prev) as f32;
        let numel_out = (n_next * n) as f32;
        let mut c = vec![0.0f64; n * n];
        c.par_chunks_mut(n).enumerate().for_each(|(a, row)| {
            for (p, cell) in row.iter_mut().enumerate() {
                let pos = pt(n_prev + p);
                let mut acc = 0.0f64;
                for i in 0..n_prev {
                    acc += w_in[a * n_prev + i].abs() as f64 * factor(self.wf, self.l0, pos, pt(i), numel_in);
                }
                for o in 0..n_next {
                    acc += w_out[o * n + a].abs() as f64 * factor(self.wf, self.l0, pt(n_prev + n + o), pos, numel_out);
                }
                *cell = acc;
            }
        });
        c
    }
}

fn contiguous<'a, T>(s: &'a [T], l: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s[a..b]),
        None => candle_core::bail!("position_costs: {what} must be contiguous"),
    }
}

impl CustomOp3 for PositionCosts {
    fn name(&self) -> &'static str {
        "position_costs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(w_in), CpuStorage::F32(w_out), CpuStorage::F32(coords)) = (s1, s2, s3) else {
            candle_core::bail!("position_costs: inputs must be f32");
        };
        let c = self.compute(
            contiguous(w_in, l1, "w_in")?,
            contiguous(w_out, l2, "w_out")?,
            contiguous(coords, l3, "coords")?,
        );
        Ok((CpuStorage::F64(c), Shape::from((self.n, self.n))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::cuda::cudarc::driver::{LaunchConfig, PushKernelArg};
        const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/position_costs.ptx"));
        let (w_in, w_out, coords) =
            (cuda_view(s1, l1, "w_in")?, cuda_view(s2, l2, "w_out")?, cuda_view(s3, l3, "coords")?);
        let dev = s1.device.clone();
        let mut out = dev.alloc_zeros::<f64>(self.n * self.n)?;
        let func = dev.get_or_load_custom_func("position_costs", "modcirc_position_costs", PTX)?;
        let (n_prev, n, n_next) = (self.n_prev as i32, self.n as i32, self.n_next as i32);
        let blocks = (self.n as u32).div_ceil(16);
        let cfg = LaunchConfig { grid_dim: (blocks, blocks, 1), block_dim: (16, 16, 1), shared_mem_bytes: 0 };
        let mut b = func.builder();
        b.arg(&w_in)
            .arg(&w_out)
            .arg(&coords)
            .arg(&mut out)
            .arg(&n_prev)
            .arg(&n)
            .arg(&n_next)
            .arg(&self.wf)
            .arg(&self.l0);
        // SAFETY: the argument list matches the kernel's signature; the grid covers
        // n x n threads and the kernel bounds-checks both indices.
        unsafe { b.launch(cfg) }.map_err(|e| candle_core::Error::Cuda(Box::new(e)))?;
        Ok((candle_core::CudaStorage::wrap_cuda_slice(out, dev), Shape::from((self.n, self.n))))
    }
}

#[cfg(feature = "cuda")]
fn cuda_view<'a>(
    s: &'a candle_core::CudaStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<candle_core::cuda::cudarc::driver::CudaView<'a, f32>> {
    let (a, b) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("position_costs: {what} must be contiguous")))?;
    Ok(s.as_cuda_slice::<f32>()?.slice(a..b))
}

/// The coordinates the op takes for neuron layer `n`: previous, this and
/// (unless `n` is the output layer) next layer, flattened.
pub fn layer_coords(layout: &NeuronLayout, n: usize) -> Vec<f32> {
    let last = layout.layers.len() - 1;
    let upto = if n == last { n } else { n + 1 };
    layout.layers[n - 1..=upto].iter().flatten().flatten().copied().collect()
}

/// `C` of neuron layer `n` of `model` with the op, on the device of the
/// given tensors; a convenience over [`PositionCosts`] for host models.
pub fn position_costs(
    model: &Mlp,
    layout: &NeuronLayout,
    n: usize,
    device: &candle_core::Device,
) -> Result<Vec<f64>, BimtError> {
    let inc = &model.layers[n - 1];
    let w_in = Tensor::from_slice(&inc.weight, (inc.n_out, inc.n_in), device)?;
    let (w_out, n_next) = match model.layers.get(n) {
        Some(out) => (Tensor::from_slice(&out.weight, (out.n_out, out.n_in), device)?, out.n_out),
        None => (Tensor::zeros((1, inc.n_out), DType::F32, device)?, 0),
    };
    let coords = layer_coords(layout, n);
    let rows = coords.len() / 2;
    let coords = Tensor::from_vec(coords, (rows, 2), device)?;
    let op = PositionCosts { n_prev: inc.n_in, n: inc.n_out, n_next, wf: SWAP_WEIGHT_FACTOR, l0: L0 };
    Ok(w_in.apply_op3_no_bwd(&w_out, &coords, &op)?.flatten_all()?.to_vec1::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relocate::{apply_swap, greedy_swaps, importance_ranking, relocate_naive, Relocator, TOP_POSITIONS};
    use crate::{ConnectionCost, STUDY_SIZES};

    #[test]
    fn the_op_matches_the_matrix_form_and_the_naive_swaps() {
        let layout = NeuronLayout::study(&STUDY_SIZES).unwrap();
        let cost = ConnectionCost::swap(&layout);
        let relocator = Relocator::new(&cost);
        let model = crate::init_model(&STUDY_SIZES, crate::STUDY_ACTIVATION, 4).unwrap();
        let mut via_op = model.clone();
        let mut swaps = Vec::new();
        for n in 1..=3 {
            let c = position_costs(&via_op, &layout, n, &candle_core::Device::Cpu).unwrap();
            let reference = relocator.position_costs(&via_op, n);
            for (x, y) in c.iter().zip(&reference) {
                assert!((x - y).abs() <= 1e-12 * y.abs().max(1e-12), "{x} vs {y}");
            }
            let ranking = importance_ranking(&via_op, n);
            for (j, k) in greedy_swaps(&c, &ranking, TOP_POSITIONS).0 {
                apply_swap(&mut via_op, n, j, k);
                swaps.push((n, j, k));
            }
        }
        let mut naive = model.clone();
        let r = relocate_naive(&mut naive, &cost, TOP_POSITIONS);
        let naive_swaps: Vec<_> = r.swaps.iter().map(|s| (s.layer, s.position, s.target)).collect();
        assert_eq!(swaps, naive_swaps);
        assert_eq!(via_op, naive);
    }
}
