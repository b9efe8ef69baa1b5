//! The first layer's product that skips zero inputs.
//!
//! About 81% of MNIST's pixels are exactly zero and the first layer holds
//! most of a forward pass's multiplications, so a row of images can be
//! multiplied as a sum over its nonzero pixels only: each adds one
//! contiguous row of the transposed weights, scaled by the pixel, into the
//! layer's output. Only exact zeros are skipped (`0 · w` adds nothing for a
//! finite `w`), so the result is the same sum in another order: equal to
//! the dense product within f32 rounding. A row takes this path when its
//! own share of nonzero inputs is at most [`SPARSE_DENSITY`] and its batch
//! has at least [`SPARSE_MIN_ROWS`] rows, so that the transposed weights,
//! made once per product (once for a whole [`Mlp::forward`](crate::Mlp::forward)),
//! pay for themselves; every other row goes through the dense `gemm`
//! product. As there, the biases are added to the finished sums. A row's
//! first layer thus depends on the row alone and on whether its batch is
//! small, never on the other rows or the threads.

use std::sync::OnceLock;

use crate::Linear;

/// The largest share of nonzero inputs for which a row is multiplied
/// input by input.
pub const SPARSE_DENSITY: f64 = 0.35;

/// The fewest rows of a batch for which its sparse rows are multiplied
/// input by input: fewer do not pay for transposing the weights.
pub const SPARSE_MIN_ROWS: usize = 16;

/// The layer's weights, input-major (`[n_in, padded(n_out)]`), made on first
/// use and shared by the blocks (and threads) of one forward.
pub(crate) struct Transposed<'a> {
    layer: &'a Linear,
    /// Whether the batch is large enough for the sparse path.
    enabled: bool,
    cell: OnceLock<Vec<f32>>,
}

impl<'a> Transposed<'a> {
    /// For a forward of `n` rows through `layer`.
    pub(crate) fn new(layer: &'a Linear, n: usize) -> Transposed<'a> {
        Transposed { layer, enabled: n >= SPARSE_MIN_ROWS, cell: OnceLock::new() }
    }

    fn get(&self) -> &[f32] {
        self.cell.get_or_init(|| transpose(&self.layer.weight, self.layer.n_out, self.layer.n_in))
    }
}

/// Lanes of a register: the transposed rows are padded with zeros to a
/// multiple of this, so that every output is summed in a vector lane.
const LANES: usize = 8;

/// The padded width of a transposed row of `n_out` outputs.
fn padded(n_out: usize) -> usize {
    n_out.div_ceil(LANES) * LANES
}

/// `[cols, padded(rows)]` from a row-major `[rows, cols]`: eight by eight
/// in registers where the CPU has AVX2, the edges one by one.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let stride = padded(rows);
    let mut t = vec![0.0; stride * cols];
    let (mut rows8, mut cols8) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        (rows8, cols8) = (rows / LANES * LANES, cols / LANES * LANES);
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { transpose_avx2(w, rows8, cols, cols8, stride, &mut t) };
    }
    for r in 0..rows {
        let from = if r < rows8 { cols8 } else { 0 };
        for c in from..cols {
            t[c * stride + r] = w[r * cols + c];
        }
    }
    t
}

/// The `[rows8, cols8]` corner of [`transpose`], in 8x8 blocks.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_avx2(w: &[f32], rows8: usize, cols: usize, cols8: usize, stride: usize, t: &mut [f32]) {
    use std::arch::x86_64::*;
    for r in (0..rows8).step_by(LANES) {
        for c in (0..cols8).step_by(LANES) {
            // Rows r..r+8 of columns c..c+8: each slice is checked to be
            // 8 long, so the loads and stores stay inside the buffers.
            let mut v = [_mm256_setzero_ps(); LANES];
            for (j, v) in v.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(w[(r + j) * cols + c..][..LANES].as_ptr());
            }
            let a0 = _mm256_unpacklo_ps(v[0], v[1]);
            let a1 = _mm256_unpackhi_ps(v[0], v[1]);
            let a2 = _mm256_unpacklo_ps(v[2], v[3]);
            let a3 = _mm256_unpackhi_ps(v[2], v[3]);
            let a4 = _mm256_unpacklo_ps(v[4], v[5]);
            let a5 = _mm256_unpackhi_ps(v[4], v[5]);
            let a6 = _mm256_unpacklo_ps(v[6], v[7]);
            let a7 = _mm256_unpackhi_ps(v[6], v[7]);
            let b0 = _mm256_shuffle_ps::<0x44>(a0, a2);
            let b1 = _mm256_shuffle_ps::<0xEE>(a0, a2);
            let b2 = _mm256_shuffle_ps::<0x44>(a1, a3);
            let b3 = _mm256_shuffle_ps::<0xEE>(a1, a3);
            let b4 = _mm256_shuffle_ps::<0x44>(a4, a6);
            let b5 = _mm256_shuffle_ps::<0xEE>(a4, a6);
            let b6 = _mm256_shuffle_ps::<0x44>(a5, a7);
            let b7 = _mm256_shuffle_ps::<0xEE>(a5, a7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(b0, b4),
                _mm256_permute2f128_ps::<0x20>(b1, b5),
                _mm256_permute2f128_ps::<0x20>(b2, b6),
                _mm256_permute2f128_ps::<0x20>(b3, b7),
                _mm256_permute2f128_ps::<0x31>(b0, b4),
                _mm256_permute2f128_ps::<0x31>(b1, b5),
                _mm256_permute2f128_ps::<0x31>(b2, b6),
                _mm256_permute2f128_ps::<0x31>(b3, b7),
            ];
            for (j, o) in out.iter().enumerate() {
                _mm256_storeu_ps(t[(c + j) * stride + r..][..LANES].as_mut_ptr(), *o);
            }
        }
    }
}

/// `out[n, n_out] = x[n, n_in] · Wᵀ + b`, rows of few nonzero inputs
/// summed input by input (see the module's docs), the rest by the dense
/// product.
pub(crate) fn forward_into(t: &Transposed, x: &[f32], n: usize, out: &mut [f32]) {
    let layer = t.layer;
    let (n_in, n_out) = (layer.n_in, layer.n_out);
    assert!(x.len() == n * n_in && out.len() == n * n_out, "input and output buffers");
    let most = (SPARSE_DENSITY * n_in as f64) as usize;
    if !t.enabled || most == 0 {
        return layer.forward_into(x, n, out);
    }
    // One row's nonzero inputs, with room for a last 8-wide store.
    let mut idx = vec![0u32; most + LANES];
    let mut val = vec![0.0f32; most + LANES];
    let mut sums = vec![0.0; padded(n_out)];
    let mut dense = Vec::new();
    for (r, (row, o)) in x.chunks_exact(n_in).zip(out.chunks_exact_mut(n_out)).enumerate() {
        match nonzeros(row, most, &mut idx, &mut val) {
            Some(k) => {
                sums.iter_mut().for_each(|s| *s = 0.0);
                add_rows(t.get(), &idx[..k], &val[..k], &mut sums);
                o.iter_mut().zip(&sums).zip(&layer.bias).for_each(|((o, s), b)| *o = s + b);
            }
            None => dense.push(r),
        }
    }
    if dense.is_empty() {
        return;
    }
    if dense.len() == n {
        return layer.forward_into(x, n, out);
    }
    // The dense rows, gathered into one product and put back.
    let mut xs = Vec::with_capacity(dense.len() * n_in);
    for &r in &dense {
        xs.extend_from_slice(&x[r * n_in..(r + 1) * n_in]);
    }
    let mut ys = vec![0.0; dense.len() * n_out];
    layer.forward_into(&xs, dense.len(), &mut ys);
    for (&r, y) in dense.iter().zip(ys.chunks_exact(n_out)) {
        out[r * n_out..(r + 1) * n_out].copy_from_slice(y);
    }
}

/// `row`'s nonzero inputs, in order, into `idx` and `val` (at least
/// `most + LANES` long), and how many there are; `None` if more than `most`.
fn nonzeros(row: &[f32], most: usize, idx: &mut [u32], val: &mut [f32]) -> Option<usize> {
    assert!(idx.len() >= most + LANES && val.len() >= most + LANES, "room for a last 8-wide store");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above; the lengths were
        // checked just before.
        return unsafe { nonzeros_avx2(row, most, idx, val) };
    }
    let mut k = 0;
    for (i, &v) in row.iter().enumerate() {
        if v != 0.0 {
            if k == most {
                return None;
            }
            idx[k] = i as u32;
            val[k] = v;
            k += 1;
        }
    }
    Some(k)
}

/// For each 8-bit mask of nonzero lanes, the lanes to move to the front
/// (AVX2 has no compressing store; a permutation does it).
#[cfg(target_arch = "x86_64")]
const PACK: [[u32; 8]; 256] = {
    let mut table = [[0u32; 8]; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut lane, mut k) = (0, 0);
        while lane < 8 {
            if mask & (1 << lane) != 0 {
                table[mask][k] = lane as u32;
                k += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    table
};

/// [`nonzeros`] eight inputs at a time and without a branch per input
/// (whether a pixel is zero is what a branch predictor cannot guess): each
/// group's nonzero values and indices are packed to the front of a register
/// and all eight stored, and the end moves past the nonzero ones only.
///
/// # Safety
/// The CPU must have AVX2, and `idx` and `val` be at least `most + 8` long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn nonzeros_avx2(row: &[f32], most: usize, idx: &mut [u32], val: &mut [f32]) -> Option<usize> {
    use std::arch::x86_64::*;
    let mut k = 0usize;
    let mut at = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let step = _mm256_set1_epi32(LANES as i32);
    let zero = _mm256_setzero_ps();
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        let v = _mm256_loadu_ps(chunk.as_ptr());
        let mask = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, zero)) as usize;
        let order = _mm256_loadu_si256(PACK[mask].as_ptr().cast());
        // k <= most here, so k + 8 <= the slices' lengths.
        _mm256_storeu_ps(val[k..k + LANES].as_mut_ptr(), _mm256_permutevar8x32_ps(v, order));
        _mm256_storeu_si256(idx[k..k + LANES].as_mut_ptr().cast(), _mm256_permutevar8x32_epi32(at, order));
        k += mask.count_ones() as usize;
        if k > most {
            return None;
        }
        at = _mm256_add_epi32(at, step);
    }
    let base = row.len() - chunks.remainder().len();
    for (j, &v) in chunks.remainder().iter().enumerate() {
        if v != 0.0 {
            if k == most {
                return None;
            }
            idx[k] = (base + j) as u32;
            val[k] = v;
            k += 1;
        }
    }
    Some(k)
}

/// `sums += Σ v · wt[i, ..]` over the `(i, v)` entries, `sums` as wide as
/// a padded transposed row.
fn add_rows(wt: &[f32], idx: &[u32], val: &[f32], sums: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { add_rows_fma(wt, idx, val, sums) };
    }
    add_rows_with::<false>(wt, idx, val, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_rows_fma(wt: &[f32], idx: &[u32], val: &[f32], sums: &mut [f32]) {
    add_rows_with::<true>(wt, idx, val, sums)
}

/// The outputs in tiles whose sums stay in registers while the entries
/// stream past: 64 at a time (eight 8-lane registers), then the rest.
#[inline(always)]
fn add_rows_with<const FMA: bool>(wt: &[f32], idx: &[u32], val: &[f32], sums: &mut [f32]) {
    let stride = sums.len();
    if stride == 104 {
        return tile::<104, FMA>(wt, stride, 0, idx, val, sums);
    }
    let mut start = 0;
    while stride - start >= 64 {
        tile::<64, FMA>(wt, stride, start, idx, val, sums);
        start += 64;
    }
    match stride - start {
        0 => {}
        8 => tile::<8, FMA>(wt, stride, start, idx, val, sums),
        16 => tile::<16, FMA>(wt, stride, start, idx, val, sums),
        24 => tile::<24, FMA>(wt, stride, start, idx, val, sums),
        32 => tile::<32, FMA>(wt, stride, start, idx, val, sums),
        40 => tile::<40, FMA>(wt, stride, start, idx, val, sums),
        48 => tile::<48, FMA>(wt, stride, start, idx, val, sums),
        56 => tile::<56, FMA>(wt, stride, start, idx, val, sums),
        _ => unreachable!("a padded row is a multiple of {LANES} wide"),
    }
}

/// How many entries ahead a row of weights is fetched into the cache.
const PREFETCH: usize = 6;

#[inline(always)]
fn tile<const W: usize, const FMA: bool>(
    wt: &[f32],
    stride: usize,
    start: usize,
    idx: &[u32],
    val: &[f32],
    sums: &mut [f32],
) {
    let mut acc = [0.0f32; W];
    acc.copy_from_slice(&sums[start..start + W]);
    for (k, (&i, &v)) in idx.iter().zip(val).enumerate() {
        #[cfg(target_arch = "x86_64")]
        if FMA {
            if let Some(&ahead) = idx.get(k + PREFETCH) {
                let base = ahead as usize * stride + start;
                for line in (0..W).step_by(16) {
                    if let Some(p) = wt.get(base + line) {
                        // SAFETY: a prefetch reads nothing and cannot fault;
                        // the address is inside `wt`.
                        unsafe {
                            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                                (p as *const f32).cast(),
                            )
                        };
                    }
                }
            }
        }
        let row: &[f32; W] = wt[i as usize * stride + start..][..W].try_into().expect("W wide");
        for j in 0..W {
            acc[j] = madd::<FMA>(v, row[j], acc[j]);
        }
    }
    sums[start..start + W].copy_from_slice(&acc);
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transpose_of_every_shape_around_the_blocks() {
        for rows in [1, 7, 8, 9, 16, 100, 101] {
            for cols in [1, 5, 8, 13, 24, 784] {
                let w: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
                let t = transpose(&w, rows, cols);
                let stride = padded(rows);
                assert_eq!(t.len(), stride * cols);
                for c in 0..cols {
                    for r in 0..stride {
                        let want = if r < rows { w[r * cols + c] } else { 0.0 };
                        assert_eq!(t[c * stride + r], want, "{rows}x{cols} at ({r}, {c})");
                    }
                }
            }
        }
    }
}
