//! `results.json` (docs/results-schema.md): everything a `reproduce` run
//! measured, gathered from every analysis' rows. The top of the crate's
//! modules: nothing below it names it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::beyond::BeyondResult;
use crate::discovery::DiscoverySettings;
pub use crate::profile::{Profile, ProfileSettings};
pub use crate::rows::*;

/// Version of `results.json` (docs/results-schema.md).
pub const RESULTS_SCHEMA: &str = "modcirc.results/6";

/// Everything a `reproduce` run measured: `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// [`RESULTS_SCHEMA`].
    pub schema: String,
    /// The profile run.
    pub profile: Profile,
    /// Its settings.
    pub settings: ProfileSettings,
    /// The discovery settings every model and task used.
    pub discover_flags: DiscoverySettings,
    /// The machine.
    pub environment: Environment,
    /// Wall time of each stage run now (cached work not counted).
    pub stage_seconds: BTreeMap<String, f64>,
    /// Per stage, the sum of its jobs' own times, where jobs ran at once
    /// (`train`): against `stage_seconds`, the parallel speed-up.
    #[serde(default)]
    pub jobs_seconds: BTreeMap<String, f64>,
    /// Wall time of the whole run.
    pub total_seconds: f64,
    /// Where the time went: each kind of unit computed now (cached units
    /// cost nothing), how many, their total and mean time.
    #[serde(default)]
    pub unit_times: Vec<UnitTime>,
    /// Every trained model.
    pub models: Vec<ModelResult>,
    /// Every discovery.
    pub discoveries: Vec<DiscoveryResult>,
    /// Inference timings of the seed-0 models.
    pub inference: Vec<InferenceResult>,
    /// The verdicts on the paper's hypotheses.
    pub verdicts: Vec<Verdict>,
    /// STUDY §8 on the seed-0 models: attribution patching and faithfulness.
    #[serde(default)]
    pub beyond: Vec<BeyondResult>,
    /// STUDY §9 on every model.
    #[serde(default)]
    pub structure: Vec<crate::structure::StructureResult>,
    /// Every metric across seeds, and the verdicts judged on them (`null`
    /// with one seed).
    #[serde(default)]
    pub across_seeds: Option<AcrossSeeds>,
    /// STUDY §9's findings, each by its stated rule.
    #[serde(default)]
    pub findings: Vec<Verdict>,
    /// RQ1-H1 and RQ1-H3 decided again on each K-sensitivity rule's circuits.
    #[serde(default)]
    pub k_sensitivity: Vec<SensitivityRow>,
    /// STUDY §10 on every discovery.
    #[serde(default)]
    pub controls: Vec<crate::controls::ControlsResult>,
    /// RQ1-H1 and RQ1-H3 decided again under each other ablation.
    #[serde(default)]
    pub ablation_sensitivity: Vec<crate::judged_controls::AblationRow>,
    /// BIMT against each regime over seeds, per task and RQ1 metric.
    #[serde(default)]
    pub differences: Vec<crate::judged_controls::DifferenceTest>,
    /// The planted-truth suite (STUDY §11), where the run had it.
    #[serde(default)]
    pub planted: Option<crate::planted_results::PlantedResults>,
    /// The figures written, relative to the output directory.
    pub figures: Vec<String>,
    /// Every file of the run but `results.json` itself, with its SHA-256
    /// and size: what `check-artifacts` verifies.
    #[serde(default)]
    pub files: Vec<modcirc_store::FileRecord>,
}
