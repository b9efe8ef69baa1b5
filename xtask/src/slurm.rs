//! Job scripts that run a sweep's shards on a cluster and its report
//! after them: a Slurm job array (`sweep slurm`) or a Kubernetes Indexed
//! Job (`sweep k8s`). Both run the same commands: shard I of N with
//! `sweep run`, then `sweep report`, with every flag that changes what a
//! task does passed on. Every value written into a script is checked
//! first: control characters are refused everywhere, and what a line's
//! parser cannot take (sbatch's `#SBATCH` lines) is refused, naming it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::flags::{refuse_overwrite, write_output};
use crate::sweep::{open, PlanArgs};

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

/// A value with no control character (a newline would end a script's line).
fn plain_value(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else if let Some(c) = s.chars().find(|c| c.is_control()) {
        Err(format!("{s:?} holds the control character {c:?}"))
    } else {
        Ok(s.to_string())
    }
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

/// What every task runs: this binary on the plan, into the shared
/// directory, with the flags that change what a task does.
#[derive(Debug, Clone)]
pub struct TaskCommand {
    /// The `xtask` binary (on a path every node sees).
    pub binary: PathBuf,
    /// The plan (absolute).
    pub plan: PathBuf,
    /// The shared output directory (absolute).
    pub out: PathBuf,
    /// `--data-dir`, if given.
    pub data_dir: Option<PathBuf>,
    /// `--no-verify`.
    pub no_verify: bool,
    /// How many shards.
    pub shards: usize,
    /// Jobs per shard.
    pub jobs: usize,
}

impl TaskCommand {
    fn of(args: &PlanArgs, out: &Path, shards: u64, jobs: u64) -> anyhow::Result<TaskCommand> {
        let abs = |p: &Path| -> anyhow::Result<PathBuf> {
            Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
        };
        let cmd = TaskCommand {
            binary: std::env::current_exe().context("finding this binary's path")?,
            plan: abs(&args.plan)?,
            out: abs(out)?,
            data_dir: args.data.data_dir.as_deref().map(abs).transpose()?,
            no_verify: args.data.no_verify,
            shards: shards as usize,
            jobs: jobs as usize,
        };
        for (what, p) in [("this binary", Some(&cmd.binary)), ("the plan", Some(&cmd.plan)), ("--out", Some(&cmd.out))]
            .into_iter()
            .chain([("--data-dir", cmd.data_dir.as_ref())])
        {
            if let Some(p) = p {
                plain_value(&p.to_string_lossy()).map_err(|e| anyhow::anyhow!("{what} {}: {e}", p.display()))?;
            }
        }
        Ok(cmd)
    }

    /// The flags every command shares.
    fn common(&self) -> Vec<String> {
        let mut v = vec!["--quiet".into(), "--out".into(), self.out.display().to_string()];
        if let Some(d) = &self.data_dir {
            v.extend(["--data-dir".into(), d.display().to_string()]);
        }
        if self.no_verify {
            v.push("--no-verify".into());
        }
        v.push("--yes".into());
        v
    }

    /// `sweep run` of shard [`SHARD_INDEX`] (the placeholder each
    /// runner's script writes its own variable for).
    pub fn shard_argv(&self) -> Vec<String> {
        let mut v = vec![self.binary.display().to_string(), "sweep".into(), "run".into()];
        v.push(self.plan.display().to_string());
        v.extend(["--shard".into(), format!("{SHARD_INDEX}/{}", self.shards), "--jobs".into(), self.jobs.to_string()]);
        v.extend(self.common());
        v
    }

    /// `sweep report`.
    pub fn report_argv(&self) -> Vec<String> {
        let mut v = vec![self.binary.display().to_string(), "sweep".into(), "report".into()];
        v.push(self.plan.display().to_string());
        v.extend(self.common());
        v
    }
}

/// Where the `--shard` word takes the runner's index: a character no path
/// or value may hold ([`plain_value`] refuses control characters), so that
/// only this word is made live, never a `$` a path holds.
pub const SHARD_INDEX: &str = "\u{1}";

/// `word` quoted for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// An argv as a shell line, every word quoted; where a word holds
/// [`SHARD_INDEX`], the variable `live` (`$NAME`) stands there, expanded.
fn shell_line(argv: &[String], live: &str) -> String {
    let part = |s: &str| if s.is_empty() { String::new() } else { shell_quote(s) };
    argv.iter()
        .map(|w| match w.split_once(SHARD_INDEX) {
            Some((a, b)) => format!("{}\"{live}\"{}", part(a), part(b)),
            None => shell_quote(w),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A path as an `#SBATCH` value: sbatch splits these lines on blanks and
/// reads `%` as a pattern and `#` as a comment, with no quoting it
/// documents, so a path holding any of them (or a quote) is refused.
fn sbatch_path(what: &str, p: &Path) -> anyhow::Result<String> {
    let s = p.to_string_lossy();
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || "%#'\"\\".contains(*c) || c.is_control()) {
        anyhow::bail!("{what} {}: sbatch cannot take {c:?} in a #SBATCH path; choose a path without it", p.display());
    }
    Ok(s.into_owned())
}

/// The Slurm array and report scripts.
fn slurm_scripts(cmd: &TaskCommand, args: &SlurmArgs) -> anyhow::Result<(String, String)> {
    let dir = sbatch_path("--out", &cmd.out.join("slurm"))?;
    let header = |name: &str, log: &str| -> anyhow::Result<String> {
        let mut s = format!("#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={dir}/{log}\n");
        if let Some(p) = &args.partition {
            s.push_str(&format!("#SBATCH --partition={p}\n"));
        }
        if let Some(t) = &args.time {
            s.push_str(&format!("#SBATCH --time={t}\n"));
        }
        Ok(s)
    };
    let mut array = header("modcirc-sweep", "shard-%a.log")?;
    array.push_str(&format!("#SBATCH --array=0-{}\n#SBATCH --cpus-per-task={}\n", cmd.shards - 1, cmd.jobs));
    array.push_str(&format!("set -euo pipefail\nexec {}\n", shell_line(&cmd.shard_argv(), "$SLURM_ARRAY_TASK_ID")));
    let mut report = header("modcirc-sweep-report", "report.log")?;
    report.push_str(&format!(
        "#SBATCH --cpus-per-task=1\nset -euo pipefail\nexec {}\n",
        shell_line(&cmd.report_argv(), "")
    ));
    Ok((array, report))
}

pub fn slurm(args: &SlurmArgs) -> anyhow::Result<()> {
    let wl = open(&args.plan)?;
    let cmd = TaskCommand::of(&args.plan, &wl.out, args.shards, args.cpus_per_task)?;
    let (array_text, report_text) = slurm_scripts(&cmd, args)?;
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

/// A string as a YAML scalar: JSON's quoting, which YAML reads the same.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A YAML flow list of a container's `command` or `args`, as Kubernetes
/// reads them: it expands `$(VAR)` and reduces `$$` to `$` there, so every
/// `$` is doubled, and [`SHARD_INDEX`] becomes `$(JOB_COMPLETION_INDEX)`.
fn k8s_argv(items: &[String]) -> String {
    let word = |s: &String| yaml_str(&s.replace('$', "$$").replace(SHARD_INDEX, "$(JOB_COMPLETION_INDEX)"));
    format!("[{}]", items.iter().map(word).collect::<Vec<_>>().join(", "))
}

/// A sweep's Job names: its own (a hash of its directory), so that two
/// sweeps in one namespace do not collide.
fn k8s_names(cmd: &TaskCommand) -> (String, String) {
    let id = modcirc_store::short_hash(&[cmd.out.as_os_str().as_encoded_bytes()]);
    (format!("modcirc-sweep-{id}"), format!("modcirc-report-{id}"))
}

/// A Kubernetes Job: `indexed` runs `shards` pods, each with its index in
/// `JOB_COMPLETION_INDEX` (expanded in its arguments by Kubernetes).
fn k8s_job(name: &str, argv: &[String], args: &K8sArgs, cmd: &TaskCommand, indexed: bool) -> String {
    let count = if indexed { cmd.shards } else { 1 };
    let mode = if indexed { "Indexed" } else { "NonIndexed" };
    let mount = cmd.out.display().to_string();
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  completionMode: {mode}\n  completions: {count}\n  parallelism: {count}\n  backoffLimit: {backoff}\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: {name}\n          image: {image}\n          command: {command}\n          args: {args}\n          resources:\n            requests:\n              cpu: {cpu}\n          volumeMounts:\n            - name: sweep\n              mountPath: {mount}\n      volumes:\n        - name: sweep\n          persistentVolumeClaim:\n            claimName: {claim}\n",
        backoff = 3 * count,
        image = yaml_str(&args.image),
        command = k8s_argv(&argv[..1]),
        args = k8s_argv(&argv[1..]),
        cpu = yaml_str(&if indexed { cmd.jobs } else { 1 }.to_string()),
        mount = yaml_str(&mount),
        claim = yaml_str(&args.claim),
    )
}

pub fn k8s(args: &K8sArgs) -> anyhow::Result<()> {
    let wl = open(&args.plan)?;
    let cmd = TaskCommand::of(&args.plan, &wl.out, args.shards, args.cpus_per_task)?;
    let (shard_name, report_name) = k8s_names(&cmd);
    let shard_job = k8s_job(&shard_name, &cmd.shard_argv(), args, &cmd, true);
    let report_job = k8s_job(&report_name, &cmd.report_argv(), args, &cmd, false);
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
