//! The study's forward at batch 500 and batch 1, on one thread and on
//! every thread (`cargo bench -p modcirc-mlp --bench forward`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modcirc_mlp::{Activation, Mlp};

fn forward(c: &mut Criterion) {
    let mut s = 3u64;
    let mut u = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let m = Mlp::init(&[784, 100, 100, 10], Activation::Silu, &mut u).unwrap();
    let x: Vec<f32> = (0..500 * 784).map(|_| u() as f32).collect();
    let mut g = c.benchmark_group("forward");
    for n in [1usize, 500] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("one_thread", n), &n, |b, &n| {
            b.iter(|| m.forward_serial(&x[..n * 784], n))
        });
        g.bench_with_input(BenchmarkId::new("all_threads", n), &n, |b, &n| b.iter(|| m.forward(&x[..n * 784], n)));
    }
    // The whole batch as one block: what the row blocks cost on one thread.
    g.throughput(Throughput::Elements(500));
    g.bench_function("one_block/500", |b| b.iter(|| m.activations(&x, 500)));
    g.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
