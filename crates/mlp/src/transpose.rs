//! A matrix's corner transposed into another's: eight by eight in AVX2
//! registers, the edges one by one (the inference's input-major weights,
//! the trainer's first layer in and out of its input-major copy).

/// `dst[c * dst_stride + r] = src[r * src_stride + c]` for the `rows × cols`
/// corner of `src`: eight by eight in registers where the CPU has AVX2, the
/// edges one by one. Other entries of `dst` are left as they are.
pub(crate) fn transpose_into(
    src: &[f32],
    src_stride: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    assert!(src_stride >= cols && dst_stride >= rows, "strides at least as wide as the rows");
    assert!(rows == 0 || cols == 0 || (src.len() >= (rows - 1) * src_stride + cols), "the source's corner");
    assert!(rows == 0 || cols == 0 || (dst.len() >= (cols - 1) * dst_stride + rows), "the destination's corner");
    let (mut rows8, mut cols8) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        (rows8, cols8) = (rows / 8 * 8, cols / 8 * 8);
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { transpose_avx2(src, src_stride, rows8, cols8, dst, dst_stride) };
    }
    for r in 0..rows {
        let from = if r < rows8 { cols8 } else { 0 };
        for c in from..cols {
            dst[c * dst_stride + r] = src[r * src_stride + c];
        }
    }
}

/// The `[rows8, cols8]` corner of [`transpose_into`], in 8x8 blocks.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_avx2(w: &[f32], cols: usize, rows8: usize, cols8: usize, t: &mut [f32], stride: usize) {
    use std::arch::x86_64::*;
    for r in (0..rows8).step_by(8) {
        for c in (0..cols8).step_by(8) {
            // Rows r..r+8 of columns c..c+8: each slice is checked to be
            // 8 long, so the loads and stores stay inside the buffers.
            let mut v = [_mm256_setzero_ps(); 8];
            for (j, v) in v.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(w[(r + j) * cols + c..][..8].as_ptr());
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
                _mm256_storeu_ps(t[(c + j) * stride + r..][..8].as_mut_ptr(), *o);
            }
        }
    }
}
