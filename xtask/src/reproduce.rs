//! `cargo xtask reproduce`: train, discover, time, draw, report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use modcirc_acdc::Ablation;
use modcirc_bimt::checkpoint::{self, Checkpoint, TrainMeta};
use modcirc_bimt::{Regime, TrainConfig, TRAINER_REVISION};
use modcirc_mlp::{DeviceSpec, Mlp};
use modcirc_dataset::{Mnist, Task};
use modcirc_metrics::{PhaseTimer, Summary};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::beyond::{self, AcdcArgs, BeyondResult, BEYOND_SCHEMA};
use crate::common::{artifacts_dir, bar, sha256_file, write_json, DataArgs};
use crate::discover::{discover_model, DiscoverFlags, DiscoverOutput, Split, DISCOVERY_REVISION};
use crate::report;
use crate::train::train_one;

/// Version of `results.json` (docs/results-schema.md).
pub const RESULTS_SCHEMA: &str = "modcirc.results/1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// STUDY's defaults: 40 000 steps, 50 bootstraps of 500 pairs.
    Full,
    /// A few minutes: 6 000 steps, 20 bootstraps of 500.
    Quick,
    /// Under a minute, for CI: 600 steps (one relocation), 5 bootstraps of 200.
    Smoke,
}

/// What a profile sets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileSettings {
    pub steps: usize,
    pub bootstraps: usize,
    pub sample: usize,
    /// Repeats of each inference timing.
    pub inference_repeats: usize,
}

impl Profile {
    pub fn settings(self) -> ProfileSettings {
        match self {
            Profile::Full => ProfileSettings { steps: 40_000, bootstraps: 50, sample: 500, inference_repeats: 50 },
            Profile::Quick => ProfileSettings { steps: 6_000, bootstraps: 20, sample: 500, inference_repeats: 20 },
            Profile::Smoke => ProfileSettings { steps: 600, bootstraps: 5, sample: 200, inference_repeats: 5 },
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Profile::Full => "full",
            Profile::Quick => "quick",
            Profile::Smoke => "smoke",
        }
    }
}

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    #[arg(long, value_enum, default_value_t = Profile::Full)]
    pub profile: Profile,
    /// Output directory; default artifacts/<profile>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Train this many seeds per regime (0, 1, ...); Table 3 uses seed 0.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Where to train and run the patching sweeps: cpu, or cuda / cuda:N with
    /// a `--features cuda` build.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Retrain and rediscover even when cached results exist.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub quiet: bool,
}

/// One trained model in the results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelResult {
    pub regime: Regime,
    pub seed: u64,
    pub path: String,
    pub sha256: String,
    pub file_bytes: u64,
    /// Whether this run reused a cached checkpoint.
    pub cached: bool,
    pub meta: TrainMeta,
}

/// One discovery (model × task) in the results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoveryResult {
    pub regime: Regime,
    pub seed: u64,
    pub task: String,
    /// The full `discover` output (pairs, scores, every resample) lives here.
    pub path: String,
    pub cached: bool,
    pub logit_difference: Summary,
    pub accuracy: Summary,
    pub sparsity: Summary,
    pub discovery_s: Summary,
    /// Over the resamples where it is defined (STUDY §8).
    #[serde(default)]
    pub faithfulness: Option<Summary>,
    /// Per hidden layer, on the full pair set: neurons whose patch leaves the
    /// baseline unchanged, and kept neurons the lower-index tie rule chose.
    #[serde(default)]
    pub dead: Vec<usize>,
    #[serde(default)]
    pub decided_by_tie: Vec<usize>,
    pub notes: Vec<String>,
}

/// Inference time per image, over repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferenceResult {
    pub regime: Regime,
    pub batched_500_s: Summary,
    pub batch_1_s: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub cpu: String,
    pub logical_cpus: usize,
    pub os: String,
    pub device: String,
    pub rustc: String,
    pub crate_version: String,
    pub git_commit: String,
    pub trainer_revision: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub hypothesis: String,
    pub rule: String,
    pub verdict: String,
    pub evidence: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema: String,
    pub profile: Profile,
    pub settings: ProfileSettings,
    pub discover_flags: DiscoverFlags,
    pub environment: Environment,
    pub stage_seconds: std::collections::BTreeMap<String, f64>,
    pub total_seconds: f64,
    pub models: Vec<ModelResult>,
    pub discoveries: Vec<DiscoveryResult>,
    pub inference: Vec<InferenceResult>,
    pub verdicts: Vec<Verdict>,
    /// STUDY §8 on the seed-0 models: attribution patching and faithfulness.
    #[serde(default)]
    pub beyond: Vec<BeyondResult>,
    pub figures: Vec<String>,
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

pub fn run(args: ReproduceArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let profile = args.profile;
    let settings = profile.settings();
    let out = args.out.clone().unwrap_or_else(|| artifacts_dir().join(profile.name()));
    std::fs::create_dir_all(&out).with_context(|| format!("creating --out {}", out.display()))?;
    let mut timer = PhaseTimer::new();
    let say = |msg: String| {
        if !args.quiet {
            eprintln!("{msg}");
        }
    };

    let mnist = timer.time("data", || args.data.load())?;
    say(format!(
        "[reproduce {}] data: {} train / {} test images from {}",
        profile.name(),
        mnist.train.len(),
        mnist.test.len(),
        args.data.dir().display()
    ));

    // Training, cached by a hash of everything that determines the weights.
    let data_key = serde_json::to_vec(&mnist.checksums.iter().map(|c| &c.sha256).collect::<Vec<_>>())?;
    let mut models = Vec::new();
    for seed in 0..args.seeds {
        for regime in Regime::ALL {
            let config = TrainConfig::new(regime).steps(settings.steps).seed(seed);
            let key = short_hash(&[
                &serde_json::to_vec(&config)?,
                &data_key,
                &TRAINER_REVISION.to_le_bytes(),
                args.device.to_string().as_bytes(),
            ]);
            let path = out.join("models").join(format!("{regime}-seed{seed}-{key}.safetensors"));
            let cached = !args.force && path.exists() && checkpoint::load(&path, None).ok().and_then(|c| c.meta).is_some();
            if !cached {
                let (meta, model, layout) =
                    timer.time("train", || train_one(&mnist, config.clone(), args.device, &args.data, args.quiet))?;
                checkpoint::save(&path, &model, &layout, &meta)
                    .with_context(|| format!("saving {}", path.display()))?;
            }
            let meta = checkpoint::load(&path, None)?.meta.context("sidecar missing after save")?;
            say(format!(
                "[train] {:>8} seed {seed}: test accuracy {:.4}, {:.1} s{}",
                regime.label(),
                meta.test_accuracy,
                meta.timing.total_s,
                if cached { " (cached)" } else { "" }
            ));
            models.push(ModelResult {
                regime,
                seed,
                path: rel(&out, &path),
                sha256: sha256_file(&path)?,
                file_bytes: std::fs::metadata(&path)?.len(),
                cached,
                meta,
            });
        }
    }

    // Discovery on both tasks, cached by model hash, task and flags.
    let flags = DiscoverFlags {
        k: 15,
        eps: 0.01,
        ablation: Ablation::Zero,
        bootstraps: settings.bootstraps,
        sample: settings.sample,
        split: Split::Test,
        seed: 0,
        device: args.device,
    };
    let mut discoveries = Vec::new();
    let mut beyond = Vec::new();
    for m in &models {
        // Loaded once per model, and only when a result is not cached.
        let mut loaded: Option<Checkpoint> = None;
        let model_path = out.join(&m.path);
        let load = |loaded: &mut Option<Checkpoint>| -> anyhow::Result<Checkpoint> {
            if loaded.is_none() {
                *loaded = Some(checkpoint::load(&model_path, None)?);
            }
            Ok(loaded.clone().expect("loaded just above"))
        };
        for task in [Task::circle(), Task::line()] {
            let key = short_hash(&[
                m.sha256.as_bytes(),
                task.name.as_bytes(),
                &serde_json::to_vec(&flags)?,
                &DISCOVERY_REVISION.to_le_bytes(),
            ]);
            let path = out.join("discover").join(format!("{}-seed{}-{}-{key}.json", m.regime, m.seed, task.name));
            let cached_output = if args.force { None } else { read_cached::<DiscoverOutput>(&path) };
            let cached = cached_output.is_some();
            let d = match cached_output {
                Some(d) => d,
                None => {
                    let ck = load(&mut loaded)?;
                    let d =
                        timer.time("discover", || discover_model(&mnist, &ck, &model_path, &task, &flags, args.quiet))?;
                    write_json(&path, &d)?;
                    d
                }
            };
            // STUDY §8 runs on the seed-0 models only.
            if m.seed == 0 {
                let key = short_hash(&[
                    m.sha256.as_bytes(),
                    task.name.as_bytes(),
                    &serde_json::to_vec(&flags)?,
                    &DISCOVERY_REVISION.to_le_bytes(),
                    BEYOND_SCHEMA.as_bytes(),
                ]);
                let path = out.join("beyond").join(format!("{}-seed{}-{}-{key}.json", m.regime, m.seed, task.name));
                let b = match if args.force { None } else { read_cached::<BeyondResult>(&path) } {
                    Some(b) => b,
                    None => {
                        let ck = load(&mut loaded)?;
                        let b = timer
                            .time("beyond", || {
                                beyond::analyse(&mnist, &ck.model, Some(m.regime), Some(m.seed), &d, &AcdcArgs::default())
                            })
                            .with_context(|| format!("attribution and faithfulness of {} on {task}", m.regime))?;
                        write_json(&path, &b)?;
                        b
                    }
                };
                say(format!(
                    "[beyond]   {:>8} {:>6}: circuit faithfulness {:.3}, EAP at that size {:.3}, CPR {:.3}, CMD {:.3}",
                    m.regime.label(),
                    task.name,
                    b.circuit_faithfulness,
                    b.eap_same_size_faithfulness,
                    b.curve.cpr,
                    b.curve.cmd
                ));
                beyond.push(b);
            }
            let s = &d.report.summary;
            say(format!(
                "[discover] {:>8} seed {} {:>6}: logit difference {:.3}, sparsity {:.4}, {:.2} ms per discovery{}",
                m.regime.label(),
                m.seed,
                task.name,
                s.logit_difference.mean,
                s.sparsity.mean,
                s.discovery_s.mean * 1e3,
                if cached { " (cached)" } else { "" }
            ));
            discoveries.push(DiscoveryResult {
                regime: m.regime,
                seed: m.seed,
                task: task.name.clone(),
                path: rel(&out, &path),
                cached,
                logit_difference: s.logit_difference,
                accuracy: s.accuracy,
                sparsity: s.sparsity,
                discovery_s: s.discovery_s,
                faithfulness: s.faithfulness,
                dead: d.report.selection.dead.iter().map(Vec::len).collect(),
                decided_by_tie: d.report.selection.decided_by_tie.clone(),
                notes: d.notes.clone(),
            });
        }
    }

    let seed0: Vec<(Regime, Mlp)> = models
        .iter()
        .filter(|m| m.seed == 0)
        .map(|m| Ok((m.regime, checkpoint::load(&out.join(&m.path), None)?.model)))
        .collect::<anyhow::Result<_>>()?;
    let inference =
        timer.time("inference", || inference_timing(&seed0, &mnist, settings.inference_repeats, args.quiet));

    let environment = environment(args.device);
    let verdicts = report::verdicts(&models, &discoveries, &inference);
    let mut results = Results {
        schema: RESULTS_SCHEMA.into(),
        profile,
        settings,
        discover_flags: flags,
        environment,
        stage_seconds: Default::default(),
        total_seconds: 0.0,
        models,
        discoveries,
        inference,
        beyond,
        verdicts,
        figures: Vec::new(),
    };
    let figures = timer.time("figures", || report::figures(&out, &results))?;
    results.figures = figures.iter().map(|p| rel(&out, p)).collect();
    results.stage_seconds = timer.phases().clone();
    results.total_seconds = started.elapsed().as_secs_f64();
    write_json(&out.join("results.json"), &results)?;
    let table = report::table3_csv(&results);
    modcirc_bimt::checkpoint::write_atomic(&out.join("table3.csv"), table.as_bytes())?;
    let md = report::markdown(&results);
    modcirc_bimt::checkpoint::write_atomic(&out.join("REPORT.md"), md.as_bytes())?;
    println!("{}", out.join("REPORT.md").display());
    Ok(())
}

/// A cached JSON result, or `None` when it is missing or unreadable (then it is recomputed).
fn read_cached<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `path` relative to `base` when it lies under it.
fn rel(base: &Path, path: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}

/// Per-image inference time, batched at 500 and at batch 1, over `repeats`
/// rounds; the regimes are interleaved within each round so that drift in
/// the machine's speed hits them alike.
fn inference_timing(models: &[(Regime, Mlp)], mnist: &Mnist, repeats: usize, quiet: bool) -> Vec<InferenceResult> {
    const BATCH: usize = 500;
    let x = &mnist.test.images[..BATCH * mnist.test.pixels()];
    let px = mnist.test.pixels();
    let mut batched = vec![Vec::new(); models.len()];
    let mut single = vec![Vec::new(); models.len()];
    let pb = bar(repeats as u64, quiet, "inference");
    for _ in 0..repeats {
        for (i, (_, model)) in models.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(model.forward(x, BATCH));
            batched[i].push(t.elapsed().as_secs_f64() / BATCH as f64);
            let t = Instant::now();
            for b in 0..BATCH {
                std::hint::black_box(model.forward(&x[b * px..(b + 1) * px], 1));
            }
            single[i].push(t.elapsed().as_secs_f64() / BATCH as f64);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let nan = Summary { mean: f64::NAN, lo: f64::NAN, hi: f64::NAN, n: 0 };
    models
        .iter()
        .enumerate()
        .map(|(i, (regime, _))| InferenceResult {
            regime: *regime,
            batched_500_s: Summary::of(&batched[i]).unwrap_or(nan),
            batch_1_s: Summary::of(&single[i]).unwrap_or(nan),
        })
        .collect()
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .current_dir(crate::common::repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn environment(device: DeviceSpec) -> Environment {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut commit = command_line("git", &["rev-parse", "--short=12", "HEAD"]);
    if !command_line("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() && commit != "unknown" {
        commit.push_str("-dirty");
    }
    Environment {
        cpu,
        logical_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        device: match device {
            DeviceSpec::Cpu => "cpu (training single-threaded; patching sweep on rayon's pool)".into(),
            d => format!("training on {d}; discovery on the cpu"),
        },
        rustc: command_line("rustc", &["--version"]),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: commit,
        trainer_revision: TRAINER_REVISION,
    }
}
