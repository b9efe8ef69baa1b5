//! PyTorch's AdamW, on plain slices.

use crate::TrainConfig;

/// PyTorch's AdamW update (decoupled weight decay, bias-corrected moments).
/// On x86-64 CPUs with AVX2 the same loop is compiled 8 lanes wide; square
/// roots and divisions are correctly rounded either way, so the weights are
/// the same bits on both paths.
pub(crate) fn adamw(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    c: &TrainConfig,
    step_size: f32,
    bc2_sqrt: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { adamw_avx512(p, g, m, v, c, step_size, bc2_sqrt) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { adamw_avx2(p, g, m, v, c, step_size, bc2_sqrt) };
    }
    adamw_portable(p, g, m, v, c, step_size, bc2_sqrt)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn adamw_avx512(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    c: &TrainConfig,
    step_size: f32,
    bc2_sqrt: f32,
) {
    adamw_portable(p, g, m, v, c, step_size, bc2_sqrt)
}

/// The connection cost's gradient and AdamW in one pass over a tensor
/// (the penalty of STUDY §2 with its per-weight `factors`): each gradient
/// first takes `scale · factor · sign(p)` (the derivative of `|p|` at 0
/// taken as 0, as autograd does) and keeps it, then [`adamw`] updates `p`
/// with it. Returns `Σ |p| · factor` before the update, summed in 16 f32
/// lanes, each 1 024 terms into f64. The gradients and weights are the bits
/// the two passes gave one after the other, on every path (16 or 8 lanes or
/// scalar).
#[allow(clippy::too_many_arguments)]
pub(crate) fn penalised_adamw(
    p: &mut [f32],
    g: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    factors: &[f32],
    scale: f32,
    c: &TrainConfig,
    (step_size, bc2_sqrt): (f32, f32),
) -> f64 {
    let n = p.len();
    assert!(g.len() == n && m.len() == n && v.len() == n && factors.len() == n, "one length for every buffer");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { penalised_avx512(p, g, m, v, factors, scale, c, step_size, bc2_sqrt) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { penalised_avx2(p, g, m, v, factors, scale, c, step_size, bc2_sqrt) };
    }
    penalised_portable(p, g, m, v, factors, scale, c, step_size, bc2_sqrt)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn penalised_avx512(
    p: &mut [f32],
    g: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    f: &[f32],
    scale: f32,
    c: &TrainConfig,
    step_size: f32,
    bc2_sqrt: f32,
) -> f64 {
    penalised_portable(p, g, m, v, f, scale, c, step_size, bc2_sqrt)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn penalised_avx2(
    p: &mut [f32],
    g: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    f: &[f32],
    scale: f32,
    c: &TrainConfig,
    step_size: f32,
    bc2_sqrt: f32,
) -> f64 {
    penalised_portable(p, g, m, v, f, scale, c, step_size, bc2_sqrt)
}

/// Lanes of [`penalised_adamw`]'s sums of the penalty.
const LANES: usize = 16;

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn penalised_portable(
    p: &mut [f32],
    g: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    f: &[f32],
    scale: f32,
    c: &TrainConfig,
    step_size: f32,
    bc2_sqrt: f32,
) -> f64 {
    let k = AdamStep::new(c, step_size, bc2_sqrt);
    let one = |p: &mut f32, g: &mut f32, m: &mut f32, v: &mut f32, a: f32| -> f32 {
        let cost = p.abs() * a;
        *g += scale * a * sign(*p);
        k.apply(p, *g, m, v);
        cost
    };
    let mut total = 0.0f64;
    let mut acc = [0.0f32; LANES];
    let whole = p.len() / LANES * LANES;
    let (ph, pt) = p.split_at_mut(whole);
    let (gh, gt) = g.split_at_mut(whole);
    let (mh, mt) = m.split_at_mut(whole);
    let (vh, vt) = v.split_at_mut(whole);
    let (fh, ft) = f.split_at(whole);
    let chunks = ph
        .chunks_exact_mut(LANES)
        .zip(gh.chunks_exact_mut(LANES))
        .zip(mh.chunks_exact_mut(LANES))
        .zip(vh.chunks_exact_mut(LANES))
        .zip(fh.chunks_exact(LANES));
    for (k, ((((pc, gc), mc), vc), fc)) in chunks.enumerate() {
        for j in 0..LANES {
            acc[j] += one(&mut pc[j], &mut gc[j], &mut mc[j], &mut vc[j], fc[j]);
        }
        if (k + 1) % (1024 / LANES) == 0 {
            total += acc.iter().map(|&a| a as f64).sum::<f64>();
            acc = [0.0; LANES];
        }
    }
    total += acc.iter().map(|&a| a as f64).sum::<f64>();
    for ((((p, g), m), v), &a) in pt.iter_mut().zip(gt).zip(mt).zip(vt).zip(ft) {
        total += one(p, g, m, v, a) as f64;
    }
    total
}

/// The sign of `x`, 0 at 0.
#[inline(always)]
fn sign(x: f32) -> f32 {
    ((x > 0.0) as i32 - (x < 0.0) as i32) as f32
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adamw_avx2(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    c: &TrainConfig,
    step_size: f32,
    bc2_sqrt: f32,
) {
    adamw_portable(p, g, m, v, c, step_size, bc2_sqrt)
}

#[inline(always)]
fn adamw_portable(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    c: &TrainConfig,
    step_size: f32,
    bc2_sqrt: f32,
) {
    let k = AdamStep::new(c, step_size, bc2_sqrt);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        k.apply(p, g, m, v);
    }
}

/// One step's constants of AdamW (decoupled weight decay, PyTorch's
/// `torch.optim.AdamW`).
#[derive(Clone, Copy)]
struct AdamStep {
    decay: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    step_size: f32,
    /// `1 / sqrt(1 - beta2^t)`: a product per weight where PyTorch divides
    /// (the divider is the update's bottleneck; the denominator may differ
    /// from PyTorch's by a rounding).
    inv_bc2_sqrt: f32,
}

impl AdamStep {
    fn new(c: &TrainConfig, step_size: f32, bc2_sqrt: f32) -> AdamStep {
        AdamStep {
            decay: 1.0 - c.lr * c.weight_decay,
            b1: c.beta1,
            b2: c.beta2,
            eps: c.eps,
            step_size,
            inv_bc2_sqrt: 1.0 / bc2_sqrt,
        }
    }

    /// The moments take `g`, then `p` decays and steps:
    /// `p·(1 - lr·wd) - step_size·m / (sqrt(v)/sqrt(1 - beta2^t) + eps)`.
    #[inline(always)]
    fn apply(&self, p: &mut f32, g: f32, m: &mut f32, v: &mut f32) {
        *m = self.b1 * *m + (1.0 - self.b1) * g;
        *v = self.b2 * *v + (1.0 - self.b2) * g * g;
        let denom = v.sqrt() * self.inv_bc2_sqrt + self.eps;
        *p = *p * self.decay - self.step_size * *m / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Regime;

    #[test]
    fn the_fused_penalty_gives_the_two_passes_bits() {
        let n = 2_061; // past two sums of 1 024, and a tail
        let c = TrainConfig::new(Regime::Bimt).weight_decay(0.01);
        let g0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 1e-2).collect();
        let f: Vec<f32> = (0..n).map(|i| 1e-4 * (1.0 + (i % 13) as f32)).collect();
        let mut start: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        start[5] = 0.0;
        let (mut p1, mut g1, mut m1, mut v1) = (start.clone(), g0.clone(), vec![0.1; n], vec![1e-4; n]);
        let (mut p2, mut g2, mut m2, mut v2) = (start.clone(), g0.clone(), vec![0.1; n], vec![1e-4; n]);
        let (mut p3, mut g3, mut m3, mut v3) = (start.clone(), g0.clone(), vec![0.1; n], vec![1e-4; n]);
        for _ in 0..3 {
            let want: f64 = p1.iter().zip(&f).map(|(p, a)| (p.abs() * a) as f64).sum();
            g1.copy_from_slice(&g0);
            for i in 0..n {
                g1[i] += 0.3 * f[i] * sign(p1[i]);
            }
            adamw_portable(&mut p1, &g1, &mut m1, &mut v1, &c, 1e-3, 0.3);
            g2.copy_from_slice(&g0);
            let got = penalised_adamw(&mut p2, &mut g2, &mut m2, &mut v2, &f, 0.3, &c, (1e-3, 0.3));
            g3.copy_from_slice(&g0);
            penalised_portable(&mut p3, &mut g3, &mut m3, &mut v3, &f, 0.3, &c, 1e-3, 0.3);
            assert!((got - want).abs() <= 1e-6 * want, "{got} {want}");
        }
        assert_ne!(p1, start);
        assert_eq!((&p1, &g1, &m1, &v1), (&p2, &g2, &m2, &v2));
        assert_eq!((p1, g1, m1, v1), (p3, g3, m3, v3));
    }

    #[test]
    fn adamw_gives_the_same_bits_on_every_path() {
        let n = 1_003; // not a multiple of 8: the tail too
        let c = TrainConfig::new(Regime::Bimt).weight_decay(0.01);
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 1e-2).collect();
        let start: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let (mut p1, mut m1, mut v1) = (start.clone(), vec![0.1; n], vec![1e-4; n]);
        let (mut p2, mut m2, mut v2) = (start.clone(), vec![0.1; n], vec![1e-4; n]);
        for _ in 0..3 {
            adamw(&mut p1, &g, &mut m1, &mut v1, &c, 1e-3, 0.3);
            adamw_portable(&mut p2, &g, &mut m2, &mut v2, &c, 1e-3, 0.3);
        }
        assert_ne!(p2, start);
        assert_eq!((p1, m1, v1), (p2, m2, v2));
    }
}
