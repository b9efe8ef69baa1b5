//! `cargo xtask discover`: one discovery on one checkpoint and task.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{Ablation, AcdcError, DiscoveryConfig, DEFAULT_BOOTSTRAPS, DEFAULT_EPS, DEFAULT_K, DEFAULT_SAMPLE};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_dataset::{Mnist, Task};
use modcirc_mlp::DeviceSpec;
use modcirc_study::cache::sha256_file;
use modcirc_study::discovery::{discover_checkpoint, DiscoverOutput, DiscoverySettings, Split};
use modcirc_study::StudyError;

use crate::common::{
    bar, dir_of, fraction_below_one, refuse_overwrite, remove_stale_temps, write_json, DataArgs, ModelTask,
};

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub target: ModelTask,
    #[command(flatten)]
    pub flags: DiscoverFlags,
    /// Output JSON; default ./artifacts/discover/MODEL-TASK.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// No progress bars or progress lines; warnings and errors still print.
    #[arg(long)]
    pub quiet: bool,
}

/// The discovery's flags, as the command line names them.
#[derive(Args, Debug, Clone)]
pub struct DiscoverFlags {
    /// Neurons kept per hidden layer, 1 to the narrowest hidden width.
    #[arg(long, default_value_t = DEFAULT_K as i64, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub k: i64,
    /// Edge threshold, relative to the layer's largest |weight|, in [0, 1).
    #[arg(long, default_value_t = DEFAULT_EPS, allow_negative_numbers = true, value_parser = fraction_below_one)]
    pub eps: f64,
    /// zero, mean or resample.
    #[arg(long, default_value = "zero")]
    pub ablation: Ablation,
    /// Bootstrap resamples, 1 to 100 000.
    #[arg(long, default_value_t = DEFAULT_BOOTSTRAPS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub bootstraps: i64,
    /// Pairs per bootstrap resample, 1 to 1 000 000.
    #[arg(long, default_value_t = DEFAULT_SAMPLE as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub sample: i64,
    /// test or train.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Seeds the pairing shuffle and the bootstrap.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: u64,
    /// Where the patching sweep runs: cpu (the rank-1 sweep), or cuda /
    /// cuda:N with a `--features cuda` build. Circuit evaluation stays on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

impl DiscoverFlags {
    /// The settings, checked against the model before any work: K, eps,
    /// and what a resample of `--sample` pairs will allocate.
    pub fn checked(&self, ck: &Checkpoint) -> anyhow::Result<DiscoverySettings> {
        let settings = self.settings();
        settings.config.check(&ck.model).map_err(|e| anyhow::anyhow!("{e} (--sample, --bootstraps, --eps)"))?;
        Ok(settings)
    }

    pub fn settings(&self) -> DiscoverySettings {
        let config = DiscoveryConfig {
            k: self.k as usize,
            eps: self.eps,
            ablation: self.ablation,
            bootstraps: self.bootstraps as usize,
            sample: self.sample as usize,
            seed: self.seed,
            device: self.device,
        };
        DiscoverySettings { config, split: self.split }
    }
}

pub fn run(args: DiscoverArgs) -> anyhow::Result<()> {
    let task = args.target.parse_task()?;
    let path = args.out.clone().unwrap_or_else(|| args.target.default_out("discover", &task));
    refuse_overwrite(&[("--out", &path)], &args.target.inputs(&args.data))?;
    let ck = args.target.load()?;
    let settings = args.flags.checked(&ck)?;
    let mnist = args.data.load()?;
    args.target.check_provenance(&ck, &mnist, &args.data)?;
    let sha256 = sha256_file(&args.target.model)?;
    let out = discover_model(&mnist, (&ck, &args.target.model, &sha256), &task, &settings, args.quiet)?;
    remove_stale_temps(dir_of(&path), args.quiet)?;
    write_json(&path, &out)?;
    let s = &out.report.summary;
    let regime = out.inputs.regime.as_deref().unwrap_or("unknown (no sidecar)");
    println!(
        "{} (regime: {regime}, {}) on {}: logit difference {:.4} [{:.4}, {:.4}], sparsity {:.4} [{:.4}, {:.4}], accuracy {:.4} [{:.4}, {:.4}], discovery {:.2} ms [{:.2}, {:.2}]; {} pairs, {:.2} s -> {}",
        args.target.model.display(),
        ck.model.activation,
        task,
        s.logit_difference.mean, s.logit_difference.lo, s.logit_difference.hi,
        s.sparsity.mean, s.sparsity.lo, s.sparsity.hi,
        s.accuracy.mean, s.accuracy.lo, s.accuracy.hi,
        s.discovery_s.mean * 1e3, s.discovery_s.lo * 1e3, s.discovery_s.hi * 1e3,
        out.pairs.len(),
        out.total_s,
        path.display()
    );
    if let Some(f) = &s.faithfulness {
        println!("  faithfulness (answer metric, STUDY §8) {:.4} [{:.4}, {:.4}]", f.mean, f.lo, f.hi);
    }
    for n in &out.notes {
        println!("  note: {n}");
    }
    Ok(())
}

/// [`discover_checkpoint`] with a progress bar, and the flags named in its errors.
/// `model`: the checkpoint, its path and the SHA-256 of its bytes.
pub fn discover_model(
    mnist: &Mnist,
    (ck, model_path, sha256): (&Checkpoint, &Path, &str),
    task: &Task,
    settings: &DiscoverySettings,
    quiet: bool,
) -> anyhow::Result<DiscoverOutput> {
    let pb = bar(settings.config.bootstraps as u64, quiet, &task.name);
    let out =
        discover_checkpoint(mnist, ck, model_path, sha256, task, settings, &mut |done| pb.set_position(done as u64))
            .map_err(|e| {
                let flags = match e {
                    StudyError::Acdc(AcdcError::BadK { .. }) => "--k",
                    StudyError::Acdc(AcdcError::BadEps(_)) => "--eps",
                    StudyError::Acdc(AcdcError::Device(_)) => "--device",
                    StudyError::Acdc(AcdcError::EmptyTask) => "--task",
                    StudyError::Acdc(AcdcError::NonFinite { .. }) => "--model",
                    StudyError::Acdc(_) => "--sample, --bootstraps",
                    StudyError::Invalid(_) => "--model, --data-dir",
                    StudyError::Dataset(_) => "--task, --split",
                    _ => "--model",
                };
                anyhow::anyhow!("{e} ({flags})")
            })
            .with_context(|| format!("discovering the {task} circuit of {}", model_path.display()))?;
    pb.finish_and_clear();
    Ok(out)
}
