//! What the run measures about itself: inference time and the environment.

use std::path::Path;
use std::time::Instant;

use modcirc_bimt::{Regime, TrainConfig, Trainer, TRAINER_REVISION};
use modcirc_dataset::ImageSet;
use modcirc_metrics::Summary;
use modcirc_mlp::{DeviceSpec, Mlp};

use crate::rows::{Environment, InferenceResult, Retimed};
use crate::StudyError;

/// Images per batched inference.
pub const INFERENCE_BATCH: usize = 500;

/// Steps per round of [`retime_training`] (at most the configuration's own).
pub const RETIME_STEPS: usize = 2_000;

/// Rounds of [`retime_training`].
pub const RETIME_ROUNDS: usize = 3;

/// Each configuration's training timed again (RQ2-H2, issue 37): `rounds`
/// rounds, each training every configuration for `steps` steps (at most
/// its own) one after the other on its data, from its seed, so that
/// whatever else the machine does falls on all alike; each round's
/// optimizer and relocation seconds, per configuration.
pub fn retime_training(
    configs: &[(TrainConfig, &ImageSet)],
    steps: usize,
    rounds: usize,
) -> Result<Vec<Retimed>, StudyError> {
    let mut out: Vec<Retimed> = configs
        .iter()
        .map(|(c, _)| Retimed { steps: steps.min(c.steps), seconds: Vec::with_capacity(rounds) })
        .collect();
    for _ in 0..rounds {
        for ((config, train), r) in configs.iter().zip(&mut out) {
            let done = Trainer::new(config.clone().steps(r.steps))?.run(train, None, &mut |_| {})?;
            r.seconds.push(done.timing.optimizer_s + done.timing.relocation_s);
        }
    }
    Ok(out)
}

/// Per-image inference time on the first 500 images of `images`, batched
/// and one at a time, over `repeats` rounds (STUDY §6); the models are
/// interleaved within each round so that drift in the machine's speed hits
/// them alike; on this thread alone (`Mlp::forward_serial`), so that the
/// comparison between regimes is quiet. `progress` is called after each round.
pub fn inference_timing(
    models: &[(Regime, &Mlp)],
    images: &ImageSet,
    repeats: usize,
    progress: &mut dyn FnMut(usize),
) -> Vec<InferenceResult> {
    let px = images.pixels();
    let batch = INFERENCE_BATCH.min(images.len());
    let x = &images.images[..batch * px];
    let mut batched = vec![Vec::new(); models.len()];
    let mut single = vec![Vec::new(); models.len()];
    for round in 0..repeats {
        for (i, (_, model)) in models.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(model.forward_serial(x, batch));
            batched[i].push(t.elapsed().as_secs_f64() / batch as f64);
            let t = Instant::now();
            for b in 0..batch {
                std::hint::black_box(model.forward_serial(&x[b * px..(b + 1) * px], 1));
            }
            single[i].push(t.elapsed().as_secs_f64() / batch as f64);
        }
        progress(round + 1);
    }
    let nan = Summary { mean: f64::NAN, lo: f64::NAN, hi: f64::NAN, n: 0 };
    models
        .iter()
        .enumerate()
        .map(|(i, (regime, _))| InferenceResult {
            regime: *regime,
            batched_500_s: Summary::of(&batched[i]).unwrap_or(nan),
            batch_1_s: Summary::of(&single[i]).unwrap_or(nan),
        })
        .collect()
}

fn command_line(cmd: &str, args: &[&str], dir: &Path) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The machine, the toolchain and the commit of the checkout at `repo`.
pub fn environment(device: DeviceSpec, repo: &Path) -> Environment {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut commit = command_line("git", &["rev-parse", "--short=12", "HEAD"], repo);
    if !command_line("git", &["status", "--porcelain", "--untracked-files=no"], repo).is_empty() && commit != "unknown"
    {
        commit.push_str("-dirty");
    }
    Environment {
        cpu,
        logical_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        device: match device {
            DeviceSpec::Cpu => "cpu (training single-threaded; patching sweep on rayon's pool)".into(),
            d => format!("training on {d}; discovery on the cpu"),
        },
        rustc: command_line("rustc", &["--version"], repo),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: commit,
        trainer_revision: TRAINER_REVISION,
    }
}
