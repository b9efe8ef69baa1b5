//! `sweep slurm` and `sweep k8s`: the job scripts of `modcirc_engine::launch`
//! for this binary, the plan and its directory, written under the sweep's
//! directory, with the commands that submit them.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use modcirc_engine::launch::{k8s_job, k8s_names, plain_value, shell_quote, slurm_scripts, TaskCommand, SHARD_INDEX};

use crate::flags::{refuse_overwrite, write_output};
use crate::plan_args::{open, PlanArgs};

#[derive(Args, Debug)]
pub struct SlurmArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// How many array tasks (shards), 1 to 10 000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    shards: u64,
    /// The partition to submit to (default: the cluster's).
    #[arg(long, value_parser = slurm_word)]
    partition: Option<String>,
    /// Each task's time limit, in Slurm's format (e.g. 02:00:00).
    #[arg(long, value_parser = slurm_time)]
    time: Option<String>,
    /// CPUs per array task; each shard runs that many jobs at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    cpus_per_task: u64,
}

#[derive(Args, Debug)]
pub struct K8sArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// How many pods (shards), 1 to 10 000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    shards: u64,
    /// The container image: one with this binary at the same path, the
    /// plan and the data.
    #[arg(long, value_parser = plain_value)]
    image: String,
    /// The PersistentVolumeClaim (ReadWriteMany) that holds the sweep's
    /// directory, mounted at the same path in every pod.
    #[arg(long, value_parser = plain_value)]
    claim: String,
    /// CPUs per pod; each shard runs that many jobs at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    cpus_per_task: u64,
}

/// `--partition`: a name (letters, digits, `_ . , -`), as sbatch reads it.
fn slurm_word(s: &str) -> Result<String, String> {
    let s = plain_value(s)?;
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "_.,-".contains(c)) {
        Ok(s)
    } else {
        Err(format!("{s:?} is not a partition name (letters, digits, '_', '.', ',', '-')"))
    }
}

/// `--time`: Slurm's time format (digits, `-` and `:`).
fn slurm_time(s: &str) -> Result<String, String> {
    let s = plain_value(s)?;
    if s.chars().any(|c| c.is_ascii_digit()) && s.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '-') {
        Ok(s)
    } else {
        Err(format!("{s:?} is not a Slurm time such as 02:00:00 or 1-00:00:00"))
    }
}

/// What every task runs: this binary on the plan, into `out`, with the
/// flags that change what a task does: shard I of N with `sweep run`, then
/// `sweep report`.
fn task_command(args: &PlanArgs, out: &Path, shards: u64, jobs: u64) -> anyhow::Result<TaskCommand> {
    let abs = |p: &Path| -> anyhow::Result<String> {
        Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) }.display().to_string())
    };
    let binary = std::env::current_exe().context("finding this binary's path")?.display().to_string();
    let (plan, out) = (abs(&args.plan)?, abs(out)?);
    let mut common = vec!["--quiet".into(), "--out".into(), out.clone()];
    if let Some(d) = &args.data.data_dir {
        common.extend(["--data-dir".into(), abs(d)?]);
    }
    if args.data.no_verify {
        common.push("--no-verify".into());
    }
    common.push("--yes".into());
    let mut shard = vec![binary.clone(), "sweep".into(), "run".into(), plan.clone(), "--shard".into()];
    shard.extend([format!("{SHARD_INDEX}/{shards}"), "--jobs".into(), jobs.to_string()]);
    shard.extend(common.iter().cloned());
    let mut report = vec![binary, "sweep".into(), "report".into(), plan];
    report.extend(common);
    let cmd = TaskCommand { shard, report, out: out.into(), shards: shards as usize, jobs: jobs as usize };
    cmd.check().map_err(|e| anyhow::anyhow!("{e} (--out, --data-dir, the plan)"))?;
    Ok(cmd)
}

pub fn slurm(args: &SlurmArgs) -> anyhow::Result<()> {
    let wl = open(&args.plan)?;
    let cmd = task_command(&args.plan, &wl.out, args.shards, args.cpus_per_task)?;
    let (array_text, report_text) = slurm_scripts(&cmd, args.partition.as_deref(), args.time.as_deref())
        .map_err(|e| anyhow::anyhow!("{e} (--out)"))?;
    let [array, report] = write_jobs(
        &args.plan,
        &wl,
        &cmd,
        [
            ("the array script", "slurm/array.sbatch", array_text),
            ("the report script", "slurm/report.sbatch", report_text),
        ],
    )?;
    println!("array=$(sbatch --parsable {array}) && sbatch --dependency=afterok:\"${{array%%;*}}\" {report}");
    Ok(())
}

/// Writes a cluster's two job files (what each is, its path under the
/// sweep's directory, its text), refusing to write over what the command
/// reads, and says each shard's load; returns their paths, shell-quoted.
fn write_jobs(
    plan: &PlanArgs,
    wl: &modcirc_engine::Workload,
    cmd: &TaskCommand,
    files: [(&str, &str, String); 2],
) -> anyhow::Result<[String; 2]> {
    let paths = files.each_ref().map(|(_, rel, _)| cmd.out.join(rel));
    let mut inputs = plan.data.inputs();
    inputs.push(("the plan".into(), plan.plan.clone()));
    refuse_overwrite(&[(files[0].0, &paths[0]), (files[1].0, &paths[1])], &inputs)?;
    for ((_, _, text), path) in files.iter().zip(&paths) {
        write_output(path, text.as_bytes())?;
    }
    shard_loads(wl, cmd.shards, plan.quiet);
    Ok(paths.map(|p| shell_quote(&p.to_string_lossy())))
}

/// Each shard's estimated load, and a note when shards outnumber models.
fn shard_loads(wl: &modcirc_engine::Workload, shards: usize, quiet: bool) {
    for s in 0..shards {
        let mine = wl.shard(modcirc_engine::Shard { index: s, count: shards });
        if !quiet {
            let (models, planted) = (mine.models.len(), mine.planted.len());
            eprintln!("shard {s}: {models} models, {planted} planted groups, estimated {:.0} CPU seconds", mine.cost());
        }
    }
    let groups = wl.all().len();
    if shards > groups {
        eprintln!(
            "note: {shards} shards for {groups} groups: {} tasks will have nothing to do (a model and its units never split)",
            shards - groups
        );
    }
}

pub fn k8s(args: &K8sArgs) -> anyhow::Result<()> {
    let wl = open(&args.plan)?;
    let cmd = task_command(&args.plan, &wl.out, args.shards, args.cpus_per_task)?;
    let (shard_name, report_name) = k8s_names(&cmd);
    let volume = (args.image.as_str(), args.claim.as_str());
    let shard_job = k8s_job(&shard_name, &cmd.shard, volume, &cmd, true);
    let report_job = k8s_job(&report_name, &cmd.report, volume, &cmd, false);
    let [array, report] = write_jobs(
        &args.plan,
        &wl,
        &cmd,
        [("the shards manifest", "k8s/shards.yaml", shard_job), ("the report manifest", "k8s/report.yaml", report_job)],
    )?;
    // Waits until the shards' Job is complete or has failed (a failed
    // shard ends the wait: `kubectl wait` for completion alone would wait
    // on), then starts the report only if it is complete.
    let state =
        format!("kubectl get job/{shard_name} -o jsonpath='{{.status.conditions[?(@.status==\"True\")].type}}'");
    println!(
        "kubectl apply -f {array} && until {state} | grep -qE 'Complete|Failed'; do sleep 20; done && {state} | grep -q Complete && kubectl apply -f {report}"
    );
    Ok(())
}
