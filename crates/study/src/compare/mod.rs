//! Several models on one task, side by side, and the question they answer
//! together ("does this training make circuits smaller or more
//! faithful?"): each model judged as the study judges one (its circuit's
//! faithfulness on all pairs first, the controls of STUDY §10, every
//! method of STUDY §8 and §12 with its stability, the smallest circuits
//! uniform and per layer, its edges by two rules, Q), then each condition
//! over its checkpoints (seeds), tested against the others
//! ([`conditions`]).

use std::path::Path;
use std::time::Instant;

use modcirc_acdc::{edge_counts, NodeCurve, Pool, SmallestFaithful, TaskImages, ACTIVATION_EDGE_RULE};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_dataset::{Mnist, Task};
use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::beyond::{analyse, BeyondSettings};
use crate::controls::{controls, ControlSettings};
use crate::discovery::{discover_checkpoint, DiscoverySettings};
use crate::structure::{graph_modularity, weight_graph};
use crate::StudyError;

pub mod conditions;

pub use conditions::{ConditionRow, ConditionTest, MetricAnswer};

/// Version of `compare.json`.
pub const COMPARE_SCHEMA: &str = "modcirc.compare/2";

/// What every model of a comparison is judged with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSettings {
    /// The discovery (its `target_faithfulness` must be set).
    pub discovery: DiscoverySettings,
    /// ACDC and the methods of STUDY §12 with their stability.
    pub beyond: BeyondSettings,
    /// STUDY §10's controls; `None`: not run.
    pub controls: Option<ControlSettings>,
    /// Seeds Louvain.
    pub modularity_seed: u64,
    /// The condition every other is tested against; `None`: every pair of
    /// conditions.
    pub baseline: Option<String>,
}

/// The model's weights counted by two edge rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeCounts {
    /// Every weight.
    pub weights: usize,
    /// Those the eps rule keeps (STUDY §5, the circuits' rule).
    pub eps_edges: usize,
    /// `eps_edges / weights`.
    pub eps_share: f64,
    /// Those [`ACTIVATION_EDGE_RULE`] keeps.
    pub activation_edges: usize,
    /// `activation_edges / weights`.
    pub activation_share: f64,
    /// [`ACTIVATION_EDGE_RULE`].
    pub activation_rule: String,
}

/// STUDY §10 on the model's circuit, in the numbers a comparison needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareControls {
    /// Random circuits of its size (live neurons) drawn.
    pub random: usize,
    /// Their mean faithfulness (`None` where faithfulness is undefined, as
    /// for the next two).
    pub random_faithfulness: Option<f64>,
    /// The circuit's faithfulness minus theirs.
    pub margin: Option<f64>,
    /// The one-sided p of "no better than a random circuit of its size".
    pub p_value: Option<f64>,
    /// Whether `p_value` is its floor 1/(R+1): no random circuit reached it.
    pub p_at_floor: bool,
    /// How many disjoint alternatives reach the faithful threshold, of how many formed.
    pub faithful_alternatives: (usize, usize),
    /// The any-digit circuit's faithfulness.
    pub any_digit_faithfulness: Option<f64>,
}

/// One edge method on the model (STUDY §8, §12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareMethod {
    /// Its name.
    pub method: String,
    /// CPR of its faithfulness curve (higher is better).
    pub cpr: f64,
    /// CMD (lower is better).
    pub cmd: f64,
    /// Faithfulness of its top edges at the node circuit's size, on all pairs.
    pub same_size_faithfulness: f64,
    /// Mean pairwise Jaccard overlap of its circuit over resamples, where measured.
    pub stability: Option<f64>,
    /// Wall time of its scores.
    pub seconds: f64,
}

/// One model, judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparedModel {
    /// Its condition (checkpoints sharing one are seeds of it).
    pub condition: String,
    /// Its path, as given.
    pub model: String,
    /// The SHA-256 of its bytes.
    pub model_sha256: String,
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// Its hidden activation.
    pub activation: String,
    /// Its accuracy on the 10 000 test images.
    pub test_accuracy: f64,
    /// The headline: the discovered circuit's faithfulness on all pairs,
    /// removed edges carrying corrupted values (STUDY §8).
    pub faithfulness: Option<f64>,
    /// The same over the bootstrap resamples (the circuit chosen again on
    /// each): mean and 95% interval.
    pub faithfulness_resampled: Option<Summary>,
    /// Its accuracy on all pairs' images, under the settings' ablation.
    pub circuit_accuracy: f64,
    /// Its logit difference over the resamples, under the settings' ablation.
    pub logit_difference: Summary,
    /// Its edges.
    pub circuit_edges: usize,
    /// The model's weights by the eps rule and the activation-aware one.
    pub edges: EdgeCounts,
    /// The smallest faithful circuits (uniform K, per layer, top-|EAP| edges).
    pub smallest: SmallestFaithful,
    /// Faithfulness by K on all pairs.
    pub node_curve: Option<NodeCurve>,
    /// STUDY §10, where run.
    pub controls: Option<CompareControls>,
    /// EAP, then each method of the settings.
    pub methods: Vec<CompareMethod>,
    /// Edges edge-level ACDC kept.
    pub acdc_edges: usize,
    /// Their faithfulness on all pairs.
    pub acdc_faithfulness: f64,
    /// Newman's Q of the eps-edge weight graph (STUDY §9).
    pub modularity_q: f64,
    /// Wall time of judging it.
    pub seconds: f64,
}

/// A comparison: `compare.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// [`COMPARE_SCHEMA`].
    pub schema: String,
    /// The task.
    pub task: Task,
    /// The settings.
    pub settings: CompareSettings,
    /// The data directory and its files.
    pub data_dir: String,
    /// Every model.
    pub models: Vec<ComparedModel>,
    /// Every condition, in the order first given.
    pub conditions: Vec<ConditionRow>,
    /// Between conditions: each metric's exact permutation tests, Holm-corrected.
    pub tests: Vec<ConditionTest>,
    /// One line per metric: what the tests say.
    pub answers: Vec<MetricAnswer>,
    /// What could mislead a reader of the numbers (e.g. edge rules that
    /// keep very different shares of the models' weights).
    pub warnings: Vec<String>,
}

/// A model to compare, as a front end read it.
#[derive(Debug, Clone, Copy)]
pub struct CompareInput<'a> {
    /// Its condition (models sharing one are its seeds).
    pub condition: &'a str,
    /// The checkpoint.
    pub checkpoint: &'a Checkpoint,
    /// Where it was read from, as given.
    pub path: &'a Path,
    /// SHA-256 of its bytes.
    pub sha256: &'a str,
}

/// Every model judged on `task` under `settings` (`progress` gets the
/// model's place and its resamples done), each condition summarised and
/// tested: `compare.json`, for the command line and Python alike. One
/// checkpoint given twice (the same bytes) would count twice in its
/// condition and is refused; so is a baseline no model has.
pub fn comparison(
    mnist: &Mnist,
    models: &[CompareInput<'_>],
    task: &Task,
    settings: CompareSettings,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Comparison, StudyError> {
    for (i, m) in models.iter().enumerate() {
        if let Some(first) = models[..i].iter().find(|f| f.sha256 == m.sha256) {
            return Err(StudyError::Invalid(format!(
                "model {} is the same checkpoint as {} (given twice, it would count twice): give each once",
                m.path.display(),
                first.path.display()
            )));
        }
    }
    if let Some(b) = settings.baseline.as_deref().filter(|b| !models.iter().any(|m| m.condition == *b)) {
        let names: Vec<&str> = models.iter().map(|m| m.condition).collect();
        return Err(StudyError::Invalid(format!(
            "baseline {b:?} is no model's condition (the conditions: {})",
            names.join(", ")
        )));
    }
    let mut compared = Vec::with_capacity(models.len());
    for (i, m) in models.iter().enumerate() {
        let mut on = |done: usize| progress(i, done);
        let one = compare_model(mnist, (m.checkpoint, m.path, m.sha256), m.condition, task, &settings, &mut on)
            .map_err(|e| StudyError::Invalid(format!("comparing {} on {task}: {e}", m.path.display())))?;
        compared.push(one);
    }
    let rows = conditions::conditions(&compared);
    let tests = conditions::tests(&compared, settings.baseline.as_deref());
    Ok(Comparison {
        schema: COMPARE_SCHEMA.into(),
        task: task.clone(),
        answers: conditions::answers(&compared, &tests, settings.baseline.as_deref()),
        warnings: conditions::warnings(&compared),
        settings,
        data_dir: mnist.dir.display().to_string(),
        conditions: rows,
        tests,
        models: compared,
    })
}

/// Judges one model: `ck`, read from `path` (whose bytes hash to `sha256`),
/// under `condition`.
pub fn compare_model(
    mnist: &Mnist,
    (ck, path, sha256): (&Checkpoint, &Path, &str),
    condition: &str,
    task: &Task,
    settings: &CompareSettings,
    progress: &mut dyn FnMut(usize),
) -> Result<ComparedModel, StudyError> {
    let t = Instant::now();
    if settings.discovery.config.target_faithfulness.is_none() {
        return Err(StudyError::Invalid("a comparison needs a target faithfulness".into()));
    }
    let disc = discover_checkpoint(mnist, ck, path, sha256, task, &settings.discovery, progress)?;
    let b = analyse(mnist, &ck.model, (None, None), &disc, &settings.beyond)?;
    let controls = match &settings.controls {
        Some(c) => Some(compare_controls(&controls(mnist, &ck.model, (None, None), &disc, c)?)),
        None => None,
    };
    let eps = settings.discovery.config.eps;
    let q = graph_modularity(&weight_graph(&ck.model, Some(eps))?, settings.modularity_seed)?.q;
    let images = TaskImages::from_pairs(settings.discovery.split.of(mnist), &disc.pairs);
    let both: Vec<f32> = images.clean.iter().chain(&images.corrupted).copied().collect();
    let counts = edge_counts(&ck.model, &both, 2 * images.n, eps);
    let weights = ck.model.n_weights();
    let (eps_edges, activation_edges) = counts.iter().fold((0, 0), |(a, b), c| (a + c.0, b + c.1));
    let r = disc.report;
    let smallest = r.smallest.ok_or_else(|| StudyError::Invalid("the discovery found no smallest circuit".into()))?;
    let methods = b
        .methods
        .iter()
        .map(|m| CompareMethod {
            method: m.method.clone(),
            cpr: m.curve.cpr,
            cmd: m.curve.cmd,
            same_size_faithfulness: m.same_size_faithfulness,
            stability: m.stability.as_ref().map(|s| s.mean),
            seconds: m.seconds,
        })
        .collect();
    Ok(ComparedModel {
        condition: condition.to_string(),
        model: path.display().to_string(),
        model_sha256: sha256.to_string(),
        sizes: ck.model.sizes(),
        activation: ck.model.activation.to_string(),
        test_accuracy: ck.model.accuracy(&mnist.test.images, &mnist.test.labels),
        faithfulness: r.full_faithfulness,
        faithfulness_resampled: r.summary.faithfulness,
        circuit_accuracy: r.full.accuracy,
        logit_difference: r.summary.logit_difference,
        circuit_edges: r.full_n_edges,
        edges: EdgeCounts {
            weights,
            eps_edges,
            eps_share: eps_edges as f64 / weights as f64,
            activation_edges,
            activation_share: activation_edges as f64 / weights as f64,
            activation_rule: ACTIVATION_EDGE_RULE.into(),
        },
        smallest,
        node_curve: r.node_curve,
        controls,
        methods,
        acdc_edges: b.acdc.edges,
        acdc_faithfulness: b.acdc.faithfulness,
        modularity_q: q,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// The numbers of STUDY §10 a comparison reports.
fn compare_controls(c: &crate::controls::ControlsResult) -> CompareControls {
    let live = c.against(Pool::Live).and_then(|r| r.faithfulness);
    CompareControls {
        random: c.settings.random,
        random_faithfulness: live.map(|a| a.random.mean),
        margin: live.map(|a| a.circuit - a.random.mean),
        p_value: live.map(|a| a.p_value),
        p_at_floor: live.is_some_and(|a| a.at_floor()),
        faithful_alternatives: (c.faithful_alternatives, c.alternatives.len()),
        any_digit_faithfulness: c.any_digit.circuit.faithfulness,
    }
}
