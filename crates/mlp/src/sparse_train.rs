//! The first layer of a training step over the inputs' nonzeros only: the
//! forward product and the weight gradient.
//!
//! About 81% of MNIST's pixels are exactly zero, and the first layer holds
//! most of a step's work (78 400 of the study network's 89 400 weights,
//! once in the forward and once in the weight gradient). Both products
//! here skip the zero inputs, which adds nothing to any sum (`0 · w` is `+0`
//! or `-0` for a finite `w`, and a sum that starts at `+0` is left as it is
//! by either), so each is *exactly* a plain loop of fused multiply-adds in
//! a fixed order over every input:
//!
//! * forward: `out[r, o] = (Σ_i x[r, i] · w[o, i]) + b[o]`, the sum from
//!   `+0` in the inputs' order (as [`Mlp::forward`](crate::Mlp::forward)'s
//!   sparse rows sum it);
//! * weight gradient: `g[o, i] = Σ_r δ[r, o] · x[r, i]`, from `+0` in the
//!   rows' order.
//!
//! Every kernel (AVX-512, AVX2 with FMA, and plain loops, which call
//! `f32::mul_add`) computes those sums, so all give the same bits, and
//! tests hold them to a scalar twin over every input. [`SparseInputs`]
//! finds a batch's nonzero positions once, for both products; the weights
//! and the gradient are input-major ([`InputMajor`]), each input's row a
//! contiguous run of outputs.

use crate::kernel::{padded, Aligned, Kernel, ROW_LANES};
use crate::packed::PackedRows;
use crate::sparse::{add_rows, add_rows_with, Entries, Sparse};
pub use crate::sparse_grad::weight_gradient_sparse;
use crate::sparse_grad::ColumnEntry;
use crate::transpose::transpose_into;

/// Where each row of a batch has nonzero inputs, found once per batch
/// (for the forward and the weight gradient both).
pub struct SparseInputs {
    pub(crate) kernel: Kernel,
    /// The rows' nonzeros, where the batch was found here (`fill`,
    /// `fill_rows`); a batch of packed rows is read where it lies.
    pub(crate) rows: Vec<Entries>,
    /// The packed rows of the batch, when it came from `fill_packed`.
    pub(crate) packed: Option<Vec<usize>>,
    pub(crate) n: usize,
    pub(crate) n_in: usize,
    /// The same nonzeros input by input (for the weight gradient), each
    /// input in a bucket of room for every row: input `i`'s are
    /// `col[i·n..][..col_len[i]]`, rows ascending, each beside its value
    /// (one cache line written per entry, not two; no counting pass: a
    /// batch is filled in one).
    pub(crate) col_len: Vec<u32>,
    pub(crate) col: Vec<ColumnEntry>,
}

impl Default for SparseInputs {
    fn default() -> Self {
        SparseInputs::new()
    }
}

impl SparseInputs {
    /// No batch yet, on the widest kernel this CPU has.
    pub fn new() -> SparseInputs {
        SparseInputs::with_kernel(Kernel::detect())
    }

    pub(crate) fn with_kernel(kernel: Kernel) -> SparseInputs {
        SparseInputs { kernel, rows: Vec::new(), packed: None, n: 0, n_in: 0, col_len: Vec::new(), col: Vec::new() }
    }

    /// Finds the nonzero inputs of the `n` rows of `x` (`[n, n_in]`),
    /// reusing the buffers of the last batch.
    ///
    /// # Panics
    /// If `x` is not `n · n_in` long.
    pub fn fill(&mut self, x: &[f32], n: usize, n_in: usize) {
        assert_eq!(x.len(), n * n_in, "a batch of n rows of n_in inputs");
        self.fill_rows(x.chunks_exact(n_in.max(1)).take(n), n_in);
    }

    /// [`SparseInputs::fill`] from rows wherever they lie (a sampled
    /// batch's images, read in place).
    ///
    /// # Panics
    /// If a row is not `n_in` long.
    pub fn fill_rows<'a>(&mut self, rows: impl IntoIterator<Item = &'a [f32]>, n_in: usize) {
        let (kernel, room) = (self.kernel, n_in + self.kernel.lanes());
        if self.n_in != n_in {
            self.rows.clear();
        }
        let mut n = 0;
        for row in rows {
            assert_eq!(row.len(), n_in, "a row of the batch has n_in inputs");
            if self.rows.len() == n {
                self.rows.push(Entries::with_room(room));
            }
            let all = self.rows[n].fill(kernel, row, n_in);
            debug_assert!(all, "a row has at most all its inputs nonzero");
            n += 1;
        }
        (self.n, self.n_in, self.packed) = (n, n_in, None);
        let rows = &self.rows;
        fill_columns(&mut self.col_len, &mut self.col, n, n_in, |r| rows[r].view());
    }

    /// [`SparseInputs::fill`] from rows of `packed` (a training set's
    /// images, their nonzeros found once): the rows `which` names, in order,
    /// read where they lie. [`forward_sparse_packed`] then takes the batch
    /// with the same `packed`.
    ///
    /// # Panics
    /// If a row is not one of `packed`'s.
    pub fn fill_packed(&mut self, packed: &PackedRows, which: &[usize]) {
        assert!(which.iter().all(|&r| r < packed.len()), "rows of the packed set");
        let (n, n_in) = (which.len(), packed.n_in());
        let mut rows = self.packed.take().unwrap_or_default();
        rows.clear();
        rows.extend_from_slice(which);
        (self.n, self.n_in) = (n, n_in);
        fill_columns(&mut self.col_len, &mut self.col, n, n_in, |r| packed.view(which[r]));
        self.packed = Some(rows);
    }

    /// The batch of the last fill, `[n, n_in]` row-major, written out.
    #[cfg(test)]
    fn batch(&self, packed: Option<&PackedRows>) -> Vec<f32> {
        let mut x = vec![0.0; self.n * self.n_in];
        for (r, row) in x.chunks_exact_mut(self.n_in.max(1)).enumerate().take(self.n) {
            let e = self.row(r, packed);
            e.idx().iter().zip(e.values()).for_each(|(&i, &v)| row[i as usize] = v);
        }
        x
    }

    /// Row `r` of the batch: from `packed` where the batch was filled from it.
    ///
    /// # Panics
    /// If the batch came from packed rows and `packed` is not given or not
    /// as wide (or the other way around).
    fn row<'a>(&'a self, r: usize, packed: Option<&'a PackedRows>) -> Sparse<'a> {
        match (&self.packed, packed) {
            (None, None) => self.rows[r].view(),
            (Some(which), Some(p)) => {
                assert!(p.n_in() == self.n_in, "the packed rows the batch was filled from");
                p.view(which[r])
            }
            (None, Some(_)) => panic!("a batch found here: forward_sparse takes it"),
            (Some(_), None) => panic!("a batch of packed rows: forward_sparse_packed takes it"),
        }
    }

    /// Rows of the batch.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Nonzero inputs in the whole batch.
    pub fn nonzeros(&self) -> usize {
        self.col_len.iter().map(|&k| k as usize).sum()
    }
}

/// The nonzeros of `n` rows (`row(r)`, each `n_in` wide) input by input,
/// rows ascending: each row's entries appended to their inputs' buckets,
/// rows in order.
fn fill_columns<'a>(
    col_len: &mut Vec<u32>,
    col: &mut Vec<ColumnEntry>,
    n: usize,
    n_in: usize,
    row: impl Fn(usize) -> Sparse<'a>,
) {
    col_len.clear();
    col_len.resize(n_in, 0);
    col.resize(n * n_in, ColumnEntry::default());
    for r in 0..n {
        let e = row(r);
        assert_eq!(e.inputs(), n_in, "rows of n_in inputs");
        for (&i, &v) in e.idx().iter().zip(e.values()) {
            let i = i as usize;
            // An input is nonzero at most once per row: its bucket of
            // `n` has room.
            let at = i * n + col_len[i] as usize;
            col[at] = ColumnEntry { row: r as u32, value: v };
            col_len[i] += 1;
        }
    }
}

/// A layer's weights (or their gradient) input-major: `[n_in, stride]`,
/// the stride `n_out` padded to the kernel's lanes with zeros, each row on
/// a 64-byte cache line.
pub struct InputMajor {
    pub(crate) kernel: Kernel,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) stride: usize,
    pub(crate) data: Aligned,
    /// The deltas of the last weight gradient padded to the stride (kept
    /// to save an allocation per step).
    pub(crate) deltas: Vec<f32>,
}

impl InputMajor {
    /// Zeros for a layer of `n_in` inputs and `n_out` outputs.
    pub fn zeros(n_in: usize, n_out: usize) -> InputMajor {
        InputMajor::with_kernel(n_in, n_out, Kernel::detect())
    }

    pub(crate) fn with_kernel(n_in: usize, n_out: usize, kernel: Kernel) -> InputMajor {
        let stride = padded(n_out, ROW_LANES);
        InputMajor { kernel, n_in, n_out, stride, data: Aligned::zeros(n_in * stride), deltas: Vec::new() }
    }

    /// Copies `weight` (`[n_out, n_in]`, `nn.Linear`'s layout) in.
    ///
    /// # Panics
    /// If `weight` is not `n_out · n_in` long.
    pub fn set_from(&mut self, weight: &[f32]) {
        assert_eq!(weight.len(), self.n_out * self.n_in, "an [n_out, n_in] weight");
        transpose_into(weight, self.n_in, self.n_out, self.n_in, self.data.as_mut_slice(), self.stride);
    }

    /// Copies the values out into `weight` (`[n_out, n_in]`).
    ///
    /// # Panics
    /// If `weight` is not `n_out · n_in` long.
    pub fn write_to(&self, weight: &mut [f32]) {
        assert_eq!(weight.len(), self.n_out * self.n_in, "an [n_out, n_in] weight");
        transpose_into(self.data.as_slice(), self.stride, self.n_in, self.n_out, weight, self.n_in);
    }

    /// Every value, padding included (`[n_in, stride]`): an element-wise
    /// update (an optimizer's) runs on this layout as on `nn.Linear`'s, the
    /// padding staying zero where its gradient is.
    pub fn values(&self) -> &[f32] {
        self.data.as_slice()
    }

    /// [`InputMajor::values`], to change.
    pub fn values_mut(&mut self) -> &mut [f32] {
        self.data.as_mut_slice()
    }

    /// Inputs (rows).
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Outputs (the unpadded width of a row).
    pub fn n_out(&self) -> usize {
        self.n_out
    }
}

/// `out[n, n_out] = x[n, n_in] · Wᵀ + b` for the batch `x` whose nonzero
/// inputs `nz` holds (see the module's docs for the order of the sums).
///
/// # Panics
/// If the shapes disagree: `w` of another kernel or width than `nz`,
/// `bias` or `out` of another width; if `nz` was filled from packed rows
/// ([`forward_sparse_packed`] takes those).
pub fn forward_sparse(w: &InputMajor, bias: &[f32], nz: &SparseInputs, out: &mut [f32]) {
    forward_rows(w, bias, nz, None, out)
}

/// [`forward_sparse`] for a batch that [`SparseInputs::fill_packed`]
/// filled from `packed`, read where it lies.
///
/// # Panics
/// As [`forward_sparse`]; if `nz` was not filled from packed rows or
/// `packed` is not as wide.
pub fn forward_sparse_packed(w: &InputMajor, bias: &[f32], nz: &SparseInputs, packed: &PackedRows, out: &mut [f32]) {
    forward_rows(w, bias, nz, Some(packed), out)
}

fn forward_rows(w: &InputMajor, bias: &[f32], nz: &SparseInputs, packed: Option<&PackedRows>, out: &mut [f32]) {
    let (n, n_in, n_out, stride) = (nz.n, w.n_in, w.n_out, w.stride);
    assert!(w.kernel == nz.kernel && nz.n_in == n_in, "weights and inputs of one kernel and width");
    assert!(out.len() == n * n_out && bias.len() == n_out, "the batch's buffers");
    let wt = w.data.as_slice();
    let mut sums = [vec![0.0f32; stride], vec![0.0f32; stride]];
    let finish = |o: &mut [f32], s: &[f32]| o.iter_mut().zip(s).zip(bias).for_each(|((o, s), b)| *o = s + b);
    let row = |r: usize| nz.row(r, packed);
    let mut r = 0;
    while r < n {
        let [sa, sb] = &mut sums;
        if w.kernel == Kernel::Plain {
            // `add_rows` rounds each product on this kernel: the exact
            // fused sums here.
            add_rows_with::<true>(wt, row(r), sa);
            finish(&mut out[r * n_out..(r + 1) * n_out], sa);
            r += 1;
        } else if r + 1 < n {
            add_rows(w.kernel, wt, stride, row(r), sa, Some((row(r + 1), sb)));
            finish(&mut out[r * n_out..(r + 1) * n_out], sa);
            finish(&mut out[(r + 1) * n_out..(r + 2) * n_out], sb);
            r += 2;
        } else {
            add_rows(w.kernel, wt, stride, row(r), sa, None);
            finish(&mut out[r * n_out..(r + 1) * n_out], sa);
            r += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse_grad::Columns;

    /// A batch of `n × n_in` inputs, about `share` of them nonzero, and
    /// every other value from a fixed sequence of "random" numbers.
    fn batch(n: usize, n_in: usize, share: f64, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n * n_in).map(|_| if next() < share { (next() * 2.0 - 1.0) as f32 } else { 0.0 }).collect()
    }

    /// The slow twin: every input, one `mul_add` at a time, in the order
    /// the module's docs state.
    fn forward_twin(w: &[f32], b: &[f32], x: &[f32], n: usize, n_in: usize, n_out: usize) -> Vec<f32> {
        let mut out = vec![0.0; n * n_out];
        for r in 0..n {
            for o in 0..n_out {
                let mut acc = 0.0f32;
                for i in 0..n_in {
                    acc = x[r * n_in + i].mul_add(w[o * n_in + i], acc);
                }
                out[r * n_out + o] = acc + b[o];
            }
        }
        out
    }

    fn gradient_twin(delta: &[f32], x: &[f32], n: usize, n_in: usize, n_out: usize) -> Vec<f32> {
        let mut g = vec![0.0; n_out * n_in];
        for o in 0..n_out {
            for i in 0..n_in {
                let mut acc = 0.0f32;
                for r in 0..n {
                    acc = x[r * n_in + i].mul_add(delta[r * n_out + o], acc);
                }
                g[o * n_in + i] = acc;
            }
        }
        g
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn every_kernel_gives_the_twins_bits_on_many_shapes() {
        let mut shapes = 0;
        for (n, n_in, n_out) in [(1, 1, 1), (2, 3, 5), (7, 17, 9), (16, 784, 100), (33, 50, 130), (5, 300, 257)] {
            for share in [0.0, 0.05, 0.19, 0.6, 1.0] {
                let x = batch(n, n_in, share, (n * 7 + n_in) as u64);
                let w = batch(n_out, n_in, 1.0, 3);
                let b = batch(1, n_out, 1.0, 5);
                let delta = batch(n, n_out, 0.9, 11);
                let want_y = forward_twin(&w, &b, &x, n, n_in, n_out);
                let want_g = gradient_twin(&delta, &x, n, n_in, n_out);
                for kernel in Kernel::available() {
                    let mut nz = SparseInputs::with_kernel(kernel);
                    // Another batch first: the one under test is filled over it.
                    nz.fill(&batch(n + 3, n_in, 0.5, 99), n + 3, n_in);
                    nz.fill(&x, n, n_in);
                    assert_eq!(nz.batch(None), x, "the batch as filled");
                    let mut wt = InputMajor::with_kernel(n_in, n_out, kernel);
                    wt.set_from(&w);
                    let mut y = vec![f32::NAN; n * n_out];
                    forward_sparse(&wt, &b, &nz, &mut y);
                    assert_eq!(bits(&y), bits(&want_y), "forward {kernel:?} {n}x{n_in}->{n_out} share {share}");
                    let mut gt = InputMajor::with_kernel(n_in, n_out, kernel);
                    gt.set_from(&w); // overwritten: the gradient does not add to what was there
                    weight_gradient_sparse(&delta, &nz, &mut gt);
                    let mut g = vec![f32::NAN; n_out * n_in];
                    gt.write_to(&mut g);
                    assert_eq!(bits(&g), bits(&want_g), "gradient {kernel:?} {n}x{n_in}->{n_out} share {share}");
                    shapes += 1;
                }
            }
        }
        assert!(shapes >= 30);
    }

    #[test]
    fn weights_go_in_and_out_unchanged() {
        for (n_in, n_out) in [(1, 1), (9, 8), (784, 100), (13, 31)] {
            let w = batch(n_out, n_in, 1.0, 7);
            let mut t = InputMajor::zeros(n_in, n_out);
            t.set_from(&w);
            let mut back = vec![0.0; w.len()];
            t.write_to(&mut back);
            assert_eq!(back, w);
        }
    }

    #[test]
    fn a_batch_of_other_rows_reuses_the_buffers() {
        let mut nz = SparseInputs::new();
        let x = batch(10, 20, 0.3, 1);
        nz.fill(&x, 10, 20);
        let count = x.iter().filter(|v| **v != 0.0).count();
        assert_eq!(nz.nonzeros(), count);
        nz.fill(&x[..4 * 20], 4, 20);
        assert_eq!((nz.rows(), nz.nonzeros()), (4, x[..80].iter().filter(|v| **v != 0.0).count()));
        assert_eq!(nz.batch(None), &x[..80]);
        // A wider batch after a narrower one, and rows read where they lie.
        let y = batch(12, 20, 0.7, 2);
        nz.fill_rows(y.chunks_exact(20).rev(), 20);
        let reversed: Vec<f32> = y.chunks_exact(20).rev().flatten().copied().collect();
        assert_eq!(nz.batch(None), reversed);
        nz.fill(&x, 10, 20);
        assert_eq!(nz.batch(None), x);
        // Rows packed once, drawn in any order, give what filling them does.
        let packed = PackedRows::new(&y, 20);
        assert_eq!(packed.len(), 12);
        let mut direct = SparseInputs::new();
        direct.fill_rows([7, 0, 11, 7].map(|r| &y[r * 20..(r + 1) * 20]), 20);
        nz.fill_packed(&packed, &[7, 0, 11, 7]);
        assert_eq!((nz.batch(Some(&packed)), nz.nonzeros()), (direct.batch(None), direct.nonzeros()));
        // And the forward reads them where they lie, to the same bits.
        let mut w = InputMajor::zeros(20, 9);
        w.set_from(&batch(9, 20, 1.0, 3));
        let b = vec![0.5; 9];
        let (mut read, mut found) = (vec![f32::NAN; 36], vec![f32::NAN; 36]);
        forward_sparse_packed(&w, &b, &nz, &packed, &mut read);
        forward_sparse(&w, &b, &direct, &mut found);
        assert_eq!(bits(&read), bits(&found));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| forward_sparse(&w, &b, &nz, &mut read)));
        assert!(caught.is_err(), "a packed batch needs its packed rows");
        let columns = |s: &SparseInputs| -> Vec<Vec<(u32, u32)>> {
            let c = Columns { room: s.n, len: &s.col_len, entries: &s.col };
            (0..20)
                .map(|i| c.entries[c.range(i)].iter().map(|e| (e.row, e.value.to_bits())).collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(columns(&nz), columns(&direct));
    }
}
