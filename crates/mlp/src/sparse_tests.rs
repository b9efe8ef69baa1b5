//! The sparse first layer's forward and weight gradient against their
//! scalar twins, on every kernel.

use crate::kernel::Kernel;
use crate::packed::PackedRows;
use crate::sparse_grad::{weight_gradient_sparse, Columns};
use crate::sparse_train::*;

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
        (0..20).map(|i| c.entries[c.range(i)].iter().map(|e| (e.row, e.value.to_bits())).collect::<Vec<_>>()).collect()
    };
    assert_eq!(columns(&nz), columns(&direct));
}
