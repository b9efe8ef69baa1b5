//! Beyond the paper (STUDY §8 and §12), for one model and task: attribution
//! patching against exact patching, the faithfulness of the discovered
//! circuit and of EAP's circuits, edge-level ACDC, and the methods the
//! benchmarks rank best (EAP-IG on both paths, learned edge masks), each
//! judged by the same faithfulness curve as EAP. Computed once on the
//! discovery's full pair set.

use std::time::Instant;

use modcirc_acdc::{
    edge_acdc, edge_attribution, exact_node_effects, faithfulness, faithfulness_curve, node_attribution, AcdcConfig,
    Circuit, EdgeScores, FaithfulnessCurve, MaskConfig, Method, PatchingSweep, TaskImages, DEFAULT_FRACTIONS,
    DEFAULT_MASK_LAMBDAS, DEFAULT_MASK_PAIRS,
};
use modcirc_bimt::Regime;
use modcirc_dataset::Mnist;
use modcirc_metrics::spearman;
use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::discovery::DiscoverOutput;
use crate::stability::StabilitySettings;
use crate::StudyError;

/// Version of the per-model files; part of their cache key.
pub const BEYOND_SCHEMA: &str = "modcirc.beyond/9";

/// ACDC runs on the first this many pairs of the task (one edge test
/// recomputes every pair it moves); its circuit is then judged on all pairs.
pub const ACDC_PAIRS: usize = 100;

/// Learned masks train on the first this many pairs of the task (each
/// Adam step is a forward and a backward pass over them); their circuits
/// are then judged on all pairs.
pub const MASK_PAIRS: usize = DEFAULT_MASK_PAIRS;

pub use crate::judge::{EdgeMethod, MaskCircuit};

/// What STUDY §8 and §12 run with on one model and task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeyondSettings {
    /// Edge-level ACDC's options.
    pub acdc: AcdcConfig,
    /// The pairs ACDC runs on (the task's first).
    pub acdc_pairs: usize,
    /// The edge methods of STUDY §12 judged beside EAP (which always runs),
    /// with their options: by default EAP-IG on both paths and learned
    /// edge masks.
    pub methods: Vec<Method>,
    /// The resamples each method's stability is measured on (STUDY §12);
    /// `None`: not measured.
    #[serde(default)]
    pub stability: Option<StabilitySettings>,
}

impl Default for BeyondSettings {
    fn default() -> Self {
        BeyondSettings {
            acdc: AcdcConfig::default(),
            acdc_pairs: ACDC_PAIRS,
            methods: vec![
                "eap-ig".parse().expect("a method's name"),
                "eap-ig-activations".parse().expect("a method's name"),
                Method::Mask { config: MaskConfig::default(), pairs: MASK_PAIRS },
                "mask-warm".parse().expect("a method's name"),
                "ensemble".parse().expect("a method's name"),
            ],
            stability: Some(StabilitySettings::default()),
        }
    }
}

/// The learned masks' sweep at `profile`'s size: the default, but the
/// smoke profile's takes 3 penalties of 40 steps (a smoke run checks the
/// code, not the numbers).
pub fn profile_mask(profile: crate::profile::Profile) -> MaskConfig {
    match profile {
        crate::profile::Profile::Smoke => MaskConfig {
            lambdas: vec![DEFAULT_MASK_LAMBDAS[1], DEFAULT_MASK_LAMBDAS[3], DEFAULT_MASK_LAMBDAS[5]],
            steps: 40,
            ..MaskConfig::default()
        },
        _ => MaskConfig::default(),
    }
}

/// `m` with the smoke profile's masks ([`profile_mask`], on 50 pairs),
/// an ensemble's members too.
fn smoke_masks(m: Method, profile: crate::profile::Profile) -> Method {
    match m {
        Method::Mask { .. } => Method::Mask { config: profile_mask(profile), pairs: 50 },
        Method::MaskWarm { steps, .. } => Method::MaskWarm { config: profile_mask(profile), pairs: 50, steps },
        Method::Ensemble { members } => {
            Method::Ensemble { members: members.into_iter().map(|m| smoke_masks(m, profile)).collect() }
        }
        m => m,
    }
}

impl BeyondSettings {
    /// The study's settings at `profile`'s size: the defaults, but the smoke
    /// profile's ACDC runs on 25 pairs, its masks ([`profile_mask`]) on 50,
    /// and its stability on 3 and 2 resamples.
    pub fn of(profile: crate::profile::Profile) -> BeyondSettings {
        let mut s = BeyondSettings::default();
        if profile == crate::profile::Profile::Smoke {
            s.acdc_pairs = 25;
            s.methods = s.methods.into_iter().map(|m| smoke_masks(m, profile)).collect();
            s.stability = Some(StabilitySettings { resamples: 3, trained_resamples: 2 });
        }
        s
    }

    /// Refuses options out of range, naming them: a method that does not
    /// rank edges, or twice.
    pub fn check(&self) -> Result<(), StudyError> {
        self.acdc.validate()?;
        self.stability.as_ref().map_or(Ok(()), StabilitySettings::check)?;
        if self.acdc_pairs == 0 {
            return Err(StudyError::Invalid("ACDC needs at least one pair".into()));
        }
        for (i, m) in self.methods.iter().enumerate() {
            m.validate()?;
            if matches!(m, Method::Eap | Method::Acdc { .. }) || !m.ranks_edges() {
                return Err(StudyError::Invalid(format!(
                    "{m} is not one of STUDY §12's edge methods (EAP and ACDC always run)"
                )));
            }
            if self.methods[..i].iter().any(|o| o.name() == m.name()) {
                return Err(StudyError::Invalid(format!("{m} is named twice")));
            }
        }
        Ok(())
    }
}

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
    /// Every edge method that ran, EAP first, judged alike.
    #[serde(default)]
    pub methods: Vec<EdgeMethod>,
    /// What it ran with.
    #[serde(default)]
    pub settings: Option<BeyondSettings>,
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

    /// One line per STUDY §12 method beside EAP: its CPR, CMD and time.
    pub fn methods_summary(&self) -> Vec<String> {
        self.methods
            .iter()
            .map(|m| {
                format!(
                    "{}: CPR {:.3}, CMD {:.3}, same-size faithfulness {:.3}, {:.2} s",
                    m.method, m.curve.cpr, m.curve.cmd, m.same_size_faithfulness, m.seconds
                )
            })
            .collect()
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
/// and `seed` where known), with `settings`.
pub fn analyse(
    mnist: &Mnist,
    model: &Mlp,
    (regime, seed): (Option<Regime>, Option<u64>),
    disc: &DiscoverOutput,
    settings: &BeyondSettings,
) -> Result<BeyondResult, StudyError> {
    settings.check()?;
    let (acdc, acdc_pairs) = (&settings.acdc, settings.acdc_pairs);
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
    let exact = sweep.scores();
    let eap_nodes = modcirc_acdc::edge_node_sums(model, &edges);
    let mut methods = vec![EdgeMethod {
        method: Method::Eap.name().into(),
        seconds: edge_attribution_s,
        pairs: images.n,
        curve: curve.clone(),
        same_size_edges: edge_list(model, &eap_mask),
        same_size_faithfulness: eap_same_size_faithfulness,
        mask_points: Vec::new(),
        agreement: Some(crate::judge::agreement(&eap_nodes, &exact, crate::judge::agreement_k(&exact))),
        stability: None,
    }];
    methods.extend(settings_methods(&sweep, settings, circuit.n_edges(), Some(&exact))?);
    with_stability(&sweep, disc, settings, circuit.n_edges(), &mut methods)?;
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
        methods,
        settings: Some(settings.clone()),
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

/// STUDY §12's edge methods that `settings` runs, each judged like EAP on
/// all of `sweep`'s pairs ([`crate::judge::judge_faithfulness`]);
/// `same_size` edges for the same-size comparison; against `exact`
/// patching's effects where given.
pub fn settings_methods(
    sweep: &PatchingSweep<'_>,
    settings: &BeyondSettings,
    same_size: usize,
    exact: Option<&modcirc_acdc::NeuronScores>,
) -> Result<Vec<EdgeMethod>, StudyError> {
    modcirc_acdc::score_methods(&settings.methods, sweep)?
        .iter()
        .map(|s| crate::judge::judge_faithfulness(sweep, s, same_size, exact))
        .collect()
}

/// `methods` (EAP, then `settings`') with their stability (STUDY §12) at
/// `size` edges, on `disc`'s first bootstrap resamples, where `settings`
/// measure it.
fn with_stability(
    sweep: &PatchingSweep<'_>,
    disc: &DiscoverOutput,
    settings: &BeyondSettings,
    size: usize,
    methods: &mut [EdgeMethod],
) -> Result<(), StudyError> {
    let Some(stability) = &settings.stability else { return Ok(()) };
    let config = &disc.inputs.flags.config;
    let bootstrap = modcirc_dataset::Bootstrap::new(sweep.len(), config.sample, config.seed)?;
    let all: Vec<Method> = std::iter::once(Method::Eap).chain(settings.methods.iter().cloned()).collect();
    let stable = crate::stability::stabilities(sweep, &all, size, &bootstrap, stability)?;
    for (m, st) in methods.iter_mut().zip(stable) {
        m.stability = Some(st);
    }
    Ok(())
}

pub use modcirc_acdc::edge_list;

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

/// One edge method on one regime, over every model and task that ran it:
/// each seed's value is the mean over its tasks; the summary is over seeds
/// (mean and 95% t-interval; a point with one seed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodRow {
    /// The method's name.
    pub method: String,
    /// The regime.
    pub regime: Regime,
    /// The seeds it ran on.
    pub seeds: usize,
    /// CPR (higher is better).
    pub cpr: modcirc_metrics::Summary,
    /// CMD (lower is better).
    pub cmd: modcirc_metrics::Summary,
    /// Faithfulness of its top edges at the discovered circuit's size.
    pub same_size_faithfulness: modcirc_metrics::Summary,
    /// Seconds per model and task (mean).
    pub seconds: f64,
    /// The mean faithfulness at each of [`DEFAULT_FRACTIONS`], over seeds and tasks.
    pub curve: Vec<f64>,
    /// Spearman's ρ of its node scores against exact patching's effects
    /// (STUDY §12), over seeds; absent where no run measured it.
    #[serde(default)]
    pub agreement_rho: Option<modcirc_metrics::Summary>,
    /// The top-K overlap with exact patching, over seeds.
    #[serde(default)]
    pub top_k_overlap: Option<modcirc_metrics::Summary>,
    /// Its circuit's stability across resamples (STUDY §12), over seeds;
    /// absent where no run measured it.
    #[serde(default)]
    pub stability: Option<modcirc_metrics::Summary>,
    /// Seconds of the stability's resamples per model and task (mean).
    #[serde(default)]
    pub stability_seconds: Option<f64>,
}

/// Every edge method on every regime of `beyond` (models with a regime and
/// seed), in the order they ran (EAP first) and regime order: STUDY §12's
/// comparison.
pub fn method_rows(beyond: &[BeyondResult]) -> Vec<MethodRow> {
    let mut rows = Vec::new();
    let names = crate::judge::method_names(beyond.iter().flat_map(|b| &b.methods).map(|m| &m.method));
    for method in names.iter().map(String::as_str) {
        for regime in Regime::ALL {
            let runs: Vec<(u64, &EdgeMethod)> = beyond
                .iter()
                .filter(|b| b.regime == Some(regime))
                .filter_map(|b| Some((b.seed?, b.methods.iter().find(|m| m.method == method)?)))
                .collect();
            if runs.is_empty() {
                continue;
            }
            let mut seeds: Vec<u64> = runs.iter().map(|r| r.0).collect();
            seeds.sort_unstable();
            seeds.dedup();
            let per_seed = |f: &dyn Fn(&EdgeMethod) -> f64| -> Vec<f64> {
                seeds
                    .iter()
                    .map(|s| {
                        let v: Vec<f64> = runs.iter().filter(|r| r.0 == *s).map(|r| f(r.1)).collect();
                        v.iter().sum::<f64>() / v.len() as f64
                    })
                    .collect()
            };
            let summary = |f: &dyn Fn(&EdgeMethod) -> f64| crate::judge::over_seeds(&per_seed(f));
            // Over the seeds whose every run measured it.
            let agreed = |f: &dyn Fn(&crate::judge::Agreement) -> Option<f64>| {
                let all = runs.iter().all(|r| r.1.agreement.as_ref().and_then(f).is_some());
                if !all {
                    return None;
                }
                summary(&|m| m.agreement.as_ref().and_then(f).unwrap_or(f64::NAN))
            };
            let stable = runs.iter().all(|r| r.1.stability.is_some());
            let (Some(cpr), Some(cmd), Some(same)) =
                (summary(&|m| m.curve.cpr), summary(&|m| m.curve.cmd), summary(&|m| m.same_size_faithfulness))
            else {
                continue;
            };
            let curve = (0..DEFAULT_FRACTIONS.len())
                .map(|i| {
                    let v: Vec<f64> = runs.iter().filter_map(|r| r.1.curve.faithfulness.get(i).copied()).collect();
                    v.iter().sum::<f64>() / v.len().max(1) as f64
                })
                .collect();
            rows.push(MethodRow {
                method: method.into(),
                regime,
                seeds: seeds.len(),
                cpr,
                cmd,
                same_size_faithfulness: same,
                seconds: runs.iter().map(|r| r.1.seconds).sum::<f64>() / runs.len() as f64,
                curve,
                agreement_rho: agreed(&|a| a.rho),
                top_k_overlap: agreed(&|a| Some(a.top_k_overlap)),
                stability: stable.then(|| summary(&|m| m.stability.as_ref().map_or(f64::NAN, |s| s.mean))).flatten(),
                stability_seconds: stable.then(|| {
                    runs.iter().map(|r| r.1.stability.as_ref().map_or(0.0, |s| s.seconds)).sum::<f64>()
                        / runs.len() as f64
                }),
            });
        }
    }
    rows
}
