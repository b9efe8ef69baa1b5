//! `cargo xtask discover`: one discovery on one checkpoint and task.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{Ablation, AcdcError, DEFAULT_BOOTSTRAPS, DEFAULT_EPS, DEFAULT_SAMPLE};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_dataset::{DatasetError, Mnist, Task};
use modcirc_mlp::DeviceSpec;
use modcirc_present::html::{model_page_data, report_html, PageInput};
use modcirc_present::summary::discovery_summary;
use modcirc_store::listing::sha256_file;
use modcirc_study::discovery::{discover_checkpoint, DiscoverOutput, DiscoverySettings, Split};
use modcirc_study::options::{DiscoveryOptions, MinEffect, OptionError, Select};
use modcirc_study::StudyError;

use crate::flags::{finite, fraction_below_one, positive, refuse_overwrite, DataArgs, ModelTask, OutputArgs};
use crate::progress::bar;

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    #[command(flatten)]
    pub target: ModelTask,
    #[command(flatten)]
    pub flags: DiscoverFlags,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write the model's page (REPORT.html's view for this model:
    /// the network with the input as its 28x28 map, the circuit, the
    /// scores, the faithfulness curves and the rules) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// The discovery's flags, as the command line names them.
#[derive(Args, Debug, Clone)]
pub struct DiscoverFlags {
    /// Neurons kept per hidden layer under `--select topk`: one K for every
    /// hidden layer, or one per layer (`--k 15,5`), each from 1 to its width
    /// [default: the study's K, 15]
    #[arg(long, allow_negative_numbers = true, value_parser = k_list)]
    pub k: Option<KList>,
    /// topk: the K lowest scores per layer (the study's rule; dead neurons
    /// fill K by index where fewer are live); threshold: every live neuron
    /// whose effect (baseline minus score) is at least --min-effect.
    #[arg(long, value_enum, default_value_t = SelectArg::Topk, hide_possible_values = true)]
    pub select: SelectArg,
    /// The smallest effect (baseline minus score) that --select threshold
    /// keeps: in logit-difference units (`0.5`), or as a share of the
    /// baseline, which compares across models (`5%`).
    #[arg(long, allow_negative_numbers = true, required_if_eq("select", "threshold"), value_parser = min_effect)]
    pub min_effect: Option<MinEffect>,
    /// Also find the smallest circuits whose faithfulness on all pairs
    /// reaches F (e.g. 0.8): K neurons per hidden layer grown by effect,
    /// and top-|EAP| edges; with each resample's smallest K.
    #[arg(long, value_name = "F", allow_negative_numbers = true, value_parser = positive)]
    pub target_faithfulness: Option<f64>,
    /// Under --select topk, fill K from live neurons only (a layer with
    /// fewer keeps them all, and the output says how many).
    #[arg(long)]
    pub live_only: bool,
    /// Edge threshold, relative to the layer's largest |weight|, in [0, 1).
    #[arg(long, default_value_t = DEFAULT_EPS, allow_negative_numbers = true, value_parser = fraction_below_one)]
    pub eps: f64,
    /// What removed neurons and edges carry in the circuit's forward: zero,
    /// mean (over the task's images), resample (the paired corrupted
    /// image's value) or optimal (constants fitted jointly for each circuit
    /// on training pairs of every digit pair, STUDY §12). The logit
    /// difference and accuracy use it; faithfulness is given both in the
    /// study's form (corrupted values) and under it.
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
    /// Refuse a discovery whose estimated working set (every pair's runs, a
    /// resample, each thread's patched layer) is above this many GiB, 1 to 4 096.
    #[arg(long, value_name = "GIB", default_value_t = modcirc_study::discovery::DEFAULT_MAX_MEMORY_GIB, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_memory: u64,
    /// Where the patching sweep runs: cpu (the rank-1 sweep), or cuda /
    /// cuda:N with a `--features cuda` build. Circuit evaluation stays on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

impl DiscoverFlags {
    /// The options the flags give, as every front end gives them.
    pub fn options(&self) -> DiscoveryOptions {
        DiscoveryOptions {
            k: self.k.as_ref().map(|k| k.0.clone()),
            select: match self.select {
                SelectArg::Topk => Select::TopK,
                SelectArg::Threshold => Select::Threshold,
            },
            min_effect: self.min_effect,
            live_only: self.live_only,
            target_faithfulness: self.target_faithfulness,
            eps: Some(self.eps),
            ablation: self.ablation,
            bootstraps: Some(self.bootstraps as usize),
            sample: Some(self.sample as usize),
            split: self.split,
            seed: self.seed,
            max_memory_gib: Some(self.max_memory),
            device: self.device,
        }
    }

    /// The settings, checked against the model before any work: K, eps,
    /// and what a resample of `--sample` pairs will allocate.
    pub fn checked(&self, ck: &Checkpoint, mnist: &Mnist) -> anyhow::Result<DiscoverySettings> {
        let images = self.split.of(mnist).len();
        self.options().checked(&ck.model, images).map_err(flag_error)
    }
}

/// An option's flag: `min_effect` is `--min-effect`.
fn flag(option: &str) -> String {
    match option {
        "max_memory_gib" => "--max-memory".into(),
        o => format!("--{}", o.replace('_', "-")),
    }
}

/// A discovery option's error in the command line's terms: a conflict is a
/// usage error; the rest name their flags.
fn flag_error(e: OptionError) -> anyhow::Error {
    match e {
        OptionError::Conflict { option, rule, why } => {
            let msg = format!("{} applies to --select {rule} only{why}\n", flag(option));
            clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, msg).into()
        }
        OptionError::Bounds { option, message } => anyhow::anyhow!("{}: {message}", flag(option)),
        OptionError::Memory { sizes, gib, max } => anyhow::anyhow!(
            "--model: a discovery on this {sizes} model would hold up to {gib:.1} GiB, above --max-memory {max} GiB (raise it to run anyway)"
        ),
        OptionError::Model { options, source } => {
            let flags: Vec<String> = options.iter().map(|o| flag(o)).collect();
            anyhow::anyhow!("{source} ({})", flags.join(", "))
        }
    }
}

/// `--select`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectArg {
    /// The K lowest scores per hidden layer.
    Topk,
    /// Every live neuron whose effect is at least --min-effect.
    Threshold,
}

/// Parses `0.5` or `5%`.
fn min_effect(s: &str) -> Result<MinEffect, String> {
    match s.strip_suffix('%') {
        Some(p) => finite(p.trim()).map(|x| MinEffect::Share(x / 100.0)),
        None => finite(s).map(MinEffect::Logits),
    }
}

/// `--k`: one K, or one per hidden layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KList(pub Vec<usize>);

/// Parses `15` or `15,5`, each value in 1..=1 000 000.
fn k_list(s: &str) -> Result<KList, String> {
    s.split(',')
        .map(|v| match v.trim().parse::<i64>() {
            Ok(k @ 1..=1_000_000) => Ok(k as usize),
            Ok(k) => Err(format!("{k} is not in 1..=1000000")),
            Err(_) => Err(format!("{v:?} is not a whole number (give one K, or one per hidden layer: 15,5)")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(KList)
}

pub fn run(args: DiscoverArgs) -> anyhow::Result<()> {
    let task = args.target.parse_task()?;
    let path = args.output.path(|| args.target.default_out("discover", &task));
    let stdout = Path::new("-");
    if path == stdout && args.html.as_deref() == Some(stdout) {
        let msg = "--html -: standard output already takes the JSON (--json or --out -); write the page to a file\n";
        return Err(clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, msg).into());
    }
    // Where the summary may go: standard output, unless a file is written there.
    let told = if args.html.as_deref() == Some(stdout) { stdout } else { path.as_path() };
    let mut outputs = vec![("--out", path.as_path())];
    outputs.extend(args.html.as_deref().map(|h| ("--html", h)));
    refuse_overwrite(&outputs, &args.target.inputs(&args.data))?;
    let ck = args.target.load()?;
    let mnist = args.data.load()?;
    let settings = args.flags.checked(&ck, &mnist)?;
    let quiet = args.output.quiet;
    args.target.check_provenance(&ck, &mnist, &args.data, quiet)?;
    let sha256 = sha256_file(&args.target.model)?;
    let out = discover_model(&mnist, (&ck, &args.target.model, &sha256), &task, &settings, quiet)?;
    args.output.write(&path, &serde_json::to_vec_pretty(&out)?)?;
    args.output.say(told, discovery_summary(&out, &path).trim_end());
    if let Some(html) = &args.html {
        let label = args.target.model.file_name().map_or("model".into(), |s| s.to_string_lossy().into_owned());
        let page = PageInput {
            id: "model".into(),
            label,
            seed: ck.meta.as_ref().map(|m| m.config.seed),
            checkpoint: &ck,
            discoveries: vec![&out],
            beyond: Vec::new(),
            extra: Vec::new(),
        };
        let text = report_html(&model_page_data(&page)?)?;
        args.output.write(html, text.as_bytes())?;
        args.output.say(told, &format!("  page -> {}", html.display()));
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
                    StudyError::Acdc(AcdcError::BadK { .. } | AcdcError::BadSelection(_)) => "--k, --min-effect",
                    StudyError::Acdc(AcdcError::BadEps(_)) => "--eps",
                    StudyError::Acdc(AcdcError::Device(_)) => "--device",
                    StudyError::Acdc(AcdcError::EmptyTask) => "--task",
                    StudyError::Acdc(AcdcError::NonFinite { .. }) => "--model",
                    StudyError::Acdc(_) => "--sample, --bootstraps",
                    StudyError::Invalid(_) | StudyError::Dataset(DatasetError::Misfit(_)) => "--model, --data-dir",
                    StudyError::Dataset(_) => "--task, --split",
                    _ => "--model",
                };
                anyhow::anyhow!("{e} ({flags})")
            })
            .with_context(|| format!("discovering the {task} circuit of {}", model_path.display()))?;
    pb.finish_and_clear();
    Ok(out)
}

/// What `beyond` and `controls` start from: their output path (refused if
/// it would overwrite an input), the model, the data and its discovery.
pub struct Discovered {
    pub path: PathBuf,
    pub task: Task,
    pub ck: Checkpoint,
    pub mnist: Mnist,
    pub disc: modcirc_study::DiscoverOutput,
}

/// The discovery `beyond` and `controls` judge (`kind` names the default
/// output directory).
pub fn discovered(
    target: &ModelTask,
    flags: &DiscoverFlags,
    data: &DataArgs,
    output: &OutputArgs,
    kind: &str,
) -> anyhow::Result<Discovered> {
    let task = target.parse_task()?;
    let quiet = output.quiet;
    let path = output.path(|| target.default_out(kind, &task));
    refuse_overwrite(&[("--out", &path)], &target.inputs(data))?;
    let ck = target.load()?;
    let mnist = data.load()?;
    let settings = flags.checked(&ck, &mnist)?;
    target.check_provenance(&ck, &mnist, data, quiet)?;
    let sha256 = sha256_file(&target.model)?;
    let disc = discover_model(&mnist, (&ck, &target.model, &sha256), &task, &settings, quiet)?;
    Ok(Discovered { path, task, ck, mnist, disc })
}
