//! Beyond the paper (STUDY §8), for one model and task: attribution patching
//! against exact patching, the faithfulness of the discovered circuit and of
//! EAP's circuits, and edge-level ACDC. Computed once on the discovery's
//! full pair set.

use std::time::Instant;

use modcirc_acdc::{
    edge_acdc, edge_attribution, exact_node_effects, faithfulness, faithfulness_curve, node_attribution, AcdcConfig,
    Circuit, EdgeScores, FaithfulnessCurve, PatchingSweep, TaskImages, DEFAULT_FRACTIONS,
};
use modcirc_bimt::Regime;
use modcirc_dataset::Mnist;
use modcirc_metrics::spearman;
use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::discovery::DiscoverOutput;
use crate::StudyError;

/// Version of the per-model files; part of their cache key.
pub const BEYOND_SCHEMA: &str = "modcirc.beyond/6";

/// ACDC runs on the first this many pairs of the task (one edge test
/// recomputes every pair it moves); its circuit is then judged on all pairs.
pub const ACDC_PAIRS: usize = 100;

/// Edge-level ACDC's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcdcResult {
    /// Its options.
    pub config: AcdcConfig,
    /// The pairs it ran on (the task's first).
    pub pairs: usize,
    /// Its wall time.
    pub seconds: f64,
    /// Edges it kept.
    pub edges: usize,
    /// The circuit's ACDC metric on its pairs (`config.metric`: KL from the
    /// model's output distribution, or the answer metric).
    pub circuit_metric: f64,
    /// Faithfulness on the pairs ACDC ran on.
    pub faithfulness_own_pairs: f64,
    /// Faithfulness on all of the task's pairs.
    pub faithfulness: f64,
    /// Faithfulness of as many top-|EAP| edges (all pairs).
    pub eap_same_size_faithfulness: f64,
    /// The edges it kept, `[layer, output, input]`.
    #[serde(default)]
    pub kept: Vec<[usize; 3]>,
}

/// STUDY §8 on one model and task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeyondResult {
    /// [`BEYOND_SCHEMA`].
    pub schema: String,
    /// The training regime, from the checkpoint's sidecar (`None`: a model
    /// without one, trained elsewhere).
    pub regime: Option<Regime>,
    /// The training seed, likewise.
    pub seed: Option<u64>,
    /// The task's name.
    pub task: String,
    /// The task's pairs.
    pub pairs: usize,
    /// The data directory the pairs came from.
    #[serde(default)]
    pub data_dir: String,
    /// The SHA-256 of each of its files.
    #[serde(default)]
    pub data_checksums: Vec<modcirc_dataset::FileChecksum>,
    /// Per hidden layer: Spearman's ρ between node attribution and exact
    /// patching on the answer metric (`None` where one side is constant).
    pub node_spearman: Vec<Option<f64>>,
    /// Wall time of exact node patching (every hidden neuron).
    pub exact_patching_s: f64,
    /// Wall time of node attribution (one backward pass), on the same pairs.
    pub node_attribution_s: f64,
    /// Wall time of edge attribution (every weight).
    pub edge_attribution_s: f64,
    /// `node_attribution[h][i]`: the attribution estimate of neuron `i` of
    /// hidden layer `h` on the answer metric.
    #[serde(default)]
    pub node_attribution: Vec<Vec<f64>>,
    /// The top-|EAP| circuit of as many edges as the discovered one,
    /// `[layer, output, input]`.
    #[serde(default)]
    pub eap_edges: Vec<[usize; 3]>,
    /// Edges of the discovered circuit (top-K nodes, eps edges).
    pub circuit_edges: usize,
    /// Its faithfulness, removed edges carrying corrupted values.
    pub circuit_faithfulness: f64,
    /// The faithfulness of as many top-|EAP| edges.
    pub eap_same_size_faithfulness: f64,
    /// Faithfulness of the top-|EAP| circuits over their size, with CPR and CMD.
    pub curve: FaithfulnessCurve,
    /// Edge-level ACDC.
    pub acdc: AcdcResult,
    /// The model and pairs it ran on: what `export` checks a model against
    /// and draws the circuits of.
    pub source: BeyondSource,
}

/// The model and pairs a [`BeyondResult`] was computed on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeyondSource {
    /// The checkpoint's path, as the discovery recorded it.
    pub model: String,
    /// The SHA-256 of its bytes.
    pub model_sha256: String,
    /// The hidden layers' activation it was run with.
    pub activation: String,
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// The task.
    pub task: modcirc_dataset::Task,
    /// The split of the pairs.
    pub split: crate::discovery::Split,
    /// Dataset indices of every clean and corrupted image.
    pub pairs: Vec<modcirc_dataset::Pair>,
}

impl BeyondResult {
    /// The regime's label, or `unknown` for a model without a sidecar.
    pub fn regime_label(&self) -> &'static str {
        self.regime.map_or("unknown", Regime::label)
    }

    /// One line of what it found, each metric's direction said.
    pub fn summary(&self) -> String {
        let rho: Vec<String> = self.node_spearman.iter().map(|r| r.map_or("-".into(), |v| format!("{v:.3}"))).collect();
        format!(
            "node attribution vs exact patching rho {} ({:.1} ms vs {:.1} ms); discovered circuit faithfulness on all pairs {:.3} ({} edges), EAP at that size {:.3}; CPR {:.3}, CMD {:.3} (CPR higher, CMD lower is better); ACDC {} edges, faithfulness {:.3} on its {} pairs, {:.3} on all",
            rho.join(" / "),
            self.node_attribution_s * 1e3,
            self.exact_patching_s * 1e3,
            self.circuit_faithfulness,
            self.circuit_edges,
            self.eap_same_size_faithfulness,
            self.curve.cpr,
            self.curve.cmd,
            self.acdc.edges,
            self.acdc.faithfulness_own_pairs,
            self.acdc.pairs,
            self.acdc.faithfulness,
        )
    }
}

/// The analysis of one discovery (`disc`, of `model`, a model of `regime`
/// and `seed` where known), ACDC with `acdc` on the first `acdc_pairs` pairs.
pub fn analyse(
    mnist: &Mnist,
    model: &Mlp,
    (regime, seed): (Option<Regime>, Option<u64>),
    disc: &DiscoverOutput,
    acdc: &AcdcConfig,
    acdc_pairs: usize,
) -> Result<BeyondResult, StudyError> {
    acdc.validate()?;
    if acdc_pairs == 0 {
        return Err(StudyError::Invalid("ACDC needs at least one pair".into()));
    }
    let split = disc.inputs.flags.split.of(mnist);
    let images = TaskImages::from_pairs(split, &disc.pairs);
    let sweep = PatchingSweep::new(model, &images)?;
    let (node_spearman, node_attribution, exact_patching_s, node_attribution_s) = node_estimates(&sweep)?;
    let t = Instant::now();
    let edges = edge_attribution(&sweep)?;
    let edge_attribution_s = t.elapsed().as_secs_f64();

    let circuit = Circuit::new(model, disc.report.selection.nodes.clone(), disc.inputs.flags.config.eps)?;
    let circuit_faithfulness = faithfulness(&sweep, &circuit)?;
    let eap_mask = edges.top_edges(circuit.n_edges());
    let eap_same_size_faithfulness = faithfulness(&sweep, &Circuit::from_edges(model, &eap_mask)?)?;
    let curve = faithfulness_curve(&sweep, &edges, &DEFAULT_FRACTIONS)?;
    let acdc = run_acdc(&sweep, &edges, acdc, acdc_pairs)?;
    crate::error::ensure_finite(&[
        ("circuit faithfulness", circuit_faithfulness),
        ("EAP same-size faithfulness", eap_same_size_faithfulness),
        ("CPR", curve.cpr),
        ("CMD", curve.cmd),
        ("ACDC faithfulness", acdc.faithfulness),
    ])?;
    Ok(BeyondResult {
        schema: BEYOND_SCHEMA.into(),
        regime,
        seed,
        task: disc.inputs.task.name.clone(),
        pairs: images.n,
        data_dir: mnist.dir.display().to_string(),
        data_checksums: mnist.checksums.clone(),
        node_spearman,
        exact_patching_s,
        node_attribution_s,
        edge_attribution_s,
        node_attribution,
        eap_edges: edge_list(model, &eap_mask),
        circuit_edges: circuit.n_edges(),
        circuit_faithfulness,
        eap_same_size_faithfulness,
        curve,
        acdc,
        source: BeyondSource {
            model: disc.inputs.model.clone(),
            model_sha256: disc.inputs.model_sha256.clone(),
            activation: disc.inputs.activation.clone(),
            sizes: disc.inputs.sizes.clone(),
            task: disc.inputs.task.clone(),
            split: disc.inputs.flags.split,
            pairs: disc.pairs.clone(),
        },
    })
}

/// `[layer, output, input]` of every edge in `mask` (as [`Circuit::edge_mask`] lays it out).
pub fn edge_list(model: &Mlp, mask: &[Vec<bool>]) -> Vec<[usize; 3]> {
    let mut out = Vec::new();
    for (l, (layer, m)) in model.layers.iter().zip(mask).enumerate() {
        out.extend(m.iter().enumerate().filter(|(_, k)| **k).map(|(idx, _)| [l, idx / layer.n_in, idx % layer.n_in]));
    }
    out
}

/// What [`node_estimates`] gives: ρ per hidden layer, the attribution
/// estimates, and the wall times of exact patching and of attribution.
type NodeEstimates = (Vec<Option<f64>>, Vec<Vec<f64>>, f64, f64);

/// Node attribution against exact patching: ρ per hidden layer, the
/// estimates, and the wall time of each.
fn node_estimates(sweep: &PatchingSweep<'_>) -> Result<NodeEstimates, StudyError> {
    let t = Instant::now();
    let exact = exact_node_effects(sweep)?;
    let exact_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let estimate = node_attribution(sweep)?;
    let estimate_s = t.elapsed().as_secs_f64();
    let rho = estimate.layers.iter().zip(&exact.layers).map(|(a, b)| spearman(a, b)).collect();
    Ok((rho, estimate.layers, exact_s, estimate_s))
}

/// ACDC on the first `pairs` pairs, judged there and on all pairs.
fn run_acdc(
    sweep: &PatchingSweep<'_>,
    edges: &EdgeScores,
    config: &AcdcConfig,
    pairs: usize,
) -> Result<AcdcResult, StudyError> {
    let model = sweep.model();
    let head: Vec<usize> = (0..sweep.len().min(pairs)).collect();
    let t = Instant::now();
    let own = sweep.subset(&head);
    let found = edge_acdc(&own, config)?;
    let seconds = t.elapsed().as_secs_f64();
    let circuit = Circuit::from_edges(model, &found.mask)?;
    Ok(AcdcResult {
        config: *config,
        pairs: head.len(),
        seconds,
        edges: found.n_edges,
        circuit_metric: found.circuit_metric,
        faithfulness_own_pairs: faithfulness(&own, &circuit)?,
        faithfulness: faithfulness(sweep, &circuit)?,
        eap_same_size_faithfulness: faithfulness(sweep, &edges.top_circuit(model, found.n_edges)?)?,
        kept: edge_list(model, &found.mask),
    })
}
