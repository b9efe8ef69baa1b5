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
    pub(crate) fn batch(&self, packed: Option<&PackedRows>) -> Vec<f32> {
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

/// One nonzero of a column: its row and its value.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ColumnEntry {
    pub(crate) row: u32,
    pub(crate) value: f32,
}
