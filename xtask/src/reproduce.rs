//! `cargo xtask reproduce`: the study's plan through the engine, then its
//! report. Each stage hands the next what it made; no file is read back in
//! the run that wrote it (but the figures, once, to hash them), and each
//! checkpoint is loaded once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use modcirc_engine::execute::{execute, Options};
use modcirc_engine::{study, EngineError, Plan, Shard, Workload};
use modcirc_metrics::PhaseTimer;
use modcirc_mlp::DeviceSpec;
use modcirc_present::check::REPORT_FILES;
use modcirc_present::study::{write_planted, write_study, RunModel};
use modcirc_study::discovery::DiscoverOutput;
use modcirc_study::results::{Profile, UnitTime};
use modcirc_study::verdicts::fmt_ms;

use crate::flags::{artifacts_dir, refuse_overwrite, remove_stale_temps, repo_root, DataArgs, JobsArg};
use crate::progress::{Bars, Progress};
use crate::train::with_train_flags;

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// full (STUDY's defaults: 40 000 steps, 50 bootstraps of 500 pairs),
    /// quick (6 000 steps, 20 bootstraps) or smoke (600 steps, 5 bootstraps
    /// of 200; for CI).
    #[arg(long, default_value = "full")]
    pub profile: Profile,
    /// Output directory; default artifacts/PROFILE.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Train this many seeds per regime (0, 1, ...), 1 to 1 000; default:
    /// the profile's (full 5, quick 3, smoke 2). Table 3 uses seed 0.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=1_000))]
    pub seeds: Option<i64>,
    #[command(flatten)]
    pub jobs: JobsArg,
    /// Where to train and run the patching sweeps: cpu, or cuda / cuda:N with
    /// a `--features cuda` build.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Retrain and rediscover even when cached results exist.
    #[arg(long)]
    pub force: bool,
    /// Train and analyse only shard I of N of the study's models (I from 0
    /// to N-1, as Slurm numbers array tasks), each model with every unit
    /// that needs it, into the shared --out; then `--report-only` writes
    /// the report.
    #[arg(long, conflicts_with_all = ["report_only", "force"])]
    pub shard: Option<Shard>,
    /// Write the report from the cache alone: no training or analysis, and
    /// an error listing every unit that is missing.
    #[arg(long, conflicts_with = "force")]
    pub report_only: bool,
    /// Run only the planted-truth suite (STUDY §11) at the profile's size:
    /// planted models, Boolean networks and every method scored against
    /// the truth; writes planted.json, PLANTED.md and figures/planted_roc.png.
    #[arg(long, conflicts_with = "report_only")]
    pub planted_only: bool,
    /// Leave the planted-truth suite out of the study.
    #[arg(long, conflicts_with = "planted_only")]
    pub no_planted: bool,
    /// No progress bars or progress lines; warnings and errors still print.
    #[arg(long)]
    pub quiet: bool,
}

/// Refuses an output directory that is the data directory, or whose report
/// files would land on a data file.
fn refuse_out_over_data(out: &Path, data: &DataArgs) -> anyhow::Result<()> {
    let (o, d) = (out.canonicalize(), data.dir().canonicalize());
    if let (Ok(o), Ok(d)) = (&o, &d) {
        if o == d {
            anyhow::bail!(
                "--out {} is the data directory {} (--data-dir): choose another --out",
                out.display(),
                data.dir().display()
            );
        }
    }
    let names = REPORT_FILES.map(|f| out.join(f));
    let outputs: Vec<(&str, &Path)> = names.iter().map(|p| ("--out's", p.as_path())).collect();
    refuse_overwrite(&outputs, &data.inputs())
}

pub fn run(args: ReproduceArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let out = args.out.clone().unwrap_or_else(|| artifacts_dir().join(args.profile.name()));
    refuse_out_over_data(&out, &args.data)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating --out {}", out.display()))?;
    let mut timer = PhaseTimer::new();
    let mnist = timer.time("data", || args.data.load())?;
    let progress = Progress::new(args.quiet);
    progress.say(&format!(
        "[reproduce {}] data: {} train / {} test images from {}",
        args.profile,
        mnist.train.len(),
        mnist.test.len(),
        args.data.dir().display()
    ));
    let seeds = args.seeds.map_or(args.profile.settings().seeds, |s| s as u64);
    let mut plan = Plan::study(args.profile, seeds, args.device);
    if args.no_planted {
        plan.planted = None;
    }
    let wl = Workload::new(plan, out.clone(), BTreeMap::from([(None, mnist)]))?;
    let dirs: Vec<PathBuf> = wl.dirs().into_iter().chain([out.join("figures")]).collect();
    remove_stale_temps(dirs.iter().map(PathBuf::as_path), args.quiet)?;
    let mut selection = match args.shard {
        Some(shard) => wl.shard(shard),
        None => wl.all(),
    };
    if args.planted_only {
        if wl.plan.planted.is_none() {
            return Err(EngineError::JobNotRun.into());
        }
        selection.models.clear();
    }
    if args.report_only {
        wl.require_done(&selection).map_err(|e| anyhow::anyhow!("--report-only: {e} (run every --shard first)"))?;
    }
    let options = Options { jobs: args.jobs.get(), force: args.force, what: format!("reproduce {}", args.profile) };
    let bars = Bars::new(progress.clone());
    let executed = timer.time("units", || execute(&wl, &selection, &options, &bars)).map_err(with_flags)?;
    if let Some(shard) = args.shard {
        println!(
            "shard {shard}: {} of the study's models and {} of the planted suite's groups, with their units, in {}; {:.1} s",
            selection.models.len(),
            selection.planted.len(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if args.planted_only {
        let run = executed.planted.ok_or(EngineError::JobNotRun)?;
        let report = write_planted(&out, &run.results, &run.files)?;
        println!("{}", report.display());
        return Ok(());
    }
    let outcomes = executed.models;
    let pb = progress.bar(args.profile.settings().inference_repeats as u64, "inference");
    let mut on_inference = |done: usize| pb.set_position(done as u64);
    let mut results = study::results(&wl, &outcomes, args.profile, &repo_root(), &mut timer, &mut on_inference)?;
    pb.finish_and_clear();
    if let Some(run) = executed.planted {
        results.unit_times.extend(UnitTime::table(run.seconds.iter().map(|&(k, s)| (k, s))));
        results.files.extend(run.files);
        results.planted = Some(run.results);
    }
    for d in &results.discoveries {
        progress.say(&format!(
            "[timing]   {:>8} seed {} {:>6}: {} ms per discovery",
            d.regime.label(),
            d.seed,
            d.task,
            fmt_ms(&d.discovery_s)
        ));
    }
    let discoveries: Vec<Vec<&DiscoverOutput>> =
        outcomes.iter().map(|o| o.discoveries.iter().map(|d| &d.output).collect()).collect();
    let run_models: Vec<RunModel> = outcomes
        .iter()
        .zip(&results.models)
        .zip(&discoveries)
        .map(|((o, r), d)| RunModel { regime: r.regime, seed: r.seed, checkpoint: &o.checkpoint, discoveries: d })
        .collect();
    let report = write_study(&out, results, &run_models, &mut timer, started)?;
    println!("{}", report.display());
    Ok(())
}

/// An engine error with the flags that set what went wrong.
pub fn with_flags(e: EngineError) -> anyhow::Error {
    match e.root() {
        EngineError::Missing { .. } => anyhow::anyhow!("{e} (run every --shard first)"),
        _ => with_train_flags(e),
    }
}
