//! One discovery on one checkpoint and task, as `discover` and `reproduce`
//! run it, and the JSON it is saved as (`modcirc.discover/2`).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use modcirc_acdc::{
    discover_with, Ablation, Circuit, DiscoveryConfig, DiscoveryReport, JointFit, OptimalAblation, OptimalConstants,
    SelectionRule, TaskImages, DEFAULT_K, DEFAULT_OPTIMAL_PAIRS, DEFAULT_OPTIMAL_STEPS,
};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_dataset::{FileChecksum, ImageSet, Mnist, Pair, PairedDataset, Task};
use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::StudyError;

/// Version of the `discover` JSON (docs/results-schema.md).
pub const DISCOVER_SCHEMA: &str = "modcirc.discover/4";

/// Bumped when discovery computes something new, so that cached results are
/// recomputed (2: faithfulness per resample; 3: selection rules, dead
/// neurons kept, the model's accuracy, the K-sensitivity rules; 4:
/// faithfulness under the ablation and per compared rule, the curves over
/// circuit size, the model's activation and sizes; 5: optimal ablation as
/// STUDY §12 now defines it, fitted jointly per circuit; 6: the per-layer
/// smallest circuit).
pub const DISCOVERY_REVISION: u32 = 6;

/// The Ks of the K-sensitivity comparison; live neurons only at the
/// study's K is compared too.
pub const SENSITIVITY_KS: [usize; 5] = [5, 10, 15, 20, 30];

/// The rules every discovery also evaluates on its resamples, to show how
/// the results move with K (each skipped where it does not fit the model).
pub fn sensitivity_rules() -> Vec<SelectionRule> {
    SENSITIVITY_KS
        .iter()
        .map(|&k| SelectionRule::top_k(k))
        .chain([SelectionRule::TopK { k: vec![DEFAULT_K], live_only: true }])
        .collect()
}

/// What a circuit's logit difference measures, and which way is better (STUDY §5).
pub const LOGIT_DIFFERENCE_MEANS: &str =
    "mean distance of the circuit's logits to the model's, on clean and corrupted images: lower is better";
/// What a circuit's sparsity measures (STUDY §5).
pub const SPARSITY_MEANS: &str = "share of the model's weights the circuit leaves out: higher is a smaller circuit";
/// What a circuit's accuracy is judged against.
pub const ACCURACY_MEANS: &str =
    "the circuit's accuracy on the pairs' clean and corrupted images (their own digits), beside the model's own on the same images";
/// What faithfulness measures (STUDY §8).
pub const FAITHFULNESS_MEANS: &str = "the share of the model's answer margin L[clean digit] − L[corrupted digit] that the circuit recovers: 1 is the model's, 0 the corrupted run's";
/// Why faithfulness can exceed 1.
pub const FAITHFULNESS_ABOVE_ONE: &str = "above 1, the circuit separates the two digits more than the model does: components it leaves out worked against the answer";
/// The form of faithfulness the study uses (STUDY §8), whatever the ablation.
pub const FAITHFULNESS_FORM: &str = "removed edges carry the paired corrupted image's value";

/// What the circuit's forward sends along what it leaves out under `a`, in words.
pub fn ablation_means(a: Ablation) -> &'static str {
    match a {
        Ablation::Zero => "zero ablation: neurons and weights outside the circuit send nothing (the study's default, STUDY §5)",
        Ablation::Mean => "mean ablation: neurons and weights outside the circuit send their mean over the task's images",
        Ablation::Resample => "resample ablation: neurons and weights outside the circuit send their value on the paired corrupted image (the form faithfulness uses)",
        Ablation::Optimal => "optimal ablation: the neurons outside the circuit send constants fitted jointly, each within its neuron's observed range, to keep the outputs closest (mean KL) to the model's on training-split pairs of every digit pair (STUDY §12); inputs send their mean",
    }
}

/// Why a circuit's accuracy can be above its model's, and what to judge it by.
pub fn circuit_above_model(a: Ablation) -> String {
    format!(
        "the circuit is more accurate than its model here: under {a} ablation what it leaves out is replaced, and the replacement happens to help; judge the circuit by its logit difference and faithfulness, not by accuracy"
    )
}

/// What a neuron's effect is (STUDY §4).
pub const EFFECT_MEANS: &str = "effect = baseline − score: how far patching the neuron moves the corrupted logits towards the clean ones (0: dead; negative: away)";

/// Which MNIST split the task's pairs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The 10 000 test images (the study's).
    Test,
    /// The 60 000 training images.
    Train,
}

impl Split {
    /// The images of this split.
    pub fn of(self, mnist: &Mnist) -> &ImageSet {
        match self {
            Split::Test => &mnist.test,
            Split::Train => &mnist.train,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Test => "test",
            Split::Train => "train",
        })
    }
}

impl FromStr for Split {
    type Err = StudyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "test" => Ok(Split::Test),
            "train" => Ok(Split::Train),
            _ => Err(StudyError::Invalid(format!("unknown split {s:?} (expected test or train)"))),
        }
    }
}

/// The working set a discovery may hold unless its caller raises the
/// limit (`discover --max-memory`, `max_memory_gib` from Python), in GiB.
pub const DEFAULT_MAX_MEMORY_GIB: u64 = 16;

/// Everything a discovery is run with: the discovery's own configuration
/// and the split its pairs come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverySettings {
    /// K, eps, ablation, bootstraps, sample, seed, device.
    #[serde(flatten)]
    pub config: DiscoveryConfig,
    /// Where the pairs come from.
    pub split: Split,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        let config = DiscoveryConfig { compare: sensitivity_rules(), ..DiscoveryConfig::default() };
        DiscoverySettings { config, split: Split::Test }
    }
}

/// What a discovery ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoverInputs {
    /// The checkpoint's path as given.
    pub model: String,
    /// SHA-256 of the checkpoint file.
    pub model_sha256: String,
    /// The training regime, from the checkpoint's sidecar when present.
    pub regime: Option<String>,
    /// The hidden layers' activation the model was run with.
    pub activation: String,
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// The task.
    pub task: Task,
    /// The settings.
    pub flags: DiscoverySettings,
    /// The data directory the pairs came from.
    #[serde(default)]
    pub data_dir: String,
    /// The SHA-256 of each of its files.
    #[serde(default)]
    pub data_checksums: Vec<FileChecksum>,
}

/// Whether the data a command runs on are those the model was trained on.
#[derive(Debug, Clone, PartialEq)]
pub enum Provenance {
    /// The sidecar records the same files (names and SHA-256).
    Same,
    /// No sidecar: nothing says what the model was trained on.
    Unknown,
    /// The sidecar records other data.
    Differs {
        /// The directory the sidecar records.
        trained_on: String,
        /// The files whose hashes differ (or that one side lacks).
        files: Vec<String>,
    },
}

/// The files whose SHA-256 differs between two listings, or that one of
/// them lacks, by name.
pub fn differing_files(a: &[FileChecksum], b: &[FileChecksum]) -> Vec<String> {
    let hash = |list: &[FileChecksum], name: &str| list.iter().find(|c| c.file == name).map(|c| c.sha256.clone());
    let mut names: Vec<&str> = a.iter().chain(b).map(|c| c.file.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().filter(|n| hash(a, n) != hash(b, n)).map(String::from).collect()
}

/// Compares `mnist` with the data `ck`'s sidecar records.
pub fn provenance(ck: &Checkpoint, mnist: &Mnist) -> Provenance {
    let Some(meta) = &ck.meta else { return Provenance::Unknown };
    let files = differing_files(&meta.data_checksums, &mnist.checksums);
    if files.is_empty() {
        Provenance::Same
    } else {
        Provenance::Differs { trained_on: meta.data_dir.clone(), files }
    }
}

/// A discovery as it is saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoverOutput {
    /// [`DISCOVER_SCHEMA`].
    pub schema: String,
    /// What it ran on.
    pub inputs: DiscoverInputs,
    /// Dataset indices (in the chosen split) of every clean and corrupted image.
    pub pairs: Vec<Pair>,
    /// Dead neurons and ties: a plain-language note on how the top-K was decided.
    pub notes: Vec<String>,
    /// Scores, the circuit, every resample.
    pub report: DiscoveryReport,
    /// Wall time of the whole discovery stage.
    pub total_s: f64,
    /// Optimal ablation's per-neuron fits, where the discovery's ablation is
    /// optimal (fitted on the training split's pairs of the task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimal: Option<OptimalConstants>,
    /// The circuit's joint fit under optimal ablation (STUDY §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimal_fit: Option<JointFit>,
}

/// Optimal ablation of `model` on `task` (STUDY §12): `pairs` of the task's
/// training-split pairs drawn with `seed` from every digit pair in
/// proportion, and the per-neuron fits on them: `saved` where given (a
/// discovery's, fitted on the same pairs), else fitted here with at most
/// [`DEFAULT_OPTIMAL_STEPS`] objective evaluations per neuron.
pub fn optimal_ablation(
    mnist: &Mnist,
    model: &Mlp,
    task: &Task,
    seed: u64,
    pairs: usize,
    saved: Option<&OptimalConstants>,
) -> Result<OptimalAblation, StudyError> {
    mnist.train.check_fits("train", model.n_inputs(), model.n_classes())?;
    let drawn = PairedDataset::new(&mnist.train, task, seed)?.stratified(pairs, seed);
    let images = TaskImages::from_pairs(&mnist.train, &drawn);
    Ok(match saved {
        Some(c) => OptimalAblation::with_constants(model, &images, c.clone())?,
        None => OptimalAblation::fit(model, &images, DEFAULT_OPTIMAL_STEPS)?,
    })
}

/// Refuses a model whose input width or classes do not fit the images of `split`.
pub fn check_fits(ck: &Checkpoint, images: &ImageSet, split: Split) -> Result<(), StudyError> {
    Ok(images.check_fits(&split.to_string(), ck.model.n_inputs(), ck.model.n_classes())?)
}

/// Discovery on one checkpoint (read from `model_path`, whose bytes hash
/// to `model_sha256`) and task. `progress` is called after each bootstrap
/// resample with how many are done.
pub fn discover_checkpoint(
    mnist: &Mnist,
    ck: &Checkpoint,
    model_path: &Path,
    model_sha256: &str,
    task: &Task,
    settings: &DiscoverySettings,
    progress: &mut dyn FnMut(usize),
) -> Result<DiscoverOutput, StudyError> {
    let split = settings.split.of(mnist);
    check_fits(ck, split, settings.split)?;
    let pairs = PairedDataset::new(split, task, settings.config.seed)?;
    let source = ModelSource {
        model: &ck.model,
        path: &model_path.display().to_string(),
        sha256: model_sha256,
        regime: ck.meta.as_ref().map(|m| m.config.regime.to_string()),
    };
    discover_pairs(mnist, &source, task, pairs.pairs, settings, progress)
}

/// The model a discovery runs on and how its output names it.
#[derive(Debug, Clone)]
pub struct ModelSource<'a> {
    /// The network.
    pub model: &'a Mlp,
    /// Its file as given (or a description, for a model never saved).
    pub path: &'a str,
    /// SHA-256 of its safetensors bytes.
    pub sha256: &'a str,
    /// Its training regime, where known.
    pub regime: Option<String>,
}

/// Discovery on given pairs (indices into `settings.split` of `mnist`,
/// which must fit the model): what [`discover_checkpoint`] runs once it has
/// drawn the task's pairs, and what a caller with pairs of its own runs.
pub fn discover_pairs(
    mnist: &Mnist,
    source: &ModelSource<'_>,
    task: &Task,
    pairs: Vec<Pair>,
    settings: &DiscoverySettings,
    progress: &mut dyn FnMut(usize),
) -> Result<DiscoverOutput, StudyError> {
    let split = settings.split.of(mnist);
    split.check_fits(&settings.split.to_string(), source.model.n_inputs(), source.model.n_classes())?;
    if let Some(p) = pairs.iter().find(|p| p.clean >= split.len() || p.corrupted >= split.len()) {
        return Err(StudyError::Invalid(format!(
            "pair ({}, {}) indexes past the {} split's {} images",
            p.clean,
            p.corrupted,
            settings.split,
            split.len()
        )));
    }
    let images = TaskImages::from_pairs(split, &pairs);
    let t = Instant::now();
    let optimal = match settings.config.ablation {
        Ablation::Optimal => {
            Some(optimal_ablation(mnist, source.model, task, settings.config.seed, DEFAULT_OPTIMAL_PAIRS, None)?)
        }
        _ => None,
    };
    let report = discover_with(source.model, &images, &settings.config, optimal.as_ref(), progress)?;
    let optimal_fit = match &optimal {
        Some(o) => Some(
            o.joint(source.model, &Circuit::new(source.model, report.selection.nodes.clone(), settings.config.eps)?)?
                .as_ref()
                .clone(),
        ),
        None => None,
    };
    let total_s = t.elapsed().as_secs_f64();
    let s = &report.summary;
    crate::error::ensure_finite(&[
        ("logit difference", s.logit_difference.mean),
        ("accuracy", s.accuracy.mean),
        ("sparsity", s.sparsity.mean),
    ])?;
    Ok(DiscoverOutput {
        schema: DISCOVER_SCHEMA.into(),
        inputs: DiscoverInputs {
            model: source.path.to_string(),
            model_sha256: source.sha256.to_string(),
            regime: source.regime.clone(),
            activation: source.model.activation.to_string(),
            sizes: source.model.sizes(),
            task: task.clone(),
            flags: settings.clone(),
            data_dir: mnist.dir.display().to_string(),
            data_checksums: mnist.checksums.clone(),
        },
        pairs,
        notes: selection_notes(&report),
        report,
        total_s,
        optimal: optimal.map(|o| o.constants().clone()),
        optimal_fit,
    })
}

/// Dead neurons, what the rule kept of them, and the live neurons it left
/// out, per hidden layer, in words.
fn selection_notes(report: &DiscoveryReport) -> Vec<String> {
    let sel = &report.selection;
    (0..sel.nodes.len())
        .map(|h| {
            let width = report.scores.layers[h].len();
            let kept = sel.nodes[h].len();
            let mut parts = vec![format!(
                "hidden layer {}: kept {kept} of {width} neurons ({}); {} of the {width} are dead (patching them leaves the baseline unchanged)",
                h + 1,
                sel.rule,
                sel.dead[h].len()
            )];
            if sel.dead_kept[h] > 0 {
                parts.push(format!(
                    "{} of the kept neurons are dead, chosen by the lower-index tie rule only to fill K (the live-only rule leaves them out)",
                    sel.dead_kept[h]
                ));
            } else if sel.decided_by_tie[h] > 0 {
                parts.push(format!("{} kept neurons were chosen by the lower-index tie rule", sel.decided_by_tie[h]));
            }
            if let SelectionRule::TopK { live_only: true, k } = &sel.rule {
                let k = if k.len() == 1 { k[0] } else { k[h] };
                if kept < k {
                    parts.push(format!("only {kept} live neurons to fill K = {k}"));
                }
            }
            if sel.harmful_left_out[h] > 0 {
                parts.push(format!(
                    "{} live neurons with a negative effect (their patch moves the logits away from the clean run) were left out",
                    sel.harmful_left_out[h]
                ));
            }
            parts.join("; ")
        })
        .collect()
}
