//! `cargo xtask sweep`: a plan of axes (`sweep.toml`) run in shards, on
//! one machine or a Slurm cluster, into one shared, self-checking cache.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use modcirc_engine::collect::sweep_results;
use modcirc_engine::describe;
use modcirc_engine::execute::{execute, Options, Silent};
use modcirc_engine::Shard;
use modcirc_present::sweep::{write_sweep, SWEEP_FILES};

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
    let wl = open(args)?;
    print!("{}", describe::plan(&wl, &args.plan.display().to_string())?);
    Ok(())
}

fn status(args: &PlanArgs) -> anyhow::Result<()> {
    let wl = open(args)?;
    print!("{}", describe::status(&wl, &wl.census(&wl.all())?));
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
