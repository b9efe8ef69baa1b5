//! What each analysis puts into `results.json` (docs/results-schema.md):
//! the rows of models, discoveries, inference, verdicts and the tables
//! across seeds, below every module that judges them; [`crate::results`]
//! gathers them.

use modcirc_acdc::SelectionRule;
use modcirc_bimt::checkpoint::TrainMeta;
use modcirc_bimt::Regime;
use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::beyond::BeyondResult;

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
    /// The z-score of that Q against degree-preserving rewirings.
    #[serde(default)]
    pub z_eps: Option<Summary>,
    /// The mean pairwise NMI of its Louvain runs' partitions.
    #[serde(default)]
    pub nmi_eps: Option<Summary>,
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
