//! The first layer's product skipping zero inputs, on register tiles.
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
//!
//! The sums run on the widest [`Kernel`] the CPU has: 16-lane AVX-512
//! registers, two rows in step, or 8-lane AVX2 with FMA, or plain loops.
//! The two vector kernels add each output's terms in the same order with
//! the same fused multiply-adds, so they give the same bits.

use std::sync::OnceLock;

pub(crate) use crate::entries::{Entries, Sparse};
use crate::kernel::{padded, transpose, Aligned, Kernel, ROW_LANES};
use crate::Linear;

/// The largest share of nonzero inputs for which a row is multiplied
/// input by input. An MNIST image has about 19% nonzero pixels (the
/// densest digits near 30%); at 0.35 the input-by-input sum still does
/// about a third of the dense product's multiplications, so every image of
/// the data set takes this path and a dense input (a foreign data set)
/// does not. A chosen bound, not a measured crossover.
pub const SPARSE_DENSITY: f64 = 0.35;

/// The fewest rows of a batch for which its sparse rows are multiplied
/// input by input: fewer do not pay for transposing the weights (the
/// transpose touches every weight once, as the dense product of one row
/// does, so over 16 rows it is a small share).
pub const SPARSE_MIN_ROWS: usize = 16;

/// The layer's weights, input-major (`[n_in, stride]`, the stride
/// `n_out` padded to the kernel's lanes, each row starting on a 64-byte
/// cache line), made on first use and shared by the blocks (and threads) of
/// one forward.
pub(crate) struct Transposed<'a> {
    pub(crate) layer: &'a Linear,
    pub(crate) kernel: Kernel,
    /// Whether the batch is large enough for the sparse path.
    pub(crate) enabled: bool,
    cell: OnceLock<Aligned>,
}

impl<'a> Transposed<'a> {
    /// For a forward of `n` rows through `layer`.
    pub(crate) fn new(layer: &'a Linear, n: usize) -> Transposed<'a> {
        Transposed::with_kernel(layer, n, Kernel::detect())
    }

    pub(crate) fn with_kernel(layer: &'a Linear, n: usize, kernel: Kernel) -> Transposed<'a> {
        Transposed { layer, kernel, enabled: n >= SPARSE_MIN_ROWS, cell: OnceLock::new() }
    }

    pub(crate) fn stride(&self) -> usize {
        padded(self.layer.n_out, self.kernel.lanes())
    }

    pub(crate) fn get(&self) -> &[f32] {
        let layer = self.layer;
        self.cell.get_or_init(|| transpose(&layer.weight, layer.n_out, layer.n_in, self.stride())).as_slice()
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
    let kernel = t.kernel;
    let stride = t.stride();
    // Two rows' nonzero inputs (the widest kernel sums two rows at once, so
    // that one row's wait for its weights overlaps the other's), each with
    // room for a last full-register store.
    let room = most + kernel.lanes();
    let mut entries = [Entries::with_room(room), Entries::with_room(room)];
    let mut sums = [vec![0.0; stride], vec![0.0; stride]];
    let finish = |o: &mut [f32], sums: &[f32]| {
        o.iter_mut().zip(sums).zip(&layer.bias).for_each(|((o, s), b)| *o = s + b);
    };
    let mut pending: Option<usize> = None;
    let mut dense = Vec::new();
    for (r, row) in x.chunks_exact(n_in).enumerate() {
        let slot = usize::from(pending.is_some());
        if !entries[slot].fill(kernel, row, most) {
            dense.push(r);
            continue;
        }
        if let Some(p) = pending.take() {
            let [sa, sb] = &mut sums;
            add_rows(kernel, t.get(), stride, entries[0].view(), sa, Some((entries[1].view(), sb)));
            finish(&mut out[p * n_out..(p + 1) * n_out], sa);
            finish(&mut out[r * n_out..(r + 1) * n_out], sb);
        } else if kernel != Kernel::Avx512 {
            add_rows(kernel, t.get(), stride, entries[0].view(), &mut sums[0], None);
            finish(&mut out[r * n_out..(r + 1) * n_out], &sums[0]);
        } else {
            pending = Some(r);
        }
    }
    if let Some(p) = pending {
        add_rows(kernel, t.get(), stride, entries[0].view(), &mut sums[0], None);
        finish(&mut out[p * n_out..(p + 1) * n_out], &sums[0]);
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

/// `sums = Σ x[i] · wt[i, ..]` over the nonzero inputs of `a`, and the same
/// for `b` (`wt` `[n_in, stride]`, each `sums` `stride` wide), each
/// output's terms in the inputs' order.
pub(crate) fn add_rows(
    kernel: Kernel,
    wt: &[f32],
    stride: usize,
    a: Sparse,
    sums_a: &mut [f32],
    b: Option<(Sparse, &mut [f32])>,
) {
    assert!(sums_a.len() == stride && stride.is_multiple_of(ROW_LANES), "sums as wide as a padded row");
    for e in std::iter::once(a).chain(b.as_ref().map(|b| b.0)) {
        assert!(e.inputs() * stride == wt.len(), "a row of the layer's inputs");
    }
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F (see `Entries::fill`); the widths
        // were checked just above.
        Kernel::Avx512 => unsafe { add_rows_avx512(wt, stride, a, sums_a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA (see `Entries::fill`).
        Kernel::Avx2 => unsafe {
            add_rows_fma(wt, a, sums_a);
            if let Some((b, sums_b)) = b {
                add_rows_fma(wt, b, sums_b);
            }
        },
        _ => {
            add_rows_with::<false>(wt, a, sums_a);
            if let Some((b, sums_b)) = b {
                add_rows_with::<false>(wt, b, sums_b);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_rows_fma(wt: &[f32], a: Sparse, sums: &mut [f32]) {
    add_rows_with::<true>(wt, a, sums)
}

/// The outputs in tiles whose sums stay in registers while the inputs
/// stream past: 64 at a time (eight 8-lane registers), then the rest.
#[inline(always)]
pub(crate) fn add_rows_with<const FMA: bool>(wt: &[f32], a: Sparse, sums: &mut [f32]) {
    let stride = sums.len();
    if stride == 104 {
        return tile::<104, FMA>(wt, stride, 0, a, sums);
    }
    let mut start = 0;
    while stride - start >= 64 {
        tile::<64, FMA>(wt, stride, start, a, sums);
        start += 64;
    }
    match stride - start {
        0 => {}
        8 => tile::<8, FMA>(wt, stride, start, a, sums),
        16 => tile::<16, FMA>(wt, stride, start, a, sums),
        24 => tile::<24, FMA>(wt, stride, start, a, sums),
        32 => tile::<32, FMA>(wt, stride, start, a, sums),
        40 => tile::<40, FMA>(wt, stride, start, a, sums),
        48 => tile::<48, FMA>(wt, stride, start, a, sums),
        56 => tile::<56, FMA>(wt, stride, start, a, sums),
        _ => unreachable!("a padded row is a multiple of 8 wide"),
    }
}

/// How many inputs ahead a row of weights is fetched into the cache (by
/// the 8-lane kernel; the 16-lane one, two rows at once, ran faster
/// without).
const PREFETCH: usize = 6;

#[inline(always)]
fn tile<const W: usize, const FMA: bool>(wt: &[f32], stride: usize, start: usize, e: Sparse, sums: &mut [f32]) {
    let mut acc = [0.0f32; W];
    let idx = e.idx();
    for (k, (&i, &v)) in idx.iter().zip(e.values()).enumerate() {
        #[cfg(target_arch = "x86_64")]
        if FMA {
            if let Some(&ahead) = idx.get(k + PREFETCH) {
                prefetch_row(wt, ahead as usize * stride + start, W);
            }
        }
        let row: &[f32; W] = wt[i as usize * stride + start..][..W].try_into().expect("W wide");
        for j in 0..W {
            acc[j] = madd::<FMA>(v, row[j], acc[j]);
        }
    }
    sums[start..start + W].copy_from_slice(&acc);
}

/// Asks for the cache lines of `wt[at..at + width]` (those inside `wt`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_row(wt: &[f32], at: usize, width: usize) {
    for line in (0..width).step_by(16) {
        if let Some(p) = wt.get(at + line) {
            // SAFETY: a prefetch reads nothing and cannot fault; the
            // address is inside `wt`.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((p as *const f32).cast()) };
        }
    }
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// [`add_rows`] in 16-lane registers: tiles of up to eight registers (128
/// outputs) per row, two rows at once where there are two, so that 16 sums
/// stay in registers while both rows' weights stream past (one row's wait
/// for its weights overlaps the other's).
///
/// # Safety
/// The CPU must have AVX-512F, and the rows be as [`add_rows`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_rows_avx512(wt: &[f32], stride: usize, a: Sparse, sums_a: &mut [f32], b: Option<(Sparse, &mut [f32])>) {
    let (b, mut sums_b) = match b {
        Some((b, s)) => (Some(b), Some(s)),
        None => (None, None),
    };
    let mut start = 0;
    while start < stride {
        let (regs, half) = tile_shape(stride - start);
        macro_rules! tile {
            ($($r:literal)*) => {
                match (regs, half) {
                    $(($r, false) => tile_avx512::<$r, false>(wt, stride, start, a, sums_a, b, sums_b.as_deref_mut()),)*
                    $(($r, true) => tile_avx512::<$r, true>(wt, stride, start, a, sums_a, b, sums_b.as_deref_mut()),)*
                    _ => unreachable!("a padded row is a multiple of 8 wide"),
                }
            };
        }
        tile!(0 1 2 3 4 5 6 7 8);
        start += regs * 16 + 8 * half as usize;
    }
}

/// The next tile of a row with `rest` outputs left (a multiple of 8): up to
/// eight 16-lane registers, and an 8-lane one where the row ends within it.
#[inline(always)]
pub(crate) fn tile_shape(rest: usize) -> (usize, bool) {
    let regs = (rest / 16).min(8);
    (regs, regs < 8 && rest - 16 * regs == 8)
}

/// One tile of `R` 16-lane registers and, with `H`, an 8-lane one
/// (`16·R + 8·H` outputs from `start`) of [`add_rows_avx512`]: the two
/// rows' inputs in step while both have some, then each row's rest.
///
/// # Safety
/// The CPU must have AVX-512F, and the rows be as [`add_rows`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const R: usize, const H: bool>(
    wt: &[f32],
    stride: usize,
    start: usize,
    a: Sparse,
    sums_a: &mut [f32],
    b: Option<Sparse>,
    sums_b: Option<&mut [f32]>,
) {
    use std::arch::x86_64::*;
    let width = 16 * R + 8 * H as usize;
    assert!(start + width <= stride, "a tile inside a row");
    // Each position `i` is below `inputs` (an `Entries` holds positions in
    // a row that wide) and `add_rows` checked that `wt` has `inputs` rows
    // of `stride`: so the `width` floats of the tile's row from `row(i)`
    // lie inside `wt`.
    let row = |i: u32| wt.as_ptr().add(i as usize * stride + start);
    macro_rules! add {
        ($acc:ident, $half:ident, $v:expr, $i:expr) => {{
            let (p, v) = (row($i), _mm512_set1_ps($v));
            for r in 0..R {
                $acc[r] = _mm512_fmadd_ps(v, _mm512_loadu_ps(p.add(16 * r)), $acc[r]);
            }
            if H {
                $half = _mm256_fmadd_ps(_mm512_castps512_ps256(v), _mm256_loadu_ps(p.add(16 * R)), $half);
            }
        }};
    }
    let (mut acc_a, mut half_a) = ([_mm512_setzero_ps(); R], _mm256_setzero_ps());
    let (mut acc_b, mut half_b) = ([_mm512_setzero_ps(); R], _mm256_setzero_ps());
    let (ia, va) = (a.idx(), a.values());
    let mut both = 0;
    if let Some(b) = b {
        let (ib, vb) = (b.idx(), b.values());
        both = ia.len().min(ib.len());
        for k in 0..both {
            add!(acc_a, half_a, va[k], ia[k]);
            add!(acc_b, half_b, vb[k], ib[k]);
        }
        for k in both..ib.len() {
            add!(acc_b, half_b, vb[k], ib[k]);
        }
    }
    for k in both..ia.len() {
        add!(acc_a, half_a, va[k], ia[k]);
    }
    let store = |sums: &mut [f32], acc: &[__m512; R], half: __m256| {
        let out = &mut sums[start..start + width];
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out[16 * r..].as_mut_ptr(), *a);
        }
        if H {
            _mm256_storeu_ps(out[16 * R..].as_mut_ptr(), half);
        }
    };
    store(sums_a, &acc_a, half_a);
    if let Some(sums_b) = sums_b {
        store(sums_b, &acc_b, half_b);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A layer of `n_in` inputs and `n_out` outputs, and `n` rows of inputs
    /// of which about a share `density` is nonzero, some rows denser.
    pub(crate) fn case(n_in: usize, n_out: usize, n: usize, density: f64, seed: u64) -> (Linear, Vec<f32>) {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut u = move || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let layer = Linear::init(n_in, n_out, &mut u);
        let x = (0..n * n_in)
            .map(|i| {
                let dense = (i / n_in) % 7 == 3;
                if dense || u() < density {
                    (u() * 2.0 - 1.0) as f32
                } else {
                    0.0
                }
            })
            .collect();
        (layer, x)
    }

    /// The kernels of this CPU that fuse their multiply-adds give the same
    /// bits (each output's terms in the same order), rows paired or not;
    /// the plain one is within f32 rounding of them.
    #[test]
    fn every_kernel_gives_the_same_sums() {
        let kernels = Kernel::available();
        for (n_in, n_out, n, density) in
            [(784, 100, 40, 0.2), (300, 1, 17, 0.1), (50, 129, 33, 0.3), (784, 300, 16, 0.05), (64, 16, 65, 0.0)]
        {
            let (layer, x) = case(n_in, n_out, n, density, (n_in * n_out + n) as u64);
            let run = |kernel: Kernel| {
                let mut out = vec![0.0; n * n_out];
                forward_into(&Transposed::with_kernel(&layer, n, kernel), &x, n, &mut out);
                out
            };
            let plain = run(Kernel::Plain);
            let fused: Vec<Vec<f32>> = kernels.iter().filter(|&&k| k != Kernel::Plain).map(|&k| run(k)).collect();
            for (k, out) in kernels.iter().skip(1).zip(&fused) {
                assert!(out.iter().zip(&fused[0]).all(|(a, b)| a.to_bits() == b.to_bits()), "{k:?} on {n_in}x{n_out}");
                let close = out.iter().zip(&plain).all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs()));
                assert!(close, "{k:?} against plain loops on {n_in}x{n_out}");
            }
            // A single row (the last of a block, unpaired) as it is in a pair.
            if let Some(&best) = kernels.last() {
                let mut out = vec![0.0; n_out];
                let alone = Transposed::with_kernel(&layer, SPARSE_MIN_ROWS, best);
                forward_into(&alone, &x[..n_in], 1, &mut out);
                let first = &run(best)[..n_out];
                assert!(out.iter().zip(first).all(|(a, b)| a.to_bits() == b.to_bits()), "{best:?} alone");
            }
        }
    }
}
