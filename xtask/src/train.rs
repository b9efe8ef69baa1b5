use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use modcirc_bimt::candle_train::CandleTrainer;
use modcirc_bimt::checkpoint::{self, Checkpoint, TrainMeta, SIDECAR_SCHEMA};
use modcirc_bimt::{BimtError, Regime, TrainConfig, Trainer, STUDY_ACTIVATION, STUDY_SIZES};
use modcirc_dataset::Mnist;
use modcirc_mlp::{Activation, DeviceSpec};
use modcirc_study::cache;

use crate::common::{
    artifacts_dir, dir_of, model_key, refuse_overwrite, remove_stale_temps, run_jobs, DataArgs, HeapWindow, JobsArg,
    Progress,
};
use indicatif::ProgressBar;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// vanilla, l1, l1-local, l1-swap or bimt.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub regime: Option<Regime>,
    /// Train the five regimes one after the other.
    #[arg(long)]
    pub all: bool,
    /// Optimizer steps, 1 to 100 000 000.
    #[arg(long, default_value_t = 40_000, allow_negative_numbers = true,
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
    /// ./artifacts/models/<regime>-seed<S>-<data>-<hash>.safetensors.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// cpu (the fused trainer), or cuda / cuda:N (candle on the GPU; needs a `--features cuda` build).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// `<regime>-seed<S>-<data>-<key>.safetensors`: the data directory's name
/// and the model's content key ([`model_key`]), so that models of other
/// data or settings never share a name; the widths and activation are
/// added where they are not the study's.
pub fn default_model_name(config: &TrainConfig, mnist: &Mnist, device: DeviceSpec) -> anyhow::Result<String> {
    let (regime, seed) = (config.regime, config.seed);
    let data: String = mnist
        .dir
        .file_name()
        .map(|n| {
            n.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
        })
        .unwrap_or_else(|| "data".into());
    let key = model_key(config, mnist, device)?;
    Ok(if config.sizes == STUDY_SIZES && config.activation == STUDY_ACTIVATION {
        format!("{regime}-seed{seed}-{data}-{key}.safetensors")
    } else {
        let sizes: Vec<String> = config.sizes.iter().map(usize::to_string).collect();
        format!("{regime}-seed{seed}-{}-{}-{data}-{key}.safetensors", sizes.join("x"), config.activation)
    })
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
        let path = match (&args.out, args.all) {
            (Some(p), false) => p.clone(),
            (Some(dir), true) => dir.join(default_model_name(&config, &mnist, args.device)?),
            (None, _) => artifacts_dir().join("models").join(default_model_name(&config, &mnist, args.device)?),
        };
        let sidecar = checkpoint::sidecar_path(&path);
        refuse_overwrite(&[("--out", &path), ("its sidecar", &sidecar)], &args.data.inputs())?;
        remove_stale_temps(dir_of(&path), args.quiet)?;
        planned.push((config, path));
    }
    let progress = Progress::new(args.quiet);
    let jobs = args.jobs.get();
    run_jobs(&planned, jobs, |(config, path)| {
        let pb = progress.bar(config.steps as u64, config.regime.name());
        let (meta, model, layout) = train_one(&mnist, config.clone(), args.device, &args.data, &pb, jobs > 1)?;
        let saved =
            checkpoint::save(path, &model, &layout, &meta).with_context(|| format!("saving {}", path.display()))?;
        let m = &saved.meta;
        progress.result(&format!(
            "{:>8}: test accuracy {:.4}, train {:.4}; {:.1} s (optimizer {:.1} s, relocation {:.2} s); peak heap {:.1} MiB -> {}",
            config.regime.label(),
            m.test_accuracy,
            m.train_accuracy,
            m.timing.total_s,
            m.timing.optimizer_s,
            m.timing.relocation_s,
            m.peak_heap_bytes.unwrap_or(0).saturating_sub(m.heap_at_start_bytes.unwrap_or(0)) as f64 / (1 << 20) as f64,
            path.display()
        ));
        Ok(())
    })?;
    Ok(())
}

/// Trains one model under its unit's claim and saves it at `path` with its
/// cache listing; returns the model as the file holds it (output
/// permutation folded in, so that a resumed run computes the same bits)
/// and what was saved.
#[allow(clippy::too_many_arguments)]
pub fn train_and_save(
    mnist: &Mnist,
    config: TrainConfig,
    device: DeviceSpec,
    data: &DataArgs,
    pb: &ProgressBar,
    concurrent: bool,
    path: &std::path::Path,
    claim: &modcirc_study::claim::Claim,
) -> anyhow::Result<(Checkpoint, checkpoint::Saved)> {
    let (meta, model, layout) = train_one(mnist, config, device, data, pb, concurrent)?;
    pb.finish_and_clear();
    claim.ensure_held()?;
    let saved = checkpoint::save(path, &model, &layout, &meta).with_context(|| format!("saving {}", path.display()))?;
    let sidecar = checkpoint::sidecar_path(path);
    cache::record(&cache::listing_path(path), &[(path, &saved.weights), (&sidecar, &saved.sidecar)])?;
    let (model, layout) = checkpoint::from_bytes(&saved.weights, path, None)?;
    Ok((Checkpoint { model, layout, meta: Some(saved.meta.clone()) }, saved))
}

/// Trains one model, showing its progress on `pb`, and measures it. With
/// `concurrent` (other trainings run beside it) the process's peak RSS says
/// nothing of this one and is not recorded; its heap peak is its thread's.
pub fn train_one(
    mnist: &Mnist,
    config: TrainConfig,
    device: DeviceSpec,
    data: &DataArgs,
    pb: &ProgressBar,
    concurrent: bool,
) -> anyhow::Result<(TrainMeta, modcirc_mlp::Mlp, modcirc_bimt::Layout)> {
    let regime = config.regime;
    if device == DeviceSpec::Cpu {
        // One step first, unmeasured: a thread's first training allocates
        // buffers it keeps (about 2 MiB of gemm workspace), which would
        // otherwise be charged to whichever model its thread trains first.
        let warm = config.clone().steps(1).history_every(1);
        Trainer::new(warm).and_then(|t| t.run(&mnist.train, None, &mut |_| {})).map_err(anyhow::Error::new)?;
    }
    let window = HeapWindow::start();
    let mut on_step = |p: &modcirc_bimt::Progress| {
        if p.step.is_multiple_of(100) || p.step == p.steps {
            pb.set_position(p.step as u64);
            pb.set_message(format!("loss {:.4} cost {:.3} acc {:.3}", p.loss, p.penalty, p.running_accuracy));
        }
    };
    let outcome = match device {
        DeviceSpec::Cpu => {
            Trainer::new(config.clone()).and_then(|t| t.run(&mnist.train, Some(&mnist.test), &mut on_step))
        }
        DeviceSpec::Cuda(_) => device
            .open()
            .map_err(BimtError::from)
            .and_then(|d| CandleTrainer::new(config.clone(), d))
            .and_then(|t| t.run(&mnist.train, Some(&mnist.test), &mut on_step)),
    }
    .map_err(|e| match e {
        BimtError::Config(m) => anyhow::anyhow!("{m} (--sizes, --activation, --steps)"),
        BimtError::Data(m) => anyhow::anyhow!("{m} (--sizes, --data-dir)"),
        e => anyhow::Error::new(e),
    })
    .with_context(|| format!("training {regime} on {device}"))?;
    let peak_heap = window.peak_heap();
    let peak_rss = if concurrent { None } else { modcirc_metrics::peak_rss_bytes() };
    pb.finish_and_clear();
    let meta = TrainMeta {
        schema: SIDECAR_SCHEMA,
        crate_version: env!("CARGO_PKG_VERSION").into(),
        train_accuracy: modcirc_bimt::accuracy(&outcome.model, &mnist.train),
        test_accuracy: modcirc_bimt::accuracy(&outcome.model, &mnist.test),
        config,
        timing: outcome.timing,
        peak_heap_bytes: Some(peak_heap),
        heap_at_start_bytes: Some(window.at_start),
        peak_rss_bytes: peak_rss,
        device: device.to_string(),
        device_memory: outcome.device_memory,
        data_dir: data.dir().display().to_string(),
        data_checksums: mnist.checksums.clone(),
        history: outcome.history,
        weights_sha256: None,
    };
    Ok((meta, outcome.model, outcome.layout))
}
