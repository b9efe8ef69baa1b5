//! `cargo xtask train`: one model under a regime, written as a checkpoint with
//! its sidecar.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use modcirc_bimt::checkpoint;
use modcirc_bimt::{BimtError, Regime, TrainConfig, STUDY_ACTIVATION, STUDY_SIZES, STUDY_STEPS};
use modcirc_engine::jobs::run_jobs;
use modcirc_engine::keys::model_file_name;
use modcirc_engine::train::train;
use modcirc_engine::EngineError;
use modcirc_mlp::{Activation, DeviceSpec};
use modcirc_store::atomic::dir_of;

use crate::flags::{artifacts_dir, refuse_overwrite, remove_stale_temps, DataArgs, JobsArg};
use crate::progress::Progress;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// vanilla, l1, l1-local, l1-swap or bimt.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub regime: Option<Regime>,
    /// Train the five regimes one after the other.
    #[arg(long)]
    pub all: bool,
    /// Optimizer steps, 1 to 100 000 000.
    #[arg(long, default_value_t = STUDY_STEPS as i64, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    pub steps: i64,
    /// Seeds the initial weights and the batch order: the same seed gives
    /// the same checkpoint, byte for byte.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: u64,
    /// Layer widths, input first, comma-separated: the study's 784,100,100,10
    /// by default. Square hidden widths keep the study's grid; others go on
    /// a near-square grid (ARCHITECTURE.md). Each width 1 to 100 000.
    #[arg(long, value_delimiter = ',', default_values_t = STUDY_SIZES.map(|w| w as i64), allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub sizes: Vec<i64>,
    /// The hidden layers' activation: silu (the study's), relu, gelu,
    /// gelu-tanh, tanh, sigmoid or identity.
    #[arg(long, default_value_t = STUDY_ACTIVATION)]
    pub activation: Activation,
    /// Output file (one regime) or directory (--all); default
    /// ./artifacts/models/REGIME-seedS-DATA-HASH.safetensors.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// cpu (the fused trainer), or cuda / cuda:N (candle on the GPU; needs a `--features cuda` build).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// Refuse a training whose estimated memory is above this many GiB,
    /// 1 to 4 096 (the estimate counts weights, optimizer state, a batch's
    /// activations and the swap cost matrices).
    #[arg(long, value_name = "GIB", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_memory: u64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let mnist = args.data.load()?;
    let regimes: Vec<Regime> = match args.regime {
        Some(r) => vec![r],
        None => Regime::ALL.to_vec(),
    };
    if let Some(out) = args.out.as_ref().filter(|o| args.all && o.extension().is_some_and(|e| e == "safetensors")) {
        bail!("--out must be a directory with --all, got {}", out.display());
    }
    let mut planned = Vec::new();
    for regime in regimes {
        let config = TrainConfig::new(regime)
            .steps(args.steps as usize)
            .seed(args.seed)
            .sizes(&args.sizes.iter().map(|&w| w as usize).collect::<Vec<_>>())
            .activation(args.activation);
        let need = config.estimated_bytes_on(&mnist.train);
        if need > (args.max_memory as u128) << 30 {
            bail!(
                "--sizes {}: a {regime} training would hold about {:.1} GiB, above --max-memory {} GiB (raise it to train anyway)",
                args.sizes.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
                need as f64 / (1u64 << 30) as f64,
                args.max_memory
            );
        }
        let path = match (&args.out, args.all) {
            (Some(p), false) => p.clone(),
            (Some(dir), true) => dir.join(model_file_name(&config, &mnist, args.device)?),
            (None, _) => artifacts_dir().join("models").join(model_file_name(&config, &mnist, args.device)?),
        };
        let sidecar = checkpoint::sidecar_path(&path);
        refuse_overwrite(&[("--out", &path), ("its sidecar", &sidecar)], &args.data.inputs())?;
        remove_stale_temps([dir_of(&path)], args.quiet)?;
        planned.push((config, path));
    }
    let progress = Progress::new(args.quiet);
    let jobs = args.jobs.get();
    let done = run_jobs(&planned, jobs, |(config, path)| {
        let pb = progress.bar(config.steps as u64, config.regime.name());
        let mut on_step = |p: &modcirc_bimt::Progress| {
            if p.step.is_multiple_of(100) || p.step == p.steps {
                pb.set_position(p.step as u64);
                pb.set_message(format!("loss {:.4} cost {:.3} acc {:.3}", p.loss, p.penalty, p.running_accuracy));
            }
        };
        let t = train(config.clone(), args.device, &mnist, &mut on_step, jobs > 1)?;
        pb.finish_and_clear();
        let saved = checkpoint::save(path, &t.model, &t.layout, &t.meta)
            .map_err(|e| EngineError::from(e).within(format!("saving {}", path.display())))?;
        progress.result(&format!("{:>8}: {} -> {}", config.regime.label(), saved.meta.summary(), path.display()));
        Ok(())
    });
    done.map(|_| ()).map_err(with_train_flags)
}

/// A training error with the flags that set what went wrong.
pub fn with_train_flags(e: EngineError) -> anyhow::Error {
    let flags = match e.root() {
        EngineError::Bimt(BimtError::Config(_)) => Some("--sizes, --activation, --steps"),
        EngineError::Bimt(BimtError::Data(_)) => Some("--sizes, --data-dir"),
        _ => None,
    };
    match flags {
        Some(f) => anyhow::anyhow!("{e} ({f})"),
        None => anyhow::Error::new(e),
    }
}
