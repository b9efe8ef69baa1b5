//! Training on the committed MNIST: the loss falls, runs are reproducible to
//! the byte, and relocation on trained weights is exact.

use std::path::Path;
use std::sync::OnceLock;

use modcirc_bimt::checkpoint;
use modcirc_bimt::relocate::{relocate_naive, Relocator, TOP_POSITIONS};
use modcirc_bimt::{ConnectionCost, Regime, TrainConfig, TrainOutcome, Trainer};
use modcirc_dataset::{ChecksumPolicy, Mnist};

fn mnist() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist");
        Mnist::load(dir, ChecksumPolicy::Auto).expect("committed MNIST")
    })
}

fn train(regime: Regime, steps: usize, seed: u64) -> TrainOutcome {
    let cfg = TrainConfig::new(regime).steps(steps).seed(seed).history_every(100);
    Trainer::new(cfg).unwrap().run(&mnist().train, None, &mut |_| {}).unwrap()
}

#[test]
fn a_few_hundred_steps_lower_the_loss_and_learn() {
    let out = train(Regime::Bimt, 400, 1);
    let first = out.history.first().unwrap();
    let last = out.history.last().unwrap();
    assert!(last.mse < 0.6 * first.mse, "mse {} -> {}", first.mse, last.mse);
    assert!(
        {
            let t = &mnist().test;
            out.model.accuracy(&t.images, &t.labels)
        } > 0.8
    );
    assert!(out.timing.relocations == 0, "no relocation before step 500");
}

#[test]
fn same_seed_gives_identical_checkpoint_bytes() {
    let a = train(Regime::L1Swap, 520, 7);
    let b = train(Regime::L1Swap, 520, 7);
    assert_eq!(a.timing.relocations, 1);
    let ba = checkpoint::to_bytes(&a.model, &a.layout).unwrap();
    let bb = checkpoint::to_bytes(&b.model, &b.layout).unwrap();
    assert!(ba == bb, "same seed, different weights");
    let c = train(Regime::L1Swap, 520, 8);
    assert_ne!(ba, checkpoint::to_bytes(&c.model, &c.layout).unwrap());
}

#[test]
fn fast_and_naive_relocation_agree_on_trained_weights() {
    for regime in [Regime::Bimt, Regime::L1] {
        let out = train(regime, 300, 3);
        let cost = ConnectionCost::swap(&out.layout);
        let mut fast = out.model.clone();
        let mut naive = out.model.clone();
        let rf = Relocator::new(&cost).relocate(&mut fast);
        let rn = relocate_naive(&mut naive, &cost, TOP_POSITIONS);
        assert!(!rf.swaps.is_empty());
        assert_eq!(rf, rn, "{regime}: fast and naive chose different swaps");
        assert_eq!(fast, naive);
        assert!(cost.value(&fast) < cost.value(&out.model));
        let x = &mnist().test.images[..64 * 784];
        let before = out.model.forward(x, 64);
        let after = fast.forward(x, 64);
        for (p, q) in before.iter().zip(&after) {
            assert!((p - q).abs() <= 1e-5, "{regime}: logits moved {p} -> {q}");
        }
    }
}
