//! Trains one planted MNIST-PVR model (STUDY §11) and prints its task
//! accuracy, IIA and strictness failure:
//! `cargo run --release -p modcirc-bimt --example planted -- [regime] [steps] [seed] [lr] [block] [hidden width] [lambda growth]`.

use modcirc_bimt::iit::{planted_quality, train_planted, PlantedConfig, DEFAULT_BLOCK, QUALITY_TRIALS};
use modcirc_bimt::{Regime, TrainConfig};
use modcirc_dataset::pvr::PvrSource;
use modcirc_dataset::{ChecksumPolicy, Mnist};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let regime: Regime = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(Regime::Vanilla);
    let steps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10_000);
    let seed: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let lr: f32 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1e-3);
    let block: usize = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(DEFAULT_BLOCK);
    let width: Option<usize> = args.get(6).map(|s| s.parse()).transpose()?;
    let growth: Option<f32> = args.get(7).map(|s| s.parse()).transpose()?;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
    let mnist = Mnist::load(dir, ChecksumPolicy::Auto)?;
    let (train, test) = (PvrSource::new(&mnist.train)?, PvrSource::new(&mnist.test)?);
    let mut train_config = TrainConfig::new(regime).steps(steps).seed(seed).lr(lr);
    if let Some(w) = width {
        train_config = train_config.sizes(&[784, w, w, 10]);
    }
    if let Some(g) = growth {
        train_config.lambda_growth = g;
    }
    let config = PlantedConfig { train: train_config, block };
    let out = train_planted(&config, &train, &mut |p| {
        if p.step % 1000 == 0 {
            eprintln!("step {} loss {:.4} running accuracy {:.3}", p.step, p.loss, p.running_accuracy);
        }
    })?;
    let q = planted_quality(&out.model, &out.alignment, &test, QUALITY_TRIALS, 1)?;
    println!(
        "{regime} steps {steps} seed {seed}: task {:.4} IIA {:.4} (per node {:.3?}) strictness failure {:.4} ({:.1} s)",
        q.task_accuracy, q.iia, q.iia_per_node, q.strictness_failure, out.timing.total_s
    );
    Ok(())
}
