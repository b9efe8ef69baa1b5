//! How discovery scales with the network: one 500-pair discovery (every
//! hidden neuron patched, top-K selected) on ReLU networks from the study's
//! size to 784-1024-1024-1024-10, each with the floating-point operations it
//! needs, beside plain `gemm` products of the size that dominates it, in the
//! same run (`cargo bench -p modcirc-acdc --bench scaling`). Criterion's
//! throughput is then the rate: FLOP/s.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modcirc_acdc::{PatchingSweep, TaskImages};
use modcirc_dataset::{Bootstrap, ChecksumPolicy, Mnist, PairedDataset, Task};
use modcirc_mlp::linalg::mm_nt;
use modcirc_mlp::{Activation, Mlp};
use rayon::prelude::*;

const SHAPES: [&[usize]; 4] =
    [&[784, 100, 100, 10], &[784, 256, 256, 10], &[784, 1024, 1024, 10], &[784, 1024, 1024, 1024, 10]];
const PAIRS: usize = 500;

/// Multiply-adds (×2) of one sweep over `n` pairs: per hidden neuron, the
/// rank-1 update of the next layer's pre-activation and every layer
/// downstream of that.
fn sweep_flops(sizes: &[usize], n: usize) -> u64 {
    let hidden = sizes.len() - 2;
    let mut total = 0u64;
    for h in 0..hidden {
        let width = sizes[h + 1];
        let rank1 = n * sizes[h + 2];
        let downstream: usize = sizes[h + 2..].windows(2).map(|w| n * w[0] * w[1]).sum();
        total += (width * (rank1 + downstream)) as u64 * 2;
    }
    total
}

fn model(sizes: &[usize]) -> Mlp {
    let mut s = 1u64;
    let mut u = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    Mlp::init(sizes, Activation::Relu, &mut u).unwrap()
}

fn scaling(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist");
    let mnist = Mnist::load(root, ChecksumPolicy::Auto).unwrap();
    let pairs = PairedDataset::new(&mnist.test, &Task::circle(), 0).unwrap();
    let images = TaskImages::from_pairs(&mnist.test, &pairs.pairs);
    let idx = Bootstrap::new(images.n, PAIRS, 0).unwrap().resample(0);
    let threads = rayon::current_num_threads();
    let mut group = c.benchmark_group("scaling");
    group.sample_size(10);
    for sizes in SHAPES {
        let name = sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
        let m = model(sizes);
        let sweep = PatchingSweep::new(&m, &images).unwrap();
        let sub = sweep.subset(&idx);
        let flops = sweep_flops(sizes, PAIRS);
        eprintln!("{name}: {:.3} GFLOP per discovery", flops as f64 / 1e9);
        group.throughput(Throughput::Elements(flops));
        group.bench_with_input(BenchmarkId::new("discovery", &name), &sub, |b, sub| {
            b.iter(|| sub.scores().select(15).unwrap())
        });
        // The product that dominates: the widest layer after the first, on
        // the pairs, single-threaded and on every core at once.
        let (k, n_out) =
            sizes[1..sizes.len() - 1].windows(2).map(|w| (w[0], w[1])).max().unwrap_or((sizes[1], sizes[2]));
        let x = vec![0.5f32; PAIRS * k];
        let w = vec![0.25f32; n_out * k];
        let product = (2 * PAIRS * k * n_out) as u64;
        group.throughput(Throughput::Elements(product));
        group.bench_function(BenchmarkId::new(format!("gemm_{k}x{n_out}_1_thread"), &name), |b| {
            let mut out = vec![0.0f32; PAIRS * n_out];
            b.iter(|| mm_nt(&mut out, &x, &w, PAIRS, n_out, k, false))
        });
        group.throughput(Throughput::Elements(product * threads as u64));
        group.bench_function(BenchmarkId::new(format!("gemm_{k}x{n_out}_{threads}_threads"), &name), |b| {
            b.iter(|| {
                (0..threads).into_par_iter().for_each(|_| {
                    let mut out = vec![0.0f32; PAIRS * n_out];
                    mm_nt(&mut out, &x, &w, PAIRS, n_out, k, false);
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scaling);
criterion_main!(benches);
