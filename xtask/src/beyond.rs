//! Beyond the paper (STUDY §8), for one model and task: attribution patching
//! against exact patching, and the faithfulness of the discovered circuit
//! and of EAP's circuits. Computed once on the discovery's full pair set.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{
    edge_acdc, edge_attribution, exact_node_effects, faithfulness, faithfulness_curve, node_attribution, AcdcConfig,
    AcdcMetric, Circuit, FaithfulnessCurve, PatchingSweep, TaskImages, DEFAULT_FRACTIONS, DEFAULT_TAU,
};
use modcirc_bimt::Regime;
use modcirc_mlp::Mlp;
use modcirc_dataset::Mnist;
use modcirc_metrics::spearman;
use serde::{Deserialize, Serialize};

use crate::common::{write_json, DataArgs, ModelTask};
use crate::discover::{discover_model, DiscoverFlags, DiscoverOutput, Split};

/// Version of the cached per-model files; part of their cache key.
pub const BEYOND_SCHEMA: &str = "modcirc.beyond/4";

/// ACDC runs on the first this many pairs of the task (one edge test
/// recomputes every pair it moves); its circuit is then judged on all pairs.
pub const ACDC_PAIRS: usize = 100;

#[derive(Args, Debug)]
pub struct BeyondArgs {
    #[command(flatten)]
    pub target: ModelTask,
    /// The node discovery whose circuit is judged (its flags, as `discover` takes them).
    #[command(flatten)]
    pub flags: DiscoverFlags,
    #[command(flatten)]
    pub acdc: AcdcArgs,
    /// Output JSON; default artifacts/beyond/<model>-<task>.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long)]
    pub quiet: bool,
}

/// Edge-level ACDC's options.
#[derive(Args, Debug, Clone)]
pub struct AcdcArgs {
    /// ACDC removes an edge when the metric gets worse by less than this.
    #[arg(long, default_value_t = DEFAULT_TAU)]
    pub tau: f64,
    /// kl (of the circuit's output distribution from the model's) or answer.
    #[arg(long, default_value = "kl")]
    pub acdc_metric: AcdcMetric,
    /// Removed edges carry zero instead of the corrupted value.
    #[arg(long)]
    pub acdc_zero: bool,
    /// Pairs ACDC runs on (the first of the task's).
    #[arg(long, default_value_t = ACDC_PAIRS)]
    pub acdc_pairs: usize,
}

impl AcdcArgs {
    fn config(&self) -> anyhow::Result<AcdcConfig> {
        let config = AcdcConfig { tau: self.tau, metric: self.acdc_metric, zero_ablation: self.acdc_zero };
        config.validate().context("--tau")?;
        anyhow::ensure!(self.acdc_pairs > 0, "--acdc-pairs must be at least 1");
        Ok(config)
    }
}

impl Default for AcdcArgs {
    fn default() -> Self {
        AcdcArgs { tau: DEFAULT_TAU, acdc_metric: AcdcMetric::Kl, acdc_zero: false, acdc_pairs: ACDC_PAIRS }
    }
}

/// `cargo xtask beyond`: node discovery, then STUDY §8 on its circuit and task.
pub fn run(args: BeyondArgs) -> anyhow::Result<()> {
    args.acdc.config()?;
    let mnist = args.data.load()?;
    let model = &args.target.model;
    let task = args.target.parse_task()?;
    let ck = args.target.load()?;
    let disc = discover_model(&mnist, &ck, model, &task, &args.flags, args.quiet)?;
    let (regime, seed) = match &ck.meta {
        Some(m) => (Some(m.config.regime), Some(m.config.seed)),
        None => (None, None),
    };
    let b = analyse(&mnist, &ck.model, regime, seed, &disc, &args.acdc)?;
    let path = args.out.clone().unwrap_or_else(|| args.target.default_out("beyond", &task));
    write_json(&path, &b)?;
    let rho: Vec<String> = b.node_spearman.iter().map(|r| r.map_or("-".into(), |v| format!("{v:.3}"))).collect();
    println!(
        "{} on {task}: node attribution vs exact patching rho {} ({:.1} ms vs {:.1} ms); discovered circuit faithfulness {:.3} ({} edges), EAP at that size {:.3}; CPR {:.3}, CMD {:.3}; ACDC {} edges, faithfulness {:.3} on its {} pairs, {:.3} on all -> {}",
        model.display(),
        rho.join(" / "),
        b.node_attribution_s * 1e3,
        b.exact_patching_s * 1e3,
        b.circuit_faithfulness,
        b.circuit_edges,
        b.eap_same_size_faithfulness,
        b.curve.cpr,
        b.curve.cmd,
        b.acdc.edges,
        b.acdc.faithfulness_own_pairs,
        b.acdc.pairs,
        b.acdc.faithfulness,
        path.display()
    );
    Ok(())
}

/// Edge-level ACDC (STUDY §8) with its default options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcdcResult {
    pub config: AcdcConfig,
    pub pairs: usize,
    pub seconds: f64,
    pub edges: usize,
    /// The circuit's ACDC metric on its pairs (`config.metric`: KL from the
    /// model's output distribution, or the answer metric).
    pub circuit_metric: f64,
    /// Faithfulness on the pairs ACDC ran on, on all of the task's pairs, and
    /// that of as many top-|EAP| edges (all pairs).
    pub faithfulness_own_pairs: f64,
    pub faithfulness: f64,
    pub eap_same_size_faithfulness: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeyondResult {
    pub schema: String,
    /// The training regime and seed, from the checkpoint's sidecar (`None`:
    /// a model without one, trained elsewhere).
    pub regime: Option<Regime>,
    pub seed: Option<u64>,
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

impl BeyondResult {
    /// The regime's label, or `unknown` for a model without a sidecar.
    pub fn regime_label(&self) -> &'static str {
        self.regime.map_or("unknown", Regime::label)
    }
}

/// The analysis of one discovery (`disc`, of `model`).
pub fn analyse(
    mnist: &Mnist,
    model: &Mlp,
    regime: Option<Regime>,
    seed: Option<u64>,
    disc: &DiscoverOutput,
    acdc_args: &AcdcArgs,
) -> anyhow::Result<BeyondResult> {
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
    let eap_same_size_faithfulness = faithfulness(&sweep, &edges.top_circuit(model, circuit.n_edges())?)?;
    let curve = faithfulness_curve(&sweep, &edges, &DEFAULT_FRACTIONS)?;

    let config = acdc_args.config()?;
    let head: Vec<usize> = (0..images.n.min(acdc_args.acdc_pairs)).collect();
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
        circuit_metric: found.circuit_metric,
        faithfulness_own_pairs: faithfulness(&own, &acdc_circuit)?,
        faithfulness: faithfulness(&sweep, &acdc_circuit)?,
        eap_same_size_faithfulness: faithfulness(&sweep, &edges.top_circuit(model, found.n_edges)?)?,
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
