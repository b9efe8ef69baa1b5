//! Beyond the paper (STUDY §8), for one model and task: attribution patching
//! against exact patching, and the faithfulness of the discovered circuit
//! and of EAP's circuits. Computed once on the discovery's full pair set.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use modcirc_acdc::{
    edge_acdc, edge_attribution, exact_node_effects, faithfulness, faithfulness_curve, node_attribution, AcdcConfig,
    Circuit, EdgeScores, FaithfulnessCurve, PatchingSweep, TaskImages, DEFAULT_FRACTIONS,
};
use modcirc_bimt::{checkpoint, Regime};
use modcirc_dataset::Mnist;
use modcirc_metrics::spearman;
use serde::{Deserialize, Serialize};

use crate::discover::{DiscoverOutput, Split};

/// Version of the cached per-model files; part of their cache key.
pub const BEYOND_SCHEMA: &str = "modcirc.beyond/3";

/// ACDC runs on the first this many pairs of the task (one edge test
/// recomputes every pair it moves); its circuit is then judged on all pairs.
pub const ACDC_PAIRS: usize = 100;

/// Edge-level ACDC (STUDY §8) with its default options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcdcResult {
    pub config: AcdcConfig,
    pub pairs: usize,
    pub seconds: f64,
    pub edges: usize,
    /// KL of the circuit's output distribution from the model's, on its pairs.
    pub kl: f64,
    /// Faithfulness on the pairs ACDC ran on, on all of the task's pairs, and
    /// that of as many top-|EAP| edges (all pairs).
    pub faithfulness_own_pairs: f64,
    pub faithfulness: f64,
    pub eap_same_size_faithfulness: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeyondResult {
    pub schema: String,
    pub regime: Regime,
    pub seed: u64,
    pub task: String,
    pub pairs: usize,
    /// Per hidden layer: Spearman's ρ between node attribution and exact
    /// patching on the answer metric (`None` where one side is constant).
    pub node_spearman: Vec<Option<f64>>,
    /// Wall time of exact node patching (every hidden neuron) and of node
    /// attribution (one backward pass), on the same pairs.
    pub exact_patching_s: f64,
    pub node_attribution_s: f64,
    /// Wall time of edge attribution (every weight).
    pub edge_attribution_s: f64,
    /// The discovered circuit (top-K nodes, eps edges): its edges and
    /// faithfulness with removed edges carrying corrupted values.
    pub circuit_edges: usize,
    pub circuit_faithfulness: f64,
    /// The circuit of as many top-|EAP| edges, and its faithfulness.
    pub eap_same_size_faithfulness: f64,
    pub curve: FaithfulnessCurve,
    pub acdc: AcdcResult,
}

/// Faithfulness of the circuit of the top-|EAP| `edges` edges.
fn eap_at(sweep: &PatchingSweep<'_>, scores: &EdgeScores, edges: usize, total: usize) -> anyhow::Result<f64> {
    let fraction = (edges as f64 / total as f64).max(1.0 / total as f64);
    Ok(if fraction < 1.0 { faithfulness_curve(sweep, scores, &[fraction, 1.0])?.faithfulness[0] } else { 1.0 })
}

/// The analysis of one discovery (`disc`, of the checkpoint at `model_path`).
pub fn analyse(
    mnist: &Mnist,
    model_path: &Path,
    regime: Regime,
    seed: u64,
    disc: &DiscoverOutput,
) -> anyhow::Result<BeyondResult> {
    let ck = checkpoint::load(model_path).with_context(|| format!("--model {}", model_path.display()))?;
    let model = &ck.model;
    let split = match disc.inputs.flags.split {
        Split::Test => &mnist.test,
        Split::Train => &mnist.train,
    };
    let images = TaskImages::from_pairs(split, &disc.pairs);
    let sweep = PatchingSweep::new(model, &images)?;
    let t = Instant::now();
    let exact = exact_node_effects(&sweep)?;
    let exact_patching_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let estimate = node_attribution(&sweep)?;
    let node_attribution_s = t.elapsed().as_secs_f64();
    let node_spearman = estimate.layers.iter().zip(&exact.layers).map(|(a, b)| spearman(a, b)).collect();
    let t = Instant::now();
    let edges = edge_attribution(&sweep)?;
    let edge_attribution_s = t.elapsed().as_secs_f64();

    let circuit = Circuit::new(model, disc.report.selection.nodes.clone(), disc.inputs.flags.eps)?;
    let circuit_faithfulness = faithfulness(&sweep, &circuit)?;
    let total = model.n_weights();
    let eap_same_size_faithfulness = eap_at(&sweep, &edges, circuit.n_edges(), total)?;
    let curve = faithfulness_curve(&sweep, &edges, &DEFAULT_FRACTIONS)?;

    let head: Vec<usize> = (0..images.n.min(ACDC_PAIRS)).collect();
    let config = AcdcConfig::default();
    let t = Instant::now();
    let own = sweep.subset(&head);
    let found = edge_acdc(&own, &config)?;
    let seconds = t.elapsed().as_secs_f64();
    let acdc_circuit = Circuit::from_edges(model, &found.mask)?;
    let acdc = AcdcResult {
        config,
        pairs: head.len(),
        seconds,
        edges: found.n_edges,
        kl: found.circuit_metric,
        faithfulness_own_pairs: faithfulness(&own, &acdc_circuit)?,
        faithfulness: faithfulness(&sweep, &acdc_circuit)?,
        eap_same_size_faithfulness: eap_at(&sweep, &edges, found.n_edges, total)?,
    };
    Ok(BeyondResult {
        schema: BEYOND_SCHEMA.into(),
        regime,
        seed,
        task: disc.inputs.task.name.clone(),
        pairs: images.n,
        node_spearman,
        exact_patching_s,
        node_attribution_s,
        edge_attribution_s,
        circuit_edges: circuit.n_edges(),
        circuit_faithfulness,
        eap_same_size_faithfulness,
        curve,
        acdc,
    })
}
