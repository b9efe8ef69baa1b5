//! The content keys of units, which every cache user shares, and where
//! units lie under an output directory.
//!
//! A model's key hashes everything that determines its weights; an
//! analysis' key hashes its model's bytes' SHA-256, the discovery
//! settings and what names the unit. The same key means the same result,
//! whichever command or machine computed it.

use std::path::{Path, PathBuf};

use modcirc_bimt::{Regime, TrainConfig, STUDY_ACTIVATION, STUDY_SIZES};
use modcirc_dataset::{Mnist, Task};
use modcirc_mlp::DeviceSpec;
use modcirc_store::short_hash;
use modcirc_study::beyond::BeyondSettings;
use modcirc_study::controls::ControlSettings;

use crate::EngineError;

/// The content key of a trained model: a hash of everything that
/// determines its weights (the configuration, the data's checksums, the
/// trainer's revision, the device).
pub fn model_key(config: &TrainConfig, data_sha256: &[&str], device: &str) -> Result<String, EngineError> {
    let json = EngineError::Serialise;
    Ok(short_hash(&[
        &serde_json::to_vec(config).map_err(json)?,
        &serde_json::to_vec(data_sha256).map_err(json)?,
        &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
        device.as_bytes(),
    ]))
}

/// [`model_key`] of a model trained on `data` on `device`.
pub fn model_key_on(config: &TrainConfig, data: &Mnist, device: DeviceSpec) -> Result<String, EngineError> {
    let sums: Vec<&str> = data.checksums.iter().map(|c| c.sha256.as_str()).collect();
    model_key(config, &sums, &device.to_string())
}

/// A model's file name outside a study's directory (`train`'s default):
/// `<regime>-seed<S>-<data>-<key>.safetensors`, the data directory's name
/// and the model's content key ([`model_key`]), so that models of other
/// data or settings never share a name; the widths and activation are
/// added where they are not the study's.
pub fn model_file_name(config: &TrainConfig, mnist: &Mnist, device: DeviceSpec) -> Result<String, EngineError> {
    let (regime, seed) = (config.regime, config.seed);
    let data: String = mnist
        .dir
        .file_name()
        .map(|n| {
            n.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
        })
        .unwrap_or_else(|| "data".into());
    let key = model_key_on(config, mnist, device)?;
    Ok(if config.sizes == STUDY_SIZES && config.activation == STUDY_ACTIVATION {
        format!("{regime}-seed{seed}-{data}-{key}.safetensors")
    } else {
        let sizes: Vec<String> = config.sizes.iter().map(usize::to_string).collect();
        format!("{regime}-seed{seed}-{}-{}-{data}-{key}.safetensors", sizes.join("x"), config.activation)
    })
}

/// The key of an analysis of a model (by its bytes' SHA-256) under
/// discovery `settings` (as JSON): `parts` name the unit (a task, a
/// schema).
pub fn analysis_key(model_sha256: &str, settings_json: &[u8], parts: &[&[u8]]) -> String {
    let revision = modcirc_study::discovery::DISCOVERY_REVISION.to_le_bytes();
    let base: [&[u8]; 3] = [model_sha256.as_bytes(), settings_json, &revision];
    short_hash(&[&base[..], parts].concat())
}

/// The key of a discovery of `task`.
pub fn discovery_key(model_sha256: &str, settings_json: &[u8], task: &Task) -> String {
    analysis_key(model_sha256, settings_json, &[task.name.as_bytes(), &[]])
}

/// The key of STUDY §9 on a model.
pub fn structure_key(model_sha256: &str, settings_json: &[u8]) -> String {
    analysis_key(model_sha256, settings_json, &[modcirc_study::structure::STRUCTURE_SCHEMA.as_bytes()])
}

/// The key of STUDY §8 and §12 on a model and task, with `beyond`.
pub fn beyond_key(model_sha256: &str, settings_json: &[u8], task: &Task, beyond: Option<&BeyondSettings>) -> String {
    // Serialising plain numbers and names cannot fail.
    let b = serde_json::to_vec(&beyond).unwrap_or_default();
    let schema = modcirc_study::beyond::BEYOND_SCHEMA.as_bytes();
    analysis_key(model_sha256, settings_json, &[task.name.as_bytes(), schema, &b])
}

/// The key of STUDY §10 on a model and task, with `controls`.
pub fn controls_key(model_sha256: &str, settings_json: &[u8], task: &Task, controls: &ControlSettings) -> String {
    // Serialising plain numbers cannot fail.
    let c = serde_json::to_vec(controls).unwrap_or_default();
    let schema = modcirc_study::controls::CONTROLS_SCHEMA.as_bytes();
    analysis_key(model_sha256, settings_json, &[task.name.as_bytes(), schema, &c])
}

/// The directories of an output directory that hold units, each kind's
/// own, in the order the README's table lists them: every cleanup, the
/// census and the file names below use these.
pub const UNIT_DIRS: [&str; 6] = [MODELS_DIR, DISCOVER_DIR, BEYOND_DIR, CONTROLS_DIR, STRUCTURE_DIR, PLANTED_DIR];
/// Trained models and their sidecars.
pub const MODELS_DIR: &str = "models";
/// Discoveries.
pub const DISCOVER_DIR: &str = "discover";
/// STUDY §8 and §12.
pub const BEYOND_DIR: &str = "beyond";
/// STUDY §10.
pub const CONTROLS_DIR: &str = "controls";
/// STUDY §9.
pub const STRUCTURE_DIR: &str = "structure";
/// The planted-truth suite (STUDY §11).
pub const PLANTED_DIR: &str = "planted";

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
        self.out.join(MODELS_DIR).join(format!("{}-{key}.safetensors", self.stem()))
    }

    /// A discovery of `task` on the model of SHA-256 `model_sha256`.
    pub fn discovery(&self, model_sha256: &str, settings_json: &[u8], task: &Task) -> PathBuf {
        let key = discovery_key(model_sha256, settings_json, task);
        self.out.join(DISCOVER_DIR).join(format!("{}-{}-{key}.json", self.stem(), task.file_stem()))
    }

    /// STUDY §8 and §12 on `task`, with `b`.
    pub fn beyond(&self, model_sha256: &str, settings_json: &[u8], task: &Task, b: Option<&BeyondSettings>) -> PathBuf {
        let key = beyond_key(model_sha256, settings_json, task, b);
        self.out.join(BEYOND_DIR).join(format!("{}-{}-{key}.json", self.stem(), task.file_stem()))
    }

    /// STUDY §10 on `task`.
    pub fn controls(&self, model_sha256: &str, settings_json: &[u8], task: &Task, c: &ControlSettings) -> PathBuf {
        let key = controls_key(model_sha256, settings_json, task, c);
        self.out.join(CONTROLS_DIR).join(format!("{}-{}-{key}.json", self.stem(), task.file_stem()))
    }

    /// STUDY §9.
    pub fn structure(&self, model_sha256: &str, settings_json: &[u8]) -> PathBuf {
        let key = structure_key(model_sha256, settings_json);
        self.out.join(STRUCTURE_DIR).join(format!("{}-{key}.json", self.stem()))
    }
}
