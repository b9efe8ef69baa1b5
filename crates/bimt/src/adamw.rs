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
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { adamw_avx2(p, g, m, v, c, step_size, bc2_sqrt) };
    }
    adamw_portable(p, g, m, v, c, step_size, bc2_sqrt)
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
    let decay = 1.0 - c.lr * c.weight_decay;
    let (b1, b2, eps) = (c.beta1, c.beta2, c.eps);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        let denom = v.sqrt() / bc2_sqrt + eps;
        *p = *p * decay - step_size * *m / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Regime;

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
