//! A batch split across threads gives the bits of one thread's forward.
#![cfg(feature = "parallel")]

use modcirc_mlp::{Activation, Mlp, ROW_BLOCK};

#[test]
fn a_split_batch_gives_the_same_bits_as_one_thread() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let mut s = 11u64;
    let mut u = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    for (sizes, act) in [
        (vec![784, 100, 100, 10], Activation::Silu),
        (vec![13, 40, 7], Activation::Relu),
        (vec![30, 64, 64, 64, 5], Activation::Gelu),
    ] {
        let m = Mlp::init(&sizes, act, &mut u).unwrap();
        for n in [1, ROW_BLOCK - 1, ROW_BLOCK, 100, 500, 501] {
            let x: Vec<f32> = (0..n * sizes[0]).map(|_| u() as f32).collect();
            let three = pool.install(|| m.forward(&x, n));
            let one = one.install(|| m.forward(&x, n));
            assert!(three == one && one == m.forward_serial(&x, n), "{sizes:?} at {n} rows");
            // Each row as its own batch agrees to f32 rounding.
            let rows = m.activations(&x, n);
            let all = m.positions_to_classes(rows.post.last().unwrap());
            let err = all.iter().zip(&one).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(err <= 1e-4, "{sizes:?} at {n} rows: {err}");
        }
    }
}
