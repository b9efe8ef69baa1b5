//! `cargo xtask compare`: several checkpoints on one task, side by side.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{DEFAULT_FAITHFUL, DEFAULT_RANDOM_CIRCUITS};
use modcirc_dataset::Task;
use modcirc_present::compare::{compare_text, write_compare, COMPARE_FILES};
use modcirc_store::listing::sha256_file;
use modcirc_study::compare::{comparison, CompareInput, CompareSettings};
use modcirc_study::controls::{ControlSettings, MAX_RANDOM_CIRCUITS};
use modcirc_study::discovery::provenance;

use crate::beyond::{AcdcArgs, MethodArgs};
use crate::discover::DiscoverFlags;
use crate::flags::{artifacts_dir, load_model, refuse_overwrite, remove_stale_temps, DataArgs};
use crate::progress::bar;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Checkpoints, each `PATH` or `CONDITION=PATH`: checkpoints sharing a
    /// condition are its seeds, summarised together (default condition:
    /// the file's name).
    #[arg(required = true, num_args = 1..)]
    pub models: Vec<String>,
    /// circle, line, or clean:corrupted pairs such as 3:8,8:3.
    #[arg(long)]
    pub task: String,
    /// The hidden layers' activation of models without a sidecar.
    #[arg(long)]
    pub activation: Option<modcirc_mlp::Activation>,
    /// The discovery every model gets (its flags, as `discover` takes them;
    /// --target-faithfulness defaults to 0.8 here).
    #[command(flatten)]
    pub flags: DiscoverFlags,
    #[command(flatten)]
    pub acdc: AcdcArgs,
    #[command(flatten)]
    pub methods: MethodArgs,
    /// Random circuits of each circuit's size per pool for STUDY §10's
    /// controls (with the disjoint alternatives and the any-digit control); 0: no controls.
    #[arg(long, default_value_t = DEFAULT_RANDOM_CIRCUITS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=MAX_RANDOM_CIRCUITS as i64))]
    pub random: i64,
    /// Test each condition against this one (default: every pair of conditions).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Output directory (compare.json, compare.md, compare.html,
    /// faithfulness_by_k.png); default ./artifacts/compare/TASK.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print nothing but errors: no progress, notes or table.
    #[arg(long)]
    pub quiet: bool,
    /// Write compare.json to standard output and nothing else there (the
    /// files are written all the same).
    #[arg(long)]
    pub json: bool,
}

/// `CONDITION=PATH` or `PATH`.
fn condition_and_path(spec: &str) -> anyhow::Result<(String, PathBuf)> {
    let (condition, path) = match spec.split_once('=') {
        Some((c, p)) if !Path::new(spec).exists() => (c.to_string(), PathBuf::from(p)),
        _ => {
            let p = PathBuf::from(spec);
            (p.file_stem().map_or(spec.to_string(), |s| s.to_string_lossy().into_owned()), p)
        }
    };
    let plain = !condition.is_empty() && !condition.chars().any(char::is_control);
    if !plain && path.as_os_str() == spec {
        anyhow::bail!("model {spec:?}: its file name gives no plain condition name; name one as CONDITION=PATH");
    }
    anyhow::ensure!(plain, "model {spec:?}: the condition before `=` must be a plain, non-empty name");
    Ok((condition, path))
}

/// [`comparison`] with a progress bar per model.
fn compare_with_bars(
    mnist: &modcirc_dataset::Mnist,
    inputs: &[CompareInput<'_>],
    task: &Task,
    settings: CompareSettings,
    quiet: bool,
) -> anyhow::Result<modcirc_study::compare::Comparison> {
    let total = settings.discovery.config.bootstraps as u64;
    let mut current: Option<(usize, indicatif::ProgressBar)> = None;
    let mut on = |i: usize, done: usize| {
        if current.as_ref().is_none_or(|(at, _)| *at != i) {
            if let Some((_, pb)) = current.take() {
                pb.finish_and_clear();
            }
            current = Some((i, bar(total, quiet, inputs[i].condition)));
        }
        if let Some((_, pb)) = &current {
            pb.set_position(done as u64);
        }
    };
    let c = comparison(mnist, inputs, task, settings, &mut on)?;
    if let Some((_, pb)) = current {
        pb.finish_and_clear();
    }
    Ok(c)
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let task = Task::parse(&args.task).context("--task")?;
    let out = args.out.clone().unwrap_or_else(|| artifacts_dir().join("compare").join(task.file_stem()));
    if args.out.as_deref() == Some(Path::new("-")) {
        let msg = "--out -: compare writes a directory (compare.json, compare.md, the figure); --json puts compare.json on standard output\n";
        return Err(clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg).into());
    }
    let models: Vec<(String, PathBuf)> = args.models.iter().map(|m| condition_and_path(m)).collect::<Result<_, _>>()?;
    let mut inputs = args.data.inputs();
    for (_, p) in &models {
        inputs.push(("a model".into(), p.clone()));
        inputs.push(("a model's sidecar".into(), modcirc_bimt::checkpoint::sidecar_path(p)));
    }
    if let Some(b) = args.baseline.as_deref().filter(|b| !models.iter().any(|(c, _)| c == b)) {
        let names: Vec<&str> = models.iter().map(|(c, _)| c.as_str()).collect();
        let msg = format!("--baseline {b:?} is no model's condition (the conditions: {})\n", names.join(", "));
        return Err(clap::Error::raw(clap::error::ErrorKind::ValueValidation, msg).into());
    }
    // The figure is written as SVG beside its PNG.
    let files: Vec<PathBuf> = COMPARE_FILES.iter().chain(&["faithfulness_by_k.svg"]).map(|f| out.join(f)).collect();
    let outputs: Vec<(&str, &Path)> = files.iter().map(|f| ("--out", f.as_path())).collect();
    refuse_overwrite(&outputs, &inputs)?;
    let mnist = args.data.load()?;
    let mut flags = args.flags.clone();
    flags.target_faithfulness.get_or_insert(DEFAULT_FAITHFUL);
    let acdc = args.acdc.config()?;
    let beyond = args.methods.settings(acdc, args.acdc.acdc_pairs as usize)?;
    let mut settings = None;
    let mut read = Vec::new();
    for (condition, path) in &models {
        let sha256 = sha256_file(path).with_context(|| format!("model {}", path.display()))?;
        let ck = load_model(path, args.activation).with_context(|| format!("model {}", path.display()))?;
        let s = flags.checked(&ck, &mnist)?;
        if let (modcirc_study::discovery::Provenance::Differs { trained_on, .. }, false) =
            (provenance(&ck, &mnist), args.quiet)
        {
            eprintln!("warning: {} was trained on {trained_on}, not on {}", path.display(), mnist.dir.display());
        }
        settings.get_or_insert_with(|| CompareSettings {
            controls: (args.random > 0).then(|| ControlSettings {
                random: args.random as usize,
                seed: s.config.seed,
                ..ControlSettings::default()
            }),
            discovery: s.clone(),
            beyond: beyond.clone(),
            modularity_seed: s.config.seed,
            baseline: args.baseline.clone(),
        });
        read.push((condition, path, ck, sha256));
    }
    let settings = settings.context("no model")?;
    let inputs: Vec<CompareInput> = read
        .iter()
        .map(|(condition, path, ck, sha256)| CompareInput { condition, checkpoint: ck, path, sha256 })
        .collect();
    let c = compare_with_bars(&mnist, &inputs, &task, settings, args.quiet)?;
    remove_stale_temps([out.as_path()], args.quiet)?;
    let written = write_compare(&out, &c).with_context(|| format!("writing {}", out.display()))?;
    if args.json {
        crate::flags::write_output(Path::new("-"), &serde_json::to_vec_pretty(&c)?)?;
    } else if !args.quiet {
        print!("{}", compare_text(&c));
        for f in written {
            println!("-> {}", f.display());
        }
    }
    Ok(())
}
