//! A training set's nonzero inputs, found once before its first step
//! ([`PackedRows`]): each batch drawn from it is then read at its nonzeros
//! ([`crate::SparseInputs::fill_packed`]) instead of searched again.

use crate::kernel::Kernel;
use crate::sparse::{Entries, Sparse};

/// Rows' nonzero inputs found once, for batches drawn from them
/// ([`crate::SparseInputs::fill_packed`]): a training set's images are packed
/// before its first step rather than searched again at every one.
pub struct PackedRows {
    n_in: usize,
    start: Vec<usize>,
    idx: Vec<u32>,
    values: Vec<f32>,
}

impl PackedRows {
    /// The nonzeros of every row of `x` (`n_in` wide).
    ///
    /// # Panics
    /// If `x` is not a whole number of rows.
    pub fn new(x: &[f32], n_in: usize) -> PackedRows {
        assert!(x.len().is_multiple_of(n_in.max(1)), "whole rows of n_in inputs");
        let kernel = Kernel::detect();
        let mut e = Entries::with_room(n_in + kernel.lanes());
        let mut packed = PackedRows { n_in, start: vec![0], idx: Vec::new(), values: Vec::new() };
        for row in x.chunks_exact(n_in.max(1)) {
            let all = e.fill(kernel, row, n_in);
            debug_assert!(all, "a row has at most all its inputs nonzero");
            packed.idx.extend_from_slice(e.idx());
            packed.values.extend(e.idx().iter().map(|&i| row[i as usize]));
            packed.start.push(packed.idx.len());
        }
        packed
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inputs per row.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Row `r` written out whole into `dst` (`n_in` long).
    ///
    /// # Panics
    /// If `r` is not a row or `dst` not `n_in` long.
    pub fn unpack_into(&self, r: usize, dst: &mut [f32]) {
        assert_eq!(dst.len(), self.n_in, "a row of n_in inputs");
        dst.fill(0.0);
        let (idx, values) = self.row(r);
        idx.iter().zip(values).for_each(|(&i, &v)| dst[i as usize] = v);
    }

    /// Asks the CPU to bring `rows` into its caches: a drawn batch's rows
    /// lie anywhere in a set larger than the caches, so a trainer asks for
    /// the next batch's while it works on this one. A hint: nothing else
    /// happens, on any CPU; rows that are not rows are ignored.
    pub fn prefetch(&self, rows: &[usize]) {
        #[cfg(target_arch = "x86_64")]
        for &r in rows.iter().filter(|&&r| r < self.len()) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            let (idx, values) = self.row(r);
            for k in (0..idx.len()).step_by(16) {
                // SAFETY: a prefetch reads nothing and cannot fault; the
                // addresses are inside the rows anyway.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T1>(idx[k..].as_ptr().cast());
                    _mm_prefetch::<_MM_HINT_T1>(values[k..].as_ptr().cast());
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = rows;
    }

    /// Row `r` as the kernels read it.
    ///
    /// # Panics
    /// If `r` is not a row.
    pub(crate) fn view(&self, r: usize) -> Sparse<'_> {
        let (idx, values) = self.row(r);
        // SAFETY: every row was found by `Entries::fill` on a row `n_in`
        // wide (`PackedRows::new`), so its positions are below `n_in`.
        unsafe { Sparse::new_unchecked(idx, values, self.n_in) }
    }

    pub(crate) fn row(&self, r: usize) -> (&[u32], &[f32]) {
        assert!(r < self.len(), "row {r} of {} packed rows", self.len());
        let at = self.start[r]..self.start[r + 1];
        (&self.idx[at.clone()], &self.values[at])
    }
}
