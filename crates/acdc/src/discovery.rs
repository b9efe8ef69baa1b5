//! One discovery (STUDY §4-§5): the sweep, the selection and the circuit on
//! bootstrap resamples, with the metrics' intervals.

use std::time::Instant;

use modcirc_dataset::Bootstrap;
use modcirc_metrics::Summary;
use modcirc_mlp::{DeviceSpec, Mlp};
use serde::{Deserialize, Serialize};

use crate::attribution::{ablated_scale, edge_attribution, faithfulness_curve, faithfulness_scale, FaithfulnessCurve};
use crate::smallest::{node_curve, NodeCurve, SmallestFaithful, SmallestSearch};
use crate::{
    Ablation, AcdcError, Circuit, CircuitEval, NeuronScores, PatchingSweep, Selection, SelectionRule, TaskImages,
    DEFAULT_FRACTIONS,
};

/// K, the neurons kept per hidden layer (STUDY §4).
pub const DEFAULT_K: usize = 15;
/// eps, the edge threshold relative to a layer's largest |weight| (STUDY §5).
pub const DEFAULT_EPS: f64 = 0.01;
/// Bootstrap resamples per discovery (STUDY §5).
pub const DEFAULT_BOOTSTRAPS: usize = 50;
/// Pairs per bootstrap resample (STUDY §5).
pub const DEFAULT_SAMPLE: usize = 500;

/// The most a bootstrap resample may hold (its images and activations):
/// a larger `sample` is refused before anything is allocated.
pub const MAX_RESAMPLE_BYTES: u64 = 2 << 30;

/// Flags of one discovery run (STUDY §4-§5 defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryConfig {
    /// Which neurons the circuit keeps (STUDY §4: the K lowest scores).
    pub selection: SelectionRule,
    /// Other rules evaluated on the same resamples, to show how the
    /// metrics move with the rule; each is skipped where it does not fit
    /// the model. Their circuits are not timed.
    #[serde(default)]
    pub compare: Vec<SelectionRule>,
    /// Edge threshold, relative to each layer's largest |weight|, in [0, 1).
    pub eps: f64,
    /// What removed nodes and edges carry.
    pub ablation: Ablation,
    /// Bootstrap resamples.
    pub bootstraps: usize,
    /// Pairs per bootstrap resample (drawn with replacement).
    pub sample: usize,
    /// Seeds the bootstrap.
    pub seed: u64,
    /// Where the patching sweep runs: `cpu` is the rank-1 [`PatchingSweep`],
    /// anything else the [`DeviceSweep`] on that device. Circuit evaluation
    /// always runs on the CPU.
    #[serde(default)]
    pub device: DeviceSpec,
    /// Where set, also find the smallest circuits reaching this
    /// faithfulness ([`SmallestFaithful`]), on all pairs and on each resample.
    #[serde(default)]
    pub target_faithfulness: Option<f64>,
}

impl DiscoveryConfig {
    /// Bytes one resample of `sample` pairs holds on `model`: the clean and
    /// corrupted images, and both runs' activations before and after the
    /// nonlinearity. Computed without overflow.
    pub fn resample_bytes(&self, model: &Mlp) -> u64 {
        let widths: u64 = model.layers.iter().map(|l| l.n_out as u64).sum();
        let per_pair = 2 * model.n_inputs() as u64 + 4 * widths;
        (self.sample as u64).saturating_mul(per_pair).saturating_mul(4)
    }

    /// At most what a discovery on `model` holds with `images` images in
    /// its split: every pair's clean and corrupted runs (inputs, and each
    /// layer's pre- and post-activations; a task has at most one pair per
    /// image), a resample's ([`DiscoveryConfig::resample_bytes`]), and each
    /// thread's patched layer. An upper bound, for a check before anything
    /// is allocated.
    pub fn working_set_bytes(&self, model: &Mlp, images: usize) -> u64 {
        let widths: u64 = model.layers.iter().map(|l| l.n_out as u64).sum();
        let widest = model.layers.iter().map(|l| l.n_out as u64).max().unwrap_or(0);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let pairs = images as u64;
        let runs = pairs.saturating_mul(2 * model.n_inputs() as u64 + 4 * widths).saturating_mul(4);
        let scratch = threads.saturating_mul(pairs).saturating_mul(2 * widest).saturating_mul(4);
        runs.saturating_add(scratch).saturating_add(self.resample_bytes(model))
    }

    /// Refuses settings that cannot give a result: no resample, no pair,
    /// or a resample over [`MAX_RESAMPLE_BYTES`] on `model`.
    pub fn check(&self, model: &Mlp) -> Result<(), AcdcError> {
        if !(0.0..1.0).contains(&self.eps) {
            return Err(AcdcError::BadEps(self.eps));
        }
        self.selection.check(&hidden_widths(model))?;
        if let Some(t) = self.target_faithfulness.filter(|t| !(t.is_finite() && *t > 0.0)) {
            return Err(AcdcError::BadOption(format!("target faithfulness {t}: must be a positive number")));
        }
        if self.bootstraps == 0 || self.sample == 0 {
            // Every summary would be the mean of nothing: NaN.
            return Err(AcdcError::BadOption(format!(
                "bootstraps = {}, sample = {}: both must be at least 1",
                self.bootstraps, self.sample
            )));
        }
        let bytes = self.resample_bytes(model);
        if bytes > MAX_RESAMPLE_BYTES {
            return Err(AcdcError::BadOption(format!(
                "sample = {}: a resample of that many pairs holds {:.1} GiB on this model, more than the limit of {} GiB",
                self.sample,
                bytes as f64 / (1u64 << 30) as f64,
                MAX_RESAMPLE_BYTES >> 30
            )));
        }
        Ok(())
    }
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            selection: SelectionRule::top_k(DEFAULT_K),
            compare: Vec::new(),
            eps: DEFAULT_EPS,
            ablation: Ablation::Zero,
            bootstraps: DEFAULT_BOOTSTRAPS,
            sample: DEFAULT_SAMPLE,
            seed: 0,
            device: DeviceSpec::Cpu,
            target_faithfulness: None,
        }
    }
}

/// The widths of `model`'s hidden layers.
fn hidden_widths(model: &Mlp) -> Vec<usize> {
    model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect()
}

/// One bootstrap resample: its circuit, metrics and discovery time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapRecord {
    /// The resample's index.
    pub index: usize,
    /// Wall time of the patching sweep and the selection on this resample.
    pub discovery_s: f64,
    /// Kept neurons per hidden layer.
    pub nodes: Vec<Vec<usize>>,
    /// How many of them are dead, per hidden layer.
    #[serde(default)]
    pub dead_kept: Vec<usize>,
    /// The circuit's edges.
    pub n_edges: usize,
    /// The circuit's logit difference on the resample: the distance of its
    /// logits to the model's (lower is better).
    pub logit_difference: f64,
    /// The circuit's accuracy on the resample.
    pub accuracy: f64,
    /// The model's own accuracy on the resample: the circuit's reference.
    #[serde(default)]
    pub model_accuracy: f64,
    /// The circuit's sparsity.
    pub sparsity: f64,
    /// Faithfulness on the answer metric (STUDY §8) of this resample's
    /// circuit on its pairs, removed edges carrying corrupted values; `None`
    /// where the model answers the same on clean and corrupted images.
    #[serde(default)]
    pub faithfulness: Option<f64>,
    /// Faithfulness with removed edges carrying values under the
    /// discovery's ablation, the empty circuit under it as the zero
    /// ([`crate::faithfulness_under`]); equal to `faithfulness` under resample.
    #[serde(default)]
    pub faithfulness_ablated: Option<f64>,
}

/// Mean and 95% percentile interval of each metric over the resamples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverySummary {
    /// Of the circuits' logit differences (lower is better).
    pub logit_difference: Summary,
    /// Of the circuits' accuracies (higher is better).
    pub accuracy: Summary,
    /// Of the model's own accuracies on the same resamples.
    pub model_accuracy: Summary,
    /// Of the circuits' sparsities (higher is sparser).
    pub sparsity: Summary,
    /// Of the discovery times.
    pub discovery_s: Summary,
    /// Over the resamples where faithfulness is defined (1: the circuit
    /// recovers the model's answer margin; above 1: more than the model,
    /// because the components it leaves out worked against the answer).
    #[serde(default)]
    pub faithfulness: Option<Summary>,
    /// Of the faithfulness under the discovery's ablation.
    #[serde(default)]
    pub faithfulness_ablated: Option<Summary>,
}

/// A compared rule's circuits over the same resamples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// The rule.
    pub rule: SelectionRule,
    /// Neurons its circuit on the whole pair set keeps, per hidden layer.
    pub kept: Vec<usize>,
    /// How many of them are dead.
    pub dead_kept: Vec<usize>,
    /// Of the circuits' logit differences (lower is better).
    pub logit_difference: Summary,
    /// Of the circuits' accuracies.
    pub accuracy: Summary,
    /// Of the circuits' sparsities.
    pub sparsity: Summary,
    /// Of the circuits' faithfulness, removed edges carrying corrupted values.
    #[serde(default)]
    pub faithfulness: Option<Summary>,
    /// Of their faithfulness under the discovery's ablation.
    #[serde(default)]
    pub faithfulness_ablated: Option<Summary>,
}

/// Everything one discovery produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryReport {
    /// What it ran with.
    pub config: DiscoveryConfig,
    /// Scores on the whole pair set.
    pub scores: NeuronScores,
    /// The circuit chosen on the whole pair set.
    pub selection: Selection,
    /// The whole-set circuit's metrics on the whole set.
    pub full: CircuitEval,
    /// The model's own accuracy on the whole set.
    pub model_accuracy: f64,
    /// The whole-set circuit's edges.
    pub full_n_edges: usize,
    /// The headline: the circuit's faithfulness on all pairs, removed edges
    /// carrying corrupted values (STUDY §8); `None` where undefined (and in
    /// results written before it).
    #[serde(default)]
    pub full_faithfulness: Option<f64>,
    /// Every resample.
    pub bootstraps: Vec<BootstrapRecord>,
    /// Mean and interval of each metric over the resamples.
    pub summary: DiscoverySummary,
    /// The rules of `config.compare` that fit the model, on the same resamples.
    #[serde(default)]
    pub compared: Vec<RuleSummary>,
    /// Faithfulness of the K-circuit of every K on all pairs ([`crate::NODE_GROWTH`];
    /// `None` where faithfulness is undefined).
    #[serde(default)]
    pub node_curve: Option<NodeCurve>,
    /// Faithfulness of the top-|EAP| circuits over their size on all pairs, with CPR and CMD.
    #[serde(default)]
    pub edge_curve: Option<FaithfulnessCurve>,
    /// The smallest circuits reaching `config.target_faithfulness`, where it is set.
    #[serde(default)]
    pub smallest: Option<SmallestFaithful>,
}

/// Mean and interval of `values`; NaN where there is none (refused later as non-finite).
fn summarize(values: impl Iterator<Item = f64>) -> Summary {
    let v: Vec<f64> = values.collect();
    Summary::of(&v).unwrap_or(Summary { mean: f64::NAN, lo: f64::NAN, hi: f64::NAN, n: 0 })
}

/// The discovery of one resample `idx`: the patching sweep and the
/// selection, and their wall time, the discovery time of STUDY §6. On a
/// device, reading the scores back synchronises with it. Also returns the
/// CPU sweep restricted to the resample, where it was built.
fn timed_selection<'m>(
    sweep: &PatchingSweep<'m>,
    on_device: Option<&DeviceSweep>,
    idx: &[usize],
    rule: &SelectionRule,
) -> Result<(NeuronScores, Selection, Option<PatchingSweep<'m>>, f64), AcdcError> {
    let t = Instant::now();
    let (scores, sub) = match on_device {
        None => {
            let sub = sweep.subset(idx);
            (sub.scores(), Some(sub))
        }
        Some(d) => (d.scores(Some(idx))?, None),
    };
    let sel = scores.select_by(rule)?;
    Ok((scores, sel, sub, t.elapsed().as_secs_f64()))
}

#[cfg(feature = "candle")]
use crate::DeviceSweep;

/// Without the `candle` feature there is no device sweep: a type with no value.
#[cfg(not(feature = "candle"))]
enum DeviceSweep {}

#[cfg(not(feature = "candle"))]
impl DeviceSweep {
    fn scores(&self, _: Option<&[usize]>) -> Result<NeuronScores, AcdcError> {
        match *self {}
    }
}

/// The sweep on the device `config` names, or `None` for the CPU.
fn device_sweep(sweep: &PatchingSweep<'_>, config: &DiscoveryConfig) -> Result<Option<DeviceSweep>, AcdcError> {
    match config.device {
        DeviceSpec::Cpu => Ok(None),
        #[cfg(feature = "candle")]
        spec => Ok(Some(DeviceSweep::new(sweep, &spec.open().map_err(|e| AcdcError::Device(e.to_string()))?)?)),
        #[cfg(not(feature = "candle"))]
        spec => {
            let _ = sweep;
            Err(AcdcError::Device(format!(
                "{spec}: this build has no device sweep (enable the `candle` feature of modcirc-acdc)"
            )))
        }
    }
}

/// The discovery time of each of `discover`'s resamples, measured again
/// exactly as `discover` measures it (the same resamples, sweep and
/// selection), without the evaluation between them: to time discoveries
/// one at a time after they were run beside other work, which slows them.
pub fn discovery_times(model: &Mlp, images: &TaskImages, config: &DiscoveryConfig) -> Result<Vec<f64>, AcdcError> {
    config.check(model)?;
    let sweep = PatchingSweep::new(model, images)?;
    let on_device = device_sweep(&sweep, config)?;
    let sampler = Bootstrap::new(images.n, config.sample, config.seed).map_err(|e| AcdcError::Shape(e.to_string()))?;
    (0..config.bootstraps)
        .map(|b| Ok(timed_selection(&sweep, on_device.as_ref(), &sampler.resample(b), &config.selection)?.3))
        .collect()
}

/// The bootstrap mean and interval of each metric over the resamples.
fn summary_of(bootstraps: &[BootstrapRecord]) -> DiscoverySummary {
    let of = |f: fn(&BootstrapRecord) -> f64| summarize(bootstraps.iter().map(f));
    DiscoverySummary {
        logit_difference: of(|r| r.logit_difference),
        accuracy: of(|r| r.accuracy),
        model_accuracy: of(|r| r.model_accuracy),
        sparsity: of(|r| r.sparsity),
        discovery_s: of(|r| r.discovery_s),
        faithfulness: Summary::of(&bootstraps.iter().filter_map(|r| r.faithfulness).collect::<Vec<_>>()),
        faithfulness_ablated: Summary::of(
            &bootstraps.iter().filter_map(|r| r.faithfulness_ablated).collect::<Vec<_>>(),
        ),
    }
}

/// Each compared rule's circuits on the same resamples (`evals[r][b]`),
/// summarised.
fn rule_summaries(
    compare: &[&SelectionRule],
    compared_evals: &[Vec<Judged>],
    scores: &NeuronScores,
) -> Result<Vec<RuleSummary>, AcdcError> {
    compare
        .iter()
        .zip(compared_evals)
        .map(|(rule, evals)| {
            let sel = scores.select_by(rule)?;
            Ok(RuleSummary {
                rule: (*rule).clone(),
                kept: sel.nodes.iter().map(Vec::len).collect(),
                dead_kept: sel.dead_kept,
                logit_difference: summarize(evals.iter().map(|e| e.eval.logit_difference)),
                accuracy: summarize(evals.iter().map(|e| e.eval.accuracy)),
                sparsity: summarize(evals.iter().map(|e| e.eval.sparsity)),
                faithfulness: Summary::of(&evals.iter().filter_map(|e| e.faithfulness).collect::<Vec<_>>()),
                faithfulness_ablated: Summary::of(
                    &evals.iter().filter_map(|e| e.faithfulness_ablated).collect::<Vec<_>>(),
                ),
            })
        })
        .collect()
}

/// A circuit's metrics on one resample.
#[derive(Debug, Clone, Copy)]
struct Judged {
    eval: CircuitEval,
    faithfulness: Option<f64>,
    faithfulness_ablated: Option<f64>,
}

/// `Some(x)`, or `None` where faithfulness is undefined on these pairs.
fn defined<T>(x: Result<T, AcdcError>) -> Result<Option<T>, AcdcError> {
    match x {
        Ok(x) => Ok(Some(x)),
        Err(AcdcError::Degenerate(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The scales of both forms of faithfulness on one set of pairs, `(m(M),
/// m(∅))`, computed once for every circuit judged on it; `None` where
/// faithfulness is undefined.
#[derive(Debug, Clone, Copy)]
struct Scales {
    /// Removed edges carrying corrupted values (STUDY §8).
    corrupted: Option<(f64, f64)>,
    /// Under the discovery's ablation.
    ablated: Option<(f64, f64)>,
}

impl Scales {
    fn of(sub: &PatchingSweep<'_>, ablation: Ablation) -> Result<Scales, AcdcError> {
        Ok(Scales { corrupted: defined(faithfulness_scale(sub))?, ablated: defined(ablated_scale(sub, ablation))? })
    }

    /// `(m − m(∅)) / (m(M) − m(∅))` on `scale`, the metric `m` computed only where it is defined.
    fn faithfulness(
        scale: Option<(f64, f64)>,
        m: impl FnOnce() -> Result<f64, AcdcError>,
    ) -> Result<Option<f64>, AcdcError> {
        scale.map(|(full, empty)| Ok((m()? - empty) / (full - empty))).transpose()
    }
}

/// `c`'s metrics on `sub` under `ablation`, and its faithfulness in both forms.
fn judge(c: &Circuit, sub: &PatchingSweep<'_>, ablation: Ablation, scales: Scales) -> Result<Judged, AcdcError> {
    Ok(Judged {
        eval: c.evaluate(sub, ablation)?,
        faithfulness: Scales::faithfulness(scales.corrupted, || c.answer_metric(sub))?,
        faithfulness_ablated: Scales::faithfulness(scales.ablated, || c.answer_metric_under(sub, ablation))?,
    })
}

/// Circuit discovery on the whole pair set, then on `bootstraps` resamples.
/// `progress` is called after each resample with how many are done.
pub fn discover(
    model: &Mlp,
    images: &TaskImages,
    config: &DiscoveryConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<DiscoveryReport, AcdcError> {
    discover_with(model, images, config, None, progress)
}

/// [`discover`] with the model's optimal-ablation fits for
/// [`Ablation::Optimal`] (STUDY §12), which needs them.
pub fn discover_with(
    model: &Mlp,
    images: &TaskImages,
    config: &DiscoveryConfig,
    optimal: Option<&crate::OptimalAblation>,
    progress: &mut dyn FnMut(usize),
) -> Result<DiscoveryReport, AcdcError> {
    config.check(model)?;
    let widths = hidden_widths(model);
    let compare: Vec<&SelectionRule> = config.compare.iter().filter(|r| r.check(&widths).is_ok()).collect();
    let sweep = PatchingSweep::new(model, images)?;
    let sweep = match optimal {
        Some(c) => sweep.with_optimal(c.clone())?,
        None => sweep,
    };
    let on_device = device_sweep(&sweep, config)?;
    let scores = match &on_device {
        None => sweep.scores(),
        Some(d) => d.scores(None)?,
    };
    let selection = scores.select_by(&config.selection)?;
    let circuit = Circuit::new(model, selection.nodes.clone(), config.eps)?;
    let full = circuit.evaluate(&sweep, config.ablation)?;
    let sampler = Bootstrap::new(images.n, config.sample, config.seed).map_err(|e| AcdcError::Shape(e.to_string()))?;
    let mut bootstraps = Vec::with_capacity(config.bootstraps);
    // compared_evals[r][b]: rule r's circuit on resample b.
    let mut compared_evals: Vec<Vec<Judged>> = vec![Vec::with_capacity(config.bootstraps); compare.len()];
    // The faithfulness curves on all pairs, and the smallest circuits reaching the target.
    let node = defined(node_curve(&sweep, &scores, config.eps))?;
    let eap = match edge_attribution(&sweep) {
        Ok(e) => Some(e),
        Err(AcdcError::Degenerate(_)) => None,
        Err(e) => return Err(e),
    };
    let edge = match &eap {
        Some(e) => defined(faithfulness_curve(&sweep, e, &DEFAULT_FRACTIONS))?,
        None => None,
    };
    let mut search = match config.target_faithfulness {
        Some(t) => Some(SmallestSearch::new(&sweep, &scores, config.eps, t, node.as_ref())?),
        None => None,
    };
    for b in 0..config.bootstraps {
        let idx = sampler.resample(b);
        let (scores_b, sel, sub, discovery_s) = timed_selection(&sweep, on_device.as_ref(), &idx, &config.selection)?;
        let sub = sub.unwrap_or_else(|| sweep.subset(&idx));
        let c = Circuit::new(model, sel.nodes.clone(), config.eps)?;
        let scales = Scales::of(&sub, config.ablation)?;
        let judged = judge(&c, &sub, config.ablation, scales)?;
        for (rule, evals) in compare.iter().zip(&mut compared_evals) {
            let nodes = scores_b.select_by(rule)?.nodes;
            // A rule that keeps the same neurons (the study's K, or live-only
            // where no dead neuron was kept) has the same circuit.
            evals.push(if nodes == sel.nodes {
                judged
            } else {
                judge(&Circuit::new(model, nodes, config.eps)?, &sub, config.ablation, scales)?
            });
        }
        if let Some(search) = &mut search {
            search.resample(&sub, &scores_b, scales.corrupted)?;
        }
        bootstraps.push(BootstrapRecord {
            index: b,
            discovery_s,
            nodes: sel.nodes,
            dead_kept: sel.dead_kept,
            n_edges: c.n_edges(),
            logit_difference: judged.eval.logit_difference,
            accuracy: judged.eval.accuracy,
            model_accuracy: sub.model_accuracy(),
            sparsity: judged.eval.sparsity,
            faithfulness: judged.faithfulness,
            faithfulness_ablated: judged.faithfulness_ablated,
        });
        progress(b + 1);
    }
    let smallest = match search {
        Some(search) => Some(search.finish(&sweep, &scores, eap.as_ref().zip(edge.as_ref()), config.bootstraps)?),
        None => None,
    };
    let summary = summary_of(&bootstraps);
    let compared = rule_summaries(&compare, &compared_evals, &scores)?;
    Ok(DiscoveryReport {
        config: config.clone(),
        scores,
        selection,
        full,
        model_accuracy: sweep.model_accuracy(),
        full_n_edges: circuit.n_edges(),
        full_faithfulness: defined(crate::attribution::faithfulness(&sweep, &circuit))?,
        bootstraps,
        summary,
        compared,
        node_curve: node,
        edge_curve: edge,
        smallest,
    })
}

#[cfg(test)]
mod tests {
    use modcirc_mlp::Activation;

    use super::*;

    #[test]
    fn compared_rules_see_the_same_resamples_and_skip_what_does_not_fit() {
        let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
        let model = Mlp::init(&[6, 12, 9, 3], Activation::Relu, &mut || u.next().unwrap()).unwrap();
        let images = TaskImages {
            n: 8,
            pixels: 6,
            clean: (0..48).map(|i| (i % 7) as f32 / 7.0).collect(),
            corrupted: (0..48).map(|i| (i % 5) as f32 / 5.0).collect(),
            clean_labels: vec![0, 1, 2, 0, 1, 2, 0, 1],
            corrupted_labels: vec![1, 2, 0, 1, 2, 0, 1, 2],
        };
        let config = DiscoveryConfig {
            selection: SelectionRule::top_k(4),
            compare: vec![SelectionRule::top_k(2), SelectionRule::top_k(4), SelectionRule::top_k(10)],
            bootstraps: 6,
            sample: 8,
            ..DiscoveryConfig::default()
        };
        let report = discover(&model, &images, &config, &mut |_| {}).unwrap();
        let rules: Vec<&SelectionRule> = report.compared.iter().map(|c| &c.rule).collect();
        assert_eq!(rules, [&SelectionRule::top_k(2), &SelectionRule::top_k(4)], "K = 10 does not fit 9 neurons");
        // The study's rule, compared, gives the study's numbers exactly.
        let same = &report.compared[1];
        assert_eq!(same.logit_difference, report.summary.logit_difference);
        assert_eq!(same.sparsity, report.summary.sparsity);
        assert_eq!(same.kept, [4, 4]);
        // Fewer neurons, fewer edges.
        assert!(report.compared[0].sparsity.mean > same.sparsity.mean);
        // Timed again: one time per resample, each a positive duration.
        let times = discovery_times(&model, &images, &config).unwrap();
        assert_eq!(times.len(), report.bootstraps.len());
        assert!(times.iter().all(|t| t.is_finite() && *t > 0.0));
    }
}
