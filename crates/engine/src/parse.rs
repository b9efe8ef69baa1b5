//! Sweep files (`sweep.toml`): every axis optional, a missing one taking
//! the study's value.
//!
//! ```toml
//! [train]
//! regime = ["vanilla", "bimt"]
//! seed = [0, 1, 2]
//! steps = [6000]
//! lambda = [0.003, 0.01, 0.03]
//!
//! [discover]
//! task = ["circle", "line"]
//! k = [10, 15]
//!
//! [controls]       # STUDY §10 on every discovery (each field optional)
//! random = 200
//! optimal_pairs = 500
//!
//! [planted]        # STUDY §11 on the plan's regimes (each field optional)
//! profile = "quick"
//! seed = [0, 1, 2]
//! ```
//!
//! Unknown axes, unknown or repeated values and empty axes are errors
//! naming the file and the axis. The plan's size is checked from the
//! lengths of its axes before anything is expanded, and each axis'
//! duplicates in linear time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use modcirc_acdc::Ablation;
use modcirc_bimt::Regime;
use modcirc_dataset::Task;
use modcirc_mlp::{Activation, DeviceSpec};
use modcirc_study::controls::ControlSettings;
use modcirc_study::planted::PlantedSettings;
use modcirc_study::Profile;
use serde::Deserialize;

use crate::plan::{sizes_name, Plan, Values, MAX_UNITS};
use crate::EngineError;

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

/// `[controls]`: STUDY §10 on every discovery; each field a single value,
/// the study's where left out.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlsTable {
    random: Option<usize>,
    alternatives: Option<usize>,
    faithful: Option<f64>,
    seed: Option<u64>,
    optimal_pairs: Option<usize>,
}

/// `[planted]`: the planted-truth suite (STUDY §11) on the plan's regimes,
/// at a profile's size (default full) with any field overridden.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlantedTable {
    profile: Option<String>,
    seed: Option<Vec<u64>>,
    steps: Option<usize>,
    block: Option<usize>,
    pairs: Option<usize>,
    boolean_seed: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    train: TrainAxes,
    #[serde(default)]
    discover: DiscoverAxes,
    controls: Option<ControlsTable>,
    planted: Option<PlantedTable>,
}

/// The most values one axis may list: far above any plan under the unit
/// limit, far below what would take long to check.
const MAX_AXIS_VALUES: usize = 100 * MAX_UNITS;

/// The file being parsed, for its errors.
struct Source<'a>(&'a Path);

impl Source<'_> {
    fn error(&self, msg: impl std::fmt::Display) -> EngineError {
        EngineError::Plan { path: self.0.into(), message: msg.to_string() }
    }

    /// The values of an axis: the plan's (not empty, not too many, none
    /// twice) or the default.
    fn values<T: std::fmt::Debug + Clone>(
        &self,
        name: &str,
        given: &Option<Vec<T>>,
        default: Vec<T>,
    ) -> Result<Vec<T>, EngineError> {
        let Some(v) = given else { return Ok(default) };
        if v.is_empty() {
            return Err(
                self.error(format!("{name} is empty: give it at least one value, or leave it out for the study's"))
            );
        }
        if v.len() > MAX_AXIS_VALUES {
            return Err(self.error(format!("{name} lists {} values, above the limit of {MAX_AXIS_VALUES}", v.len())));
        }
        let mut seen = HashSet::with_capacity(v.len());
        if let Some(x) = v.iter().find(|x| !seen.insert(format!("{x:?}"))) {
            return Err(self.error(format!("{name} lists {x:?} twice")));
        }
        Ok(v.clone())
    }

    /// Parses each value of a string axis.
    fn parsed<T>(
        &self,
        name: &str,
        raw: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, EngineError> {
        raw.iter().map(|s| parse(s).map_err(|e| self.error(format!("{name}: {s:?}: {e}")))).collect()
    }

    /// Checks each value of a number axis.
    fn within<T: Copy + std::fmt::Display>(
        &self,
        name: &str,
        v: &[T],
        ok: impl Fn(T) -> bool,
        what: &str,
    ) -> Result<(), EngineError> {
        match v.iter().find(|x| !ok(**x)) {
            Some(x) => Err(self.error(format!("{name}: {x} is not {what}"))),
            None => Ok(()),
        }
    }
}

/// The `[train]` axes' values.
fn train_values(src: &Source<'_>, t: &TrainAxes, v: &mut Values) -> Result<(), EngineError> {
    let names = v.regimes.iter().map(|r| r.name().to_string()).collect();
    let regimes = src.values("train.regime", &t.regime, names)?;
    v.regimes = src.parsed("train.regime", &regimes, |s| Regime::from_str(s).map_err(|e| e.to_string()))?;
    v.seeds = src.values("train.seed", &t.seed, v.seeds.clone())?;
    v.steps = src.values("train.steps", &t.steps, v.steps.clone())?;
    src.within("train.steps", &v.steps, |s| (1..=10_000_000).contains(&s), "in 1..=10000000")?;
    v.lambdas = src.values("train.lambda", &t.lambda, v.lambdas.clone())?;
    src.within("train.lambda", &v.lambdas, |l| l.is_finite() && l >= 0.0, "a finite number >= 0")?;
    v.swaps = src.values("train.swap_interval", &t.swap_interval, v.swaps.clone())?;
    src.within("train.swap_interval", &v.swaps, |s| s >= 1, "at least 1")?;
    let sizes = src.values("train.sizes", &t.sizes, v.sizes.iter().map(|s| sizes_name(s)).collect())?;
    v.sizes = src.parsed("train.sizes", &sizes, parse_sizes)?;
    let acts = src.values("train.activation", &t.activation, v.activations.iter().map(|a| a.to_string()).collect())?;
    v.activations = src.parsed("train.activation", &acts, |s| Activation::from_str(s).map_err(|e| e.to_string()))?;
    if let Some(raw) = &t.data_dir {
        let raw = src.values("train.data_dir", &Some(raw.clone()), Vec::new())?;
        // Canonical, so that two spellings of one directory are one axis
        // value (and one model), not two units with one key.
        let anchor = src.0.parent().unwrap_or(Path::new(""));
        let dirs = src.parsed("train.data_dir", &raw, |d| {
            anchor.join(d).canonicalize().map_err(|e| format!("{}: {e}", anchor.join(d).display()))
        })?;
        let dirs: Vec<Option<PathBuf>> = dirs.into_iter().map(Some).collect();
        v.data_dirs = src.values("train.data_dir (canonical)", &Some(dirs), Vec::new())?;
    }
    Ok(())
}

/// The `[discover]` axes' values.
fn discover_values(src: &Source<'_>, d: &DiscoverAxes, v: &mut Values) -> Result<(), EngineError> {
    let tasks = src.values("discover.task", &d.task, v.tasks.iter().map(|t| t.name.clone()).collect())?;
    v.tasks = src.parsed("discover.task", &tasks, |s| Task::parse(s).map_err(|e| e.to_string()))?;
    v.ks = src.values("discover.k", &d.k, v.ks.clone())?;
    src.within("discover.k", &v.ks, |k| k >= 1, "at least 1")?;
    v.eps = src.values("discover.eps", &d.eps, v.eps.clone())?;
    src.within("discover.eps", &v.eps, |e| (0.0..1.0).contains(&e), "in [0, 1)")?;
    let abl = src.values("discover.ablation", &d.ablation, v.ablations.iter().map(|a| a.to_string()).collect())?;
    v.ablations = src.parsed("discover.ablation", &abl, |s| Ablation::from_str(s).map_err(|e| e.to_string()))?;
    v.bootstraps = src.values("discover.bootstraps", &d.bootstraps, v.bootstraps.clone())?;
    src.within("discover.bootstraps", &v.bootstraps, |b| (1..=100_000).contains(&b), "in 1..=100000")?;
    v.samples = src.values("discover.sample", &d.sample, v.samples.clone())?;
    src.within("discover.sample", &v.samples, |s| (1..=1_000_000).contains(&s), "in 1..=1000000")?;
    Ok(())
}

impl Plan {
    /// Reads and parses a plan file.
    pub fn read(path: &Path) -> Result<Plan, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        Plan::parse(&text, path)
    }

    /// Parses a plan (`path` names it in errors and anchors relative data
    /// directories): unknown axes, unknown or repeated values and empty
    /// axes are errors naming the file and the axis.
    pub fn parse(text: &str, path: &Path) -> Result<Plan, EngineError> {
        parse(text, path)
    }
}

/// Parses a plan file's text; `path` names it in errors and anchors
/// relative data directories.
fn parse(text: &str, path: &Path) -> Result<Plan, EngineError> {
    let src = Source(path);
    let file: PlanFile = toml::from_str(text).map_err(|e| src.error(e.to_string().trim_end()))?;
    let study = Profile::Full.settings();
    let mut values = Values::study(Profile::Full, study.seeds);
    train_values(&src, &file.train, &mut values)?;
    discover_values(&src, &file.discover, &mut values)?;
    // Product counts first: a huge plan is refused before it is built.
    let (models, settings) = values.counts().ok_or_else(|| src.error("the plan's product of axes overflows"))?;
    if models.saturating_mul(settings).saturating_mul(values.tasks.len() + 1) > 100 * MAX_UNITS {
        return Err(src.error(format!("{models} models x {settings} discovery settings is far too many units")));
    }
    for size in &values.sizes {
        let hidden = &size[1..size.len() - 1];
        if let Some(&k) = values.ks.iter().find(|&&k| hidden.iter().any(|&w| k > w)) {
            return Err(
                src.error(format!("discover.k: {k} is wider than a hidden layer of train.sizes {}", sizes_name(size)))
            );
        }
    }
    let mut plan = Plan::expand(&values, DeviceSpec::Cpu);
    if let Some(c) = &file.controls {
        let d = ControlSettings::default();
        let controls = ControlSettings {
            random: c.random.unwrap_or(d.random),
            alternatives: c.alternatives.unwrap_or(d.alternatives),
            faithful: c.faithful.unwrap_or(d.faithful),
            seed: c.seed.unwrap_or(d.seed),
            optimal_pairs: c.optimal_pairs.unwrap_or(d.optimal_pairs),
        };
        controls.check().map_err(|e| src.error(format!("controls.{e}")))?;
        plan.controls = Some(controls);
    }
    if let Some(t) = &file.planted {
        plan.planted = Some(planted_settings(&src, t, &values.regimes)?);
    }
    Ok(plan)
}

/// The `[planted]` table's settings.
fn planted_settings(src: &Source<'_>, t: &PlantedTable, regimes: &[Regime]) -> Result<PlantedSettings, EngineError> {
    let profile = match &t.profile {
        Some(p) => Profile::from_str(p).map_err(|e| src.error(format!("planted.profile: {e}")))?,
        None => Profile::Full,
    };
    let mut s = PlantedSettings::of(profile);
    s.regimes = regimes.to_vec();
    s.seeds = src.values("planted.seed", &t.seed, s.seeds.clone())?;
    s.boolean_seeds = src.values("planted.boolean_seed", &t.boolean_seed, s.boolean_seeds.clone())?;
    if let Some(steps) = t.steps {
        src.within("planted.steps", &[steps], |s| (1..=10_000_000).contains(&s), "in 1..=10000000")?;
        s.steps = steps;
    }
    if let Some(block) = t.block {
        let most = s.width / modcirc_dataset::pvr::PVR_NODES;
        src.within(
            "planted.block",
            &[block],
            |b| (1..=most).contains(&b),
            &format!("in 1..={most} (4 blocks in {} neurons)", s.width),
        )?;
        s.block = block;
    }
    if let Some(pairs) = t.pairs {
        src.within("planted.pairs", &[pairs], |p| (1..=100_000).contains(&p), "in 1..=100000")?;
        s.pairs = pairs;
    }
    Ok(s)
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
