//! Which vector kernel the CPU runs ([`Kernel`], found once per process),
//! and the aligned, padded, input-major copies of the weights that every
//! kernel reads.
//!
//! The padding: rows of the transposed weights are padded to the kernel's
//! lanes (16 on AVX-512, 8 otherwise), so that a tile never needs a masked
//! load, and start on a 64-byte cache line, so that a 16-lane load never
//! splits one.

use std::sync::OnceLock;

use crate::transpose::transpose_into;

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
pub(crate) fn transpose(w: &[f32], rows: usize, cols: usize, stride: usize) -> Aligned {
    assert!(stride >= rows && stride.is_multiple_of(8), "a padded stride");
    let mut aligned = Aligned::zeros(stride * cols);
    transpose_into(w, cols, rows, cols, aligned.as_mut_slice(), stride);
    aligned
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
}
