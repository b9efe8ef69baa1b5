//! Several models on one task, side by side: each model's accuracy, its
//! smallest faithful circuit (nodes and top-|EAP| edges), the circuit at the
//! study's K, the faithfulness curve's CPR and CMD, edge-level ACDC and the
//! modularity of its weights; and the same summarised over the checkpoints
//! of each condition (seeds), where a condition has several.

use std::path::Path;
use std::time::Instant;

use modcirc_acdc::{AcdcConfig, NodeCurve, SmallestFaithful};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_dataset::{Mnist, Task};
use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::beyond::analyse;
use crate::discovery::{discover_checkpoint, DiscoverySettings};
use crate::structure::{graph_modularity, weight_graph};
use crate::StudyError;

/// Version of `compare.json`.
pub const COMPARE_SCHEMA: &str = "modcirc.compare/1";

/// What every model of a comparison is judged with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSettings {
    /// The discovery (its `target_faithfulness` must be set).
    pub discovery: DiscoverySettings,
    /// Edge-level ACDC's options.
    pub acdc: AcdcConfig,
    /// The pairs ACDC runs on (the task's first).
    pub acdc_pairs: usize,
    /// Seeds Louvain.
    pub modularity_seed: u64,
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
    /// The discovered circuit (the settings' rule, e.g. K = 15): its
    /// logit difference (bootstrap mean and interval) under the settings' ablation.
    pub logit_difference: Summary,
    /// Its sparsity.
    pub sparsity: Summary,
    /// Its faithfulness, removed edges carrying corrupted values.
    pub faithfulness: Option<Summary>,
    /// The smallest faithful circuits.
    pub smallest: SmallestFaithful,
    /// Faithfulness by K on all pairs.
    pub node_curve: Option<NodeCurve>,
    /// CPR of the top-|EAP| faithfulness curve (higher is better).
    pub cpr: f64,
    /// CMD of it (lower is better).
    pub cmd: f64,
    /// Edges edge-level ACDC kept.
    pub acdc_edges: usize,
    /// Their faithfulness on all pairs.
    pub acdc_faithfulness: f64,
    /// Newman's Q of the eps-edge weight graph (STUDY §9).
    pub modularity_q: f64,
    /// Wall time of judging it.
    pub seconds: f64,
}

/// One condition over its checkpoints: mean and 95% t interval (a point
/// with one checkpoint) of each number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionRow {
    /// The condition.
    pub condition: String,
    /// Its checkpoints.
    pub models: usize,
    /// Test accuracy.
    pub test_accuracy: Summary,
    /// The smallest K reaching the target, over the checkpoints where one does.
    pub smallest_k: Option<Summary>,
    /// The fewest top-|EAP| edges reaching it, likewise.
    pub smallest_eap_edges: Option<Summary>,
    /// Faithfulness of the discovered circuit.
    pub faithfulness: Option<Summary>,
    /// CPR.
    pub cpr: Summary,
    /// CMD.
    pub cmd: Summary,
    /// ACDC's edges.
    pub acdc_edges: Summary,
    /// ACDC's faithfulness.
    pub acdc_faithfulness: Summary,
    /// Q.
    pub modularity_q: Summary,
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
/// model's place and its resamples done), and each condition summarised:
/// `compare.json`, for the command line and Python alike. One checkpoint
/// given twice (the same bytes) would count twice in its condition and is
/// refused.
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
    let mut compared = Vec::with_capacity(models.len());
    for (i, m) in models.iter().enumerate() {
        let mut on = |done: usize| progress(i, done);
        let one = compare_model(mnist, (m.checkpoint, m.path, m.sha256), m.condition, task, &settings, &mut on)
            .map_err(|e| StudyError::Invalid(format!("comparing {} on {task}: {e}", m.path.display())))?;
        compared.push(one);
    }
    Ok(Comparison {
        schema: COMPARE_SCHEMA.into(),
        task: task.clone(),
        settings,
        data_dir: mnist.dir.display().to_string(),
        conditions: conditions(&compared),
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
    // STUDY §8 alone: the comparison's table has EAP's CPR and CMD, not §12's methods.
    let beyond = crate::beyond::BeyondSettings {
        acdc: settings.acdc,
        acdc_pairs: settings.acdc_pairs,
        methods: Vec::new(),
        stability: None,
    };
    let b = analyse(mnist, &ck.model, (None, None), &disc, &beyond)?;
    let q =
        graph_modularity(&weight_graph(&ck.model, Some(settings.discovery.config.eps))?, settings.modularity_seed)?.q;
    let r = disc.report;
    let smallest = r.smallest.ok_or_else(|| StudyError::Invalid("the discovery found no smallest circuit".into()))?;
    let labels = &mnist.test.labels;
    Ok(ComparedModel {
        condition: condition.to_string(),
        model: path.display().to_string(),
        model_sha256: sha256.to_string(),
        sizes: ck.model.sizes(),
        activation: ck.model.activation.to_string(),
        test_accuracy: ck.model.accuracy(&mnist.test.images, labels),
        logit_difference: r.summary.logit_difference,
        sparsity: r.summary.sparsity,
        faithfulness: r.summary.faithfulness,
        smallest,
        node_curve: r.node_curve,
        cpr: b.curve.cpr,
        cmd: b.curve.cmd,
        acdc_edges: b.acdc.edges,
        acdc_faithfulness: b.acdc.faithfulness,
        modularity_q: q,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Mean and t interval over `v` (a point interval for one value).
fn over(v: &[f64]) -> Option<Summary> {
    Summary::t_interval(v).or_else(|| Summary::of(v))
}

/// The conditions of `models`, in the order first given.
pub fn conditions(models: &[ComparedModel]) -> Vec<ConditionRow> {
    let mut names: Vec<&str> = Vec::new();
    for m in models {
        if !names.contains(&m.condition.as_str()) {
            names.push(&m.condition);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let ms: Vec<&ComparedModel> = models.iter().filter(|m| m.condition == name).collect();
            let of =
                |f: &dyn Fn(&ComparedModel) -> Option<f64>| over(&ms.iter().filter_map(|m| f(m)).collect::<Vec<_>>());
            Some(ConditionRow {
                condition: name.to_string(),
                models: ms.len(),
                test_accuracy: of(&|m| Some(m.test_accuracy))?,
                smallest_k: of(&|m| m.smallest.k.map(|k| k as f64)),
                smallest_eap_edges: of(&|m| m.smallest.eap_edges.map(|e| e as f64)),
                faithfulness: of(&|m| m.faithfulness.map(|f| f.mean)),
                cpr: of(&|m| Some(m.cpr))?,
                cmd: of(&|m| Some(m.cmd))?,
                acdc_edges: of(&|m| Some(m.acdc_edges as f64))?,
                acdc_faithfulness: of(&|m| Some(m.acdc_faithfulness))?,
                modularity_q: of(&|m| Some(m.modularity_q))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_order_and_summarise_their_seeds() {
        let s = |v: f64| Summary { mean: v, lo: v, hi: v, n: 1 };
        let model = |condition: &str, k: Option<usize>, q: f64| ComparedModel {
            condition: condition.into(),
            model: "m".into(),
            model_sha256: "0".into(),
            sizes: vec![4, 3, 2],
            activation: "relu".into(),
            test_accuracy: 0.9,
            logit_difference: s(1.0),
            sparsity: s(0.9),
            faithfulness: Some(s(0.5)),
            smallest: SmallestFaithful {
                target: 0.8,
                growth: String::new(),
                k,
                kept: vec![],
                edges: 0,
                sparsity: None,
                faithfulness: None,
                faithfulness_resampled: None,
                k_resampled: None,
                resamples_reaching: (0, 0),
                edge_growth: String::new(),
                eap_edges: None,
                eap_faithfulness: None,
                per_layer: None,
            },
            node_curve: None,
            cpr: 0.5,
            cmd: 0.5,
            acdc_edges: 10,
            acdc_faithfulness: 0.7,
            modularity_q: q,
            seconds: 0.0,
        };
        let ms = [model("l1", Some(50), 0.4), model("plain", Some(64), 0.2), model("l1", None, 0.6)];
        let rows = conditions(&ms);
        assert_eq!(rows.iter().map(|r| r.condition.as_str()).collect::<Vec<_>>(), ["l1", "plain"]);
        assert_eq!(rows[0].models, 2);
        assert!((rows[0].modularity_q.mean - 0.5).abs() < 1e-12);
        assert!(rows[0].modularity_q.hi > rows[0].modularity_q.lo, "two seeds give an interval");
        // The checkpoint with no K reaching the target is left out of the K summary.
        assert_eq!(rows[0].smallest_k.unwrap().mean, 50.0);
        assert_eq!(rows[1].smallest_k.unwrap().mean, 64.0);
    }
}
