use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use modcirc_acdc::{discover, Ablation, AcdcError, DiscoveryConfig, DiscoveryReport, TaskImages};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_mlp::DeviceSpec;
use modcirc_dataset::{Mnist, Pair, PairedDataset, Task};
use serde::{Deserialize, Serialize};

use crate::common::{bar, sha256_file, write_json, DataArgs, ModelTask};

/// Version of the `discover` JSON (docs/results-schema.md).
pub const DISCOVER_SCHEMA: &str = "modcirc.discover/1";

/// Bumped when discovery computes something new, so that cached results are
/// recomputed (2: faithfulness per resample).
pub const DISCOVERY_REVISION: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Test,
    Train,
}

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub target: ModelTask,
    #[command(flatten)]
    pub flags: DiscoverFlags,
    /// Output JSON; default artifacts/discover/<model>-<task>.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct DiscoverFlags {
    /// Neurons kept per hidden layer.
    #[arg(long, default_value_t = 15)]
    pub k: usize,
    /// Edge threshold, relative to the layer's largest |weight|, in [0, 1).
    #[arg(long, default_value_t = 0.01)]
    pub eps: f64,
    /// zero, mean or resample.
    #[arg(long, default_value = "zero")]
    pub ablation: Ablation,
    #[arg(long, default_value_t = 50)]
    pub bootstraps: usize,
    /// Pairs per bootstrap resample.
    #[arg(long, default_value_t = 500)]
    pub sample: usize,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Seeds the pairing shuffle and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the patching sweep runs: cpu (the rank-1 sweep), or cuda /
    /// cuda:N with a `--features cuda` build. Circuit evaluation stays on the CPU.
    #[arg(long, default_value = "cpu")]
    #[serde(default)]
    pub device: DeviceSpec,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverInputs {
    pub model: String,
    pub model_sha256: String,
    /// The training regime, from the checkpoint's sidecar when present.
    pub regime: Option<String>,
    pub task: Task,
    pub flags: DiscoverFlags,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverOutput {
    pub schema: String,
    pub inputs: DiscoverInputs,
    /// Dataset indices (in the chosen split) of every clean and corrupted image.
    pub pairs: Vec<Pair>,
    /// Dead neurons and ties: a plain-language note on how the top-K was decided.
    pub notes: Vec<String>,
    pub report: DiscoveryReport,
    /// Wall time of the whole command's discovery stage.
    pub total_s: f64,
}

pub fn run(args: DiscoverArgs) -> anyhow::Result<()> {
    let mnist = args.data.load()?;
    let task = args.target.parse_task()?;
    let ck = args.target.load()?;
    let out = discover_model(&mnist, &ck, &args.target.model, &task, &args.flags, args.quiet)?;
    let path = args.out.clone().unwrap_or_else(|| args.target.default_out("discover", &task));
    write_json(&path, &out)?;
    let s = &out.report.summary;
    println!(
        "{} on {}: logit difference {:.4} [{:.4}, {:.4}], sparsity {:.4} [{:.4}, {:.4}], accuracy {:.4} [{:.4}, {:.4}], discovery {:.2} ms [{:.2}, {:.2}]; {} pairs, {:.2} s -> {}",
        args.target.model.display(),
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

/// Refuses a model whose input width or classes do not fit the images.
pub fn check_fits(ck: &Checkpoint, model_path: &Path, split: &modcirc_dataset::ImageSet) -> anyhow::Result<()> {
    let (inputs, classes) = (ck.model.n_inputs(), ck.model.n_classes());
    anyhow::ensure!(
        inputs == split.pixels(),
        "--model {} takes {inputs} inputs, but the images (--data-dir) have {} pixels ({}x{})",
        model_path.display(),
        split.pixels(),
        split.rows,
        split.cols
    );
    if let Some(&bad) = split.labels.iter().find(|&&l| l as usize >= classes) {
        anyhow::bail!(
            "--model {} has {classes} outputs, but the data (--data-dir) has label {bad}",
            model_path.display()
        );
    }
    Ok(())
}

/// Discovery on one checkpoint (read from `model_path`) and task, as
/// `discover` and `reproduce` run it.
pub fn discover_model(
    mnist: &Mnist,
    ck: &Checkpoint,
    model_path: &Path,
    task: &Task,
    flags: &DiscoverFlags,
    quiet: bool,
) -> anyhow::Result<DiscoverOutput> {
    let split = match flags.split {
        Split::Test => &mnist.test,
        Split::Train => &mnist.train,
    };
    check_fits(ck, model_path, split)?;
    let pairs = PairedDataset::new(split, task, flags.seed).with_context(|| format!("--task {task}"))?;
    let images = TaskImages::from_pairs(split, &pairs.pairs);
    let config = DiscoveryConfig {
        k: flags.k,
        eps: flags.eps,
        ablation: flags.ablation,
        bootstraps: flags.bootstraps,
        sample: flags.sample,
        seed: flags.seed,
        device: flags.device,
    };
    let pb = bar(flags.bootstraps as u64, quiet, &task.name);
    let t = Instant::now();
    let report = discover(&ck.model, &images, &config, &mut |done| pb.set_position(done as u64))
        .map_err(|e| {
            let flag = match e {
                AcdcError::BadK { .. } => "--k: ",
                AcdcError::BadEps(_) => "--eps: ",
                _ => "",
            };
            anyhow::anyhow!("{flag}{e}")
        })
        .with_context(|| format!("discovering the {task} circuit of {}", model_path.display()))?;
    let total_s = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let mut notes = Vec::new();
    for (h, (dead, tie)) in report.selection.dead.iter().zip(&report.selection.decided_by_tie).enumerate() {
        if !dead.is_empty() || *tie > 0 {
            notes.push(format!(
                "hidden layer {}: {} dead neurons (patching them leaves the baseline unchanged); {} of the {} kept neurons were chosen by the lower-index tie rule",
                h + 1,
                dead.len(),
                tie,
                flags.k
            ));
        }
    }
    Ok(DiscoverOutput {
        schema: DISCOVER_SCHEMA.into(),
        inputs: DiscoverInputs {
            model: model_path.display().to_string(),
            model_sha256: sha256_file(model_path)?,
            regime: ck.meta.as_ref().map(|m| m.config.regime.to_string()),
            task: task.clone(),
            flags: flags.clone(),
        },
        pairs: pairs.pairs,
        notes,
        report,
        total_s,
    })
}
