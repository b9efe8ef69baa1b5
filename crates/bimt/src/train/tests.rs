//! The trainer's tests: schedules, the sparse step against its dense twin,
//! packed batches, configs and data it refuses.

use super::*;
use crate::{Regime, STUDY_ACTIVATION};

#[test]
fn lambda_schedule_boosts_at_a_quarter_and_a_half() {
    let c = TrainConfig::new(Regime::Bimt);
    assert_eq!(c.lambda_at(0), 0.01);
    assert_eq!(c.lambda_at(9_999), 0.01);
    assert!((c.lambda_at(10_000) - 0.1).abs() < 1e-7);
    assert!((c.lambda_at(39_999) - 1.0).abs() < 1e-6);
}

#[test]
fn the_sparse_first_layer_agrees_with_the_dense_twin() {
    // MNIST-like rows: most inputs exactly zero, a few whole rows dense.
    let (b, n_in) = (40, 784);
    let x: Vec<f32> = (0..b * n_in)
        .map(|k| if (k / n_in) % 13 == 0 || (k * 7919) % 5 == 0 { ((k % 97) as f32 / 97.0) - 0.2 } else { 0.0 })
        .collect();
    let labels: Vec<u8> = (0..b).map(|r| (r % 10) as u8).collect();
    for regime in [Regime::Vanilla, Regime::Bimt] {
        let cfg = TrainConfig::new(regime).batch_size(b).lr(1e-30);
        let mut sparse = Trainer::new(cfg.clone()).unwrap();
        let mut dense = Trainer::new(cfg).unwrap().with_dense_first_layer();
        let (a, z) = (sparse.step_batch(&x, &labels, 0), dense.step_batch(&x, &labels, 0));
        assert!((a.loss - z.loss).abs() <= 1e-6 * z.loss, "{regime}: loss {} vs {}", a.loss, z.loss);
        let (ga, gz) = (sparse.gradients().0.to_vec(), dense.gradients().0.to_vec());
        for (l, (ga, gz)) in ga.iter().zip(&gz).enumerate() {
            let scale = gz.iter().fold(0f32, |m, g| m.max(g.abs()));
            assert!(scale > 0.0);
            for (p, q) in ga.iter().zip(gz) {
                assert!((p - q).abs() <= 1e-5 * scale, "{regime} layer {l}: {p} vs {q}");
            }
        }
    }
}

#[test]
fn packed_rows_train_as_the_rows_themselves() {
    // Batches drawn from packed rows, each step after the last, give
    // the bits of the same rows passed whole (sparse and dense alike).
    let (b, n_in, n) = (8, 784, 30);
    let x: Vec<f32> = (0..n * n_in).map(|k| if (k * 31) % 7 == 0 { (k % 89) as f32 / 89.0 } else { 0.0 }).collect();
    let labels: Vec<u8> = (0..n).map(|r| (r % 10) as u8).collect();
    let packed = PackedRows::new(&x, n_in);
    for dense in [false, true] {
        let cfg = TrainConfig::new(Regime::Bimt).batch_size(b);
        let twin = |t: Trainer| if dense { t.with_dense_first_layer() } else { t };
        let (mut whole, mut drawn) = (twin(Trainer::new(cfg.clone()).unwrap()), twin(Trainer::new(cfg).unwrap()));
        for s in 0..4 {
            let batch: Vec<usize> = (0..b).map(|r| (r * 7 + s * 11) % n).collect();
            let rows: Vec<f32> = batch.iter().flat_map(|&r| x[r * n_in..(r + 1) * n_in].to_vec()).collect();
            let y: Vec<u8> = batch.iter().map(|&r| labels[r]).collect();
            let (a, z) = (whole.step_batch(&rows, &y, s), drawn.step_packed(&packed, &batch, &y, s));
            assert_eq!(a.loss.to_bits(), z.loss.to_bits(), "dense {dense}, step {s}");
        }
        assert_eq!(whole.model(), drawn.model(), "dense {dense}");
    }
}

#[test]
fn bad_configs_are_errors() {
    assert!(Trainer::new(TrainConfig::new(Regime::L1).steps(0)).is_err());
    assert!(Trainer::new(TrainConfig::new(Regime::Bimt).swap_every(0)).is_err());
    assert!(Trainer::new(TrainConfig::new(Regime::L1).lr(f32::NAN)).is_err());
}

#[test]
fn with_model_starts_from_the_given_weights_and_checks_their_sizes() {
    let cfg = TrainConfig::new(Regime::L1).steps(5);
    let mut t = Trainer::new(cfg.clone()).unwrap();
    let mut start = t.model().clone();
    start.layers[1].weight[7] += 0.5;
    assert_eq!(t.with_model(start.clone()).unwrap().model(), &start);
    let e =
        Trainer::new(cfg).unwrap().with_model(init_model(&[784, 50, 10], STUDY_ACTIVATION, 0).unwrap()).err().unwrap();
    assert!(e.to_string().contains("[784, 50, 10]"), "{e}");
}

#[test]
fn data_the_model_cannot_take_is_refused_before_training() {
    let set = |n: usize, side: usize, label: u8| ImageSet {
        images: vec![0.5; n * side * side],
        labels: vec![label; n],
        rows: side,
        cols: side,
    };
    let run = |train: &ImageSet, test: &ImageSet| {
        Trainer::new(TrainConfig::new(Regime::Vanilla).steps(5)).unwrap().run(train, Some(test), &mut |_| {})
    };
    let e = run(&set(200, 28, 3), &set(10, 32, 3)).err().unwrap().to_string();
    assert!(e.contains("test images have 1024 pixels (32x32), the model takes 784"), "{e}");
    let e = run(&set(200, 28, 3), &set(10, 28, 12)).err().unwrap().to_string();
    assert!(e.contains("test label 12 is outside the model's 10 classes"), "{e}");
    let e = run(&set(50, 28, 3), &set(10, 28, 3)).err().unwrap().to_string();
    assert!(e.contains("50 training images are fewer than one batch of 100"), "{e}");
}

#[test]
fn a_nan_stops_training_with_the_step_number() {
    let n = 300;
    let mut set =
        ImageSet { images: vec![0.5; n * 784], labels: (0..n).map(|i| (i % 10) as u8).collect(), rows: 28, cols: 28 };
    // A NaN pixel in the second epoch's data: every batch sees it eventually.
    set.images[5 * 784 + 3] = f32::NAN;
    let err =
        Trainer::new(TrainConfig::new(Regime::Vanilla).steps(10)).unwrap().run(&set, None, &mut |_| {}).unwrap_err();
    match err {
        BimtError::NonFinite { step, .. } => assert!((1..=3).contains(&step), "step {step}"),
        e => panic!("unexpected {e}"),
    }
}
