//! One discovery: 500 pairs, both hidden layers, selection included, and
//! the forward passes it starts from (`cargo bench -p modcirc-acdc`). Uses the cached BIMT model of
//! `cargo xtask train` when there is one, else a freshly initialised model.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use modcirc_acdc::{DeviceSweep, PatchingSweep, TaskImages};
use modcirc_bimt::{checkpoint, STUDY_SIZES};
use modcirc_dataset::{Bootstrap, ChecksumPolicy, Mnist, PairedDataset, Task};
use modcirc_mlp::Mlp;

fn model() -> Mlp {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for p in ["artifacts/full/models", "artifacts/models"] {
        let dir = root.join(p);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut found: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("bimt"))
                    && p.extension().is_some_and(|e| e == "safetensors")
            })
            .collect();
        found.sort();
        if let Some(path) = found.first() {
            if let Ok(ck) = checkpoint::load(path, None) {
                eprintln!("benchmarking the trained model {}", path.display());
                return ck.model;
            }
        }
    }
    eprintln!("no trained BIMT model cached: benchmarking a freshly initialised one");
    modcirc_bimt::init_model(&STUDY_SIZES, modcirc_bimt::STUDY_ACTIVATION, 0).unwrap()
}

fn discovery(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist");
    let mnist = Mnist::load(root, ChecksumPolicy::Auto).unwrap();
    let model = model();
    let pairs = PairedDataset::new(&mnist.test, &Task::circle(), 0).unwrap();
    let images = TaskImages::from_pairs(&mnist.test, &pairs.pairs);
    // The forward passes a discovery starts with: every layer's activations
    // on the clean and the corrupted images of all the task's pairs.
    c.bench_function("patching_sweep_all_pairs", |b| b.iter(|| PatchingSweep::new(&model, &images).unwrap()));
    let sweep = PatchingSweep::new(&model, &images).unwrap();
    let idx = Bootstrap::new(images.n, 500, 0).unwrap().resample(0);
    c.bench_function("discovery_500_pairs_k15", |b| b.iter(|| sweep.subset(&idx).scores().select(15).unwrap()));
    // The `--device` path on candle's CPU backend: what the tensor form costs
    // where the rank-1 sweep is available.
    let on_device = DeviceSweep::new(&sweep, &candle_core::Device::Cpu).unwrap();
    c.bench_function("discovery_500_pairs_k15_candle_cpu", |b| {
        b.iter(|| on_device.scores(Some(&idx)).unwrap().select(15).unwrap())
    });
}

criterion_group!(benches, discovery);
criterion_main!(benches);
