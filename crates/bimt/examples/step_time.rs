//! The optimizer step as `Trainer::run` times it (`TrainTiming::optimizer_s`
//! over the steps: the batch's loading and the step, not relocation or
//! evaluation), per regime, on the committed MNIST:
//! `cargo run --release -p modcirc-bimt --example step_time [steps] [regime]`.

use std::path::Path;

use modcirc_bimt::{Regime, TrainConfig, Trainer};
use modcirc_dataset::{ChecksumPolicy, Mnist};

fn main() {
    let steps: usize = std::env::args().nth(1).map_or(2_000, |s| s.parse().expect("steps: a whole number"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist");
    let m = Mnist::load(dir, ChecksumPolicy::Auto).expect("committed MNIST");
    let only = std::env::args().nth(2);
    for regime in Regime::ALL.into_iter().filter(|r| only.as_deref().is_none_or(|o| o == r.name())) {
        let cfg = TrainConfig::new(regime).steps(steps);
        let out = Trainer::new(cfg).expect("config").run(&m.train, None, &mut |_| {}).expect("training");
        println!("{:<10} {:>8.1} µs/step", regime.name(), out.timing.optimizer_s / steps as f64 * 1e6);
    }
}
