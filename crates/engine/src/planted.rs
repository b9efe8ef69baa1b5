//! The planted-truth suite's units (STUDY §11): per regime and seed, a
//! planted MNIST-PVR model trained by interchange intervention (one unit:
//! its checkpoint, and a JSON of its alignment and quality) and each of the
//! settings' methods scored on its three tasks (one unit per method, keyed
//! by the method and its options, so that a new method computes only its
//! own); per regime, the Boolean networks (one JSON). Cached by content key
//! under `planted/`, claimed, counted by the census and sharded like the
//! study's models (a planted model's units go to one shard): they are
//! groups of the workload ([`Workload::planted`](crate::Workload::planted)), and
//! [`execute`](crate::execute()) runs them beside the study's.

use std::path::{Path, PathBuf};

use modcirc_acdc::Method;
use modcirc_bimt::iit::{Alignment, PlantedConfig, PlantedQuality};
use modcirc_bimt::{Regime, TrainTiming};
use modcirc_store::short_hash;
use modcirc_study::boolean::{boolean_methods, BooleanModel};
use modcirc_study::planted::{PlantedSettings, TaskScores};
use serde::{Deserialize, Serialize};

use crate::plan::ModelPoint;
use crate::unit::{Datasets, ModelUnit};
use crate::EngineError;

/// Bumped when a change to the suite changes what a planted model's unit
/// holds (2: its quality only; each method's scores are units of their own).
pub const PLANTED_REVISION: u32 = 2;

/// Bumped when a change changes what a Boolean unit holds (2: EAP-IG and
/// learned masks; 3: the masks' penalties from 1e-8; 4: the masks' node
/// scores the largest of a neuron's edges, not their sum).
pub const BOOLEAN_REVISION: u32 = 4;

/// Bumped when a change changes what every method's scores on a planted
/// model hold (2: each method's own [`Method::revision`] joins its key, so
/// that a change to one method recomputes only its units; 3: AUROC against
/// the live truth too).
pub const SCORES_REVISION: u32 = 3;

/// What a planted model's JSON holds beside its checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlantedRecord {
    /// How it was trained.
    pub config: PlantedConfig,
    /// Where each node sits.
    pub alignment: Alignment,
    /// Training time per phase.
    pub timing: TrainTiming,
    /// Task accuracy, IIA and strictness failure.
    pub quality: PlantedQuality,
    /// Seconds measuring the quality took.
    pub quality_s: f64,
}

/// One method's scores on a planted model's three tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoresRecord {
    /// The method, with its options.
    pub method: Method,
    /// Per task (quadrants 1, 2, 3), the method's score alone.
    pub tasks: Vec<TaskScores>,
    /// Seconds scoring took.
    pub seconds: f64,
}

/// A Boolean suite's JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BooleanRecord {
    /// The regime.
    pub regime: Regime,
    /// Every network.
    pub networks: Vec<BooleanModel>,
}

/// One group of the suite's units, which one shard runs whole: a planted
/// model with each method's scores on it, or a regime's Boolean networks.
#[derive(Debug, Clone)]
pub struct PlantedGroup {
    /// Its place (after the study's models), key, cost and main file.
    pub unit: ModelUnit,
    pub(crate) job: Job,
}

#[derive(Debug, Clone)]
pub(crate) enum Job {
    /// A planted model and each method's scores on it (their files).
    Model {
        regime: Regime,
        seed: u64,
        scores: Vec<(Method, PathBuf)>,
    },
    Boolean {
        regime: Regime,
    },
}

/// The suite's groups under `out`, numbered from `base`: per regime, each
/// seed's model and its scores, then the Boolean networks.
pub(crate) fn groups(
    s: &PlantedSettings,
    out: &Path,
    data: &Datasets,
    base: usize,
) -> Result<Vec<PlantedGroup>, EngineError> {
    let sums: Vec<&str> =
        data.values().next().map_or(Vec::new(), |m| m.checksums.iter().map(|c| c.sha256.as_str()).collect());
    let sums_json = json(&sums)?;
    let revision = PLANTED_REVISION.to_le_bytes();
    let dir = out.join(crate::keys::PLANTED_DIR);
    let mut out = Vec::new();
    for &regime in &s.regimes {
        for &seed in &s.seeds {
            let config = s.config(regime, seed);
            let key = short_hash(&[
                &json(&config)?,
                &sums_json,
                &revision,
                &json(&s.trials)?,
                &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
            ]);
            let stem = format!("{regime}-seed{seed}-{key}");
            let path = dir.join(format!("{stem}.safetensors"));
            let scores = s
                .methods
                .iter()
                .map(|m| {
                    let revisions = [SCORES_REVISION, m.revision()].map(u32::to_le_bytes).concat();
                    let k = short_hash(&[stem.as_bytes(), &revisions, &json(&(s.pairs, m))?]);
                    Ok((m.clone(), dir.join(format!("{stem}-{}-{k}.json", m.name()))))
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            let cost = crate::shard::cost::planted(config.train.steps, scores.len());
            let unit = unit(base + out.len(), config.train.clone(), key, path, cost);
            out.push(PlantedGroup { unit, job: Job::Model { regime, seed, scores } });
        }
        // Its methods (with their revisions) join the key: a method added to
        // the suite, or changed, recomputes the networks' judgements.
        let methods = boolean_methods();
        let revisions: Vec<u32> = methods.iter().map(Method::revision).collect();
        let key = short_hash(&[
            &json(&(&s.boolean_seeds, s.boolean_steps, regime.name()))?,
            &json(&(&methods, &revisions))?,
            &BOOLEAN_REVISION.to_le_bytes(),
            &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
        ]);
        let path = dir.join(format!("boolean-{regime}-{key}.json"));
        let config = modcirc_bimt::TrainConfig::new(regime).steps(s.boolean_steps);
        let cost = crate::shard::cost::boolean(s.boolean_seeds.len(), s.boolean_steps);
        out.push(PlantedGroup { unit: unit(base + out.len(), config, key, path, cost), job: Job::Boolean { regime } });
    }
    Ok(out)
}

impl PlantedGroup {
    /// How many units the group holds.
    pub fn units(&self) -> usize {
        match &self.job {
            Job::Model { scores, .. } => 1 + scores.len(),
            Job::Boolean { .. } => 1,
        }
    }

    /// Each of the group's units' files (a planted model's checkpoint and
    /// record first), as the census looks them up.
    pub fn unit_files(&self) -> Vec<Vec<PathBuf>> {
        let path = self.unit.path.clone();
        match &self.job {
            Job::Model { scores, .. } => {
                let record = record_path(&path);
                std::iter::once(vec![path, record]).chain(scores.iter().map(|(_, p)| vec![p.clone()])).collect()
            }
            Job::Boolean { .. } => vec![vec![path]],
        }
    }
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(v).map_err(EngineError::Serialise)
}

fn unit(index: usize, config: modcirc_bimt::TrainConfig, key: String, path: PathBuf, cost: f64) -> ModelUnit {
    ModelUnit { index, point: ModelPoint { config, data_dir: None }, key, path, cost }
}

/// The JSON beside a planted checkpoint.
pub fn record_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("json")
}
