//! The types of `results.json` (docs/results-schema.md).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use modcirc_acdc::SelectionRule;
use modcirc_bimt::checkpoint::TrainMeta;
use modcirc_bimt::Regime;
use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::beyond::BeyondResult;
use crate::discovery::DiscoverySettings;
use crate::StudyError;

/// Version of `results.json` (docs/results-schema.md).
pub const RESULTS_SCHEMA: &str = "modcirc.results/5";

/// How much of the study a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// STUDY's defaults: 40 000 steps, 50 bootstraps of 500 pairs.
    Full,
    /// A smaller study: 6 000 steps, 20 bootstraps of 500 (run times: README).
    Quick,
    /// The pipeline end to end, for CI: 600 steps (one relocation), 5 bootstraps of 200.
    Smoke,
}

/// What a profile sets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileSettings {
    /// Training steps per model.
    pub steps: usize,
    /// Bootstrap resamples per discovery.
    pub bootstraps: usize,
    /// Pairs per resample.
    pub sample: usize,
    /// Repeats of each inference timing.
    pub inference_repeats: usize,
    /// Training seeds per regime (0, 1, ...), where `--seeds` does not say.
    #[serde(default)]
    pub seeds: u64,
    /// Random circuits per pool of each control (STUDY §10).
    #[serde(default = "default_random_circuits")]
    pub random_circuits: usize,
    /// Training pairs optimal ablation's constants are fitted on (STUDY §12).
    #[serde(default = "default_optimal_pairs")]
    pub optimal_pairs: usize,
}

fn default_optimal_pairs() -> usize {
    modcirc_acdc::DEFAULT_OPTIMAL_PAIRS
}

fn default_random_circuits() -> usize {
    modcirc_acdc::DEFAULT_RANDOM_CIRCUITS
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Full, Profile::Quick, Profile::Smoke];

    /// Its settings.
    pub fn settings(self) -> ProfileSettings {
        match self {
            Profile::Full => ProfileSettings {
                steps: modcirc_bimt::STUDY_STEPS,
                bootstraps: modcirc_acdc::DEFAULT_BOOTSTRAPS,
                sample: modcirc_acdc::DEFAULT_SAMPLE,
                inference_repeats: 50,
                seeds: 5,
                random_circuits: modcirc_acdc::DEFAULT_RANDOM_CIRCUITS,
                optimal_pairs: modcirc_acdc::DEFAULT_OPTIMAL_PAIRS,
            },
            Profile::Quick => ProfileSettings {
                steps: 6_000,
                bootstraps: 20,
                sample: 500,
                inference_repeats: 20,
                seeds: 3,
                random_circuits: modcirc_acdc::DEFAULT_RANDOM_CIRCUITS,
                optimal_pairs: modcirc_acdc::DEFAULT_OPTIMAL_PAIRS,
            },
            Profile::Smoke => ProfileSettings {
                steps: 600,
                bootstraps: 5,
                sample: 200,
                inference_repeats: 5,
                seeds: 2,
                random_circuits: 20,
                optimal_pairs: 40,
            },
        }
    }

    /// `full`, `quick` or `smoke`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Full => "full",
            Profile::Quick => "quick",
            Profile::Smoke => "smoke",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = StudyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| StudyError::Invalid(format!("unknown profile {s:?} (expected full, quick or smoke)")))
    }
}

/// One trained model in the results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelResult {
    /// Its regime.
    pub regime: Regime,
    /// Its training seed.
    pub seed: u64,
    /// The checkpoint, relative to the output directory.
    pub path: String,
    /// SHA-256 of the checkpoint file.
    pub sha256: String,
    /// Size of the checkpoint file.
    pub file_bytes: u64,
    /// Whether this run reused a cached checkpoint.
    pub cached: bool,
    /// The checkpoint's sidecar.
    pub meta: TrainMeta,
    /// Its training re-timed after the units (the seed-0 BIMT and L1
    /// models, which RQ2-H2 compares), where this run did so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retimed: Option<Retimed>,
}

/// A model's training re-timed with nothing else of the run beside it:
/// `steps` optimizer steps (and their swaps) of its configuration, one
/// regime at a time, the re-timed regimes alternated over rounds; each
/// round's seconds (optimizer and relocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retimed {
    /// Steps per round.
    pub steps: usize,
    /// Each round's seconds.
    pub seconds: Vec<f64>,
}

impl Retimed {
    /// The least round: what the machine's load adds least to.
    pub fn best(&self) -> f64 {
        self.seconds.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

impl ModelResult {
    /// Peak training heap above what was live when training began (the
    /// data set), in MiB.
    pub fn heap_mib(&self) -> f64 {
        let peak = self.meta.peak_heap_bytes.unwrap_or(0);
        let start = self.meta.heap_at_start_bytes.unwrap_or(0);
        peak.saturating_sub(start) as f64 / (1u64 << 20) as f64
    }
}

/// One discovery (model × task) in the results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoveryResult {
    /// The model's regime.
    pub regime: Regime,
    /// The model's training seed.
    pub seed: u64,
    /// The task's name.
    pub task: String,
    /// The full `discover` output (pairs, scores, every resample) lives here.
    pub path: String,
    /// Whether this run reused a cached discovery.
    pub cached: bool,
    /// Over the bootstrap resamples.
    pub logit_difference: Summary,
    /// Over the bootstrap resamples.
    pub accuracy: Summary,
    /// Over the bootstrap resamples.
    pub sparsity: Summary,
    /// Over the bootstrap resamples, measured again after the analyses,
    /// one discovery at a time with nothing else running (the discovery
    /// JSON keeps the times measured beside other jobs).
    pub discovery_s: Summary,
    /// Over the resamples where it is defined (STUDY §8).
    #[serde(default)]
    pub faithfulness: Option<Summary>,
    /// Per hidden layer, on the full pair set: neurons whose patch leaves the
    /// baseline unchanged.
    #[serde(default)]
    pub dead: Vec<usize>,
    /// Per hidden layer: kept neurons the lower-index tie rule chose.
    #[serde(default)]
    pub decided_by_tie: Vec<usize>,
    /// Per hidden layer, on the full pair set: kept neurons that are dead.
    #[serde(default)]
    pub dead_kept: Vec<usize>,
    /// The model's own accuracy on the resamples' images: the circuit
    /// accuracy's reference.
    #[serde(default)]
    pub model_accuracy: Option<Summary>,
    /// The K-sensitivity rules on the same resamples.
    #[serde(default)]
    pub compared: Vec<modcirc_acdc::RuleSummary>,
    /// Plain-language notes on how the top-K was decided.
    pub notes: Vec<String>,
}

impl DiscoveryResult {
    /// A result of these metrics alone (no file, notes or resample details),
    /// as the verdict rules see it: logit difference, accuracy, sparsity and
    /// discovery time.
    pub fn of_metrics(regime: Regime, seed: u64, task: &str, metrics: [Summary; 4]) -> DiscoveryResult {
        let [logit_difference, accuracy, sparsity, discovery_s] = metrics;
        DiscoveryResult {
            regime,
            seed,
            task: task.into(),
            path: String::new(),
            cached: false,
            logit_difference,
            accuracy,
            sparsity,
            discovery_s,
            faithfulness: None,
            dead: Vec::new(),
            decided_by_tie: Vec::new(),
            dead_kept: Vec::new(),
            model_accuracy: None,
            compared: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Inference time per image, over repeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferenceResult {
    /// The model's regime.
    pub regime: Regime,
    /// Per image, in batches of 500.
    pub batched_500_s: Summary,
    /// Per image, one at a time.
    pub batch_1_s: Summary,
}

/// The machine and build a run measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// The CPU's model name.
    pub cpu: String,
    /// Logical CPUs available.
    pub logical_cpus: usize,
    /// OS and architecture.
    pub os: String,
    /// Where training and discovery ran.
    pub device: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The crates' version.
    pub crate_version: String,
    /// `git rev-parse`, `-dirty` when the tree had changes.
    pub git_commit: String,
    /// `TRAINER_REVISION`.
    pub trainer_revision: u32,
}

/// One hypothesis of the paper and what this run's numbers say of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `RQ1-H1`, …
    pub id: String,
    /// The hypothesis as the paper states it.
    pub hypothesis: String,
    /// The rule that decides it.
    pub rule: String,
    /// `falsified`, `not falsified`, `supported`, or not evaluated.
    pub verdict: String,
    /// The numbers the rule was applied to.
    pub evidence: String,
}

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
    pub planted: Option<crate::planted::PlantedResults>,
    /// The figures written, relative to the output directory.
    pub figures: Vec<String>,
    /// Every file of the run but `results.json` itself, with its SHA-256
    /// and size: what `check-artifacts` verifies.
    #[serde(default)]
    pub files: Vec<modcirc_store::FileRecord>,
}

/// The seed-0 discovery of `regime` on `task`.
pub fn find<'a>(ds: &'a [DiscoveryResult], regime: Regime, task: &str) -> Option<&'a DiscoveryResult> {
    ds.iter().find(|d| d.regime == regime && d.task == task && d.seed == 0)
}

/// The seed-0 model of `regime`.
pub fn model0(ms: &[ModelResult], regime: Regime) -> Option<&ModelResult> {
    ms.iter().find(|m| m.regime == regime && m.seed == 0)
}

/// The seed-0 STUDY §8 result of `regime` on `task`.
pub fn beyond0<'a>(bs: &'a [BeyondResult], regime: Regime, task: &str) -> Option<&'a BeyondResult> {
    bs.iter().find(|b| b.regime == Some(regime) && b.task == task && b.seed == Some(0))
}

/// One regime and task over seeds: a t-interval over seeds per metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedRow {
    /// The regime.
    pub regime: Regime,
    /// The task.
    pub task: String,
    /// Seeds it covers.
    pub seeds: usize,
    /// Circuit logit difference (lower: closer to the model).
    pub logit_difference: Summary,
    /// Sparsity (higher: smaller circuit).
    pub sparsity: Summary,
    /// Circuit accuracy.
    pub accuracy: Summary,
    /// Discovery time, seconds.
    pub discovery_s: Summary,
    /// Faithfulness (bootstrap mean per seed), where every seed has one.
    pub faithfulness: Option<Summary>,
    /// Bootstrap stability of the circuit (STUDY §9), where measured.
    pub stability: Option<Summary>,
}

/// One regime's network structure over seeds (STUDY §9).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StructureRow {
    /// The regime.
    pub regime: Regime,
    /// Seeds it covers.
    pub seeds: usize,
    /// Wiring length.
    pub wiring_length: Summary,
    /// Q of the graph of every weight.
    pub q_all: Summary,
    /// Q of the graph of the weights the eps rule keeps.
    pub q_eps: Summary,
    /// Spectral n-cut into 8 clusters of the eps graph.
    pub ncut8_eps: Option<Summary>,
    /// Jaccard overlap of the circle and line circuits.
    pub overlap: Option<Summary>,
}

/// How many seeds' rule gives seed 0's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agreement {
    /// The hypothesis (`RQ1-H1`, …).
    pub id: String,
    /// Seed 0's verdict.
    pub seed0: String,
    /// Seeds (seed 0 among them) whose verdict is the same.
    pub agree: usize,
    /// Seeds judged.
    pub seeds: usize,
}

/// Everything across seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcrossSeeds {
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Per regime and task.
    pub rows: Vec<SeedRow>,
    /// Per regime.
    pub structure: Vec<StructureRow>,
    /// The paper's hypotheses, judged on the intervals over seeds (RQ2: on
    /// the means over seeds of memory and training time; inference is
    /// timed on seed 0 only).
    pub verdicts: Vec<Verdict>,
    /// Per hypothesis, agreement of each seed with seed 0.
    pub agreement: Vec<Agreement>,
}

/// The RQ1 verdicts that depend on which neurons the circuit keeps, decided
/// again on one compared rule's circuits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SensitivityRow {
    /// The rule.
    pub rule: SelectionRule,
    /// RQ1-H1 and RQ1-H3 on its circuits.
    pub verdicts: Vec<Verdict>,
}

/// One kind of unit's time in a run: the units computed now, each timed
/// on its own job (units run `--jobs` at once, so the totals add up to
/// more than the wall time when jobs ran side by side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitTime {
    /// The kind (`train`, `discover`, `planted training`, ...).
    pub kind: String,
    /// Units of the kind computed now.
    pub units: usize,
    /// Their time, added up.
    pub total_s: f64,
    /// Their mean time.
    pub mean_s: f64,
}

impl UnitTime {
    /// The table of `(kind, seconds)` records, a row per kind in the order
    /// each first appears.
    pub fn table<'a>(records: impl IntoIterator<Item = (&'a str, f64)>) -> Vec<UnitTime> {
        let mut rows: Vec<UnitTime> = Vec::new();
        for (kind, s) in records {
            match rows.iter_mut().find(|r| r.kind == kind) {
                Some(r) => (r.units, r.total_s) = (r.units + 1, r.total_s + s),
                None => rows.push(UnitTime { kind: kind.into(), units: 1, total_s: s, mean_s: 0.0 }),
            }
        }
        rows.iter_mut().for_each(|r| r.mean_s = r.total_s / r.units as f64);
        rows
    }
}
