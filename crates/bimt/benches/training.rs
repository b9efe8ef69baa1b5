//! Training-step, relocation and inference benchmarks on the committed MNIST.
//! `cargo bench -p modcirc-bimt` (nothing else running).

use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use modcirc_bimt::relocate::{relocate_naive, Relocator, TOP_POSITIONS};
use modcirc_bimt::{ConnectionCost, Regime, TrainConfig, Trainer};
use modcirc_dataset::{ChecksumPolicy, Mnist};
use modcirc_mlp::PackedRows;

fn mnist() -> Mnist {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist");
    Mnist::load(dir, ChecksumPolicy::Auto).expect("committed MNIST")
}

fn training_step(c: &mut Criterion) {
    let m = mnist();
    let px = m.train.pixels();
    // The step as `Trainer::run` takes it: a batch drawn from the training
    // set, whose nonzeros were found once (an optimizer step's work, the
    // batch's loading included). Batches cycle through the set.
    let images = PackedRows::new(&m.train.images, px);
    let batches: Vec<Vec<usize>> =
        (0..64).map(|k| (0..100).map(|r| (k * 937 + r * 601) % m.train.len()).collect()).collect();
    let labels: Vec<Vec<u8>> = batches.iter().map(|b| b.iter().map(|&i| m.train.labels[i]).collect()).collect();
    let mut g = c.benchmark_group("train_step_batch100");
    for regime in Regime::ALL {
        // The first layer over the nonzero pixels (the trainer's), then by
        // the dense products (the step before it), in one run.
        for dense in [false, true] {
            let t = Trainer::new(TrainConfig::new(regime)).unwrap();
            let mut t = if dense { t.with_dense_first_layer() } else { t };
            let mut s = 0;
            let name = format!("{}{}", regime.name(), if dense { "_dense" } else { "" });
            g.bench_function(name, |b| {
                b.iter(|| {
                    s += 1;
                    let k = s % batches.len();
                    let stats = t.step_packed(&images, &batches[k], &labels[k], s % 40_000);
                    images.prefetch(&batches[(k + 1) % batches.len()]);
                    stats
                })
            });
        }
    }
    g.finish();
}

fn relocation(c: &mut Criterion) {
    let m = mnist();
    // Weights after 2 000 BIMT steps: realistic magnitudes, no relocation yet.
    let cfg = TrainConfig::new(Regime::Bimt).steps(2_000).swap_every(1_000_000);
    let out = Trainer::new(cfg).unwrap().run(&m.train, None, &mut |_| {}).unwrap();
    let cost = ConnectionCost::swap(&out.layout);
    let relocator = Relocator::new(&cost);
    let mut g = c.benchmark_group("relocation");
    g.bench_function("fast", |b| {
        b.iter_batched(|| out.model.clone(), |mut model| relocator.relocate(&mut model), BatchSize::SmallInput)
    });
    g.sample_size(10);
    g.bench_function("naive", |b| {
        b.iter_batched(
            || out.model.clone(),
            |mut model| relocate_naive(&mut model, &cost, TOP_POSITIONS),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Inference (RQ2-H3): a forward pass at batch 500 and at batch 1, per
/// image, on weights after 2 000 steps of each regime (the pipeline's Fig. 7
/// times the same calls on the fully trained models).
fn inference(c: &mut Criterion) {
    let m = mnist();
    let px = m.test.pixels();
    let x = &m.test.images[..500 * px];
    let mut g = c.benchmark_group("inference");
    for regime in [Regime::Vanilla, Regime::Bimt] {
        let model = Trainer::new(TrainConfig::new(regime).steps(2_000))
            .unwrap()
            .run(&m.train, None, &mut |_| {})
            .unwrap()
            .model;
        g.throughput(criterion::Throughput::Elements(500));
        g.bench_function(format!("{}_batch500", regime.name()), |b| b.iter(|| model.forward(x, 500)));
        g.bench_function(format!("{}_batch1_x500", regime.name()), |b| {
            b.iter(|| {
                for r in 0..500 {
                    std::hint::black_box(model.forward(&x[r * px..(r + 1) * px], 1));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, training_step, relocation, inference);
criterion_main!(benches);
