//! `cargo xtask sweep`: a plan of axes (`sweep.toml`) run in shards, on
//! one machine or a Slurm cluster, into one shared, self-checking cache.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use modcirc_engine::collect::sweep_results;
use modcirc_engine::execute::{execute, Options, Silent};
use modcirc_engine::plan::sizes_name;
use modcirc_engine::Shard;
use modcirc_present::sweep::{write_sweep, SWEEP_FILES};
use modcirc_store::listing::recorded_sha256;

use crate::flags::{refuse_overwrite, remove_stale_temps, JobsArg};
use crate::plan_args::{open, PlanArgs};
use crate::progress::{Bars, Progress};
use crate::reproduce::with_flags;
use crate::slurm::{k8s, slurm, K8sArgs, SlurmArgs};

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
    /// Write a Kubernetes Indexed Job (one pod per shard) and a report Job to run after it.
    K8s(K8sArgs),
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

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    match args.command {
        SweepCommand::Plan(a) => plan(&a),
        SweepCommand::Run(a) => run_shard(&a),
        SweepCommand::Status(a) => status(&a),
        SweepCommand::Report(a) => report(&a),
        SweepCommand::Slurm(a) => slurm(&a),
        SweepCommand::K8s(a) => k8s(&a),
    }
}

fn plan(args: &PlanArgs) -> anyhow::Result<()> {
    let sw = open(args)?;
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
    let sums: Vec<String> = (0..p.settings.len()).map(|s| sw.setting_key(s)).collect();
    for m in &sw.models {
        let c = &m.point.config;
        let state = if recorded_sha256(&m.path).is_some() { "trained" } else { "to train" };
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
    let c = sw.census(&sw.all())?;
    if let Some(s) = &p.planted {
        println!(
            "\nplanted-truth suite (STUDY §11): {} regimes x {} seeds of {} steps, block {}, and a Boolean suite per regime: {} units",
            s.regimes.len(),
            s.seeds.len(),
            s.steps,
            s.block,
            s.units()
        );
    }
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
    let sw = open(args)?;
    let c = sw.census(&sw.all())?;
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

fn run_shard(args: &RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let wl = open(&args.plan)?;
    remove_stale_temps(wl.dirs().iter().map(PathBuf::as_path), args.plan.quiet)?;
    let shard = args.shard;
    let mine = wl.shard(shard);
    let progress = Progress::new(args.plan.quiet);
    let est = mine.cost();
    progress.say(&format!(
        "[sweep {shard}] {} of {} models with their units, {} of {} planted groups (estimated {est:.0} CPU seconds) into {}",
        mine.models.len(),
        wl.models.len(),
        mine.planted.len(),
        wl.planted.len(),
        wl.out.display()
    ));
    let what = format!("sweep {} shard {shard}", args.plan.plan.display());
    let options = Options { jobs: args.jobs.get(), force: false, what };
    let bars = Bars::new(progress.clone());
    execute(&wl, &mine, &options, &bars).map_err(with_flags)?;
    let t = bars.tally();
    progress.result(&format!(
        "shard {shard}: {} models and {} planted groups, {} units computed, {} cached, {} computed by another process; {:.1} s",
        mine.models.len(),
        mine.planted.len(),
        t.computed,
        t.cached,
        t.by_others,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn report(args: &PlanArgs) -> anyhow::Result<()> {
    let wl = open(args)?;
    let outputs: Vec<PathBuf> = SWEEP_FILES.iter().map(|f| wl.out.join(f)).collect();
    let mut inputs = args.data.inputs();
    inputs.push(("the plan".into(), args.plan.clone()));
    let named: Vec<(&str, &Path)> = outputs.iter().map(|p| ("the report's", p.as_path())).collect();
    refuse_overwrite(&named, &inputs)?;
    let all = wl.all();
    wl.require_done(&all)
        .map_err(|e| anyhow::anyhow!("{e} (run the missing shards, or see `cargo xtask sweep status`)"))?;
    let options = Options { jobs: 1, force: false, what: "sweep report".into() };
    let executed = execute(&wl, &all, &options, &Silent).map_err(with_flags)?;
    let plan_name = args.plan.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let mut results = sweep_results(&wl, &executed.models, &plan_name);
    results.planted = executed.planted.map(|p| p.results);
    let written = write_sweep(&wl.out, &results)?;
    if !args.quiet {
        print!("{}", modcirc_study::sweep::axis_table(&results));
    }
    for f in written {
        println!("{}", f.display());
    }
    Ok(())
}
