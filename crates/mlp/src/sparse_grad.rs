//! The first layer's weight gradient over the inputs' nonzeros only
//! (`g[o, i] = Σ_r δ[r, o] · x[r, i]`, from `+0` in the rows' order; see
//! [`crate::sparse_train`]), input by input, each input's row of the
//! gradient summed in registers.

use crate::kernel::{Kernel, ROW_LANES};
use crate::sparse::tile_shape;
use crate::sparse_train::{ColumnEntry, InputMajor, SparseInputs};

/// `g[n_in, n_out] = xᵀ · δ` (the weight gradient, input-major) for the
/// batch `x` whose nonzero inputs `nz` holds, `delta` `[n, n_out]`; `g` is
/// overwritten. Input by input, each input's row of `g` summed in
/// registers over the rows where it is nonzero and stored once.
///
/// # Panics
/// If the shapes disagree, as for [`crate::forward_sparse`].
pub fn weight_gradient_sparse(delta: &[f32], nz: &SparseInputs, g: &mut InputMajor) {
    let (n, n_in, n_out, stride) = (nz.n, g.n_in, g.n_out, g.stride);
    assert!(g.kernel == nz.kernel && nz.n_in == n_in, "gradient and inputs of one kernel and width");
    assert!(delta.len() == n * n_out, "the batch's deltas");
    // The deltas padded to the stride, so that a tile's loads are whole
    // (the padding stays zero: only the front of each row is written).
    let d = &mut g.deltas;
    d.resize(n * stride, 0.0);
    for (p, dr) in d.chunks_exact_mut(stride).zip(delta.chunks_exact(n_out.max(1))) {
        p[..n_out].copy_from_slice(dr);
    }
    let d = &g.deltas[..];
    let cols = Columns { room: n, len: &nz.col_len, entries: &nz.col };
    let gt = g.data.as_mut_slice();
    match g.kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Kernel::detect` found AVX-512F on this CPU (or a test
        // chose a kernel `Kernel::available` lists); the stride is padded
        // to its 16 lanes.
        Kernel::Avx512 => unsafe { columns_avx512(gt, stride, cols, d) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, with AVX2 and FMA.
        Kernel::Avx2 => unsafe { columns_fma(gt, stride, cols, d) },
        _ => columns(gt, stride, cols, d),
    }
}

/// The nonzeros input by input (see [`SparseInputs`]).
#[derive(Clone, Copy)]
pub(crate) struct Columns<'a> {
    pub(crate) room: usize,
    pub(crate) len: &'a [u32],
    pub(crate) entries: &'a [ColumnEntry],
}

impl Columns<'_> {
    fn inputs(&self) -> usize {
        self.len.len()
    }

    /// Where input `i`'s entries are in `row` and `value`.
    #[inline(always)]
    pub(crate) fn range(&self, i: usize) -> std::ops::Range<usize> {
        i * self.room..i * self.room + self.len[i] as usize
    }

    /// Every bucket inside the buffers and within its room, and rooms for
    /// the `rows` of the deltas: the rows in a bucket are below its room
    /// (`fill_columns` writes the row numbers of a batch of `room` rows).
    fn check(&self, rows: usize) {
        let n_in = self.inputs();
        assert!(self.entries.len() == n_in * self.room, "whole buckets");
        assert!(self.room <= rows && self.len.iter().all(|&k| k as usize <= self.room), "buckets within their room");
    }
}

/// Every input's row of `g` (`stride` wide) from the padded deltas `d`
/// (`[n, stride]`), in tiles of up to 128 outputs.
#[inline(always)]
fn columns(g: &mut [f32], stride: usize, cols: Columns, d: &[f32]) {
    assert!(stride.is_multiple_of(8) && g.len() == cols.inputs() * stride, "a padded gradient");
    cols.check(d.len() / stride);
    let mut start = 0;
    while start < stride {
        let width = (stride - start).min(128);
        macro_rules! tile {
            ($($w:literal)*) => {
                match width {
                    $($w => column_tile::<$w>(g, stride, start, cols, d),)*
                    _ => unreachable!("a padded row is a multiple of 8 wide"),
                }
            };
        }
        tile!(8 16 24 32 40 48 56 64 72 80 88 96 104 112 120 128);
        start += width;
    }
}

/// `W` outputs from `start` of every input's row: the sums stay in
/// registers while the input's rows of deltas stream past.
#[inline(always)]
fn column_tile<const W: usize>(g: &mut [f32], stride: usize, start: usize, cols: Columns, d: &[f32]) {
    for (i, out) in g.chunks_exact_mut(stride).enumerate() {
        let mut acc = [0.0f32; W];
        let at = cols.range(i);
        for &ColumnEntry { row: r, value: v } in &cols.entries[at] {
            let dr: &[f32; W] = d[r as usize * stride + start..][..W].try_into().expect("W wide");
            for j in 0..W {
                acc[j] = v.mul_add(dr[j], acc[j]);
            }
        }
        out[start..start + W].copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn columns_fma(g: &mut [f32], stride: usize, cols: Columns, d: &[f32]) {
    columns(g, stride, cols, d)
}

/// [`columns`] in 16-lane registers: tiles of up to eight registers, two
/// inputs in step (each input's sums are a chain of dependent fused
/// multiply-adds; two chains hide each other's latency).
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn columns_avx512(g: &mut [f32], stride: usize, cols: Columns, d: &[f32]) {
    assert!(stride.is_multiple_of(ROW_LANES) && g.len() == cols.inputs() * stride, "a padded gradient");
    cols.check(d.len() / stride);
    let mut start = 0;
    while start < stride {
        let (regs, half) = tile_shape(stride - start);
        macro_rules! tile {
            ($($r:literal)*) => {
                match (regs, half) {
                    $(($r, false) => column_tiles_avx512::<$r, false>(g, stride, start, cols, d),)*
                    $(($r, true) => column_tiles_avx512::<$r, true>(g, stride, start, cols, d),)*
                    _ => unreachable!("a padded row is a multiple of 8 wide"),
                }
            };
        }
        tile!(0 1 2 3 4 5 6 7 8);
        start += regs * 16 + 8 * half as usize;
    }
}

/// One tile of `R` 16-lane registers and, with `H`, an 8-lane one of
/// [`columns_avx512`], for every input.
///
/// # Safety
/// The CPU must have AVX-512F; `columns_avx512`'s checks hold (every row
/// index is a row of `d`, `start + 16·R + 8·H <= stride`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn column_tiles_avx512<const R: usize, const H: bool>(
    g: &mut [f32],
    stride: usize,
    start: usize,
    cols: Columns,
    d: &[f32],
) {
    use std::arch::x86_64::*;
    let n_in = cols.inputs();
    let width = 16 * R + 8 * H as usize;
    // Row `r`'s tile of deltas: inside `d` by the checks above.
    let delta = |r: u32| d.as_ptr().add(r as usize * stride + start);
    macro_rules! add {
        ($acc:ident, $half:ident, $k:expr) => {{
            let e = cols.entries.get_unchecked($k);
            let (p, v) = (delta(e.row), _mm512_set1_ps(e.value));
            for r in 0..R {
                $acc[r] = _mm512_fmadd_ps(v, _mm512_loadu_ps(p.add(16 * r)), $acc[r]);
            }
            if H {
                $half = _mm256_fmadd_ps(_mm512_castps512_ps256(v), _mm256_loadu_ps(p.add(16 * R)), $half);
            }
        }};
    }
    let store = |g: &mut [f32], i: usize, acc: &[__m512; R], half: __m256| {
        let out = &mut g[i * stride + start..][..width];
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out[16 * r..].as_mut_ptr(), *a);
        }
        if H {
            _mm256_storeu_ps(out[16 * R..].as_mut_ptr(), half);
        }
    };
    let mut i = 0;
    while i < n_in {
        let (a0, a1) = (cols.range(i).start, cols.range(i).end);
        let (mut acc_a, mut half_a) = ([_mm512_setzero_ps(); R], _mm256_setzero_ps());
        if i + 1 < n_in {
            let (b0, b1) = (cols.range(i + 1).start, cols.range(i + 1).end);
            let (mut acc_b, mut half_b) = ([_mm512_setzero_ps(); R], _mm256_setzero_ps());
            let both = (a1 - a0).min(b1 - b0);
            for k in 0..both {
                add!(acc_a, half_a, a0 + k);
                add!(acc_b, half_b, b0 + k);
            }
            for k in a0 + both..a1 {
                add!(acc_a, half_a, k);
            }
            for k in b0 + both..b1 {
                add!(acc_b, half_b, k);
            }
            store(g, i + 1, &acc_b, half_b);
        } else {
            for k in a0..a1 {
                add!(acc_a, half_a, k);
            }
        }
        store(g, i, &acc_a, half_a);
        i += 2;
    }
}
