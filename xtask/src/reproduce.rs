//! `cargo xtask reproduce`: train, discover, time, draw, report. Each stage
//! hands the next what it made; no file is read back in the run that wrote
//! it (but the figures, once, to hash them), and each checkpoint is loaded
//! once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use modcirc_acdc::DiscoveryConfig;
use modcirc_bimt::checkpoint::{self, Checkpoint};
use modcirc_bimt::{Regime, TrainConfig};
use modcirc_dataset::Mnist;
use modcirc_metrics::PhaseTimer;
use modcirc_mlp::{DeviceSpec, Mlp};
use modcirc_study::beyond::BeyondResult;
use modcirc_study::cache::{self, FileRecord, Lookup};
use modcirc_study::check::REPORT_FILES;
use modcirc_study::discovery::{DiscoverOutput, DiscoverySettings};
use modcirc_study::figures::{figures, NetworkPanel};
use modcirc_study::findings::findings;
use modcirc_study::html::{page_data, report_html, PageInput};
use modcirc_study::measure::{environment, inference_timing};
use modcirc_study::report::{markdown, table3_csv};
use modcirc_study::results::{DiscoveryResult, ModelResult, Profile, Results, RESULTS_SCHEMA};
use modcirc_study::seeds::across_seeds;
use modcirc_study::structure::StructureResult;
use modcirc_study::sweep::{assign, cost, list_some, Shard, UnitFiles};
use modcirc_study::verdicts::{k_sensitivity, verdicts};

use crate::common::{
    artifacts_dir, claimed_unit, model_key, refuse_overwrite, remove_stale_temps, repo_root, run_jobs, write_atomic,
    DataArgs, JobsArg, Progress, Source,
};
use crate::train::train_and_save;

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
    /// No progress bars or progress lines; warnings and errors still print.
    #[arg(long)]
    pub quiet: bool,
}

/// A model of the run: what the results say of it, and the checkpoint itself.
struct Trained {
    result: ModelResult,
    checkpoint: Checkpoint,
}

mod analyse;

/// What the analysis stage produced: the results, and every discovery (Fig. 2
/// draws seed 0's, REPORT.html shows them all).
struct Found {
    discoveries: Vec<DiscoveryResult>,
    beyond: Vec<BeyondResult>,
    structure: Vec<StructureResult>,
    outputs: Vec<(Regime, u64, DiscoverOutput)>,
}

/// The run's shared state: its flags, where it writes, its data and timers,
/// and every file it wrote or reused.
struct Run<'a> {
    args: &'a ReproduceArgs,
    out: PathBuf,
    mnist: Mnist,
    timer: PhaseTimer,
    /// Per stage, the sum of its jobs' own times (against the stage's wall
    /// time in `timer`: the parallel speed-up).
    jobs_seconds: BTreeMap<String, f64>,
    files: Vec<FileRecord>,
    progress: Progress,
    jobs: usize,
}

impl Run<'_> {
    fn say(&self, msg: String) {
        self.progress.say(&msg);
    }

    fn job_seconds(&mut self, stage: &str, seconds: f64) {
        *self.jobs_seconds.entry(stage.to_string()).or_default() += seconds;
    }

    /// The files of the cached unit whose main file is `main`, when they
    /// match their recorded hashes; a stale unit is reported and recomputed.
    fn cached(&self, main: &Path, files: &[&Path]) -> Option<Vec<Vec<u8>>> {
        self.cached_or_warn(main, files, true)
    }

    /// [`Run::cached`], with or without the warning on a stale unit.
    fn cached_or_warn(&self, main: &Path, files: &[&Path], warn: bool) -> Option<Vec<Vec<u8>>> {
        if self.args.force {
            return None;
        }
        match cache::lookup(&cache::listing_path(main), files) {
            Lookup::Hit(bytes) => Some(bytes),
            Lookup::Miss => None,
            Lookup::Stale(why) => {
                if warn {
                    self.progress.warn(&format!("{why}; recomputing it"));
                }
                None
            }
        }
    }

    /// A cached JSON unit, parsed, and its record; `None` when it must be
    /// recomputed.
    fn fetch_json<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Option<(T, FileRecord)> {
        let bytes = self.cached(path, &[path])?.pop()?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some((v, FileRecord::of(&self.out, path, &bytes))),
            Err(e) => {
                self.progress.warn(&format!("{}: {e}; recomputing it", path.display()));
                None
            }
        }
    }

    /// Writes a JSON unit and records it in its listing; returns its record.
    fn put_json<T: serde::Serialize>(&self, path: &Path, value: &T) -> anyhow::Result<FileRecord> {
        let bytes = cache::store_json(path, value)?;
        Ok(FileRecord::of(&self.out, path, &bytes))
    }

    /// Writes a file of the report and records it in the run's files.
    fn store(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.out.join(name);
        write_atomic(&path, bytes)?;
        self.files.push(FileRecord::of(&self.out, &path, bytes));
        Ok(path)
    }
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
    let settings = args.profile.settings();
    let out = args.out.clone().unwrap_or_else(|| artifacts_dir().join(args.profile.name()));
    refuse_out_over_data(&out, &args.data)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating --out {}", out.display()))?;
    let mut timer = PhaseTimer::new();
    let mnist = timer.time("data", || args.data.load())?;
    let progress = Progress::new(args.quiet);
    let jobs = args.jobs.get();
    let mut run =
        Run { args: &args, out, mnist, timer, jobs_seconds: BTreeMap::new(), files: Vec::new(), progress, jobs };
    for sub in ["", "models", "discover", "beyond", "structure", "figures"] {
        remove_stale_temps(&run.out.join(sub), args.quiet)?;
    }
    run.say(format!(
        "[reproduce {}] data: {} train / {} test images from {}",
        args.profile,
        run.mnist.train.len(),
        run.mnist.test.len(),
        args.data.dir().display()
    ));
    let seeds = args.seeds.map_or(settings.seeds, |s| s as u64);
    // The study's discovery (with the K-sensitivity rules), at the profile's size.
    let study = DiscoverySettings::default();
    let config = DiscoveryConfig {
        bootstraps: settings.bootstraps,
        sample: settings.sample,
        device: args.device,
        ..study.config
    };
    let flags = DiscoverySettings { config, ..study };
    let models = train_stage(&mut run, settings.steps, seeds, &flags)?;
    let found = analyse::analyse_stage(&mut run, &models, &flags)?;
    if let Some(shard) = args.shard {
        println!(
            "shard {shard}: {} of the study's models, with their analyses, in {}; {:.1} s",
            models.len(),
            run.out.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let seed0: Vec<(Regime, &Mlp)> =
        models.iter().filter(|m| m.result.seed == 0).map(|m| (m.result.regime, &m.checkpoint.model)).collect();
    let pb = run.progress.bar(settings.inference_repeats as u64, "inference");
    let inference = run.timer.time("inference", || {
        inference_timing(&seed0, &run.mnist.test, settings.inference_repeats, &mut |done| pb.set_position(done as u64))
    });
    pb.finish_and_clear();
    let model_results: Vec<ModelResult> = models.iter().map(|m| m.result.clone()).collect();
    let across = across_seeds(&model_results, &found.discoveries, &inference, &found.structure);
    let results = Results {
        schema: RESULTS_SCHEMA.into(),
        profile: args.profile,
        settings,
        discover_flags: flags,
        environment: environment(args.device, &repo_root()),
        stage_seconds: Default::default(),
        jobs_seconds: Default::default(),
        total_seconds: 0.0,
        verdicts: verdicts(&model_results, &found.discoveries, &inference),
        k_sensitivity: k_sensitivity(&found.discoveries),
        across_seeds: across.clone(),
        findings: findings(across.as_ref(), &found.discoveries, &found.structure),
        structure: found.structure,
        models: model_results,
        discoveries: found.discoveries,
        inference,
        beyond: found.beyond,
        figures: Vec::new(),
        files: Vec::new(),
    };
    report_stage(run, results, &models, &found.outputs, started)
}

/// Trains every regime and seed, or reuses a cached checkpoint keyed by a
/// hash of everything that determines its weights. `flags`, the analyses'
/// settings, weigh each model's share under `--shard`.
fn train_stage(run: &mut Run<'_>, steps: usize, seeds: u64, flags: &DiscoverySettings) -> anyhow::Result<Vec<Trained>> {
    let args = run.args;
    let mut planned = Vec::new();
    for seed in 0..seeds {
        for regime in Regime::ALL {
            let config = TrainConfig::new(regime).steps(steps).seed(seed);
            let key = model_key(&config, &run.mnist, args.device)?;
            let path = UnitFiles { out: &run.out, regime, seed }.model(&key);
            planned.push((config, path));
        }
    }
    if let Some(shard) = args.shard {
        // A model with its discoveries on both tasks, STUDY §9, and STUDY
        // §8 on both tasks for seed 0.
        let cost = |c: &TrainConfig| cost::group(c, [flags], 2, if c.seed == 0 { 2 } else { 0 });
        let groups: Vec<(String, f64)> = planned.iter().map(|(c, p)| (rel(&run.out, p), cost(c))).collect();
        let owner = assign(&groups, shard.count);
        planned = planned.into_iter().zip(owner).filter(|(_, s)| *s == shard.index).map(|(p, _)| p).collect();
    }
    let planned: Vec<_> = planned
        .into_iter()
        .map(|(config, path)| {
            let cached = load_cached_model(run, &path, true);
            (config, path, cached)
        })
        .collect();
    if args.report_only {
        let missing: BTreeSet<String> = planned.iter().filter(|p| p.2.is_none()).map(|p| rel(&run.out, &p.1)).collect();
        anyhow::ensure!(
            missing.is_empty(),
            "--report-only: {} of {} models are not in {} yet: {} (run every --shard first)",
            missing.len(),
            planned.len(),
            run.out.display(),
            list_some(&missing, 12)
        );
    }
    // The models to train, concurrently; each saved and recorded by its job.
    let missing: Vec<(&TrainConfig, &PathBuf)> =
        planned.iter().filter(|p| p.2.is_none()).map(|(c, p, _)| (c, p)).collect();
    let jobs = run.jobs;
    let shared: &Run<'_> = run;
    let (mnist, progress) = (&shared.mnist, &shared.progress);
    let started = Instant::now();
    // Each job trains under its model's claim: a process sharing --out
    // (another shard) may be training the same model.
    let fresh = run_jobs(&missing, jobs, |(config, path)| {
        let what = format!("reproduce {}", args.profile);
        let fetch = || load_cached_model(shared, path, false);
        let (model, source) = claimed_unit(path, &what, progress, fetch, |claim| {
            let pb = progress.bar(config.steps as u64, &format!("{}/{}", config.regime.name(), config.seed));
            train_and_save(mnist, (*config).clone(), args.device, &args.data, &pb, jobs > 1, path, claim)
        })?;
        Ok((model, matches!(source, Source::Computed)))
    });
    run.timer.add("train", started.elapsed().as_secs_f64());
    let fresh = fresh?;
    run.job_seconds("train", fresh.iter().filter(|f| f.1).map(|((_, s), _)| s.meta.timing.total_s).sum());
    let mut fresh = fresh.into_iter();
    let mut models = Vec::new();
    for (config, path, cached) in planned {
        let (regime, seed) = (config.regime, config.seed);
        let ((checkpoint, saved), was_cached) = match cached {
            Some(c) => (c, true),
            None => {
                let (c, computed) = fresh.next().context("a trained model went missing")?;
                (c, !computed)
            }
        };
        run.files.push(FileRecord::of(&run.out, &path, &saved.weights));
        run.files.push(FileRecord::of(&run.out, &checkpoint::sidecar_path(&path), &saved.sidecar));
        let meta = saved.meta;
        run.say(format!(
            "[train] {:>8} seed {seed}: test accuracy {:.4}, {:.1} s{}",
            regime.label(),
            meta.test_accuracy,
            meta.timing.total_s,
            if was_cached { " (cached)" } else { "" }
        ));
        let sha256 = cache::sha256_hex(&saved.weights);
        let (path, file_bytes) = (rel(&run.out, &path), saved.weights.len() as u64);
        let result = ModelResult { regime, seed, path, sha256, file_bytes, cached: was_cached, meta };
        models.push(Trained { result, checkpoint });
    }
    Ok(models)
}

/// A cached checkpoint with its sidecar, both matching their recorded
/// hashes; `None` when there is none or it cannot be trusted (then it is
/// retrained).
fn load_cached_model(run: &Run<'_>, path: &Path, warn: bool) -> Option<(Checkpoint, checkpoint::Saved)> {
    let sidecar = checkpoint::sidecar_path(path);
    let mut files = run.cached_or_warn(path, &[path, &sidecar], warn)?;
    let (sidecar, weights) = (files.pop()?, files.pop()?);
    match checkpoint::load_bytes(&weights, path, None) {
        Ok(ck) => {
            let meta = ck.meta.clone()?;
            Some((ck, checkpoint::Saved { weights, sidecar, meta }))
        }
        Err(e) => {
            if warn {
                run.progress.warn(&format!("{e}; retraining it"));
            }
            None
        }
    }
}

/// The figures, `table3.csv`, `REPORT.md`, `REPORT.html` and `results.json`.
fn report_stage(
    mut run: Run<'_>,
    mut results: Results,
    models: &[Trained],
    outputs: &[(Regime, u64, DiscoverOutput)],
    started: Instant,
) -> anyhow::Result<()> {
    let out = run.out.clone();
    let model_of =
        |regime: Regime, seed: u64| models.iter().find(|m| m.result.regime == regime && m.result.seed == seed);
    let networks: Vec<NetworkPanel> = outputs
        .iter()
        .filter(|(_, seed, _)| *seed == 0)
        .filter_map(|(regime, _, d)| {
            Some(NetworkPanel { regime: *regime, checkpoint: &model_of(*regime, 0)?.checkpoint, discovery: d })
        })
        .collect();
    let written = run.timer.time("figures", || figures(&out.join("figures"), &results, &networks))?;
    results.figures = written.iter().map(|p| rel(&out, p)).collect();
    for p in &written {
        // Drawn to a file by the chart code: read once, to record its hash.
        let bytes = std::fs::read(p).with_context(|| format!("reading back {}", p.display()))?;
        run.files.push(FileRecord::of(&out, p, &bytes));
    }
    results.stage_seconds = run.timer.phases().clone();
    results.jobs_seconds = std::mem::take(&mut run.jobs_seconds);
    results.total_seconds = started.elapsed().as_secs_f64();
    let [table3, report, html, results_json] = REPORT_FILES;
    run.store(table3, table3_csv(&results).as_bytes())?;
    let report = run.store(report, markdown(&results).as_bytes())?;
    let pages: Vec<PageInput> = models
        .iter()
        .map(|m| PageInput {
            regime: m.result.regime,
            seed: m.result.seed,
            checkpoint: &m.checkpoint,
            discoveries: outputs
                .iter()
                .filter(|(r, s, _)| *r == m.result.regime && *s == m.result.seed)
                .map(|(_, _, d)| d)
                .collect(),
        })
        .collect();
    run.store(html, report_html(&page_data(&results, &pages)?)?.as_bytes())?;
    results.files = run.files;
    write_atomic(&out.join(results_json), &serde_json::to_vec_pretty(&results)?)?;
    println!("{}", report.display());
    Ok(())
}

/// `path` relative to `base` when it lies under it.
fn rel(base: &Path, path: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}
