//! The forward pass's products on register tiles: the first layer's
//! skipping zero inputs, and the hidden layers' where they give `gemm`'s
//! bits.
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
//!
//! The hidden layers' inputs are dense, so [`dense_into`] runs them on
//! AVX-512 tiles that load each row of the transposed weights once for
//! several rows of the batch, only where `gemm`'s blocked kernel sums each
//! output in that same order: the tiles give [`Linear::forward_into`]'s
//! bits, and every caller of the dense product agrees with the forward.

use std::sync::OnceLock;

pub(crate) use crate::entries::{Entries, Sparse};
pub(crate) use crate::transpose::transpose_into;
use crate::Linear;

/// The largest share of nonzero inputs for which a row is multiplied
/// input by input.
pub const SPARSE_DENSITY: f64 = 0.35;

/// The fewest rows of a batch for which its sparse rows are multiplied
/// input by input: fewer do not pay for transposing the weights.
pub const SPARSE_MIN_ROWS: usize = 16;

/// The instructions the sums run on, found once per process: every path
/// adds each output's terms in the same order, one fused multiply-add at a
/// time, so `Avx512` and `Avx2` give the same bits (`Plain` rounds each
/// product first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kernel {
    /// Scalar loops, a multiply then an add.
    Plain,
    /// 8-lane registers, FMA.
    Avx2,
    /// 16-lane registers, FMA, compressing stores.
    Avx512,
}

impl Kernel {
    /// The best this CPU runs.
    pub(crate) fn detect() -> Kernel {
        static KERNEL: OnceLock<Kernel> = OnceLock::new();
        *KERNEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let has = |f: bool| f && std::arch::is_x86_feature_detected!("popcnt");
                if has(std::arch::is_x86_feature_detected!("avx512f")) {
                    return Kernel::Avx512;
                }
                if has(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
                    return Kernel::Avx2;
                }
            }
            Kernel::Plain
        })
    }

    /// The kernels this CPU can run, for tests of one against another.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Kernel> {
        let best = Kernel::detect();
        [Kernel::Plain, Kernel::Avx2, Kernel::Avx512].into_iter().filter(|&k| k <= best).collect()
    }

    /// Lanes of a register: a transposed row is padded with zeros to a
    /// multiple of this, so that every output is summed in a vector lane.
    pub(crate) fn lanes(self) -> usize {
        match self {
            Kernel::Avx512 => 16,
            Kernel::Plain | Kernel::Avx2 => 8,
        }
    }
}

/// What a row of the training's input-major weights is padded to on every
/// kernel: 8 lanes. The AVX-512 kernels end a row whose width is an odd
/// multiple of 8 with an 8-lane register, which costs half a 16-lane one on
/// CPUs that split 512-bit operations in two (the study's 100 outputs take
/// 104 lanes, not 112).
pub(crate) const ROW_LANES: usize = 8;

/// The layer's weights, input-major (`[n_in, stride]`, the stride
/// `n_out` padded to the kernel's lanes, each row starting on a 64-byte
/// cache line), made on first use and shared by the blocks (and threads) of
/// one forward.
pub(crate) struct Transposed<'a> {
    layer: &'a Linear,
    kernel: Kernel,
    /// Whether the batch is large enough for the sparse path.
    enabled: bool,
    cell: OnceLock<Aligned>,
}

impl<'a> Transposed<'a> {
    /// For a forward of `n` rows through `layer`.
    pub(crate) fn new(layer: &'a Linear, n: usize) -> Transposed<'a> {
        Transposed::with_kernel(layer, n, Kernel::detect())
    }

    fn with_kernel(layer: &'a Linear, n: usize, kernel: Kernel) -> Transposed<'a> {
        Transposed { layer, kernel, enabled: n >= SPARSE_MIN_ROWS, cell: OnceLock::new() }
    }

    fn stride(&self) -> usize {
        padded(self.layer.n_out, self.kernel.lanes())
    }

    fn get(&self) -> &[f32] {
        let layer = self.layer;
        self.cell.get_or_init(|| transpose(&layer.weight, layer.n_out, layer.n_in, self.stride())).as_slice()
    }
}

/// `n_out` rounded up to a multiple of `lanes`.
pub(crate) fn padded(n_out: usize, lanes: usize) -> usize {
    n_out.div_ceil(lanes) * lanes
}

/// `len` floats whose first starts a 64-byte cache line, inside `buf`.
pub(crate) struct Aligned {
    buf: Vec<f32>,
    start: usize,
    len: usize,
}

impl Aligned {
    pub(crate) fn zeros(len: usize) -> Aligned {
        const FLOATS: usize = 64 / std::mem::size_of::<f32>();
        let buf = vec![0.0f32; len + FLOATS - 1];
        // `Vec<f32>` is 4-byte aligned, so some start within 16 floats is 64.
        let start = buf.as_ptr().align_offset(64).min(FLOATS - 1);
        Aligned { buf, start, len }
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.buf[self.start..self.start + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// `[cols, stride]` from a row-major `[rows, cols]` (`stride` a multiple
/// of 8, at least `rows`), the padding zero.
fn transpose(w: &[f32], rows: usize, cols: usize, stride: usize) -> Aligned {
    assert!(stride >= rows && stride.is_multiple_of(8), "a padded stride");
    let mut aligned = Aligned::zeros(stride * cols);
    transpose_into(w, cols, rows, cols, aligned.as_mut_slice(), stride);
    aligned
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

    #[test]
    fn the_transpose_of_every_shape_around_the_blocks() {
        for rows in [1, 7, 8, 9, 16, 100, 101] {
            for cols in [1, 5, 8, 13, 24, 784] {
                let w: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
                for lanes in [8, 16] {
                    let stride = padded(rows, lanes);
                    let aligned = transpose(&w, rows, cols, stride);
                    let t = aligned.as_slice();
                    assert_eq!(t.len(), stride * cols);
                    assert_eq!(t.as_ptr() as usize % 64, 0, "rows start on a cache line");
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

    /// A layer of `n_in` inputs and `n_out` outputs, and `n` rows of inputs
    /// of which about a share `density` is nonzero, some rows denser.
    fn case(n_in: usize, n_out: usize, n: usize, density: f64, seed: u64) -> (Linear, Vec<f32>) {
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
