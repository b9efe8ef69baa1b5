//! Plans: the models, discovery settings and tasks of a run, from the
//! study's profile ([`Plan::study`]) or from a sweep file
//! ([`Plan::read`], `sweep.toml`; see [`crate::parse`]).
//!
//! The units of a plan: one training per model, one discovery per model,
//! task and discovery setting, one STUDY §9 analysis per model and
//! setting, and, in the study's plan, STUDY §8 and §12 per task on every
//! model and STUDY §10 on every discovery (a sweep's with `[controls]`).
//!
//! ```
//! use modcirc_engine::plan::Plan;
//! use modcirc_study::Profile;
//! let study = Plan::study(Profile::Smoke, 2, modcirc_mlp::DeviceSpec::Cpu);
//! assert_eq!(study.models.len(), 10);
//! // Trainings, discoveries, analyses, STUDY §8 and §12 and STUDY §10 on
//! // every discovery, and the planted suite (per regime a model of its seed,
//! // each of its 8 methods' scores on it, and a Boolean suite).
//! assert_eq!(study.unit_count(), 10 + 10 * 2 + 10 + 10 * 2 + 10 * 2 + 5 * (1 + 8 + 1));
//! let plan = Plan::parse("[train]\nregime = [\"vanilla\", \"bimt\"]\nseed = [0, 1]\nsteps = [100]\n", "p.toml".as_ref()).unwrap();
//! assert_eq!(plan.models.len(), 4);
//! assert_eq!(plan.unit_count(), 4 + 4 * 2 + 4); // trainings, discoveries (two tasks), analyses
//! ```

use std::path::{Path, PathBuf};

use modcirc_acdc::{Ablation, SelectionRule, DEFAULT_K};
use modcirc_bimt::{Regime, TrainConfig, STUDY_ACTIVATION, STUDY_SIZES};
use modcirc_dataset::Task;
use modcirc_mlp::{Activation, DeviceSpec};
use modcirc_study::beyond::BeyondSettings;
use modcirc_study::controls::ControlSettings;
use modcirc_study::discovery::DiscoverySettings;
use modcirc_study::paper::study_tasks;
use modcirc_study::planted::PlantedSettings;
use modcirc_study::sweep::Axis;
use modcirc_study::Profile;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Plans of more units than this are refused unless the caller confirms:
/// a typo in an axis can multiply a sweep a hundredfold.
pub const MAX_UNITS: usize = 2_000;

/// A model of the plan: how it is trained and on what data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPoint {
    /// The training configuration.
    pub config: TrainConfig,
    /// The data directory (canonical); `None`: the default one.
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

/// Each axis' values, before they are expanded into points.
#[derive(Debug, Clone)]
pub struct Values {
    /// `train.regime`.
    pub regimes: Vec<Regime>,
    /// `train.seed`.
    pub seeds: Vec<u64>,
    /// `train.steps`.
    pub steps: Vec<usize>,
    /// `train.lambda`.
    pub lambdas: Vec<f64>,
    /// `train.swap_interval`.
    pub swaps: Vec<usize>,
    /// `train.sizes`.
    pub sizes: Vec<Vec<usize>>,
    /// `train.activation`.
    pub activations: Vec<Activation>,
    /// `train.data_dir`.
    pub data_dirs: Vec<Option<PathBuf>>,
    /// `discover.task`.
    pub tasks: Vec<Task>,
    /// `discover.k`.
    pub ks: Vec<usize>,
    /// `discover.eps`.
    pub eps: Vec<f64>,
    /// `discover.ablation`.
    pub ablations: Vec<Ablation>,
    /// `discover.bootstraps`.
    pub bootstraps: Vec<usize>,
    /// `discover.sample`.
    pub samples: Vec<usize>,
}

impl Values {
    /// The study's value on every axis, at `profile`'s size, `seeds` seeds.
    pub fn study(profile: Profile, seeds: u64) -> Values {
        let p = profile.settings();
        let base = TrainConfig::new(Regime::Vanilla);
        let d = DiscoverySettings::default();
        Values {
            regimes: Regime::ALL.to_vec(),
            seeds: (0..seeds).collect(),
            steps: vec![p.steps],
            lambdas: vec![base.lambda as f64],
            swaps: vec![base.swap_every],
            sizes: vec![STUDY_SIZES.to_vec()],
            activations: vec![STUDY_ACTIVATION],
            data_dirs: vec![None],
            tasks: study_tasks().to_vec(),
            ks: vec![DEFAULT_K],
            eps: vec![d.config.eps],
            ablations: vec![d.config.ablation],
            bootstraps: vec![p.bootstraps],
            samples: vec![p.sample],
        }
    }

    /// How many models and discovery settings the values make, or `None`
    /// when the product overflows.
    pub fn counts(&self) -> Option<(usize, usize)> {
        let models = [self.regimes.len(), self.seeds.len(), self.steps.len(), self.lambdas.len(), self.swaps.len()]
            .into_iter()
            .chain([self.sizes.len(), self.activations.len(), self.data_dirs.len()])
            .try_fold(1usize, |a, b| a.checked_mul(b))?;
        let settings = [self.ks.len(), self.eps.len(), self.ablations.len(), self.bootstraps.len(), self.samples.len()]
            .into_iter()
            .try_fold(1usize, |a, b| a.checked_mul(b))?;
        Some((models, settings))
    }

    /// Every model: the product of the `train` axes.
    fn models(&self) -> Vec<ModelPoint> {
        let mut models = Vec::new();
        for dir in &self.data_dirs {
            for size in &self.sizes {
                for &act in &self.activations {
                    for &steps in &self.steps {
                        for (&lambda, &swap) in product(&self.lambdas, &self.swaps) {
                            for (&regime, &seed) in product(&self.regimes, &self.seeds) {
                                let config = TrainConfig::new(regime)
                                    .steps(steps)
                                    .seed(seed)
                                    .lambda(lambda as f32)
                                    .swap_every(swap)
                                    .activation(act)
                                    .sizes(size);
                                models.push(ModelPoint { config, data_dir: dir.clone() });
                            }
                        }
                    }
                }
            }
        }
        models
    }

    /// Every discovery setting: the study's discovery (K-sensitivity rules
    /// included) at each point of the other `discover` axes, so that a plan
    /// of the study's values has the study's units.
    fn settings(&self, device: DeviceSpec) -> Vec<SettingPoint> {
        let mut settings = Vec::new();
        for (&k, &eps) in product(&self.ks, &self.eps) {
            for &ablation in &self.ablations {
                for (&bootstraps, &sample) in product(&self.bootstraps, &self.samples) {
                    let mut s = DiscoverySettings::default();
                    s.config.selection = SelectionRule::top_k(k);
                    s.config.eps = eps;
                    s.config.ablation = ablation;
                    s.config.bootstraps = bootstraps;
                    s.config.sample = sample;
                    s.config.device = device;
                    settings.push(SettingPoint { k, settings: s });
                }
            }
        }
        settings
    }
}

/// Every pair of `a` and `b`, `a` outer.
fn product<'a, A, B>(a: &'a [A], b: &'a [B]) -> impl Iterator<Item = (&'a A, &'a B)> {
    a.iter().flat_map(move |x| b.iter().map(move |y| (x, y)))
}

/// A plan: its axes and the points they expand into.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every axis, the study's defaults included.
    pub axes: Vec<Axis>,
    /// One per distinct model.
    pub models: Vec<ModelPoint>,
    /// One per distinct discovery setting.
    pub settings: Vec<SettingPoint>,
    /// The tasks.
    pub tasks: Vec<Task>,
    /// STUDY §8 and §12 on every model and task, with these settings (the
    /// study's plan).
    pub beyond: Option<BeyondSettings>,
    /// STUDY §10 on every discovery, with these settings (the study's
    /// plan; a sweep's `[controls]`).
    pub controls: Option<ControlSettings>,
    /// Where models train and discoveries patch.
    pub device: DeviceSpec,
    /// The planted-truth suite (STUDY §11): the study's plan, a sweep's
    /// `[planted]`.
    pub planted: Option<PlantedSettings>,
}

impl Plan {
    /// The study at `profile`'s size with `seeds` seeds per regime: every
    /// regime and seed (models in seed order, then regime order), both
    /// tasks, the study's discovery, and STUDY §8 and §12 on every model.
    pub fn study(profile: Profile, seeds: u64, device: DeviceSpec) -> Plan {
        let mut plan = Plan::expand(&Values::study(profile, seeds), device);
        plan.models.sort_by_key(|m| (m.config.seed, Regime::ALL.iter().position(|&r| r == m.config.regime)));
        plan.beyond = Some(BeyondSettings::of(profile));
        let p = profile.settings();
        plan.controls = Some(ControlSettings {
            random: p.random_circuits,
            optimal_pairs: p.optimal_pairs,
            ..ControlSettings::default()
        });
        plan.planted = Some(PlantedSettings::of(profile));
        plan
    }

    /// The plan of `values` (no STUDY §8 or §10).
    pub fn expand(values: &Values, device: DeviceSpec) -> Plan {
        let models = values.models();
        let settings = values.settings(device);
        let tasks = values.tasks.clone();
        let axes = axes_of(&models, &settings, &tasks);
        Plan { axes, models, settings, tasks, beyond: None, controls: None, device, planted: None }
    }

    /// Whether model `m` gets STUDY §8 and §12.
    pub fn beyond_for(&self, _m: &ModelPoint) -> bool {
        self.beyond.is_some()
    }

    /// Trainings + discoveries + analyses (+ STUDY §8, + STUDY §10, + the
    /// planted-truth suite's units).
    pub fn unit_count(&self) -> usize {
        let beyond = self.models.iter().filter(|m| self.beyond_for(m)).count() * self.settings.len() * self.tasks.len();
        let per_discovery = 1 + usize::from(self.controls.is_some());
        let planted = self.planted.as_ref().map_or(0, PlantedSettings::units);
        self.models.len() * (1 + self.settings.len() * (self.tasks.len() * per_discovery + 1)) + beyond + planted
    }

    /// Refuses a plan above [`MAX_UNITS`] unless `confirmed`.
    pub fn check_size(&self, confirmed: bool) -> Result<(), EngineError> {
        let units = self.unit_count();
        if units > MAX_UNITS && !confirmed {
            return Err(EngineError::TooLarge { units, models: self.models.len(), limit: MAX_UNITS });
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
        point_values(model, setting, task).into_iter().find(|(n, _)| *n == name).map(|(_, v)| v).unwrap_or_default()
    }

    /// The point of a model (and setting, task) on every axis it has.
    pub fn axes_of(&self, m: &ModelPoint, s: Option<&SettingPoint>, task: Option<&Task>) -> Vec<(String, String)> {
        point_values(m, s, task).into_iter().map(|(n, v)| (n.to_string(), v)).collect()
    }
}

/// A point's value on every axis it has: the one place that names the axes
/// (the plan file's fields aside) and prints their values.
fn point_values(m: &ModelPoint, s: Option<&SettingPoint>, task: Option<&Task>) -> Vec<(&'static str, String)> {
    let c = &m.config;
    let mut v = vec![
        ("train.regime", c.regime.name().to_string()),
        ("train.seed", c.seed.to_string()),
        ("train.steps", c.steps.to_string()),
        ("train.lambda", c.lambda.to_string()),
        ("train.swap_interval", c.swap_every.to_string()),
        ("train.sizes", sizes_name(&c.sizes)),
        ("train.activation", c.activation.to_string()),
        ("train.data_dir", data_dir_name(m.data_dir.as_deref())),
    ];
    if let Some(t) = task {
        v.push(("discover.task", t.name.clone()));
    }
    if let Some(s) = s {
        let c = &s.settings.config;
        v.extend([
            ("discover.k", s.k.to_string()),
            ("discover.eps", c.eps.to_string()),
            ("discover.ablation", c.ablation.to_string()),
            ("discover.bootstraps", c.bootstraps.to_string()),
            ("discover.sample", c.sample.to_string()),
        ]);
    }
    v
}

/// Each axis with its distinct values, in the order the points first take
/// them (for a product of axes: the order each axis lists them).
fn axes_of(models: &[ModelPoint], settings: &[SettingPoint], tasks: &[Task]) -> Vec<Axis> {
    let mut axes: Vec<Axis> = Vec::new();
    let mut add = |points: Vec<(&'static str, String)>| {
        for (name, value) in points {
            match axes.iter_mut().find(|a| a.name == name) {
                Some(a) if !a.values.contains(&value) => a.values.push(value),
                Some(_) => {}
                None => axes.push(Axis { name: name.into(), values: vec![value] }),
            }
        }
    };
    // Models and settings vary independently: the first of each names the
    // other's axes once.
    for m in models {
        add(point_values(m, None, None));
    }
    if let Some(m) = models.first() {
        for t in tasks {
            add(point_values(m, None, Some(t)).split_off(8));
        }
        for s in settings {
            add(point_values(m, Some(s), None).split_off(8));
        }
    }
    axes
}

/// Widths as a plan writes them: `784-100-100-10`.
pub fn sizes_name(sizes: &[usize]) -> String {
    sizes.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
}

fn data_dir_name(dir: Option<&Path>) -> String {
    dir.map_or_else(|| "default".into(), |d| d.display().to_string())
}
