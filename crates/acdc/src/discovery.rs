use std::time::Instant;

use modcirc_dataset::Bootstrap;
use modcirc_metrics::Summary;
use modcirc_mlp::{DeviceSpec, Mlp};
use serde::{Deserialize, Serialize};

use crate::attribution::faithfulness;
use crate::{
    Ablation, AcdcError, Circuit, CircuitEval, DeviceSweep, NeuronScores, PatchingSweep, Selection, TaskImages,
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
    /// Neurons kept per hidden layer.
    pub k: usize,
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

    /// Refuses settings that cannot give a result: no resample, no pair,
    /// or a resample over [`MAX_RESAMPLE_BYTES`] on `model`.
    pub fn check(&self, model: &Mlp) -> Result<(), AcdcError> {
        if !(0.0..1.0).contains(&self.eps) {
            return Err(AcdcError::BadEps(self.eps));
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
            k: DEFAULT_K,
            eps: DEFAULT_EPS,
            ablation: Ablation::Zero,
            bootstraps: DEFAULT_BOOTSTRAPS,
            sample: DEFAULT_SAMPLE,
            seed: 0,
            device: DeviceSpec::Cpu,
        }
    }
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
    /// The circuit's edges.
    pub n_edges: usize,
    /// The circuit's logit difference on the resample.
    pub logit_difference: f64,
    /// The circuit's accuracy on the resample.
    pub accuracy: f64,
    /// The circuit's sparsity.
    pub sparsity: f64,
    /// Faithfulness on the answer metric (STUDY §8) of this resample's
    /// circuit on its pairs, removed edges carrying corrupted values; `None`
    /// where the model answers the same on clean and corrupted images.
    #[serde(default)]
    pub faithfulness: Option<f64>,
}

/// Mean and 95% percentile interval of each metric over the resamples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverySummary {
    /// Of the circuits' logit differences.
    pub logit_difference: Summary,
    /// Of the circuits' accuracies.
    pub accuracy: Summary,
    /// Of the circuits' sparsities.
    pub sparsity: Summary,
    /// Of the discovery times.
    pub discovery_s: Summary,
    /// Over the resamples where faithfulness is defined.
    #[serde(default)]
    pub faithfulness: Option<Summary>,
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
    /// The whole-set circuit's edges.
    pub full_n_edges: usize,
    /// Every resample.
    pub bootstraps: Vec<BootstrapRecord>,
    /// Mean and interval of each metric over the resamples.
    pub summary: DiscoverySummary,
}

/// Circuit discovery on the whole pair set, then on `bootstraps` resamples.
/// `progress` is called after each resample with how many are done.
pub fn discover(
    model: &Mlp,
    images: &TaskImages,
    config: &DiscoveryConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<DiscoveryReport, AcdcError> {
    config.check(model)?;
    let sweep = PatchingSweep::new(model, images)?;
    let on_device = match config.device {
        DeviceSpec::Cpu => None,
        spec => Some(DeviceSweep::new(&sweep, &spec.open().map_err(|e| AcdcError::Device(e.to_string()))?)?),
    };
    let scores = match &on_device {
        None => sweep.scores(),
        Some(d) => d.scores(None)?,
    };
    let selection = scores.select(config.k)?;
    let circuit = Circuit::new(model, selection.nodes.clone(), config.eps)?;
    let full = circuit.evaluate(&sweep, config.ablation)?;
    let sampler = Bootstrap::new(images.n, config.sample, config.seed).map_err(|e| AcdcError::Shape(e.to_string()))?;
    let mut bootstraps = Vec::with_capacity(config.bootstraps);
    for b in 0..config.bootstraps {
        let idx = sampler.resample(b);
        let t = Instant::now();
        // The timer covers the sweep and the selection; reading the scores
        // back from a device synchronises with it.
        let (sel, sub) = match &on_device {
            None => {
                let sub = sweep.subset(&idx);
                (sub.scores().select(config.k)?, Some(sub))
            }
            Some(d) => (d.scores(Some(&idx))?.select(config.k)?, None),
        };
        let discovery_s = t.elapsed().as_secs_f64();
        let sub = sub.unwrap_or_else(|| sweep.subset(&idx));
        let c = Circuit::new(model, sel.nodes.clone(), config.eps)?;
        let eval = c.evaluate(&sub, config.ablation)?;
        bootstraps.push(BootstrapRecord {
            index: b,
            discovery_s,
            nodes: sel.nodes,
            n_edges: c.n_edges(),
            logit_difference: eval.logit_difference,
            accuracy: eval.accuracy,
            sparsity: eval.sparsity,
            faithfulness: match faithfulness(&sub, &c) {
                Ok(f) => Some(f),
                Err(AcdcError::Degenerate(_)) => None,
                Err(e) => return Err(e),
            },
        });
        progress(b + 1);
    }
    let summarize = |f: fn(&BootstrapRecord) -> f64| {
        let v: Vec<f64> = bootstraps.iter().map(f).collect();
        Summary::of(&v).unwrap_or(Summary { mean: f64::NAN, lo: f64::NAN, hi: f64::NAN, n: 0 })
    };
    let summary = DiscoverySummary {
        logit_difference: summarize(|r| r.logit_difference),
        accuracy: summarize(|r| r.accuracy),
        sparsity: summarize(|r| r.sparsity),
        discovery_s: summarize(|r| r.discovery_s),
        faithfulness: Summary::of(&bootstraps.iter().filter_map(|r| r.faithfulness).collect::<Vec<_>>()),
    };
    Ok(DiscoveryReport {
        config: config.clone(),
        scores,
        selection,
        full,
        full_n_edges: circuit.n_edges(),
        bootstraps,
        summary,
    })
}
