//! The forward pass on MNIST's test images at batch 1, 100 and 500, on one
//! thread (`Mlp::forward_serial`) and on every thread (`Mlp::forward`), for
//! each model `*-seed0-*.safetensors` in `$MODCIRC_BENCH_MODELS` (by
//! default `artifacts/full/models`, the full study's checkpoints); without
//! any, a freshly initialised 784-100-100-10 SiLU network (the time does not
//! depend on the weights' values). `benches/compare_pytorch.py` runs this
//! beside PyTorch's forward of the same checkpoints and prints the ratios.
//!
//! `cargo bench -p modcirc-mlp --bench forward`

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modcirc_mlp::{file, Activation, Mlp};

/// The batch sizes timed (the same as the PyTorch script's).
const BATCHES: [usize; 3] = [1, 100, 500];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first 500 test images, `byte / 255` as the study reads them.
fn images() -> Vec<f32> {
    let path = workspace().join("fixtures/mnist/t10k-images-idx3-ubyte.gz");
    let idx = modcirc_dataset::idx::read_idx(&path, 3).expect("MNIST's test images in fixtures/mnist");
    idx.data[..500 * 784].iter().map(|&b| b as f32 / 255.0).collect()
}

/// `(name, model)` for each seed-0 checkpoint, by regime name.
fn models() -> Vec<(String, Mlp)> {
    let dir = std::env::var_os("MODCIRC_BENCH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("artifacts/full/models"));
    let mut found: Vec<(String, Mlp)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter_map(|p| {
                    let name = p.file_name()?.to_str()?.to_owned();
                    let regime = name.strip_suffix(".safetensors")?.split_once("-seed0-")?.0.to_owned();
                    Some((regime, file::load(&p, None).expect("a readable checkpoint").model))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if found.is_empty() {
        let mut s = 3u64;
        let mut u = move || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        found.push(("random".into(), Mlp::init(&[784, 100, 100, 10], Activation::Silu, &mut u).unwrap()));
    }
    found
}

fn forward(c: &mut Criterion) {
    let x = images();
    for (name, m) in models() {
        let mut g = c.benchmark_group(format!("forward/{name}"));
        for n in BATCHES {
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new("one_thread", n), &n, |b, &n| {
                b.iter(|| m.forward_serial(&x[..n * 784], n))
            });
            g.bench_with_input(BenchmarkId::new("all_threads", n), &n, |b, &n| b.iter(|| m.forward(&x[..n * 784], n)));
        }
        g.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
