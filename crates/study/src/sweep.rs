//! Sweeps: a plan of axes (`sweep.toml`), expanded into units of work,
//! each named by the content hash the cache keys it by, and shared out
//! among shards by estimated cost.
//!
//! ```toml
//! # Every axis is optional; a missing one takes the study's value.
//! [train]
//! regime = ["vanilla", "bimt"]
//! seed = [0, 1, 2]
//! steps = [6000]
//! lambda = [0.003, 0.01, 0.03]
//!
//! [discover]
//! task = ["circle", "line"]
//! k = [10, 15]
//! ```
//!
//! The units: one training per distinct model (the product of the
//! `[train]` axes), one discovery per model, task and discovery setting
//! (the product of the other `[discover]` axes), and one analysis
//! (STUDY §9) per model and discovery setting.
//!
//! ```
//! use modcirc_study::sweep::{Plan, Shard};
//! let plan = Plan::parse("[train]\nregime = [\"vanilla\", \"bimt\"]\nseed = [0, 1]\nsteps = [100]\n", "p.toml".as_ref()).unwrap();
//! assert_eq!(plan.models.len(), 4);
//! assert_eq!(plan.unit_count(), 4 + 4 * 2 + 4); // trainings, discoveries (two tasks), analyses
//! let shard: Shard = "1/2".parse().unwrap();
//! assert_eq!((shard.index, shard.count), (1, 2));
//! assert!("2/2".parse::<Shard>().unwrap_err().contains("0..=1"));
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use modcirc_acdc::{Ablation, SelectionRule};
use modcirc_bimt::{Regime, TrainConfig};
use modcirc_dataset::Task;
use modcirc_metrics::Summary;
use modcirc_mlp::Activation;
use serde::{Deserialize, Serialize};

use crate::cache::short_hash;
use crate::discovery::DiscoverySettings;
use crate::results::Profile;
use crate::StudyError;

/// The schema of a sweep's `results.json`.
pub const SWEEP_SCHEMA: &str = "modcirc.sweep/1";

/// Plans of more units than this are refused unless the user confirms
/// (`--yes`): a typo in an axis can multiply a sweep a hundredfold.
pub const MAX_UNITS: usize = 2_000;

/// The axes of `[train]`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainAxes {
    regime: Option<Vec<String>>,
    seed: Option<Vec<u64>>,
    steps: Option<Vec<usize>>,
    lambda: Option<Vec<f64>>,
    swap_interval: Option<Vec<usize>>,
    sizes: Option<Vec<String>>,
    activation: Option<Vec<String>>,
    data_dir: Option<Vec<String>>,
}

/// The axes of `[discover]`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverAxes {
    task: Option<Vec<String>>,
    k: Option<Vec<usize>>,
    eps: Option<Vec<f64>>,
    ablation: Option<Vec<String>>,
    bootstraps: Option<Vec<usize>>,
    sample: Option<Vec<usize>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    train: TrainAxes,
    #[serde(default)]
    discover: DiscoverAxes,
}

/// One axis of a plan: its name and its values, as the plan gives them
/// (or the study's, where the plan is silent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// `train.lambda`, `discover.k`, …
    pub name: String,
    /// Each value, printed.
    pub values: Vec<String>,
}

impl Axis {
    /// More than one value: the axis varies, and the report draws each
    /// metric against it.
    pub fn swept(&self) -> bool {
        self.values.len() > 1
    }
}

/// A model of the plan: how it is trained and on what data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPoint {
    /// The training configuration.
    pub config: TrainConfig,
    /// The data directory; `None`: the default one.
    pub data_dir: Option<PathBuf>,
}

/// A discovery setting of the plan (the task aside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingPoint {
    /// K of every hidden layer.
    pub k: usize,
    /// The settings the discovery runs with.
    pub settings: DiscoverySettings,
}

/// A parsed plan: its axes and the points they expand into.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every axis, the study's defaults included.
    pub axes: Vec<Axis>,
    /// One per distinct model, in the order of the axes' product.
    pub models: Vec<ModelPoint>,
    /// One per distinct discovery setting.
    pub settings: Vec<SettingPoint>,
    /// The tasks.
    pub tasks: Vec<Task>,
}

fn plan_error(path: &Path, msg: impl std::fmt::Display) -> StudyError {
    StudyError::Invalid(format!("{}: {msg}", path.display()))
}

/// The values of an axis: the plan's (not empty, none twice) or the default.
fn values<T: PartialEq + std::fmt::Debug + Clone>(
    path: &Path,
    name: &str,
    given: &Option<Vec<T>>,
    default: Vec<T>,
) -> Result<Vec<T>, StudyError> {
    match given {
        None => Ok(default),
        Some(v) if v.is_empty() => Err(plan_error(
            path,
            format!("{name} is empty: give it at least one value, or leave it out for the study's"),
        )),
        Some(v) => {
            for (i, x) in v.iter().enumerate() {
                if v[..i].contains(x) {
                    return Err(plan_error(path, format!("{name} lists {x:?} twice")));
                }
            }
            Ok(v.clone())
        }
    }
}

/// Parses each value of a string axis.
fn parsed<T>(
    path: &Path,
    name: &str,
    raw: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, StudyError> {
    raw.iter().map(|s| parse(s).map_err(|e| plan_error(path, format!("{name}: {s:?}: {e}")))).collect()
}

/// Checks each value of a number axis.
fn within<T: Copy + std::fmt::Display>(
    path: &Path,
    name: &str,
    v: &[T],
    ok: impl Fn(T) -> bool,
    what: &str,
) -> Result<(), StudyError> {
    match v.iter().find(|x| !ok(**x)) {
        Some(x) => Err(plan_error(path, format!("{name}: {x} is not {what}"))),
        None => Ok(()),
    }
}

impl Plan {
    /// Reads and parses a plan file.
    pub fn read(path: &Path) -> Result<Plan, StudyError> {
        let text = std::fs::read_to_string(path).map_err(|e| StudyError::io(path, e))?;
        Plan::parse(&text, path)
    }

    /// Parses a plan (`path` names it in errors and anchors relative data
    /// directories). Unknown axes, unknown or repeated values and empty
    /// axes are errors naming the axis.
    pub fn parse(text: &str, path: &Path) -> Result<Plan, StudyError> {
        let file: PlanFile = toml::from_str(text).map_err(|e| plan_error(path, e.to_string().trim_end()))?;
        let study = Profile::Full.settings();
        let t = &file.train;
        let regimes = values(path, "train.regime", &t.regime, Regime::ALL.iter().map(|r| r.name().into()).collect())?;
        let regimes = parsed(path, "train.regime", &regimes, |s| Regime::from_str(s).map_err(|e| e.to_string()))?;
        let seeds = values(path, "train.seed", &t.seed, (0..study.seeds).collect())?;
        let base = TrainConfig::new(Regime::Vanilla);
        let steps = values(path, "train.steps", &t.steps, vec![study.steps])?;
        within(path, "train.steps", &steps, |s| (1..=10_000_000).contains(&s), "in 1..=10000000")?;
        let lambdas = values(path, "train.lambda", &t.lambda, vec![base.lambda as f64])?;
        within(path, "train.lambda", &lambdas, |l| l.is_finite() && l >= 0.0, "a finite number >= 0")?;
        let swaps = values(path, "train.swap_interval", &t.swap_interval, vec![base.swap_every])?;
        within(path, "train.swap_interval", &swaps, |s| s >= 1, "at least 1")?;
        let study_sizes = base.sizes.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-");
        let sizes = values(path, "train.sizes", &t.sizes, vec![study_sizes])?;
        let sizes = parsed(path, "train.sizes", &sizes, parse_sizes)?;
        let acts = values(path, "train.activation", &t.activation, vec![base.activation.to_string()])?;
        let acts = parsed(path, "train.activation", &acts, |s| Activation::from_str(s).map_err(|e| e.to_string()))?;
        let dirs: Vec<Option<PathBuf>> = match &t.data_dir {
            None => vec![None],
            Some(_) => {
                let raw = values(path, "train.data_dir", &t.data_dir, Vec::new())?;
                let anchor = path.parent().unwrap_or(Path::new(""));
                raw.iter().map(|d| Some(anchor.join(d))).collect()
            }
        };

        let d = &file.discover;
        let tasks = values(path, "discover.task", &d.task, vec!["circle".into(), "line".into()])?;
        let tasks = parsed(path, "discover.task", &tasks, |s| Task::parse(s).map_err(|e| e.to_string()))?;
        let defaults = DiscoverySettings::default();
        let ks = values(path, "discover.k", &d.k, vec![modcirc_acdc::DEFAULT_K])?;
        within(path, "discover.k", &ks, |k| k >= 1, "at least 1")?;
        let epss = values(path, "discover.eps", &d.eps, vec![defaults.config.eps])?;
        within(path, "discover.eps", &epss, |e| (0.0..1.0).contains(&e), "in [0, 1)")?;
        let ablations = values(path, "discover.ablation", &d.ablation, vec![defaults.config.ablation.to_string()])?;
        let ablations =
            parsed(path, "discover.ablation", &ablations, |s| Ablation::from_str(s).map_err(|e| e.to_string()))?;
        let boots = values(path, "discover.bootstraps", &d.bootstraps, vec![study.bootstraps])?;
        within(path, "discover.bootstraps", &boots, |b| (1..=100_000).contains(&b), "in 1..=100000")?;
        let samples = values(path, "discover.sample", &d.sample, vec![study.sample])?;
        within(path, "discover.sample", &samples, |s| (1..=1_000_000).contains(&s), "in 1..=1000000")?;

        let show = |v: &dyn Fn() -> Vec<String>, name: &str| Axis { name: name.into(), values: v() };
        let axes = vec![
            show(&|| regimes.iter().map(|r| r.name().to_string()).collect(), "train.regime"),
            show(&|| seeds.iter().map(u64::to_string).collect(), "train.seed"),
            show(&|| steps.iter().map(usize::to_string).collect(), "train.steps"),
            show(&|| lambdas.iter().map(|&l| (l as f32).to_string()).collect(), "train.lambda"),
            show(&|| swaps.iter().map(usize::to_string).collect(), "train.swap_interval"),
            show(&|| sizes.iter().map(|s| sizes_name(s)).collect(), "train.sizes"),
            show(&|| acts.iter().map(Activation::to_string).collect(), "train.activation"),
            show(&|| dirs.iter().map(|d| data_dir_name(d.as_deref())).collect(), "train.data_dir"),
            show(&|| tasks.iter().map(|t| t.name.clone()).collect(), "discover.task"),
            show(&|| ks.iter().map(usize::to_string).collect(), "discover.k"),
            show(&|| epss.iter().map(f64::to_string).collect(), "discover.eps"),
            show(&|| ablations.iter().map(Ablation::to_string).collect(), "discover.ablation"),
            show(&|| boots.iter().map(usize::to_string).collect(), "discover.bootstraps"),
            show(&|| samples.iter().map(usize::to_string).collect(), "discover.sample"),
        ];

        // Product counts first: a huge plan is refused before it is built.
        let n_models = [regimes.len(), seeds.len(), steps.len(), lambdas.len(), swaps.len(), sizes.len()]
            .iter()
            .chain([acts.len(), dirs.len()].iter())
            .try_fold(1usize, |a, &b| a.checked_mul(b));
        let n_settings = [ks.len(), epss.len(), ablations.len(), boots.len(), samples.len()]
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b));
        let too_many = || plan_error(path, "the plan's product of axes overflows");
        let (n_models, n_settings) = (n_models.ok_or_else(too_many)?, n_settings.ok_or_else(too_many)?);
        if n_models.saturating_mul(n_settings).saturating_mul(tasks.len() + 1) > 100 * MAX_UNITS {
            return Err(plan_error(
                path,
                format!("{n_models} models x {n_settings} discovery settings is far too many units"),
            ));
        }

        let mut models = Vec::with_capacity(n_models);
        for dir in &dirs {
            for size in &sizes {
                for &act in &acts {
                    for &st in &steps {
                        for &lambda in &lambdas {
                            for &swap in &swaps {
                                for &regime in &regimes {
                                    for &seed in &seeds {
                                        let mut config = TrainConfig::new(regime)
                                            .steps(st)
                                            .seed(seed)
                                            .lambda(lambda as f32)
                                            .swap_every(swap)
                                            .activation(act);
                                        config.sizes = size.clone();
                                        models.push(ModelPoint { config, data_dir: dir.clone() });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut settings = Vec::with_capacity(n_settings);
        for &k in &ks {
            for &eps in &epss {
                for &ablation in &ablations {
                    for &bootstraps in &boots {
                        for &sample in &samples {
                            // The study's discovery, K-sensitivity rules
                            // included, with this point's values: a plan of
                            // the study's values has reproduce's units.
                            let mut s = DiscoverySettings::default();
                            s.config.selection = SelectionRule::top_k(k);
                            s.config.eps = eps;
                            s.config.ablation = ablation;
                            s.config.bootstraps = bootstraps;
                            s.config.sample = sample;
                            settings.push(SettingPoint { k, settings: s });
                        }
                    }
                }
            }
        }
        for m in &models {
            if let Some(&k) = ks.iter().find(|&&k| m.config.sizes[1..m.config.sizes.len() - 1].iter().any(|&w| k > w)) {
                return Err(plan_error(
                    path,
                    format!(
                        "discover.k: {k} is wider than a hidden layer of train.sizes {}",
                        sizes_name(&m.config.sizes)
                    ),
                ));
            }
        }
        Ok(Plan { axes, models, settings, tasks })
    }

    /// Trainings + discoveries + analyses.
    pub fn unit_count(&self) -> usize {
        self.models.len() * (1 + self.settings.len() * (self.tasks.len() + 1))
    }

    /// Refuses a plan above [`MAX_UNITS`] unless `confirmed`.
    pub fn check_size(&self, confirmed: bool) -> Result<(), StudyError> {
        let n = self.unit_count();
        if n > MAX_UNITS && !confirmed {
            return Err(StudyError::Invalid(format!(
                "the plan has {n} units ({} models), above the limit of {MAX_UNITS}: check its axes, or confirm with --yes",
                self.models.len()
            )));
        }
        Ok(())
    }

    /// The value of axis `name` for a model and setting, as [`Axis`] prints it.
    pub fn value_of(
        &self,
        name: &str,
        model: &ModelPoint,
        setting: Option<&SettingPoint>,
        task: Option<&Task>,
    ) -> String {
        let c = &model.config;
        match name {
            "train.regime" => c.regime.name().into(),
            "train.seed" => c.seed.to_string(),
            "train.steps" => c.steps.to_string(),
            "train.lambda" => c.lambda.to_string(),
            "train.swap_interval" => c.swap_every.to_string(),
            "train.sizes" => sizes_name(&c.sizes),
            "train.activation" => c.activation.to_string(),
            "train.data_dir" => data_dir_name(model.data_dir.as_deref()),
            "discover.task" => task.map(|t| t.name.clone()).unwrap_or_default(),
            _ => {
                let Some(s) = setting else { return String::new() };
                let c = &s.settings.config;
                match name {
                    "discover.k" => s.k.to_string(),
                    "discover.eps" => c.eps.to_string(),
                    "discover.ablation" => c.ablation.to_string(),
                    "discover.bootstraps" => c.bootstraps.to_string(),
                    "discover.sample" => c.sample.to_string(),
                    _ => String::new(),
                }
            }
        }
    }
}

/// `784-100-100-10` → the widths.
fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    let widths: Vec<usize> = s
        .split('-')
        .map(|w| w.trim().parse::<usize>().ok().filter(|&w| (1..=100_000).contains(&w)))
        .collect::<Option<_>>()
        .ok_or("widths are 1 to 100000, joined by '-', such as 784-100-100-10")?;
    if widths.len() < 3 {
        return Err("at least an input, one hidden layer and an output, such as 784-100-10".into());
    }
    Ok(widths)
}

/// Widths as a plan writes them: `784-100-100-10`.
pub fn sizes_name(sizes: &[usize]) -> String {
    sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
}

fn data_dir_name(dir: Option<&Path>) -> String {
    dir.map_or_else(|| "default".into(), |d| d.display().to_string())
}

/// The content key of a trained model: a hash of everything that
/// determines its weights (the configuration, the data's checksums, the
/// trainer's revision, the device).
pub fn model_key(config: &TrainConfig, data_sha256: &[&str], device: &str) -> Result<String, StudyError> {
    let json = |e: serde_json::Error| StudyError::Invalid(e.to_string());
    Ok(short_hash(&[
        &serde_json::to_vec(config).map_err(json)?,
        &serde_json::to_vec(data_sha256).map_err(json)?,
        &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
        device.as_bytes(),
    ]))
}

/// The key of an analysis of a model (by its bytes' SHA-256) under
/// discovery `settings` (as JSON): `parts` name the unit (a task, a
/// schema).
pub fn analysis_key(model_sha256: &str, settings_json: &[u8], parts: &[&[u8]]) -> String {
    let revision = crate::discovery::DISCOVERY_REVISION.to_le_bytes();
    let base: [&[u8]; 3] = [model_sha256.as_bytes(), settings_json, &revision];
    short_hash(&[&base[..], parts].concat())
}

/// The key of a discovery of `task`.
pub fn discovery_key(model_sha256: &str, settings_json: &[u8], task: &Task) -> String {
    analysis_key(model_sha256, settings_json, &[task.name.as_bytes(), &[]])
}

/// The key of STUDY §9 on a model.
pub fn structure_key(model_sha256: &str, settings_json: &[u8]) -> String {
    analysis_key(model_sha256, settings_json, &[crate::structure::STRUCTURE_SCHEMA.as_bytes()])
}

/// The key of STUDY §8 on a model and task.
pub fn beyond_key(model_sha256: &str, settings_json: &[u8], task: &Task) -> String {
    analysis_key(model_sha256, settings_json, &[task.name.as_bytes(), crate::beyond::BEYOND_SCHEMA.as_bytes()])
}

/// Where one model's units lie under an output directory: the one naming
/// `reproduce` and `sweep` share, `<regime>-seed<S>[-<task>]-<key>`.
#[derive(Debug, Clone, Copy)]
pub struct UnitFiles<'a> {
    /// The output directory.
    pub out: &'a Path,
    /// The model's regime.
    pub regime: Regime,
    /// Its training seed.
    pub seed: u64,
}

impl UnitFiles<'_> {
    fn stem(&self) -> String {
        format!("{}-seed{}", self.regime, self.seed)
    }

    /// The checkpoint of the model whose [`model_key`] is `key`.
    pub fn model(&self, key: &str) -> PathBuf {
        self.out.join("models").join(format!("{}-{key}.safetensors", self.stem()))
    }

    /// A discovery of `task` on the model of SHA-256 `model_sha256`.
    pub fn discovery(&self, model_sha256: &str, settings_json: &[u8], task: &Task) -> PathBuf {
        let key = discovery_key(model_sha256, settings_json, task);
        self.out.join("discover").join(format!("{}-{}-{key}.json", self.stem(), task.name))
    }

    /// STUDY §8 on `task`.
    pub fn beyond(&self, model_sha256: &str, settings_json: &[u8], task: &Task) -> PathBuf {
        let key = beyond_key(model_sha256, settings_json, task);
        self.out.join("beyond").join(format!("{}-{}-{key}.json", self.stem(), task.name))
    }

    /// STUDY §9.
    pub fn structure(&self, model_sha256: &str, settings_json: &[u8]) -> PathBuf {
        let key = structure_key(model_sha256, settings_json);
        self.out.join("structure").join(format!("{}-{key}.json", self.stem()))
    }
}

/// Estimated costs, in seconds of one core, from the full study on a
/// 2-core Xeon (train 40 000 steps of a 784-100-100-10 SiLU net in about
/// 29 s; a discovery of 50 resamples of 500 pairs, with the study's six
/// compared rules, about 1.2 s; STUDY §9 about 1 s). They only balance
/// shards and warn of long plans: a wrong estimate costs time, never
/// results.
pub mod cost {
    use super::*;

    /// Weights of a network (the products a forward pass computes per image).
    pub fn weights(sizes: &[usize]) -> f64 {
        sizes.windows(2).map(|w| (w[0] * w[1]) as f64).sum()
    }

    /// One training.
    pub fn train(config: &TrainConfig) -> f64 {
        let swaps = if config.regime.swaps() { 1.25 } else { 1.0 };
        config.steps as f64 * config.batch_size as f64 * weights(&config.sizes) * 8.1e-11 * swaps
    }

    /// One discovery.
    pub fn discovery(sizes: &[usize], settings: &DiscoverySettings) -> f64 {
        let c = &settings.config;
        let rules = 1.0 + 0.5 * c.compare.len() as f64;
        c.bootstraps as f64 * c.sample as f64 * weights(sizes) * 1.8e-10 * rules + 0.05
    }

    /// One STUDY §9 analysis.
    pub fn structure(sizes: &[usize]) -> f64 {
        weights(sizes) * 1.1e-5
    }

    /// One STUDY §8 analysis (reproduce's seed-0 models).
    pub fn beyond(sizes: &[usize]) -> f64 {
        weights(sizes) * 3.4e-5
    }

    /// A model with every unit that needs it, what a shard takes whole:
    /// its training, `tasks` discoveries and a STUDY §9 analysis per
    /// discovery setting, and `beyond_tasks` STUDY §8 analyses.
    pub fn group<'a>(
        config: &TrainConfig,
        settings: impl IntoIterator<Item = &'a DiscoverySettings>,
        tasks: usize,
        beyond_tasks: usize,
    ) -> f64 {
        let sizes = &config.sizes;
        let analyses: f64 = settings.into_iter().map(|s| discovery(sizes, s) * tasks as f64 + structure(sizes)).sum();
        train(config) + analyses + beyond(sizes) * beyond_tasks as f64
    }
}

/// Shard `index` of `count`: Slurm's array task `index` (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// From 0 to `count - 1`.
    pub index: usize,
    /// At least 1.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("{s:?} is not I/N (shard I of N, I from 0 to N-1, as Slurm numbers array tasks)");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| usage())?, n.trim().parse().map_err(|_| usage())?);
        if count == 0 || count > 100_000 {
            return Err(format!("{s}: N must be in 1..=100000"));
        }
        if index >= count {
            return Err(format!("{s}: I must be in 0..={} for {count} shards", count - 1));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Shares out groups of work (each a model with every unit that needs it,
/// so that no shard waits for another) among `count` shards: longest first,
/// each to the least loaded shard (ties: the lower shard), groups of equal
/// cost in the order of their keys. The same groups give the same shares
/// on every machine. Returns each group's shard.
pub fn assign(groups: &[(String, f64)], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| groups[b].1.total_cmp(&groups[a].1).then_with(|| groups[a].0.cmp(&groups[b].0)));
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard = vec![0; groups.len()];
    for g in order {
        let (best, _) =
            load.iter().enumerate().fold((0, f64::INFINITY), |acc, (i, &l)| if l < acc.1 { (i, l) } else { acc });
        shard[g] = best;
        load[best] += groups[g].1;
    }
    shard
}

/// A trained model in a sweep's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepModel {
    /// Its unit key.
    pub key: String,
    /// Its point on each `train.*` axis.
    pub axes: Vec<(String, String)>,
    /// The checkpoint, relative to the output directory.
    pub path: String,
    /// SHA-256 of the checkpoint's bytes.
    pub sha256: String,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// Training time.
    pub train_seconds: f64,
}

/// A discovery in a sweep's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepDiscovery {
    /// Its model's unit key.
    pub model: String,
    /// Its point on every axis.
    pub axes: Vec<(String, String)>,
    /// The discovery's JSON, relative to the output directory.
    pub path: String,
    /// Circuit logit difference (bootstrap mean and interval).
    pub logit_difference: Summary,
    /// Circuit accuracy.
    pub accuracy: Summary,
    /// Edge sparsity.
    pub sparsity: Summary,
    /// Faithfulness (STUDY §8), where the circuit's edges leave it defined.
    pub faithfulness: Option<Summary>,
    /// The model's own accuracy on the same resamples.
    pub model_accuracy: Summary,
    /// Time of one discovery.
    pub discovery_seconds: Summary,
}

/// STUDY §9 on a model, in a sweep's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepAnalysis {
    /// Its model's unit key.
    pub model: String,
    /// Its point on every axis but the task.
    pub axes: Vec<(String, String)>,
    /// The analysis' JSON, relative to the output directory.
    pub path: String,
    /// Wiring length.
    pub wiring_length: f64,
    /// Newman's Q of the best Louvain partition of every weight.
    pub modularity_all_weights: f64,
    /// The same on the edges above eps.
    pub modularity_eps_edges: f64,
    /// Its time.
    pub seconds: f64,
}

/// A sweep's `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResults {
    /// [`SWEEP_SCHEMA`].
    pub schema: String,
    /// The plan's file name.
    pub plan: String,
    /// Every axis.
    pub axes: Vec<Axis>,
    /// Every model.
    pub models: Vec<SweepModel>,
    /// Every discovery.
    pub discoveries: Vec<SweepDiscovery>,
    /// Every STUDY §9 analysis.
    pub analyses: Vec<SweepAnalysis>,
}

/// A metric of the sweep, as the CSV and figures name it.
pub struct Metric {
    /// File-name and column name.
    pub name: &'static str,
    /// The figure's y label.
    pub label: &'static str,
}

/// A unit's point on the plan's axes: (axis name, value).
pub type AxisValues = [(String, String)];

/// One unit's value of a metric, with its point on the axes.
pub type MetricRow<'a> = (&'a AxisValues, f64);

/// The metrics drawn against each swept axis: (metric, per-unit values
/// with their axes).
pub fn metric_rows(results: &SweepResults) -> Vec<(Metric, Vec<MetricRow<'_>>)> {
    let m = |name, label| Metric { name, label };
    let models = |f: fn(&SweepModel) -> f64| results.models.iter().map(|u| (u.axes.as_slice(), f(u))).collect();
    let discs = |f: fn(&SweepDiscovery) -> Option<f64>| {
        results.discoveries.iter().filter_map(|u| Some((u.axes.as_slice(), f(u)?))).collect()
    };
    let anal = |f: fn(&SweepAnalysis) -> f64| results.analyses.iter().map(|u| (u.axes.as_slice(), f(u))).collect();
    vec![
        (m("test_accuracy", "test accuracy (model)"), models(|u| u.test_accuracy)),
        (m("logit_difference", "circuit logit difference (bootstrap mean)"), discs(|u| Some(u.logit_difference.mean))),
        (m("circuit_accuracy", "circuit accuracy (bootstrap mean)"), discs(|u| Some(u.accuracy.mean))),
        (m("sparsity", "edge sparsity (bootstrap mean)"), discs(|u| Some(u.sparsity.mean))),
        (m("faithfulness", "faithfulness (bootstrap mean)"), discs(|u| u.faithfulness.map(|f| f.mean))),
        (m("wiring_length", "wiring length"), anal(|u| u.wiring_length)),
        (m("modularity", "Newman's Q, every weight"), anal(|u| u.modularity_all_weights)),
    ]
}

/// One point of a metric against an axis: the other axes' values (but the
/// seed's) name its series; mean and interval over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisPoint {
    /// The series: the other swept axes' values.
    pub series: String,
    /// The axes that name the series (short names: `lambda`, `task`), in
    /// the order `series` gives their values.
    pub series_axes: Vec<String>,
    /// The axis' value.
    pub value: String,
    /// Over seeds: the mean, and Student's t interval from two seeds on
    /// (a point interval with one).
    pub summary: Summary,
    /// How many seeds.
    pub seeds: usize,
}

/// A metric's values against axis `axis`: grouped by every other axis but
/// the seed, summarised over seeds, in the axis' order.
pub fn against_axis(axes: &[Axis], axis: &str, rows: &[MetricRow<'_>]) -> Vec<AxisPoint> {
    // The other swept axes the rows have (an analysis has no task).
    let swept: Vec<&str> = axes
        .iter()
        .filter(|a| a.swept() && a.name != axis && a.name != "train.seed")
        .filter(|a| rows.iter().any(|(row, _)| row.iter().any(|(n, _)| *n == a.name)))
        .map(|a| a.name.as_str())
        .collect();
    let series_axes: Vec<String> = swept.iter().map(|n| n.split('.').nth(1).unwrap_or(n).to_string()).collect();
    let order = axes.iter().find(|a| a.name == axis).map(|a| a.values.clone()).unwrap_or_default();
    let get = |row: &[(String, String)], name: &str| row.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut groups: Vec<(String, String, Vec<f64>)> = Vec::new();
    for (row, v) in rows {
        let Some(value) = get(row, axis) else { continue };
        let series = swept
            .iter()
            .filter_map(|n| {
                // A regime or task names itself; other values need their axis.
                let v = get(row, n)?;
                Some(match *n {
                    "train.regime" | "discover.task" => v,
                    _ => format!("{}={v}", n.split('.').nth(1).unwrap_or(n)),
                })
            })
            .collect::<Vec<_>>()
            .join(", ");
        match groups.iter_mut().find(|g| g.0 == series && g.1 == value) {
            Some(g) => g.2.push(*v),
            None => groups.push((series, value, vec![*v])),
        }
    }
    let mut points: Vec<AxisPoint> = groups
        .into_iter()
        .filter_map(|(series, value, vals)| {
            let summary = Summary::t_interval(&vals).or_else(|| Summary::of(&vals))?;
            Some(AxisPoint { series, series_axes: series_axes.clone(), value, summary, seeds: vals.len() })
        })
        .collect();
    let rank = |v: &str| order.iter().position(|o| o == v).unwrap_or(usize::MAX);
    points.sort_by(|a, b| a.series.cmp(&b.series).then(rank(&a.value).cmp(&rank(&b.value))));
    points
}

/// The axes whose values are numbers (drawn on a number line rather than
/// as categories).
pub fn numeric_axis(axis: &Axis) -> bool {
    axis.values.iter().all(|v| v.parse::<f64>().is_ok())
}

/// Names for an error that lists what is missing: at most `shown` of
/// them, then how many more.
pub fn list_some(names: &BTreeSet<String>, shown: usize) -> String {
    let mut s: Vec<String> = names.iter().take(shown).cloned().collect();
    if names.len() > shown {
        s.push(format!("and {} more", names.len() - shown));
    }
    s.join(", ")
}

/// Slurm job scripts for a sweep: an array of `shards` tasks, each running
/// its shard, and a report job to submit after it.
#[derive(Debug, Clone)]
pub struct SlurmJob {
    /// The `xtask` binary the jobs run (on a path every node sees).
    pub binary: PathBuf,
    /// The plan (absolute).
    pub plan: PathBuf,
    /// The shared output directory (absolute).
    pub out: PathBuf,
    /// The data directory flag to pass on, if any.
    pub data_dir: Option<PathBuf>,
    /// How many array tasks.
    pub shards: usize,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time`.
    pub time: Option<String>,
    /// `--cpus-per-task`: each shard runs that many jobs at once.
    pub cpus_per_task: usize,
}

impl SlurmJob {
    fn header(&self, name: &str, log: &str) -> String {
        let mut s = format!("#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={}\n", log);
        if let Some(p) = &self.partition {
            s.push_str(&format!("#SBATCH --partition={p}\n"));
        }
        if let Some(t) = &self.time {
            s.push_str(&format!("#SBATCH --time={t}\n"));
        }
        s
    }

    fn common_flags(&self) -> String {
        let mut s = format!("--out {}", shell_quote(&self.out));
        if let Some(d) = &self.data_dir {
            s.push_str(&format!(" --data-dir {}", shell_quote(d)));
        }
        s
    }

    /// The array script: task `$SLURM_ARRAY_TASK_ID` runs its shard.
    pub fn array_script(&self) -> String {
        let log = self.out.join("slurm").join("shard-%a.log");
        let mut s = self.header("modcirc-sweep", &log.display().to_string());
        s.push_str(&format!("#SBATCH --array=0-{}\n#SBATCH --cpus-per-task={}\n", self.shards - 1, self.cpus_per_task));
        s.push_str("set -euo pipefail\n");
        s.push_str(&format!(
            "exec {} sweep run {} --shard \"$SLURM_ARRAY_TASK_ID/{}\" --jobs {} --quiet {} --yes\n",
            shell_quote(&self.binary),
            shell_quote(&self.plan),
            self.shards,
            self.cpus_per_task,
            self.common_flags()
        ));
        s
    }

    /// The report job: gathers the cache into the sweep's results.
    pub fn report_script(&self) -> String {
        let log = self.out.join("slurm").join("report.log");
        let mut s = self.header("modcirc-sweep-report", &log.display().to_string());
        s.push_str("#SBATCH --cpus-per-task=1\nset -euo pipefail\n");
        s.push_str(&format!(
            "exec {} sweep report {} --quiet {} --yes\n",
            shell_quote(&self.binary),
            shell_quote(&self.plan),
            self.common_flags()
        ));
        s
    }

    /// The commands that submit both, the report after every array task
    /// has succeeded.
    pub fn submit_commands(&self, array: &Path, report: &Path) -> String {
        format!(
            "array=$(sbatch --parsable {}) && sbatch --dependency=afterok:\"${{array%%;*}}\" {}",
            shell_quote(array),
            shell_quote(report)
        )
    }
}

/// `path` quoted for a POSIX shell.
pub fn shell_quote(path: &Path) -> String {
    let s = path.display().to_string();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Plan, String> {
        Plan::parse(text, Path::new("sweep.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_empty_plan_is_the_study() {
        let p = parse("").unwrap();
        assert_eq!(p.models.len(), 25);
        assert_eq!(p.tasks.len(), 2);
        assert_eq!(p.settings.len(), 1);
        assert_eq!(p.settings[0].settings, DiscoverySettings::default(), "reproduce's, K-sensitivity rules included");
        assert_eq!(p.models[0].config, TrainConfig::new(Regime::Vanilla));
        assert!(p
            .axes
            .iter()
            .all(|a| a.name == "train.regime" || a.name == "train.seed" || a.name == "discover.task" || !a.swept()));
    }

    #[test]
    fn axes_expand_into_their_product() {
        let p = parse("[train]\nregime=[\"l1\"]\nseed=[0,1]\nlambda=[0.001, 0.01, 0.1]\nsizes=[\"784-20-10\"]\n[discover]\ntask=[\"line\"]\nk=[3,5]\n").unwrap();
        assert_eq!(p.models.len(), 6);
        assert_eq!(p.settings.len(), 2);
        assert_eq!(p.unit_count(), 6 + 6 * 2 * 2);
        assert!(p.models.iter().all(|m| m.config.sizes == [784, 20, 10] && m.config.regime == Regime::L1));
        let lambdas: BTreeSet<String> = p.models.iter().map(|m| p.value_of("train.lambda", m, None, None)).collect();
        assert_eq!(lambdas.len(), 3);
    }

    #[test]
    fn bad_plans_name_the_axis() {
        for (text, says) in [
            ("[train]\nlamda=[1.0]\n", "unknown field `lamda`"),
            ("[trian]\n", "unknown field `trian`"),
            ("[train]\nregime=[\"bimtt\"]\n", "train.regime: \"bimtt\""),
            ("[train]\nseed=[]\n", "train.seed is empty"),
            ("[train]\nseed=[1,1]\n", "train.seed lists 1 twice"),
            ("[train]\nsteps=[0]\n", "train.steps: 0 is not in 1..=10000000"),
            ("[train]\nlambda=[-1.0]\n", "train.lambda: -1 is not a finite number >= 0"),
            ("[train]\nsizes=[\"784-x-10\"]\n", "train.sizes: \"784-x-10\""),
            ("[train]\nactivation=[\"swish\"]\n", "train.activation: \"swish\""),
            ("[discover]\ntask=[\"9:9:9\"]\n", "discover.task"),
            ("[discover]\neps=[1.5]\n", "discover.eps: 1.5 is not in [0, 1)"),
            ("[discover]\nablation=[\"noise\"]\n", "discover.ablation: \"noise\""),
            ("[discover]\nk=[0]\n", "discover.k: 0 is not at least 1"),
            ("[train]\nsizes=[\"784-8-10\"]\n", "discover.k: 15 is wider than a hidden layer of train.sizes 784-8-10"),
            ("[train]\nseed=\"0\"\n", "sweep.toml"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(e.starts_with("sweep.toml"), "{e}");
        }
        let big = parse("[train]\nseed=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99]\nlambda=[0.001,0.002]\n").unwrap();
        assert_eq!(big.unit_count(), 1000 * 4);
        let e = big.check_size(false).unwrap_err().to_string();
        assert!(e.contains("4000 units (1000 models), above the limit of 2000") && e.contains("--yes"), "{e}");
        big.check_size(true).unwrap();
    }

    #[test]
    fn shards_parse_and_assign_by_cost() {
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard { index: 0, count: 1 });
        for bad in ["3", "1/0", "-1/2", "a/b", "4/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let groups: Vec<(String, f64)> =
            [9.0, 1.0, 1.0, 4.0, 4.0, 1.0].iter().enumerate().map(|(i, c)| (format!("g{i}"), *c)).collect();
        let s = assign(&groups, 2);
        let load = |k| groups.iter().zip(&s).filter(|(_, &sh)| sh == k).map(|(g, _)| g.1).sum::<f64>();
        assert_eq!((load(0), load(1)), (10.0, 10.0));
        assert_eq!(s, assign(&groups, 2), "deterministic");
        // More shards than groups: the extra shards get nothing.
        let s = assign(&groups[..2], 4);
        assert_eq!(s, [0, 1]);
    }

    #[test]
    fn metrics_against_an_axis_summarise_over_seeds() {
        let axes = vec![
            Axis { name: "train.seed".into(), values: vec!["0".into(), "1".into()] },
            Axis { name: "train.lambda".into(), values: vec!["0.1".into(), "0.01".into()] },
            Axis { name: "train.regime".into(), values: vec!["l1".into(), "bimt".into()] },
        ];
        let row = |s: &str, l: &str, r: &str| -> Vec<(String, String)> {
            vec![("train.seed".into(), s.into()), ("train.lambda".into(), l.into()), ("train.regime".into(), r.into())]
        };
        let rows = [row("0", "0.1", "l1"), row("1", "0.1", "l1"), row("0", "0.01", "l1"), row("0", "0.1", "bimt")];
        let vals = [1.0, 3.0, 5.0, 7.0];
        let input: Vec<(&[(String, String)], f64)> = rows.iter().map(|r| r.as_slice()).zip(vals).collect();
        let pts = against_axis(&axes, "train.lambda", &input);
        assert_eq!(pts.len(), 3);
        let first = &pts[1];
        assert_eq!((first.series.as_str(), first.value.as_str(), first.seeds), ("l1", "0.1", 2));
        assert_eq!(first.series_axes, ["regime"]);
        assert_eq!(first.summary.mean, 2.0);
        assert!(first.summary.lo < 2.0 && first.summary.hi > 2.0);
        assert_eq!(pts[2].value, "0.01", "in the axis' order");
    }

    #[test]
    fn slurm_scripts_run_each_shard_and_report_after() {
        let job = SlurmJob {
            binary: "/shared/modcirc/target/release/xtask".into(),
            plan: "/shared/sweep.toml".into(),
            out: "/shared/out dir".into(),
            data_dir: None,
            shards: 4,
            partition: Some("cpu".into()),
            time: Some("01:00:00".into()),
            cpus_per_task: 2,
        };
        let a = job.array_script();
        assert!(a.contains("#SBATCH --array=0-3\n") && a.contains("#SBATCH --partition=cpu\n"), "{a}");
        assert!(a.contains("sweep run /shared/sweep.toml --shard \"$SLURM_ARRAY_TASK_ID/4\" --jobs 2"), "{a}");
        assert!(a.contains("--out '/shared/out dir'"), "{a}");
        let r = job.report_script();
        assert!(r.contains("sweep report /shared/sweep.toml") && !r.contains("--array"), "{r}");
        let cmd = job.submit_commands(Path::new("/s/a.sbatch"), Path::new("/s/r.sbatch"));
        assert!(cmd.contains("--dependency=afterok:"), "{cmd}");
    }
}
