//! Flags shared by the subcommands, and the checks on them that come
//! before any work.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use modcirc_dataset::{ChecksumPolicy, Mnist, DATA_DIR_ENV, DEFAULT_DATA_DIR};

/// The repository root: where xtask was built (one level above it), or,
/// for a binary copied to another machine, the current directory.
pub fn repo_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    if built.join("Cargo.toml").exists() {
        built.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }
}

/// `./artifacts` of the current directory: where outputs go without `--out`
/// (never into the clone a binary was built in, when run elsewhere).
pub fn artifacts_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")).join("artifacts")
}

/// Where a command's one JSON goes, and how loudly it speaks: the flags
/// every single-output command shares, and the write protocol they follow.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output JSON; default ./artifacts/COMMAND/MODEL-TASK.json (COMMAND
    /// this command's name); `-` for standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the JSON to standard output and nothing else there (as `--out -`).
    #[arg(long, conflicts_with = "out")]
    pub json: bool,
    /// Print nothing but errors: no progress, notes, warnings or summary.
    #[arg(long)]
    pub quiet: bool,
}

impl OutputArgs {
    /// The output's path: `-` under `--json`, `--out`, or `default`.
    pub fn path(&self, default: impl FnOnce() -> PathBuf) -> PathBuf {
        if self.json {
            PathBuf::from("-")
        } else {
            self.out.clone().unwrap_or_else(default)
        }
    }

    /// Writes `bytes` to `path` (standard output for `-`): first the
    /// temporary files killed runs left beside it are removed, then the
    /// file is written through a temporary file and renamed.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        if path != Path::new("-") {
            remove_stale_temps([modcirc_store::atomic::dir_of(path)], self.quiet)?;
        }
        write_output(path, bytes)
    }

    /// A summary line about the output at `path` ([`summary`]).
    pub fn say(&self, path: &Path, line: &str) {
        summary(path, self.quiet, line)
    }
}

/// A finite number for which `ok` holds (`what` says what it must be).
fn number(s: &str, ok: impl Fn(f64) -> bool, what: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && ok(x) => Ok(x),
        Ok(x) if x.is_finite() => Err(format!("{x} is not {what}")),
        _ => Err(format!("{s:?} is not a finite number")),
    }
}

/// `--min-effect`: a finite number.
pub fn finite(s: &str) -> Result<f64, String> {
    number(s, |_| true, "finite")
}

/// `--eps`: a fraction in [0, 1).
pub fn fraction_below_one(s: &str) -> Result<f64, String> {
    number(s, |x| (0.0..1.0).contains(&x), "in [0, 1)")
}

/// `--tau`, `--faithful`: a finite number, at least 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    number(s, |x| x >= 0.0, "at least 0")
}

/// `--mask-lambdas`, `--mask-lr`, `--target-faithfulness`: a finite number above 0.
pub fn positive(s: &str) -> Result<f64, String> {
    number(s, |x| x > 0.0, "above 0")
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Directory of the four IDX files (raw or gzip'd), e.g. /usr/share/datasets/fashion-mnist.
    #[arg(long, env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
    /// Do not check the files against the directory's SHA256SUMS.
    #[arg(long)]
    pub no_verify: bool,
}

impl DataArgs {
    pub fn dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| repo_root().join(DEFAULT_DATA_DIR))
    }
    /// Every file in the data directory: what no command may write over.
    pub fn inputs(&self) -> Vec<(String, PathBuf)> {
        let dir = self.dir();
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .map(|p| ("a data file of --data-dir".to_string(), p))
            .collect()
    }

    pub fn load(&self) -> anyhow::Result<Mnist> {
        let policy = if self.no_verify { ChecksumPolicy::Skip } else { ChecksumPolicy::Auto };
        let dir = self.dir();
        let mnist = Mnist::load(&dir, policy).map_err(|e| {
            use modcirc_dataset::DatasetError;
            let hint = if matches!(e, DatasetError::Checksum { .. } | DatasetError::NotListed { .. }) {
                "; --no-verify skips the check"
            } else {
                ""
            };
            anyhow::Error::new(e).context(format!("loading the data set from {} (--data-dir){hint}", dir.display()))
        })?;
        if !self.no_verify && mnist.checksums.iter().all(|c| !c.verified) {
            // Said once: the data are loaded once per run.
            eprintln!("note: {} has no SHA256SUMS: its files are used without checking them", dir.display());
        }
        Ok(mnist)
    }
}

/// `--jobs`: how many independent jobs (trainings, analyses of different
/// models) run at once, each on its own thread.
#[derive(Args, Debug, Clone, Copy)]
pub struct JobsArg {
    /// Jobs at once, 1 to 256; default: the cores available. Each training
    /// is single-threaded and its checkpoint byte-identical to a sequential
    /// run's.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=256))]
    pub jobs: Option<i64>,
}

impl JobsArg {
    pub fn get(self) -> usize {
        self.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize)
    }
}

/// Loads the checkpoint of `--model` (`activation`: `--activation`), with
/// the flags named in its errors.
pub fn load_model(
    path: &Path,
    activation: Option<modcirc_mlp::Activation>,
) -> anyhow::Result<modcirc_bimt::checkpoint::Checkpoint> {
    use modcirc_bimt::BimtError;
    use modcirc_mlp::MlpError;
    modcirc_bimt::checkpoint::load(path, activation).map_err(|e| match e {
        BimtError::Model(MlpError::NoActivation { .. }) => {
            anyhow::anyhow!("--model {}: {e}; pass it as --activation", path.display())
        }
        // The error names the file already.
        e => anyhow::Error::new(e).context("--model"),
    })
}

/// `path` as the file system resolves it (links followed); for a file that
/// does not exist yet, its resolved directory and its name.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (dir.canonicalize(), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuses, before any work, an output that exists and is not a regular
/// file, and to write an output over an input the command reads, or two
/// outputs to one file. Each entry is (what it is, its path).
pub fn refuse_overwrite(outputs: &[(&str, &Path)], inputs: &[(String, PathBuf)]) -> anyhow::Result<()> {
    for (what, out) in outputs.iter().filter(|(_, p)| *p != Path::new("-")) {
        // A device, FIFO, socket, directory or link is never replaced.
        if let Err(e) = modcirc_store::atomic::check_output(out) {
            anyhow::bail!("{what}: {e} (--out - writes to standard output)");
        }
    }
    for (i, (what, out)) in outputs.iter().enumerate().filter(|(_, (_, p))| *p != Path::new("-")) {
        let target = resolved(out);
        if let Some((name, input)) = inputs.iter().find(|(_, p)| resolved(p) == target) {
            anyhow::bail!("{what} {} is {name} {}: refusing to write over it", out.display(), input.display());
        }
        if let Some((other, _)) = outputs[i + 1..].iter().find(|(_, p)| resolved(p) == target) {
            anyhow::bail!("{what} and {other} would both be {}: choose another --out", out.display());
        }
    }
    Ok(())
}

/// [`refuse_overwrite`] for a command's JSON `out` and its page `html`
/// (a file: standard output takes the summary), against `inputs`.
pub fn refuse_overwrite_with_page(out: &Path, html: Option<&Path>, inputs: &[(String, PathBuf)]) -> anyhow::Result<()> {
    anyhow::ensure!(
        html.is_none_or(|h| h != Path::new("-")),
        "--html -: write the page to a file (standard output takes the summary)"
    );
    let outputs: Vec<(&str, &Path)> = std::iter::once(("--out", out))
        .chain(html.map(|h| ("--html", h)))
        .filter(|(_, p)| *p != Path::new("-"))
        .collect();
    refuse_overwrite(&outputs, inputs)
}

/// The model and task a `discover` or `beyond` command works on.
#[derive(clap::Args, Debug)]
pub struct ModelTask {
    /// A safetensors MLP: a checkpoint of `cargo xtask train`, or any stack of
    /// Linear layers named fc1..fcN or as nn.Sequential names them (0, 2, ...,
    /// under any prefix), in f32, f16, bf16 or f64.
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// circle, line, or clean:corrupted pairs such as 8:3,6:5.
    #[arg(long)]
    pub task: String,
    /// The hidden layers' activation, where the file does not record it:
    /// silu, relu, gelu, gelu-tanh, tanh, sigmoid or identity.
    #[arg(long)]
    pub activation: Option<modcirc_mlp::Activation>,
}

impl ModelTask {
    /// What the command reads: the model, its sidecar, the data files.
    pub fn inputs(&self, data: &DataArgs) -> Vec<(String, PathBuf)> {
        let mut inputs = data.inputs();
        inputs.push(("--model".into(), self.model.clone()));
        inputs.push(("--model's sidecar".into(), modcirc_bimt::checkpoint::sidecar_path(&self.model)));
        inputs
    }

    /// Refuses to run the model on data other than those its sidecar says it
    /// was trained on, unless `--data-dir` (or its variable) chose them:
    /// then a warning names both. Without a sidecar, a note says the
    /// model's data are unknown.
    pub fn check_provenance(
        &self,
        ck: &modcirc_bimt::checkpoint::Checkpoint,
        mnist: &Mnist,
        data: &DataArgs,
        quiet: bool,
    ) -> anyhow::Result<()> {
        use modcirc_study::discovery::{provenance, Provenance};
        let (model, here) = (self.model.display(), mnist.dir.display());
        match provenance(ck, mnist) {
            Provenance::Same => {}
            Provenance::Unknown if !quiet => {
                let files: Vec<String> = mnist
                    .checksums
                    .iter()
                    .map(|c| format!("{} {}", c.file, &c.sha256[..12.min(c.sha256.len())]))
                    .collect();
                eprintln!(
                    "note: {model} has no sidecar: the data it was trained on are unknown; this run uses {here} ({}), recorded in the output",
                    files.join(", ")
                );
            }
            Provenance::Unknown => {}
            Provenance::Differs { .. } if data.data_dir.is_some() && quiet => {}
            Provenance::Differs { trained_on, files } if data.data_dir.is_some() => eprintln!(
                "warning: {model} was trained on {trained_on}; running it on {here} (--data-dir), whose {} differ",
                files.join(", ")
            ),
            Provenance::Differs { trained_on, files } => anyhow::bail!(
                "--model {model} was trained on {trained_on}, but the default data {here} differ from it ({}): \
                 pass --data-dir {trained_on}, or --data-dir {here} to run it there anyway",
                files.join(", ")
            ),
        }
        Ok(())
    }

    /// The checkpoint `--model` names, read with `--activation`.
    pub fn load(&self) -> anyhow::Result<modcirc_bimt::checkpoint::Checkpoint> {
        load_model(&self.model, self.activation)
    }

    pub fn parse_task(&self) -> anyhow::Result<modcirc_dataset::Task> {
        use anyhow::Context;
        modcirc_dataset::Task::parse(&self.task).context("--task")
    }

    /// `artifacts/<kind>/<model stem>-<task>.json`, where `--out` is not given.
    pub fn default_out(&self, kind: &str, task: &modcirc_dataset::Task) -> std::path::PathBuf {
        let stem = self.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        artifacts_dir().join(kind).join(format!("{stem}-{}.json", task.file_stem()))
    }
}

/// Writes an output file through a temporary file (never over anything
/// but a regular file); `-` writes to standard output.
pub fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path == Path::new("-") {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|_| out.flush()).context("writing to standard output");
    }
    modcirc_store::atomic::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Removes the temporary files that killed runs left in the directory of
/// each of `dirs`, saying so unless `quiet`.
pub fn remove_stale_temps<'a>(dirs: impl IntoIterator<Item = &'a Path>, quiet: bool) -> anyhow::Result<()> {
    for dir in dirs {
        for p in modcirc_store::atomic::remove_stale_temps(dir)? {
            if !quiet {
                eprintln!("removed {}, left by a run that was killed", p.display());
            }
        }
    }
    Ok(())
}

/// Prints a command's summary line: to standard output, or to standard
/// error when the output itself goes to standard output (`--out -`,
/// `--json`); nothing under `--quiet`.
pub fn summary(out: &Path, quiet: bool, line: &str) {
    if quiet {
    } else if out == Path::new("-") {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}
