//! Matrix products on row-major buffers: safe wrappers over the `gemm`
//! crate (the `gemm` feature, on by default), or plain loops without it.
//! Single-threaded on purpose: at batch 100 a second thread costs more than
//! it saves, and one thread keeps the summation order, hence the weights,
//! reproducible.

/// A row-major matrix view: `rows x cols`, element (r, c) at `r*rs + c*cs`.
#[derive(Clone, Copy)]
struct View {
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl View {
    fn plain(rows: usize, cols: usize) -> View {
        View { rows, cols, rs: cols as isize, cs: 1 }
    }
    fn transposed(rows: usize, cols: usize) -> View {
        // The transpose of a stored `cols x rows` row-major matrix.
        View { rows, cols, rs: 1, cs: rows as isize }
    }
}

fn run<T: 'static + Copy + num_one::One>(c: &mut [T], a: &[T], av: View, b: &[T], bv: View, accumulate: bool) {
    assert_eq!(av.cols, bv.rows, "inner dimensions");
    assert_eq!(a.len(), av.rows * av.cols, "lhs buffer");
    assert_eq!(b.len(), bv.rows * bv.cols, "rhs buffer");
    assert_eq!(c.len(), av.rows * bv.cols, "dst buffer");
    product(c, a, av, b, bv, accumulate)
}

#[cfg(feature = "gemm")]
fn product<T: 'static + Copy + num_one::One>(c: &mut [T], a: &[T], av: View, b: &[T], bv: View, accumulate: bool) {
    let (m, n, k) = (av.rows, bv.cols, av.cols);
    // SAFETY: `run` checked that every index the strides reach lies inside
    // the three buffers, and `c` does not alias `a` or `b` (`&mut`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            av.cs,
            av.rs,
            b.as_ptr(),
            bv.cs,
            bv.rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The same products as plain loops, for builds without `gemm` (the results
/// differ from gemm's in the last bits: another summation order).
#[cfg(not(feature = "gemm"))]
fn product<T: 'static + Copy + num_one::One>(c: &mut [T], a: &[T], av: View, b: &[T], bv: View, accumulate: bool) {
    let (m, n, k) = (av.rows, bv.cols, av.cols);
    let at = |v: View, r: usize, col: usize| (r as isize * v.rs + col as isize * v.cs) as usize;
    for i in 0..m {
        for j in 0..n {
            let mut sum = if accumulate { c[i * n + j] } else { T::zero() };
            for t in 0..k {
                sum = sum + a[at(av, i, t)] * b[at(bv, t, j)];
            }
            c[i * n + j] = sum;
        }
    }
}

/// The element types the products take (`f32`, `f64`).
pub mod num_one {
    /// A float the products take: `1` (`gemm`'s scale factors), `0`, `+`, `×`.
    pub trait One: Copy + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> {
        /// `1`.
        fn one() -> Self;
        /// `0`.
        fn zero() -> Self;
    }
    impl One for f32 {
        fn one() -> Self {
            1.0
        }
        fn zero() -> Self {
            0.0
        }
    }
    impl One for f64 {
        fn one() -> Self {
            1.0
        }
        fn zero() -> Self {
            0.0
        }
    }
}

/// `c[m,n] (+)= a[m,k] · b[n,k]ᵀ`
pub fn mm_nt<T: 'static + Copy + num_one::One>(c: &mut [T], a: &[T], b: &[T], m: usize, n: usize, k: usize, acc: bool) {
    run(c, a, View::plain(m, k), b, View::transposed(k, n), acc)
}

/// `c[m,n] (+)= a[m,k] · b[k,n]`
pub fn mm_nn<T: 'static + Copy + num_one::One>(c: &mut [T], a: &[T], b: &[T], m: usize, n: usize, k: usize, acc: bool) {
    run(c, a, View::plain(m, k), b, View::plain(k, n), acc)
}

/// `c[m,n] (+)= a[k,m]ᵀ · b[k,n]`
pub fn mm_tn<T: 'static + Copy + num_one::One>(c: &mut [T], a: &[T], b: &[T], m: usize, n: usize, k: usize, acc: bool) {
    run(c, a, View::transposed(m, k), b, View::plain(k, n), acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for t in 0..k {
                    c[i * n + j] += a[i * k + t] * b[t * n + j];
                }
            }
        }
        c
    }
    fn transpose(x: &[f64], r: usize, c: usize) -> Vec<f64> {
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = x[i * c + j];
            }
        }
        t
    }

    #[test]
    fn the_three_layouts_agree_with_a_naive_product() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, n, k);
        let mut c = vec![0.0; m * n];
        mm_nn(&mut c, &a, &b, m, n, k, false);
        let close = |x: &[f64]| x.iter().zip(&want).all(|(p, q)| (p - q).abs() < 1e-12);
        assert!(close(&c));
        mm_nt(&mut c, &a, &transpose(&b, k, n), m, n, k, false);
        assert!(close(&c));
        mm_tn(&mut c, &transpose(&a, m, k), &b, m, n, k, false);
        assert!(close(&c));
        mm_nn(&mut c, &a, &b, m, n, k, true);
        assert!(c.iter().zip(&want).all(|(p, q)| (p - 2.0 * q).abs() < 1e-12));
    }
}
