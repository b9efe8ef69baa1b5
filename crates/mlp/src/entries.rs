//! One row's nonzero inputs ([`Entries`]): their positions, found by
//! packers 16, 8 or 1 lane(s) at a time, and their values, which the
//! sparse kernels read in order.

use crate::kernel::Kernel;

/// Where one row's nonzero inputs are, in order, and their values: `len`
/// positions at the front of `idx` (which has room for a last
/// full-register store) and as many values at the front of `values`, so
/// the kernels read a row's values in order rather than gather them.
pub(crate) struct Entries {
    idx: Vec<u32>,
    values: Vec<f32>,
    len: usize,
    /// The width of the row: every position is below it.
    inputs: usize,
}

impl Entries {
    pub(crate) fn with_room(room: usize) -> Entries {
        Entries { idx: vec![0; room], values: vec![0.0; room], len: 0, inputs: 0 }
    }

    /// `row`'s nonzero inputs, or `false` if it has more than `most`
    /// (`self` has room for `most` plus a register of `kernel`'s).
    pub(crate) fn fill(&mut self, kernel: Kernel, row: &[f32], most: usize) -> bool {
        assert!(self.idx.len() >= most + kernel.lanes(), "room for a last store");
        let found = match kernel {
            // SAFETY: `Kernel::detect` found AVX-512F on this CPU (or a test
            // asked for a kernel `Kernel::available` lists); the room was
            // checked just above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { nonzeros_avx512(row, most, &mut self.idx) },
            // SAFETY: as above, with AVX2.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { nonzeros_avx2(row, most, &mut self.idx) },
            _ => nonzeros_plain(row, most, &mut self.idx),
        };
        self.len = found.unwrap_or(0);
        self.inputs = row.len();
        for (v, &i) in self.values.iter_mut().zip(&self.idx[..self.len]) {
            *v = row[i as usize];
        }
        found.is_some()
    }

    pub(crate) fn idx(&self) -> &[u32] {
        &self.idx[..self.len]
    }

    /// The row as the kernels read it.
    pub(crate) fn view(&self) -> Sparse<'_> {
        Sparse { idx: self.idx(), values: self.values(), inputs: self.inputs }
    }

    /// The values at [`Entries::idx`], in its order.
    pub(crate) fn values(&self) -> &[f32] {
        &self.values[..self.len]
    }
}

/// A row's nonzero inputs as the kernels read them: positions in order,
/// each below `inputs` (the kernels read the weights at them unchecked:
/// every constructor guarantees it), and their values.
#[derive(Clone, Copy)]
pub(crate) struct Sparse<'a> {
    idx: &'a [u32],
    values: &'a [f32],
    inputs: usize,
}

impl<'a> Sparse<'a> {
    /// A row of `inputs` whose nonzeros are at `idx`, with `values`.
    ///
    /// # Safety
    /// Every position must be below `inputs`, and `values` as long as `idx`.
    pub(crate) unsafe fn new_unchecked(idx: &'a [u32], values: &'a [f32], inputs: usize) -> Sparse<'a> {
        debug_assert!(values.len() == idx.len() && idx.iter().all(|&i| (i as usize) < inputs));
        Sparse { idx, values, inputs }
    }

    /// The positions, ascending.
    pub(crate) fn idx(&self) -> &'a [u32] {
        self.idx
    }

    /// The values at [`Sparse::idx`], in its order.
    pub(crate) fn values(&self) -> &'a [f32] {
        self.values
    }

    /// The width of the row: every position is below it.
    pub(crate) fn inputs(&self) -> usize {
        self.inputs
    }
}

/// The positions of `row`'s nonzero inputs, in order, into `idx`, and how
/// many there are; `None` if more than `most`.
fn nonzeros_plain(row: &[f32], most: usize, idx: &mut [u32]) -> Option<usize> {
    let mut k = 0;
    for (i, &v) in row.iter().enumerate() {
        if v != 0.0 {
            if k == most {
                return None;
            }
            idx[k] = i as u32;
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

/// [`nonzeros_plain`] eight inputs at a time and without a branch per
/// input (whether a pixel is zero is what a branch predictor cannot guess):
/// each group's nonzero positions are packed to the front of a register
/// and all eight stored, and the end moves past the nonzero ones only.
///
/// # Safety
/// The CPU must have AVX2 and POPCNT, and `idx` be at least `most + 8` long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn nonzeros_avx2(row: &[f32], most: usize, idx: &mut [u32]) -> Option<usize> {
    use std::arch::x86_64::*;
    let mut k = 0usize;
    let mut at = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let step = _mm256_set1_epi32(8);
    let zero = _mm256_setzero_ps();
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        let v = _mm256_loadu_ps(chunk.as_ptr());
        let mask = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, zero)) as usize;
        let order = _mm256_loadu_si256(PACK[mask].as_ptr().cast());
        // k <= most here, so k + 8 <= the slices' lengths.
        _mm256_storeu_si256(idx[k..k + 8].as_mut_ptr().cast(), _mm256_permutevar8x32_epi32(at, order));
        k += mask.count_ones() as usize;
        if k > most {
            return None;
        }
        at = _mm256_add_epi32(at, step);
    }
    let base = row.len() - chunks.remainder().len();
    let rest = nonzeros_plain(chunks.remainder(), most - k, &mut idx[k..])?;
    idx[k..k + rest].iter_mut().for_each(|i| *i += base as u32);
    Some(k + rest)
}

/// [`nonzeros_avx2`] sixteen inputs at a time, with AVX-512's compressing
/// moves in place of the permutation table; the last partial group by a
/// masked load.
///
/// # Safety
/// The CPU must have AVX-512F and POPCNT, and `idx` be at least `most + 16`
/// long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,popcnt")]
unsafe fn nonzeros_avx512(row: &[f32], most: usize, idx: &mut [u32]) -> Option<usize> {
    use std::arch::x86_64::*;
    let mut k = 0usize;
    let mut at = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let step = _mm512_set1_epi32(16);
    let zero = _mm512_setzero_ps();
    let mut chunks = row.chunks_exact(16);
    let mut group = |v: __m512, k: &mut usize, at: __m512i| {
        let mask = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, zero);
        // *k <= most here, so *k + 16 <= the slices' lengths.
        _mm512_storeu_epi32(idx[*k..*k + 16].as_mut_ptr().cast(), _mm512_maskz_compress_epi32(mask, at));
        *k += mask.count_ones() as usize;
        *k <= most
    };
    for chunk in &mut chunks {
        if !group(_mm512_loadu_ps(chunk.as_ptr()), &mut k, at) {
            return None;
        }
        at = _mm512_add_epi32(at, step);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // The lanes past the row's end load as zeros, so they are not kept.
        let lanes = (1u16 << rest.len()) - 1;
        if !group(_mm512_maskz_loadu_ps(lanes, rest.as_ptr()), &mut k, at) {
            return None;
        }
    }
    Some(k)
}
