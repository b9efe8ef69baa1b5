//! The hidden layers' product on AVX-512 register tiles, where they give
//! the bits of `gemm`'s blocked kernel.
//!
//! The hidden layers' inputs are dense, so [`dense_into`] runs them on
//! tiles that load each row of the transposed weights once for several
//! rows of the batch, only where `gemm`'s blocked kernel sums each output
//! in that same order: the tiles give [`Linear::forward_into`]'s bits, and
//! every caller of the dense product agrees with the forward. That order
//! is `gemm` 0.19.0's, the version the workspace pins; the test below
//! holds the two to the bit on every shape around the kernel's cases.

use crate::kernel::Kernel;
use crate::sparse::Transposed;
use crate::Linear;

/// Whether [`dense_into`] runs `t`'s layer on `n` rows on register tiles:
/// where the CPU has AVX-512, the batch is large enough for a transposed
/// copy of the weights to pay, and the `gemm` crate's product would sum
/// each output as the tiles do (its blocked kernel, not its matrix-vector,
/// horizontal or split-depth paths: more than one row and output, more than
/// 2 and at most 512 inputs, more than 256 outputs in all), so that the
/// tiles give [`Linear::forward_into`]'s bits.
fn tiles_match_gemm(t: &Transposed, n: usize) -> bool {
    let (n_in, n_out) = (t.layer.n_in, t.layer.n_out);
    cfg!(feature = "gemm")
        && t.kernel == Kernel::Avx512
        && t.enabled
        && n > 1
        && n_out > 1
        && n * n_out > 256
        && (3..=512).contains(&n_in)
}

/// `out[n, n_out] = a[n, n_in] · Wᵀ + b` for a hidden layer (dense
/// inputs): [`Linear::forward_into`]'s bits, on register tiles where
/// [`tiles_match_gemm`] says they give them, by `gemm` otherwise. Each
/// output is the products summed from zero in the inputs' order, one fused
/// multiply-add at a time, then the bias added: as `gemm`'s blocked kernel
/// sums it (a test holds the two to the bit). The tiles keep several rows'
/// sums in registers and load each row of the transposed weights once for
/// all of them; `gemm` packs both operands first, which at 100 × 100 costs
/// as much as the products.
pub(crate) fn dense_into(t: &Transposed, a: &[f32], n: usize, out: &mut [f32]) {
    let layer = t.layer;
    assert!(a.len() == n * layer.n_in && out.len() == n * layer.n_out, "input and output buffers");
    if !tiles_match_gemm(t, n) {
        return layer.forward_into(a, n, out);
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the kernel is AVX-512 (`tiles_match_gemm`), which
    // `Kernel::detect` found on this CPU; the buffers were checked above.
    unsafe {
        dense_avx512(t.get(), t.stride(), layer, a, n, out)
    }
}

/// [`dense_into`]'s tiles: up to eight 16-lane registers of outputs per
/// row, for as many rows at once as leave registers for the weights.
///
/// # Safety
/// The CPU must have AVX-512F; `wt` is `layer`'s transposed weights
/// (`[n_in, stride]`), `a` and `out` `n` rows of its inputs and outputs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dense_avx512(wt: &[f32], stride: usize, layer: &Linear, a: &[f32], n: usize, out: &mut [f32]) {
    assert!(wt.len() == layer.n_in * stride && stride >= layer.n_out, "the layer's transposed weights");
    let mut start = 0;
    while start < stride {
        let regs = ((stride - start) / 16).min(8);
        macro_rules! tiles {
            ($($r:literal => $g:literal),*) => {
                match regs {
                    $($r => dense_tiles::<$r, $g>(wt, stride, start, layer, a, n, out),)*
                    _ => unreachable!("a padded row is a multiple of 16 wide"),
                }
            };
        }
        tiles!(1 => 8, 2 => 6, 3 => 6, 4 => 4, 5 => 4, 6 => 3, 7 => 3, 8 => 3);
        start += regs * 16;
    }
}

/// The outputs `start..start + 16·R` of every row, `G` rows at a time
/// (the last few one at a time).
///
/// # Safety
/// As [`dense_avx512`], and `start + 16·R <= stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dense_tiles<const R: usize, const G: usize>(
    wt: &[f32],
    stride: usize,
    start: usize,
    layer: &Linear,
    a: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let groups = n / G * G;
    for r in (0..groups).step_by(G) {
        dense_tile::<R, G>(wt, stride, start, layer, a, r, out);
    }
    for r in groups..n {
        dense_tile::<R, 1>(wt, stride, start, layer, a, r, out);
    }
}

/// Rows `first..first + G`, outputs `start..start + 16·R`.
///
/// # Safety
/// As [`dense_tiles`], and `first + G` rows in `a` and `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dense_tile<const R: usize, const G: usize>(
    wt: &[f32],
    stride: usize,
    start: usize,
    layer: &Linear,
    a: &[f32],
    first: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (n_in, n_out) = (layer.n_in, layer.n_out);
    assert!(start + 16 * R <= stride && wt.len() == n_in * stride, "a tile inside the weights");
    let rows: [&[f32]; G] = std::array::from_fn(|g| &a[(first + g) * n_in..][..n_in]);
    let mut acc = [[_mm512_setzero_ps(); R]; G];
    for k in 0..n_in {
        // Row k of the transposed weights, from `start`: inside `wt`, as
        // asserted above.
        let w = wt.as_ptr().add(k * stride + start);
        let ws: [__m512; R] = std::array::from_fn(|r| _mm512_loadu_ps(w.add(16 * r)));
        for g in 0..G {
            // k < n_in, each row's length.
            let v = _mm512_set1_ps(*rows[g].get_unchecked(k));
            for r in 0..R {
                acc[g][r] = _mm512_fmadd_ps(v, ws[r], acc[g][r]);
            }
        }
    }
    // A tile starts below `n_out` (the stride pads it by less than 16).
    let width = (16 * R).min(n_out - start);
    let bias = &layer.bias[start..][..width];
    for (g, acc) in acc.iter().enumerate() {
        let mut sums = [0.0f32; 128];
        for r in 0..R {
            _mm512_storeu_ps(sums[16 * r..][..16].as_mut_ptr(), acc[r]);
        }
        let o = &mut out[(first + g) * n_out + start..][..width];
        o.iter_mut().zip(&sums).zip(bias).for_each(|((o, s), b)| *o = s + b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::tests::case;

    /// The hidden layers' tiles give `gemm`'s bits wherever they run, and
    /// run on the shapes of the study's layers.
    #[test]
    fn the_dense_tiles_give_the_dense_products_bits() {
        let mut tiled = 0;
        for n_in in [3, 5, 17, 100, 300, 512, 513] {
            for n_out in [1, 2, 10, 16, 17, 100, 129, 300] {
                for n in [1, 16, 17, 26, 40, 130] {
                    let (layer, x) = case(n_in, n_out, n, 0.9, (n_in * 1000 + n_out * 7 + n) as u64);
                    let t = Transposed::new(&layer, n);
                    let mut fast = vec![0.0; n * n_out];
                    dense_into(&t, &x, n, &mut fast);
                    let mut dense = vec![0.0; n * n_out];
                    layer.forward_into(&x, n, &mut dense);
                    let same = fast.iter().zip(&dense).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{n} rows through {n_in} -> {n_out}");
                    tiled += usize::from(tiles_match_gemm(&t, n));
                }
            }
        }
        let wide = Kernel::detect() == Kernel::Avx512 && cfg!(feature = "gemm");
        let study = case(100, 100, 500, 1.0, 1).0;
        assert_eq!(tiles_match_gemm(&Transposed::new(&study, 500), 500), wide);
        assert!(!wide || tiled > 100, "{tiled} shapes on tiles");
    }
}
