//! Job scripts that run a sweep's shards on a cluster and its report
//! after them: a Slurm job array or a Kubernetes Indexed Job. Both run the
//! same commands ([`TaskCommand`]): shard I of N with `sweep run`, then
//! `sweep report`, with every flag that changes what a task does passed
//! on. Every value written into a script is checked first: control
//! characters are refused everywhere, and what a line's parser cannot take
//! (sbatch's `#SBATCH` lines) is refused, naming it; every word is quoted
//! for the shell or YAML that reads it.

use std::path::{Path, PathBuf};

use crate::EngineError;

/// A value with no control character (a newline would end a script's line).
pub fn plain_value(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else if let Some(c) = s.chars().find(|c| c.is_control()) {
        Err(format!("{s:?} holds the control character {c:?}"))
    } else {
        Ok(s.to_string())
    }
}

/// What every task runs, as the binary that writes the scripts builds it
/// (the library knows no command line): each shard's command, with
/// [`SHARD_INDEX`] where its index goes, and the report's, both running in
/// the shared directory `out`.
#[derive(Debug, Clone)]
pub struct TaskCommand {
    /// Shard [`SHARD_INDEX`]'s command (argv).
    pub shard: Vec<String>,
    /// The report's command (argv).
    pub report: Vec<String>,
    /// The shared output directory (absolute).
    pub out: PathBuf,
    /// How many shards.
    pub shards: usize,
    /// Jobs per shard.
    pub jobs: usize,
}

impl TaskCommand {
    /// Refuses a word no script could hold (a control character), naming it.
    pub fn check(&self) -> Result<(), EngineError> {
        let out = self.out.display().to_string();
        for word in self.shard.iter().chain(&self.report).chain([&out]) {
            plain_value(&word.replace(SHARD_INDEX, "0"))
                .map_err(|message| EngineError::Launch { what: format!("the task's word {word:?}"), message })?;
        }
        Ok(())
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
pub fn shell_line(argv: &[String], live: &str) -> String {
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
fn sbatch_path(what: &str, p: &Path) -> Result<String, EngineError> {
    let s = p.to_string_lossy();
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || "%#'\"\\".contains(*c) || c.is_control()) {
        let message = format!("sbatch cannot take {c:?} in a #SBATCH path; choose a path without it");
        return Err(EngineError::Launch { what: format!("{what} {}", p.display()), message });
    }
    Ok(s.into_owned())
}

/// The Slurm array and report scripts, on `partition` with each task's
/// `time` limit (the cluster's defaults where `None`; both checked by the
/// caller as sbatch reads them).
pub fn slurm_scripts(
    cmd: &TaskCommand,
    partition: Option<&str>,
    time: Option<&str>,
) -> Result<(String, String), EngineError> {
    let dir = sbatch_path("the output directory", &cmd.out.join("slurm"))?;
    let header = |name: &str, log: &str| -> Result<String, EngineError> {
        let mut s = format!("#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={dir}/{log}\n");
        if let Some(p) = partition {
            s.push_str(&format!("#SBATCH --partition={p}\n"));
        }
        if let Some(t) = time {
            s.push_str(&format!("#SBATCH --time={t}\n"));
        }
        Ok(s)
    };
    let mut array = header("modcirc-sweep", "shard-%a.log")?;
    array.push_str(&format!("#SBATCH --array=0-{}\n#SBATCH --cpus-per-task={}\n", cmd.shards - 1, cmd.jobs));
    array.push_str(&format!("set -euo pipefail\nexec {}\n", shell_line(&cmd.shard, "$SLURM_ARRAY_TASK_ID")));
    let mut report = header("modcirc-sweep-report", "report.log")?;
    report.push_str(&format!("#SBATCH --cpus-per-task=1\nset -euo pipefail\nexec {}\n", shell_line(&cmd.report, "")));
    Ok((array, report))
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
pub fn k8s_names(cmd: &TaskCommand) -> (String, String) {
    let id = modcirc_store::short_hash(&[cmd.out.as_os_str().as_encoded_bytes()]);
    (format!("modcirc-sweep-{id}"), format!("modcirc-report-{id}"))
}

/// A Kubernetes Job of `image`, the sweep's directory on the volume
/// `claim`: `indexed` runs `shards` pods, each with its index in
/// `JOB_COMPLETION_INDEX` (expanded in its arguments by Kubernetes).
pub fn k8s_job(name: &str, argv: &[String], (image, claim): (&str, &str), cmd: &TaskCommand, indexed: bool) -> String {
    let count = if indexed { cmd.shards } else { 1 };
    let mode = if indexed { "Indexed" } else { "NonIndexed" };
    let mount = cmd.out.display().to_string();
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  completionMode: {mode}\n  completions: {count}\n  parallelism: {count}\n  backoffLimit: {backoff}\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: {name}\n          image: {image}\n          command: {command}\n          args: {args}\n          resources:\n            requests:\n              cpu: {cpu}\n          volumeMounts:\n            - name: sweep\n              mountPath: {mount}\n      volumes:\n        - name: sweep\n          persistentVolumeClaim:\n            claimName: {claim}\n",
        backoff = 3 * count,
        image = yaml_str(image),
        command = k8s_argv(&argv[..1]),
        args = k8s_argv(&argv[1..]),
        cpu = yaml_str(&if indexed { cmd.jobs } else { 1 }.to_string()),
        mount = yaml_str(&mount),
        claim = yaml_str(claim),
    )
}
