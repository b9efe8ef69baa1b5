//! A plan laid out in an output directory: each model's key and files,
//! the units that follow its training (the unit graph), the planted
//! suite's groups, shards, and what the cache holds of them (the census).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use modcirc_bimt::checkpoint;
use modcirc_dataset::Mnist;
use modcirc_store::listing;

use crate::error::list_some;
use crate::keys::{model_key_on, UnitFiles, UNIT_DIRS};
use crate::plan::{sizes_name, Plan};
use crate::planted::PlantedGroup;
use crate::shard::{assign, cost, Shard};
pub use crate::unit::{Census, Datasets, ModelUnit};
use crate::EngineError;

/// A unit that follows a model's training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// A discovery: the plan's setting and task (indices).
    Discover {
        /// The discovery setting.
        setting: usize,
        /// The task.
        task: usize,
    },
    /// STUDY §8 on a discovery.
    Beyond {
        /// The discovery setting.
        setting: usize,
        /// The task.
        task: usize,
    },
    /// STUDY §10 on a discovery.
    Controls {
        /// The discovery setting.
        setting: usize,
        /// The task.
        task: usize,
    },
    /// STUDY §9 on the model, with a setting's discoveries.
    Structure {
        /// The discovery setting.
        setting: usize,
    },
}

/// A unit and its file.
#[derive(Debug, Clone)]
pub struct Unit {
    /// What it is.
    pub kind: UnitKind,
    /// Its JSON file.
    pub path: PathBuf,
}

/// A plan in its output directory, with its data.
#[derive(Debug)]
pub struct Workload {
    /// The plan.
    pub plan: Plan,
    /// The output directory (the shared cache).
    pub out: PathBuf,
    /// The plan's data sets.
    pub data: Datasets,
    /// Every model, in the plan's order.
    pub models: Vec<ModelUnit>,
    /// The planted-truth suite's groups (STUDY §11), numbered after the
    /// models; none when the plan has no suite.
    pub planted: Vec<PlantedGroup>,
    /// Each setting's JSON, what the analysis keys hash.
    settings_json: Vec<Vec<u8>>,
}

impl Workload {
    /// Lays `plan` out in `out`. Every data directory of the plan must be in
    /// `data`, and every model must fit its data.
    pub fn new(plan: Plan, out: PathBuf, data: Datasets) -> Result<Workload, EngineError> {
        let settings_json = plan
            .settings
            .iter()
            .map(|s| serde_json::to_vec(&s.settings))
            .collect::<Result<_, _>>()
            .map_err(EngineError::Serialise)?;
        let mut models = Vec::with_capacity(plan.models.len());
        for (index, point) in plan.models.iter().enumerate() {
            let mnist = data.get(&point.data_dir).ok_or_else(|| EngineError::Misfit {
                sizes: sizes_name(&point.config.sizes),
                message: format!("no data set loaded for {:?}", point.data_dir),
            })?;
            let sizes = &point.config.sizes;
            mnist
                .train
                .check_fits("train", sizes[0], sizes[sizes.len() - 1])
                .map_err(|e| EngineError::Misfit { sizes: sizes_name(sizes), message: e.to_string() })?;
            let key = model_key_on(&point.config, mnist, plan.device)?;
            // Two data directories holding the same files give one model
            // the same key twice: one unit, not two.
            if let Some(twin) = models.iter().find(|m: &&ModelUnit| m.key == key) {
                let name =
                    |d: &Option<PathBuf>| d.as_ref().map_or("the default data".into(), |d| d.display().to_string());
                return Err(EngineError::Plan {
                    path: PathBuf::from(format!("train.data_dir {}", name(&point.data_dir))),
                    message: format!(
                        "holds the same data as {} (the same files): each model would be one unit twice; list one of them",
                        name(&twin.point.data_dir)
                    ),
                });
            }
            let c = &point.config;
            let path = UnitFiles { out: &out, regime: c.regime, seed: c.seed }.model(&key);
            let beyond = if plan.beyond_for(point) { plan.tasks.len() } else { 0 };
            let controls = plan.controls.as_ref().map(|c| 2 * c.random);
            let cost = cost::group(c, plan.settings.iter().map(|s| &s.settings), plan.tasks.len(), beyond, controls);
            models.push(ModelUnit { index, point: point.clone(), key, path, cost });
        }
        let planted = match &plan.planted {
            Some(s) => crate::planted::groups(s, &out, &data, models.len())?,
            None => Vec::new(),
        };
        Ok(Workload { plan, out, data, models, planted, settings_json })
    }

    /// The content key of discovery setting `s` (a part of each of its
    /// units' keys).
    pub fn setting_key(&self, s: usize) -> String {
        modcirc_store::short_hash(&[&self.settings_json[s]])
    }

    /// The data set model `m` trains on.
    pub fn mnist(&self, m: &ModelUnit) -> &Mnist {
        &self.data[&m.point.data_dir]
    }

    /// Every group of the workload: each model with every unit that
    /// needs it, and the planted suite's groups.
    pub fn all(&self) -> Selection<'_> {
        Selection { models: self.models.iter().collect(), planted: self.planted.iter().collect() }
    }

    /// The groups of `shard`: the study's models and the planted suite's
    /// groups given out together by cost.
    pub fn shard(&self, shard: Shard) -> Selection<'_> {
        let units = self.models.iter().chain(self.planted.iter().map(|g| &g.unit));
        let groups: Vec<(String, f64)> = units.map(|m| (m.key.clone(), m.cost)).collect();
        let owner = assign(&groups, shard.count);
        let (models_owner, planted_owner) = owner.split_at(self.models.len());
        let mine = |o: &usize| *o == shard.index;
        Selection {
            models: self.models.iter().zip(models_owner).filter(|(_, o)| mine(o)).map(|(m, _)| m).collect(),
            planted: self.planted.iter().zip(planted_owner).filter(|(_, o)| mine(o)).map(|(g, _)| g).collect(),
        }
    }

    /// The output directory and each of its unit directories.
    pub fn dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.out.clone()).chain(UNIT_DIRS.iter().map(|d| self.out.join(d))).collect()
    }

    /// The units that follow `m`'s training, once its checkpoint's SHA-256
    /// is known, in the order they run: per setting, each task's discovery
    /// (and STUDY §8 and §10 on it), then STUDY §9.
    pub fn analyses(&self, m: &ModelUnit, sha256: &str) -> Vec<Unit> {
        let c = &m.point.config;
        let files = UnitFiles { out: &self.out, regime: c.regime, seed: c.seed };
        let beyond = self.plan.beyond_for(&m.point);
        let mut units = Vec::new();
        for (s, json) in self.settings_json.iter().enumerate() {
            for (t, task) in self.plan.tasks.iter().enumerate() {
                let kind = UnitKind::Discover { setting: s, task: t };
                units.push(Unit { kind, path: files.discovery(sha256, json, task) });
                if beyond {
                    let kind = UnitKind::Beyond { setting: s, task: t };
                    units.push(Unit { kind, path: files.beyond(sha256, json, task, self.plan.beyond.as_ref()) });
                }
                if let Some(controls) = &self.plan.controls {
                    let kind = UnitKind::Controls { setting: s, task: t };
                    units.push(Unit { kind, path: files.controls(sha256, json, task, controls) });
                }
            }
            units.push(Unit { kind: UnitKind::Structure { setting: s }, path: files.structure(sha256, json) });
        }
        units
    }

    /// How many units follow each model's training.
    pub fn analyses_per_model(&self, m: &ModelUnit) -> usize {
        let beyond = if self.plan.beyond_for(&m.point) { self.plan.tasks.len() } else { 0 };
        let controls = if self.plan.controls.is_some() { self.plan.tasks.len() } else { 0 };
        self.plan.settings.len() * (self.plan.tasks.len() + 1 + beyond + controls)
    }

    /// `path` relative to the output directory.
    pub fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.out).unwrap_or(path).display().to_string()
    }

    /// What the cache holds of `selection`'s units. A directory of the
    /// cache that cannot be read is an error, not "missing".
    pub fn census(&self, selection: &Selection<'_>) -> Result<Census, EngineError> {
        for dir in self.dirs() {
            match std::fs::read_dir(&dir) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io(&dir, e)),
            }
        }
        let mut c = Census::default();
        for g in &selection.planted {
            for files in g.unit_files() {
                let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
                c.total += 1;
                c.look(refs[0], &refs, self.rel(refs[0]));
            }
        }
        for m in &selection.models {
            c.total += 1 + self.analyses_per_model(m);
            let sidecar = checkpoint::sidecar_path(&m.path);
            c.look(&m.path, &[&m.path, &sidecar], self.rel(&m.path));
            let Some(sha) = listing::recorded_sha256(&m.path) else {
                c.waiting += self.analyses_per_model(m);
                c.missing_models.insert(self.rel(&m.path));
                continue;
            };
            for u in self.analyses(m, &sha) {
                c.look(&u.path, &[&u.path], self.rel(&u.path));
            }
        }
        Ok(c)
    }

    /// Refuses, listing them, any of `selection`'s units that is not done.
    pub fn require_done(&self, selection: &Selection<'_>) -> Result<(), EngineError> {
        let c = self.census(selection)?;
        let mut missing: BTreeSet<String> = c.missing.clone();
        missing.extend(c.running.iter().chain(&c.abandoned).cloned());
        for m in &c.missing_models {
            missing.remove(m);
            missing.insert(format!("{m} (and its analyses)"));
        }
        if missing.is_empty() && c.waiting == 0 {
            return Ok(());
        }
        Err(EngineError::Missing {
            count: missing.len() + c.waiting,
            total: c.total,
            out: self.out.clone(),
            names: list_some(&missing, 12),
        })
    }
}

/// Groups of a workload: some of its models, each with every unit that
/// needs it, and some of the planted suite's groups.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// The study's (or sweep's) models.
    pub models: Vec<&'a ModelUnit>,
    /// The planted suite's groups.
    pub planted: Vec<&'a PlantedGroup>,
}

impl Selection<'_> {
    /// Groups in all.
    pub fn len(&self) -> usize {
        self.models.len() + self.planted.len()
    }

    /// Whether it holds no group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated CPU seconds of every group.
    pub fn cost(&self) -> f64 {
        self.models.iter().map(|m| m.cost).chain(self.planted.iter().map(|g| g.unit.cost)).sum()
    }
}
