//! Activation patching and circuits on models trained on the committed MNIST.

mod common;

use common::{forward_editing, images, mnist};

use std::path::Path;
use std::sync::OnceLock;

use modcirc_acdc::{discover, Ablation, AcdcError, Circuit, DeviceSweep, DiscoveryConfig, PatchingSweep, TaskImages};
use modcirc_bimt::{checkpoint, Regime, TrainConfig, Trainer};
use modcirc_metrics::logit_difference;
use modcirc_mlp::{DeviceSpec, Mlp};

/// A model trained for 1 500 steps, saved and loaded back as a checkpoint.
fn trained(regime: Regime) -> Mlp {
    let out = Trainer::new(TrainConfig::new(regime).steps(1_500).seed(2))
        .unwrap()
        .run(&mnist().train, None, &mut |_| {})
        .unwrap();
    let bytes = checkpoint::to_bytes(&out.model, &out.layout).unwrap();
    checkpoint::from_bytes(&bytes, Path::new("trained.safetensors"), None).unwrap().0
}

fn bimt() -> &'static Mlp {
    static M: OnceLock<Mlp> = OnceLock::new();
    M.get_or_init(|| trained(Regime::Bimt))
}

/// One full forward per pair with neuron (h, i) of the corrupted run set to its clean value.
fn naive_score(model: &Mlp, imgs: &TaskImages, h: usize, i: usize) -> f64 {
    let px = imgs.pixels;
    let mut total = 0.0;
    for b in 0..imgs.n {
        let clean = model.activations(&imgs.clean[b * px..(b + 1) * px], 1);
        let a = forward_editing(model, &imgs.corrupted[b * px..(b + 1) * px], h, |z| z[i] = clean.post[h][i]);
        total += logit_difference(&a, clean.post.last().unwrap(), 10);
    }
    total / imgs.n as f64
}

#[test]
fn batched_and_naive_patching_agree_on_a_trained_checkpoint() {
    let imgs = images("circle", 60);
    let sweep = PatchingSweep::new(bimt(), &imgs).unwrap();
    let scores = sweep.scores();
    for h in 0..2 {
        for i in (0..100).step_by(7) {
            let naive = naive_score(bimt(), &imgs, h, i);
            let batched = scores.layers[h][i];
            assert!((naive - batched).abs() <= 1e-5, "neuron ({h}, {i}): naive {naive} vs batched {batched}");
        }
    }
}

#[test]
fn a_neuron_equal_on_clean_and_corrupted_leaves_the_corrupted_logits_unchanged() {
    let mut model = bimt().clone();
    // Neuron 5 of the first hidden layer sees no input: equal activations everywhere.
    model.layers[0].weight[5 * 784..6 * 784].fill(0.0);
    let imgs = images("line", 40);
    let sweep = PatchingSweep::new(&model, &imgs).unwrap();
    assert_eq!(sweep.patched_logits(0, &[5]), sweep.corrupted_logits());
    let scores = sweep.scores();
    assert_eq!(scores.layers[0][5], scores.baseline);
    assert!(scores.select(15).unwrap().dead[0].contains(&5));
}

#[test]
fn patching_the_whole_last_hidden_layer_gives_the_clean_logits() {
    let imgs = images("circle", 50);
    let sweep = PatchingSweep::new(bimt(), &imgs).unwrap();
    let all: Vec<usize> = (0..100).collect();
    let patched = sweep.patched_logits(1, &all);
    for (p, c) in patched.iter().zip(sweep.clean_logits()) {
        assert!((p - c).abs() <= 1e-5, "{p} vs {c}");
    }
    assert!(logit_difference(sweep.corrupted_logits(), sweep.clean_logits(), 10) > 0.1);
}

#[test]
fn dense_sparsity_with_k15_and_eps0() {
    let model = trained(Regime::Vanilla);
    let nodes = vec![(0..15).collect(), (40..55).collect()];
    let c = Circuit::new(&model, nodes, 0.0).unwrap();
    let want = 1.0 - (784.0 * 15.0 + 15.0 * 15.0 + 15.0 * 10.0) / 89_400.0;
    assert!((c.sparsity() - want).abs() < 1e-12, "{} vs {want}", c.sparsity());
    // With eps the sparsity can only grow.
    let pruned = Circuit::new(&model, vec![(0..15).collect(), (40..55).collect()], 0.2).unwrap();
    assert!(pruned.sparsity() > c.sparsity());
}

#[test]
fn full_circuit_reproduces_the_model_and_empty_circuit_is_the_bias() {
    let model = bimt();
    let imgs = images("circle", 30);
    let full = Circuit::new(model, vec![(0..100).collect(), (0..100).collect()], 0.0).unwrap();
    assert_eq!(full.sparsity(), 0.0);
    assert_eq!(full.logits(model, &imgs.clean, imgs.n), model.forward(&imgs.clean, imgs.n));
    let sweep = PatchingSweep::new(model, &imgs).unwrap();
    for ablation in [Ablation::Zero, Ablation::Mean, Ablation::Resample] {
        let e = full.evaluate(&sweep, ablation).unwrap();
        assert!(e.logit_difference < 1e-6, "{ablation}: {}", e.logit_difference);
    }
    let empty = Circuit::new(model, vec![vec![], vec![]], 0.0).unwrap();
    let logits = empty.logits(model, &imgs.clean, imgs.n);
    for row in logits.chunks_exact(10) {
        assert_eq!(row, &model.layers[2].bias[..]);
    }
    // Mean and resample ablation of an empty circuit are not the bias path.
    let mean = empty.evaluate(&sweep, Ablation::Mean).unwrap();
    let zero = empty.evaluate(&sweep, Ablation::Zero).unwrap();
    assert!(mean.logit_difference < zero.logit_difference);
}

#[test]
fn bad_inputs_are_errors() {
    let model = bimt();
    let imgs = images("circle", 20);
    let sweep = PatchingSweep::new(model, &imgs).unwrap();
    let scores = sweep.scores();
    assert!(matches!(scores.select(0), Err(AcdcError::BadK { k: 0, .. })));
    assert!(matches!(scores.select(101), Err(AcdcError::BadK { k: 101, width: 100, .. })));
    assert!(matches!(Circuit::new(model, vec![vec![1], vec![2]], 1.0), Err(AcdcError::BadEps(_))));
    assert!(matches!(Circuit::new(model, vec![vec![1], vec![2]], -0.1), Err(AcdcError::BadEps(_))));
    assert!(matches!(Circuit::new(model, vec![vec![100], vec![2]], 0.1), Err(AcdcError::Shape(_))));
    let mut empty = imgs.clone();
    empty.n = 0;
    assert!(matches!(PatchingSweep::new(model, &empty), Err(AcdcError::EmptyTask)));
    let small = modcirc_bimt::init_model(&[16, 9, 4, 3], modcirc_bimt::STUDY_ACTIVATION, 0).unwrap();
    assert!(matches!(PatchingSweep::new(&small, &imgs), Err(AcdcError::Shape(_))));
    assert!("median".parse::<Ablation>().is_err());
}

#[test]
fn bootstrap_intervals_contain_the_full_sample_value_and_are_seeded() {
    let model = bimt();
    let imgs = images("circle", 400);
    let cfg = DiscoveryConfig { bootstraps: 20, sample: 200, seed: 9, ..DiscoveryConfig::default() };
    let a = discover(model, &imgs, &cfg, &mut |_| {}).unwrap();
    assert_eq!(a.bootstraps.len(), 20);
    assert!(
        a.summary.logit_difference.contains(a.full.logit_difference),
        "{:?} vs {}",
        a.summary.logit_difference,
        a.full.logit_difference
    );
    assert!(a.summary.accuracy.contains(a.full.accuracy));
    // Faithfulness of each resample's circuit on its own pairs: defined and within a sane range.
    assert!(a.bootstraps.iter().all(|r| r.faithfulness.is_some_and(|f| f.is_finite() && f > -1.0 && f < 2.0)));
    assert_eq!(a.summary.faithfulness.map(|s| s.n), Some(20));
    let b = discover(model, &imgs, &cfg, &mut |_| {}).unwrap();
    let strip = |mut r: modcirc_acdc::DiscoveryReport| {
        r.bootstraps.iter_mut().for_each(|b| b.discovery_s = 0.0);
        r.summary.discovery_s = a.summary.discovery_s;
        serde_json::to_string(&r).unwrap()
    };
    assert_eq!(strip(a.clone()), strip(b));
    let other = discover(model, &imgs, &DiscoveryConfig { seed: 10, ..cfg }, &mut |_| {}).unwrap();
    assert_ne!(other.summary.logit_difference, a.summary.logit_difference);
}

#[test]
fn the_device_sweep_scores_and_selects_as_the_cpu_sweep() {
    let mut model = bimt().clone();
    // A dead neuron must score exactly the baseline on both paths.
    model.layers[0].weight[5 * 784..6 * 784].fill(0.0);
    let imgs = images("circle", 300);
    let sweep = PatchingSweep::new(&model, &imgs).unwrap();
    let on_device = DeviceSweep::new(&sweep, &candle_core::Device::Cpu).unwrap();
    let idx: Vec<usize> = (0..200).map(|i| (i * 37) % 300).collect();
    for (cpu, dev) in [
        (sweep.scores(), on_device.scores(None).unwrap()),
        (sweep.subset(&idx).scores(), on_device.scores(Some(&idx)).unwrap()),
    ] {
        assert_eq!(cpu.baseline, dev.baseline);
        assert_eq!(dev.layers[0][5], dev.baseline);
        for (h, (a, b)) in cpu.layers.iter().zip(&dev.layers).enumerate() {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                // Well inside DEAD_TOLERANCE (1e-6 relative): measured 1.2e-8.
                assert!((x - y).abs() <= 1e-7 * x.abs(), "neuron ({h}, {i}): cpu {x} vs device {y}");
            }
        }
        assert_eq!(cpu.select(15).unwrap(), dev.select(15).unwrap());
    }
    assert!(matches!(on_device.scores(Some(&[300])), Err(AcdcError::Shape(_))));
}

#[test]
#[cfg(not(feature = "cuda"))]
fn discovery_on_cuda_without_the_feature_says_so() {
    let imgs = images("circle", 50);
    let cfg = DiscoveryConfig { device: DeviceSpec::Cuda(0), bootstraps: 2, sample: 20, ..DiscoveryConfig::default() };
    let e = discover(bimt(), &imgs, &cfg, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("cuda:0") && e.contains("built without CUDA support"), "{e}");
}

#[test]
fn weights_that_overflow_f32_are_refused_not_turned_into_nan_metrics() {
    let imgs = images("circle", 20);
    let mut model = bimt().clone();
    // Finite weights, but the second hidden layer sums 100 values of 3e38.
    model.layers[0].bias.fill(3e38);
    model.layers[1].weight.fill(1.0);
    let Err(err) = PatchingSweep::new(&model, &imgs) else { panic!("an overflowing model is refused") };
    assert!(matches!(&err, AcdcError::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("is not finite"), "{err}");
    let err = discover(&model, &imgs, &DiscoveryConfig::default(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, AcdcError::NonFinite { .. }), "{err}");
    // Zero bootstraps would make every summary the mean of nothing.
    let none = DiscoveryConfig { bootstraps: 0, ..DiscoveryConfig::default() };
    let err = discover(bimt(), &imgs, &none, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("bootstraps = 0"), "{err}");
    // A resample too large to hold is refused before it is allocated.
    let huge = DiscoveryConfig { sample: 1_000_000, ..DiscoveryConfig::default() };
    assert!(huge.resample_bytes(bimt()) > modcirc_acdc::MAX_RESAMPLE_BYTES);
    let err = discover(bimt(), &imgs, &huge, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("sample = 1000000") && err.to_string().contains("GiB"), "{err}");
}
