//! `cargo xtask sweep`: a plan of axes (`sweep.toml`) run in shards, on
//! one machine or a Slurm cluster, into one shared, self-checking cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use modcirc_bimt::checkpoint::{self, Checkpoint};
use modcirc_dataset::{Mnist, Task};
use modcirc_metrics::Summary;
use modcirc_mlp::DeviceSpec;
use modcirc_report::{bar_chart, csv_table, scatter_ci, Bar, Point, ScatterPanel};
use modcirc_study::cache::{self, Lookup};
use modcirc_study::claim::{self, ClaimState};
use modcirc_study::discovery::DiscoverOutput;
use modcirc_study::structure::{analyse_structure, StructureResult};
use modcirc_study::sweep::{
    against_axis, assign, cost, list_some, metric_rows, model_key, numeric_axis, sizes_name, ModelPoint, Plan,
    SettingPoint, Shard, SlurmJob, SweepAnalysis, SweepDiscovery, SweepModel, SweepResults, UnitFiles, SWEEP_SCHEMA,
};

use crate::common::{
    artifacts_dir, claimed_unit, refuse_overwrite, remove_stale_temps, run_jobs, write_atomic, DataArgs, JobsArg,
    Progress, Source,
};
use crate::discover::discover_model;
use crate::train::train_and_save;

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: SweepCommand,
}

#[derive(Subcommand, Debug)]
enum SweepCommand {
    /// The plan's units, their keys and estimated cost, and what the cache already holds.
    Plan(PlanArgs),
    /// Run shard I of N of the plan: its models, each with every unit that needs it.
    Run(RunArgs),
    /// Which units are done, running (and where), abandoned or missing.
    Status(PlanArgs),
    /// Gather every unit into results.json, units.csv and figures; lists what is missing.
    Report(PlanArgs),
    /// Write a Slurm job array (one task per shard) and a report job to run after it.
    Slurm(SlurmArgs),
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// The plan: a TOML file of axes (see README, "Running a sweep on a cluster").
    plan: PathBuf,
    /// The sweep's directory (the shared cache); default artifacts/sweep-<plan's name>.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Accept a plan above the size limit.
    #[arg(long)]
    yes: bool,
    /// No progress bars or progress lines; warnings, errors and results still print.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// This process's share: shard I of N (I from 0 to N-1, as Slurm
    /// numbers array tasks); 0/1 runs the whole plan.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    #[command(flatten)]
    jobs: JobsArg,
}

#[derive(Args, Debug)]
struct SlurmArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// How many array tasks (shards), 1 to 10 000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    shards: u64,
    /// The partition to submit to (default: the cluster's).
    #[arg(long)]
    partition: Option<String>,
    /// Each task's time limit, in Slurm's format (e.g. 02:00:00).
    #[arg(long)]
    time: Option<String>,
    /// CPUs per array task; each shard runs that many jobs at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    cpus_per_task: u64,
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    match args.command {
        SweepCommand::Plan(a) => plan(&a),
        SweepCommand::Run(a) => run_shard(&a),
        SweepCommand::Status(a) => status(&a),
        SweepCommand::Report(a) => report(&a),
        SweepCommand::Slurm(a) => slurm(&a),
    }
}

/// A plan with its data sets loaded and its units laid out in the cache.
struct Sweep {
    plan: Plan,
    out: PathBuf,
    /// The data set of each distinct data directory of the plan.
    data: BTreeMap<Option<PathBuf>, (DataArgs, Mnist)>,
    models: Vec<ModelUnit>,
    /// Each setting's JSON, what the discovery keys hash.
    settings_json: Vec<Vec<u8>>,
}

/// A model of the plan and where its checkpoint goes.
struct ModelUnit {
    point: ModelPoint,
    key: String,
    path: PathBuf,
    /// Estimated seconds of the model and every unit that needs it.
    cost: f64,
}

impl Sweep {
    fn open(args: &PlanArgs) -> anyhow::Result<Sweep> {
        let plan = Plan::read(&args.plan)?;
        plan.check_size(args.yes)?;
        let out = args.out.clone().unwrap_or_else(|| {
            let stem = args.plan.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
            artifacts_dir().join(format!("sweep-{stem}"))
        });
        let mut data = BTreeMap::new();
        for m in &plan.models {
            if !data.contains_key(&m.data_dir) {
                let d = DataArgs { data_dir: m.data_dir.clone().or(args.data.data_dir.clone()), ..args.data.clone() };
                let mnist = d.load().with_context(|| format!("train.data_dir of {}", args.plan.display()))?;
                data.insert(m.data_dir.clone(), (d, mnist));
            }
        }
        let settings_json = plan.settings.iter().map(|s| serde_json::to_vec(&s.settings)).collect::<Result<_, _>>()?;
        let mut models = Vec::with_capacity(plan.models.len());
        for point in &plan.models {
            let mnist = &data[&point.data_dir].1;
            let sizes = &point.config.sizes;
            mnist
                .train
                .check_fits("train", sizes[0], sizes[sizes.len() - 1])
                .map_err(|e| anyhow::anyhow!("{}: train.sizes {}: {e}", args.plan.display(), sizes_name(sizes)))?;
            let sums: Vec<&str> = mnist.checksums.iter().map(|c| c.sha256.as_str()).collect();
            let key = model_key(&point.config, &sums, &DeviceSpec::Cpu.to_string())?;
            let c = &point.config;
            let path = UnitFiles { out: &out, regime: c.regime, seed: c.seed }.model(&key);
            let cost = cost::group(c, plan.settings.iter().map(|s| &s.settings), plan.tasks.len(), 0);
            models.push(ModelUnit { point: point.clone(), key, path, cost });
        }
        Ok(Sweep { plan, out, data, models, settings_json })
    }

    fn mnist(&self, m: &ModelUnit) -> &Mnist {
        &self.data[&m.point.data_dir].1
    }

    /// Each model's shard.
    fn shards(&self, count: usize) -> Vec<usize> {
        let groups: Vec<(String, f64)> = self.models.iter().map(|m| (m.key.clone(), m.cost)).collect();
        assign(&groups, count)
    }

    /// The SHA-256 of a model's checkpoint as its listing records it, when
    /// the model is done.
    fn model_sha(&self, m: &ModelUnit) -> Option<String> {
        cache::recorded_sha256(&m.path)
    }

    fn files(&self, m: &ModelUnit) -> UnitFiles<'_> {
        UnitFiles { out: &self.out, regime: m.point.config.regime, seed: m.point.config.seed }
    }

    fn discovery_path(&self, m: &ModelUnit, sha: &str, s: usize, task: &Task) -> PathBuf {
        self.files(m).discovery(sha, &self.settings_json[s], task)
    }

    fn structure_path(&self, m: &ModelUnit, sha: &str, s: usize) -> PathBuf {
        self.files(m).structure(sha, &self.settings_json[s])
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.out).unwrap_or(p).display().to_string()
    }

    /// The point of model `m` (and setting, task) on every axis it has.
    fn axes_of(&self, m: &ModelUnit, s: Option<&SettingPoint>, task: Option<&Task>) -> Vec<(String, String)> {
        self.plan
            .axes
            .iter()
            .filter(|a| a.name.starts_with("train.") || s.is_some() && (a.name != "discover.task" || task.is_some()))
            .map(|a| (a.name.clone(), self.plan.value_of(&a.name, &m.point, s, task)))
            .collect()
    }
}

/// The units of the plan as `status` sees them.
#[derive(Default)]
struct Census {
    done: usize,
    running: Vec<String>,
    abandoned: Vec<String>,
    missing: BTreeSet<String>,
    /// Discoveries and analyses whose model is not trained yet.
    waiting: usize,
}

impl Census {
    fn look(&mut self, path: &Path, files: &[&Path], name: String) {
        match cache::lookup(&cache::listing_path(path), files) {
            Lookup::Hit(_) => self.done += 1,
            _ => match claim::state(path) {
                ClaimState::Held(h) => self.running.push(format!("{name} ({h})")),
                ClaimState::Abandoned(h) => self.abandoned.push(format!("{name} (was {h})")),
                ClaimState::None => {
                    self.missing.insert(name);
                }
            },
        }
    }
}

fn census(sw: &Sweep) -> Census {
    let mut c = Census::default();
    for m in &sw.models {
        let sidecar = checkpoint::sidecar_path(&m.path);
        c.look(&m.path, &[&m.path, &sidecar], sw.rel(&m.path));
        let analyses = sw.plan.settings.len() * (sw.plan.tasks.len() + 1);
        let Some(sha) = sw.model_sha(m) else {
            c.waiting += analyses;
            continue;
        };
        for s in 0..sw.plan.settings.len() {
            for task in &sw.plan.tasks {
                let p = sw.discovery_path(m, &sha, s, task);
                c.look(&p, &[&p], sw.rel(&p));
            }
            let p = sw.structure_path(m, &sha, s);
            c.look(&p, &[&p], sw.rel(&p));
        }
    }
    c
}

fn plan(args: &PlanArgs) -> anyhow::Result<()> {
    let sw = Sweep::open(args)?;
    let p = &sw.plan;
    println!("plan {}: {} units in {}", args.plan.display(), p.unit_count(), sw.out.display());
    for a in &p.axes {
        println!("  {:<20} {}{}", a.name, a.values.join(", "), if a.swept() { "   (swept)" } else { "" });
    }
    println!(
        "{} trainings, {} discoveries ({} discovery setting{} x {} task{} per model), {} STUDY §9 analyses",
        p.models.len(),
        p.models.len() * p.settings.len() * p.tasks.len(),
        p.settings.len(),
        if p.settings.len() == 1 { "" } else { "s" },
        p.tasks.len(),
        if p.tasks.len() == 1 { "" } else { "s" },
        p.models.len() * p.settings.len()
    );
    println!("\nmodel units (each with its discoveries and analyses; estimated CPU seconds):");
    let sums: Vec<String> = sw.settings_json.iter().map(|j| cache::short_hash(&[j])).collect();
    for m in &sw.models {
        let c = &m.point.config;
        let state = if sw.model_sha(m).is_some() { "trained" } else { "to train" };
        println!(
            "  {}  {:<9} seed {:<3} steps {:<7} lambda {:<7} swap {:<5} {:<16} {:<9} {:>8.1} s  {state}",
            m.key,
            c.regime.name(),
            c.seed,
            c.steps,
            c.lambda,
            c.swap_every,
            sizes_name(&c.sizes),
            c.activation,
            m.cost
        );
    }
    println!("\ndiscovery settings (their keys join the model's SHA-256 and the task in each unit's key):");
    for (s, key) in p.settings.iter().zip(&sums) {
        let c = &s.settings.config;
        println!(
            "  {key}  K {:<3} eps {:<6} ablation {:<8} {} resamples of {} pairs",
            s.k, c.eps, c.ablation, c.bootstraps, c.sample
        );
    }
    let total: f64 = sw.models.iter().map(|m| m.cost).sum();
    let c = census(&sw);
    println!(
        "\nestimated {:.0} CPU seconds in all ({:.1} h); in the cache: {} of {} units done, {} running, {} abandoned",
        total,
        total / 3600.0,
        c.done,
        p.unit_count(),
        c.running.len(),
        c.abandoned.len()
    );
    Ok(())
}

fn status(args: &PlanArgs) -> anyhow::Result<()> {
    let sw = Sweep::open(args)?;
    let c = census(&sw);
    let n = sw.plan.unit_count();
    println!(
        "{}: {} of {n} units done, {} running, {} abandoned (to be picked up again), {} missing, {} waiting for their model",
        sw.out.display(),
        c.done,
        c.running.len(),
        c.abandoned.len(),
        c.missing.len(),
        c.waiting
    );
    for r in &c.running {
        println!("  running    {r}");
    }
    for a in &c.abandoned {
        println!("  abandoned  {a}");
    }
    for m in c.missing.iter().take(20) {
        println!("  missing    {m}");
    }
    if c.missing.len() > 20 {
        println!("  ... and {} more missing", c.missing.len() - 20);
    }
    Ok(())
}

/// What one shard did, for its closing line.
#[derive(Default)]
struct Tally {
    computed: usize,
    cached: usize,
    by_others: usize,
}

fn run_shard(args: &RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let sw = Sweep::open(&args.plan)?;
    for sub in ["", "models", "discover", "structure"] {
        remove_stale_temps(&sw.out.join(sub), args.plan.quiet)?;
    }
    let shard = args.shard;
    let mine: Vec<&ModelUnit> =
        sw.models.iter().zip(sw.shards(shard.count)).filter(|(_, s)| *s == shard.index).map(|(m, _)| m).collect();
    let progress = Progress::new(args.plan.quiet);
    let est: f64 = mine.iter().map(|m| m.cost).sum();
    progress.say(&format!(
        "[sweep {shard}] {} of {} models with their units (estimated {est:.0} CPU seconds) into {}",
        mine.len(),
        sw.models.len(),
        sw.out.display()
    ));
    let tally = Mutex::new(Tally::default());
    let jobs = args.jobs.get();
    let what = format!("sweep {} shard {shard}", args.plan.plan.display());
    run_jobs(&mine, jobs, |m| run_model(&sw, m, &what, &progress, &tally, jobs > 1))?;
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    progress.result(&format!(
        "shard {shard}: {} models, {} units computed, {} cached, {} computed by another process; {:.1} s",
        mine.len(),
        t.computed,
        t.cached,
        t.by_others,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Writes a JSON unit, if the claim is still ours, and records it.
fn put_json<T: serde::Serialize>(path: &Path, value: &T, claim: &claim::Claim) -> anyhow::Result<()> {
    claim.ensure_held()?;
    cache::store_json(path, value)?;
    Ok(())
}

/// A cached checkpoint whose files match their listing, and its SHA-256.
fn fetch_model(path: &Path) -> Option<(Checkpoint, String)> {
    let sidecar = checkpoint::sidecar_path(path);
    let Lookup::Hit(files) = cache::lookup(&cache::listing_path(path), &[path, &sidecar]) else { return None };
    let ck = checkpoint::load_bytes(&files[0], path, None).ok()?;
    Some((ck, cache::sha256_hex(&files[0])))
}

/// One model of the shard: trained (or reused), then its discoveries and
/// analyses.
fn run_model(
    sw: &Sweep,
    m: &ModelUnit,
    what: &str,
    progress: &Progress,
    tally: &Mutex<Tally>,
    concurrent: bool,
) -> anyhow::Result<()> {
    let count = |s: &Source| {
        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
        match s {
            Source::Computed => t.computed += 1,
            Source::Cached => t.cached += 1,
            Source::ByOther => t.by_others += 1,
        }
    };
    let c = &m.point.config;
    let (data, mnist) = &sw.data[&m.point.data_dir];
    let ((ck, sha), src) = claimed_unit(
        &m.path,
        what,
        progress,
        || fetch_model(&m.path),
        |claim| {
            let pb = progress.bar(c.steps as u64, &format!("{}/{}", c.regime.name(), c.seed));
            let (ck, saved) = train_and_save(mnist, c.clone(), DeviceSpec::Cpu, data, &pb, concurrent, &m.path, claim)?;
            Ok((ck, cache::sha256_hex(&saved.weights)))
        },
    )?;
    count(&src);
    let acc = ck.meta.as_ref().map_or(f64::NAN, |m| m.test_accuracy);
    progress.say(&format!(
        "[train] {} {} seed {}: test accuracy {acc:.4}{}",
        m.key,
        c.regime.name(),
        c.seed,
        src.said()
    ));
    // Discoveries record the checkpoint's path relative to the sweep's
    // directory: the same bytes wherever a node mounts it.
    let model_rel = PathBuf::from(sw.rel(&m.path));
    for (s, point) in sw.plan.settings.iter().enumerate() {
        let mut found = Vec::new();
        for task in &sw.plan.tasks {
            let path = sw.discovery_path(m, &sha, s, task);
            let (d, src) = claimed_unit(
                &path,
                what,
                progress,
                || cache::fetch_json::<DiscoverOutput>(&path).map(|(d, _)| d),
                |claim| {
                    let d = discover_model(mnist, (&ck, &model_rel, &sha), task, &point.settings, true)?;
                    put_json(&path, &d, claim)?;
                    Ok(d)
                },
            )?;
            count(&src);
            progress.say(&format!(
                "[discover] {} {} K {}: logit difference {:.4}{}",
                m.key,
                task.name,
                point.k,
                d.report.summary.logit_difference.mean,
                src.said()
            ));
            found.push(d);
        }
        let path = sw.structure_path(m, &sha, s);
        let (_, src) = claimed_unit(
            &path,
            what,
            progress,
            || cache::fetch_json::<StructureResult>(&path).map(|(r, _)| r),
            |claim| {
                let discs: Vec<&DiscoverOutput> = found.iter().collect();
                let split = point.settings.split.of(sw.mnist(m));
                let r = analyse_structure(&ck, split, &discs, point.settings.config.seed)
                    .with_context(|| format!("STUDY §9 on {}", m.path.display()))?;
                put_json(&path, &r, claim)?;
                Ok(r)
            },
        )?;
        count(&src);
    }
    Ok(())
}

/// The files `report` writes, relative to the sweep's directory.
const REPORT_FILES: [&str; 2] = ["results.json", "units.csv"];

fn report(args: &PlanArgs) -> anyhow::Result<()> {
    let sw = Sweep::open(args)?;
    let outputs: Vec<PathBuf> = REPORT_FILES.iter().map(|f| sw.out.join(f)).collect();
    let mut inputs = args.data.inputs();
    inputs.push(("the plan".into(), args.plan.clone()));
    let named: Vec<(&str, &Path)> = outputs.iter().map(|p| ("the report's", p.as_path())).collect();
    refuse_overwrite(&named, &inputs)?;
    let mut missing = BTreeSet::new();
    let (mut models, mut discoveries, mut analyses) = (Vec::new(), Vec::new(), Vec::new());
    for m in &sw.models {
        let Some((ck, sha)) = fetch_model(&m.path) else {
            missing.insert(format!("{} (and its discoveries and analyses)", sw.rel(&m.path)));
            continue;
        };
        let meta = ck.meta.as_ref().context("a sweep checkpoint without its sidecar")?;
        models.push(SweepModel {
            key: m.key.clone(),
            axes: sw.axes_of(m, None, None),
            path: sw.rel(&m.path),
            sha256: sha.clone(),
            test_accuracy: meta.test_accuracy,
            train_seconds: meta.timing.total_s,
        });
        for (s, point) in sw.plan.settings.iter().enumerate() {
            for task in &sw.plan.tasks {
                let path = sw.discovery_path(m, &sha, s, task);
                let Some((d, _)) = cache::fetch_json::<DiscoverOutput>(&path) else {
                    missing.insert(sw.rel(&path));
                    continue;
                };
                let sm = &d.report.summary;
                discoveries.push(SweepDiscovery {
                    model: m.key.clone(),
                    axes: sw.axes_of(m, Some(point), Some(task)),
                    path: sw.rel(&path),
                    logit_difference: sm.logit_difference,
                    accuracy: sm.accuracy,
                    sparsity: sm.sparsity,
                    faithfulness: sm.faithfulness,
                    model_accuracy: sm.model_accuracy,
                    discovery_seconds: sm.discovery_s,
                });
            }
            let path = sw.structure_path(m, &sha, s);
            let Some((r, _)) = cache::fetch_json::<StructureResult>(&path) else {
                missing.insert(sw.rel(&path));
                continue;
            };
            analyses.push(SweepAnalysis {
                model: m.key.clone(),
                axes: sw.axes_of(m, Some(point), None),
                path: sw.rel(&path),
                wiring_length: r.wiring_length,
                modularity_all_weights: r.all_weights.q,
                modularity_eps_edges: r.eps_edges.q,
                seconds: r.seconds,
            });
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "{} of {} units are not in {} yet: {} (run the missing shards, or see `cargo xtask sweep status`)",
            missing.len(),
            sw.plan.unit_count(),
            sw.out.display(),
            list_some(&missing, 12)
        );
    }
    let plan_name = args.plan.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let results = SweepResults {
        schema: SWEEP_SCHEMA.into(),
        plan: plan_name,
        axes: sw.plan.axes.clone(),
        models,
        discoveries,
        analyses,
    };
    write_atomic(&outputs[0], &serde_json::to_vec_pretty(&results)?)?;
    write_atomic(&outputs[1], units_csv(&results).as_bytes())?;
    let figures = draw(&sw.out.join("figures"), &results)?;
    println!("{}", outputs[0].display());
    println!("{}", outputs[1].display());
    for f in figures {
        println!("{}", f.display());
    }
    Ok(())
}

/// One row per unit: its kind, its axes, its metrics (blank where a kind
/// has none).
fn units_csv(r: &SweepResults) -> String {
    let axes: Vec<&str> = r.axes.iter().map(|a| a.name.as_str()).collect();
    let metrics = [
        "sha256",
        "test_accuracy",
        "logit_difference",
        "logit_difference_lo",
        "logit_difference_hi",
        "circuit_accuracy",
        "sparsity",
        "faithfulness",
        "model_accuracy",
        "wiring_length",
        "modularity_all_weights",
        "modularity_eps_edges",
        "seconds",
    ];
    let mut header = vec!["kind", "unit"];
    header.extend(&axes);
    header.extend(metrics);
    let row = |kind: &str, unit: &str, own: &[(String, String)], vals: &[(&str, String)]| -> Vec<String> {
        let mut row = vec![kind.to_string(), unit.to_string()];
        row.extend(axes.iter().map(|a| own.iter().find(|(n, _)| n == a).map(|(_, v)| v.clone()).unwrap_or_default()));
        row.extend(
            metrics.iter().map(|m| vals.iter().find(|(n, _)| n == m).map(|(_, v)| v.clone()).unwrap_or_default()),
        );
        row
    };
    let mut rows = Vec::new();
    for m in &r.models {
        let vals = [
            ("sha256", m.sha256.clone()),
            ("test_accuracy", m.test_accuracy.to_string()),
            ("seconds", m.train_seconds.to_string()),
        ];
        rows.push(row("train", &m.path, &m.axes, &vals));
    }
    for d in &r.discoveries {
        let vals = [
            ("logit_difference", d.logit_difference.mean.to_string()),
            ("logit_difference_lo", d.logit_difference.lo.to_string()),
            ("logit_difference_hi", d.logit_difference.hi.to_string()),
            ("circuit_accuracy", d.accuracy.mean.to_string()),
            ("sparsity", d.sparsity.mean.to_string()),
            ("faithfulness", d.faithfulness.map_or(String::new(), |f| f.mean.to_string())),
            ("model_accuracy", d.model_accuracy.mean.to_string()),
            ("seconds", d.discovery_seconds.mean.to_string()),
        ];
        rows.push(row("discover", &d.path, &d.axes, &vals));
    }
    for a in &r.analyses {
        let vals = [
            ("wiring_length", a.wiring_length.to_string()),
            ("modularity_all_weights", a.modularity_all_weights.to_string()),
            ("modularity_eps_edges", a.modularity_eps_edges.to_string()),
            ("seconds", a.seconds.to_string()),
        ];
        rows.push(row("analyse", &a.path, &a.axes, &vals));
    }
    csv_table(&header, &rows)
}

/// Each metric against each swept axis but the seed: mean and interval
/// over seeds, one series per combination of the other swept axes.
fn draw(dir: &Path, r: &SweepResults) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for axis in r.axes.iter().filter(|a| a.swept() && a.name != "train.seed") {
        let short = axis.name.split('.').nth(1).unwrap_or(&axis.name);
        for (metric, rows) in metric_rows(r) {
            let points = against_axis(&r.axes, &axis.name, &rows);
            if points.is_empty() {
                continue;
            }
            let stem = dir.join(format!("{}_vs_{short}", metric.name));
            let seeds = points.iter().map(|p| p.seeds).max().unwrap_or(1);
            let title = format!(
                "{} by {short}: {}",
                metric.name.replace('_', " "),
                if seeds > 1 { format!("mean, 95% t interval over {seeds} seeds") } else { "one seed".into() }
            );
            let series: Vec<String> = points.iter().map(|p| p.series.clone()).fold(Vec::new(), |mut v, s| {
                if !v.contains(&s) {
                    v.push(s);
                }
                v
            });
            let files = if numeric_axis(axis) {
                // Values spanning more than a decade are drawn as their log10.
                let vals: Vec<f64> = axis.values.iter().filter_map(|v| v.parse().ok()).collect();
                let (lo, hi) = vals.iter().fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
                let log = lo > 0.0 && hi / lo > 10.0;
                let pts: Vec<Point> = points
                    .iter()
                    .map(|p| {
                        let x: f64 = p.value.parse().unwrap_or(f64::NAN);
                        let x = if log { x.log10() } else { x };
                        Point {
                            label: if p.series.is_empty() { metric.name.to_string() } else { p.series.clone() },
                            x: Summary { mean: x, lo: x, hi: x, n: 1 },
                            y: p.summary,
                            color: series.iter().position(|s| *s == p.series).unwrap_or(0),
                            reference: false,
                        }
                    })
                    .collect();
                let x_label = if log { format!("log10 {short}") } else { short.to_string() };
                scatter_ci(
                    &stem,
                    &x_label,
                    metric.label,
                    &[ScatterPanel { title, points: pts, x_domain: None }],
                    false,
                )?
            } else {
                // Bar labels are short: the other axes' values alone, in
                // the order the title names them.
                let bare = |series: &str| {
                    series
                        .split(", ")
                        .map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let bars: Vec<Bar> = points
                    .iter()
                    .map(|p| Bar {
                        label: if p.series.is_empty() {
                            p.value.clone()
                        } else {
                            format!("{}, {}", p.value, bare(&p.series))
                        },
                        segments: vec![(metric.name.to_string(), p.summary.mean)],
                        interval: (p.seeds > 1).then_some((p.summary.lo, p.summary.hi)),
                    })
                    .collect();
                let others = &points[0].series_axes;
                let title =
                    if others.is_empty() { title } else { format!("{title} (bars: {short}, {})", others.join(", ")) };
                bar_chart(&stem, &title, metric.label, &bars)?
            };
            written.extend(files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "png")));
        }
    }
    Ok(written)
}

fn slurm(args: &SlurmArgs) -> anyhow::Result<()> {
    let sw = Sweep::open(&args.plan)?;
    let abs = |p: &Path| -> anyhow::Result<PathBuf> {
        Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
    };
    let job = SlurmJob {
        binary: std::env::current_exe().context("finding this binary's path")?,
        plan: abs(&args.plan.plan)?,
        out: abs(&sw.out)?,
        data_dir: args.plan.data.data_dir.as_deref().map(abs).transpose()?,
        shards: args.shards as usize,
        partition: args.partition.clone(),
        time: args.time.clone(),
        cpus_per_task: args.cpus_per_task as usize,
    };
    let dir = job.out.join("slurm");
    let (array, report) = (dir.join("array.sbatch"), dir.join("report.sbatch"));
    let mut inputs = args.plan.data.inputs();
    inputs.push(("the plan".into(), args.plan.plan.clone()));
    refuse_overwrite(&[("the array script", &array), ("the report script", &report)], &inputs)?;
    write_atomic(&array, job.array_script().as_bytes())?;
    write_atomic(&report, job.report_script().as_bytes())?;
    let shards = sw.shards(job.shards);
    for s in 0..job.shards {
        let (n, est) =
            sw.models.iter().zip(&shards).filter(|(_, &k)| k == s).fold((0, 0.0), |(n, e), (m, _)| (n + 1, e + m.cost));
        if !args.plan.quiet {
            eprintln!("shard {s}: {n} models, estimated {est:.0} CPU seconds");
        }
    }
    if job.shards > sw.models.len() {
        eprintln!(
            "note: {} shards for {} models: {} array tasks will have nothing to do (a model and its units never split)",
            job.shards,
            sw.models.len(),
            job.shards - sw.models.len()
        );
    }
    println!("{}", job.submit_commands(&array, &report));
    Ok(())
}
