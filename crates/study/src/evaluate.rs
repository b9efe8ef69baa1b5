//! A circuit the user chose, scored like a discovered one: on the task's
//! pairs, its faithfulness (STUDY §8: the headline, on all pairs; over
//! bootstrap resamples beside it), its logit difference, accuracy and
//! faithfulness under every ablation (STUDY §5, §12), and against random
//! circuits of its size (STUDY §10).

use std::time::Instant;

use modcirc_acdc::{
    faithfulness, faithfulness_under, random_circuits, random_edge_circuits, Ablation, AcdcError, Circuit,
    PatchingSweep, Pool, RandomCircuits, SelectionRule, TaskImages, DEFAULT_BOOTSTRAPS, DEFAULT_OPTIMAL_PAIRS,
    DEFAULT_RANDOM_CIRCUITS, DEFAULT_SAMPLE,
};
use modcirc_dataset::{Bootstrap, Mnist, PairedDataset, Task};
use modcirc_metrics::Summary;
use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::discovery::{optimal_ablation, Split};
use crate::StudyError;

/// Version of the `evaluate` JSON.
pub const EVALUATE_SCHEMA: &str = "modcirc.evaluate/1";

/// A circuit as the user gives it: in JSON `{"nodes": [[0, 5], [3]], "eps":
/// 0.01}` (eps defaults to the study's) or `{"edges": [[0, 5, 401], ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum ChosenCircuit {
    /// Neurons kept per hidden layer, with the eps edges between them (STUDY §5).
    Nodes {
        /// Kept neurons of each hidden layer (0-based indices).
        nodes: Vec<Vec<usize>>,
        /// The edge threshold, relative to each layer's largest |weight|.
        #[serde(default = "default_eps")]
        eps: f64,
    },
    /// Weights `[layer, output, input]` (layer 0 the first `Linear`), the
    /// hidden neurons they touch.
    Edges {
        /// The kept weights.
        edges: Vec<[usize; 3]>,
    },
}

fn default_eps() -> f64 {
    modcirc_acdc::DEFAULT_EPS
}

impl ChosenCircuit {
    /// Neurons per hidden layer written `3,17,42/5,9` (layers separated by
    /// `/`, an empty layer as nothing between them), with edge threshold `eps`.
    pub fn nodes_from_spec(spec: &str, eps: f64) -> Result<ChosenCircuit, StudyError> {
        let nodes = spec
            .split('/')
            .enumerate()
            .map(|(h, layer)| {
                layer
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| {
                        t.parse::<usize>().map_err(|_| {
                            StudyError::Invalid(format!(
                                "hidden layer {}: {t:?} is not a neuron index (write layers as 3,17,42/5,9)",
                                h + 1
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ChosenCircuit::Nodes { nodes, eps })
    }

    /// The circuit on `model`, after checking every index against its
    /// shape (naming the first that does not fit) and refusing repeats.
    pub fn build(&self, model: &Mlp) -> Result<Circuit, StudyError> {
        let bad = |m: String| Err(StudyError::Invalid(m));
        let hidden = model.layers.len() - 1;
        match self {
            ChosenCircuit::Nodes { nodes, eps } => {
                if nodes.len() != hidden {
                    return bad(format!("the circuit lists {} hidden layers; the model has {hidden}", nodes.len()));
                }
                for (h, layer) in nodes.iter().enumerate() {
                    let width = model.layers[h].n_out;
                    if let Some(i) = layer.iter().find(|&&i| i >= width) {
                        return bad(format!("hidden layer {}: neuron {i} is past its {width} neurons", h + 1));
                    }
                    let mut sorted = layer.clone();
                    sorted.sort_unstable();
                    if sorted.windows(2).any(|w| w[0] == w[1]) {
                        return bad(format!("hidden layer {}: a neuron is listed twice", h + 1));
                    }
                }
                if !(0.0..1.0).contains(eps) {
                    return bad(format!("eps = {eps}: must be in [0, 1)"));
                }
                let sorted = nodes.iter().map(|l| {
                    let mut l = l.clone();
                    l.sort_unstable();
                    l
                });
                Ok(Circuit::new(model, sorted.collect(), *eps)?)
            }
            ChosenCircuit::Edges { edges } => {
                let mut mask: Vec<Vec<bool>> = model.layers.iter().map(|l| vec![false; l.weight.len()]).collect();
                for &[l, o, i] in edges {
                    let Some(layer) = model.layers.get(l) else {
                        return bad(format!(
                            "edge [{l}, {o}, {i}]: layer {l} is past the model's {} layers",
                            hidden + 1
                        ));
                    };
                    if o >= layer.n_out || i >= layer.n_in {
                        return bad(format!(
                            "edge [{l}, {o}, {i}]: layer {l} maps {} inputs to {} outputs",
                            layer.n_in, layer.n_out
                        ));
                    }
                    let at = &mut mask[l][o * layer.n_in + i];
                    if *at {
                        return bad(format!("edge [{l}, {o}, {i}] is listed twice"));
                    }
                    *at = true;
                }
                Ok(Circuit::from_edges(model, &mask)?)
            }
        }
    }
}

/// How a chosen circuit is scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateSettings {
    /// The split the task's pairs come from.
    pub split: Split,
    /// Seeds the pairing shuffle, the bootstrap, the random circuits and
    /// optimal ablation's fitting pairs.
    pub seed: u64,
    /// Bootstrap resamples of the pairs.
    pub bootstraps: usize,
    /// Pairs per resample.
    pub sample: usize,
    /// Random circuits of its size (R).
    pub random: usize,
    /// Training pairs optimal ablation's constants are fitted on.
    pub optimal_pairs: usize,
}

impl Default for EvaluateSettings {
    fn default() -> Self {
        EvaluateSettings {
            split: Split::Test,
            seed: 0,
            bootstraps: DEFAULT_BOOTSTRAPS,
            sample: DEFAULT_SAMPLE,
            random: DEFAULT_RANDOM_CIRCUITS,
            optimal_pairs: DEFAULT_OPTIMAL_PAIRS,
        }
    }
}

/// The circuit under one ablation, on all pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UnderAblation {
    /// The ablation.
    pub ablation: Ablation,
    /// Distance of its logits to the model's (lower is better).
    pub logit_difference: f64,
    /// Its accuracy on the clean and corrupted images.
    pub accuracy: f64,
    /// Faithfulness under this ablation (removed edges carrying its values,
    /// the empty circuit under it as the floor); `None` where undefined.
    pub faithfulness_under: Option<f64>,
}

/// A chosen circuit, scored: `evaluate.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// [`EVALUATE_SCHEMA`].
    pub schema: String,
    /// The task.
    pub task: Task,
    /// The model, as given.
    pub model: String,
    /// The SHA-256 of its bytes.
    pub model_sha256: String,
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// The settings.
    pub settings: EvaluateSettings,
    /// The task's pairs.
    pub pairs: usize,
    /// The circuit, as given.
    pub circuit: ChosenCircuit,
    /// Hidden neurons it holds per layer.
    pub kept: Vec<usize>,
    /// Its edges.
    pub edges: usize,
    /// The model's weights.
    pub weights: usize,
    /// `1 − edges / weights`.
    pub sparsity: f64,
    /// The headline: its faithfulness on all pairs, removed edges carrying
    /// corrupted values (STUDY §8); `None` where the model answers clean
    /// and corrupted images alike.
    pub faithfulness: Option<f64>,
    /// The same faithfulness, bootstrap mean and 95% interval over
    /// resamples of the pairs (the circuit fixed).
    pub faithfulness_resampled: Option<Summary>,
    /// The model's accuracy on the pairs' images.
    pub model_accuracy: f64,
    /// Under each ablation.
    pub ablations: Vec<UnderAblation>,
    /// Against random circuits of its size, under zero ablation: from live
    /// neurons and from all (a node circuit), or from all weights (an edge circuit).
    pub random: Vec<RandomCircuits>,
    /// Wall time.
    pub seconds: f64,
}

/// A model to evaluate a circuit on, as a front end read it.
#[derive(Debug, Clone, Copy)]
pub struct EvaluateModel<'a> {
    /// The network.
    pub model: &'a Mlp,
    /// Its file, as given.
    pub path: &'a str,
    /// The SHA-256 of its bytes.
    pub sha256: &'a str,
}

/// `f` where defined, `None` where faithfulness is undefined on these pairs.
fn defined(f: Result<f64, AcdcError>) -> Result<Option<f64>, StudyError> {
    match f {
        Ok(f) => Ok(Some(f)),
        Err(AcdcError::Degenerate(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Scores `circuit` on `m` for `task`: the command line's `evaluate` and
/// Python's `evaluate` alike.
pub fn evaluate(
    mnist: &Mnist,
    m: EvaluateModel<'_>,
    task: &Task,
    circuit: &ChosenCircuit,
    settings: &EvaluateSettings,
) -> Result<Evaluation, StudyError> {
    let t = Instant::now();
    if settings.random == 0 || settings.bootstraps == 0 || settings.sample == 0 {
        return Err(StudyError::Invalid("random, bootstraps and sample must each be at least 1".into()));
    }
    let model = m.model;
    let c = circuit.build(model)?;
    let split = settings.split.of(mnist);
    split.check_fits(&settings.split.to_string(), model.n_inputs(), model.n_classes())?;
    let pairs = PairedDataset::new(split, task, settings.seed)?.pairs;
    let images = TaskImages::from_pairs(split, &pairs);
    let optimal = optimal_ablation(mnist, model, task, settings.seed, settings.optimal_pairs, None)?;
    let sweep = PatchingSweep::new(model, &images)?.with_optimal(optimal)?;
    let headline = defined(faithfulness(&sweep, &c))?;
    let sampler = Bootstrap::new(images.n, settings.sample, settings.seed)?;
    let mut resampled = Vec::with_capacity(settings.bootstraps);
    for b in 0..settings.bootstraps {
        resampled.extend(defined(faithfulness(&sweep.subset(&sampler.resample(b)), &c))?);
    }
    let ablations = Ablation::ALL
        .into_iter()
        .map(|a| {
            let e = c.evaluate(&sweep, a)?;
            Ok(UnderAblation {
                ablation: a,
                logit_difference: e.logit_difference,
                accuracy: e.accuracy,
                faithfulness_under: defined(faithfulness_under(&sweep, &c, a))?,
            })
        })
        .collect::<Result<Vec<_>, StudyError>>()?;
    let random = random_controls(&sweep, &c, circuit, settings)?;
    let metrics: Vec<(&str, f64)> = ablations
        .iter()
        .flat_map(|a| [("logit difference", a.logit_difference), ("accuracy", a.accuracy)])
        .chain(headline.map(|f| ("faithfulness", f)))
        .collect();
    crate::error::ensure_finite(&metrics)?;
    Ok(Evaluation {
        schema: EVALUATE_SCHEMA.into(),
        task: task.clone(),
        model: m.path.to_string(),
        model_sha256: m.sha256.to_string(),
        sizes: model.sizes(),
        settings: settings.clone(),
        pairs: images.n,
        circuit: circuit.clone(),
        kept: c.nodes.iter().map(Vec::len).collect(),
        edges: c.n_edges(),
        weights: model.n_weights(),
        sparsity: c.sparsity(),
        faithfulness: headline,
        faithfulness_resampled: Summary::of(&resampled),
        model_accuracy: sweep.model_accuracy(),
        ablations,
        random,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// The circuit against random circuits of its size (STUDY §10), under zero
/// ablation: of as many neurons per layer, from live neurons and from all
/// (a node circuit), or of as many weights per layer (an edge circuit).
fn random_controls(
    sweep: &PatchingSweep<'_>,
    c: &Circuit,
    circuit: &ChosenCircuit,
    settings: &EvaluateSettings,
) -> Result<Vec<RandomCircuits>, StudyError> {
    Ok(match circuit {
        ChosenCircuit::Nodes { eps, .. } => {
            let counts: Vec<usize> = c.nodes.iter().map(Vec::len).collect();
            let mut selection = sweep.scores().select_by(&SelectionRule::TopK { k: counts, live_only: false })?;
            selection.nodes = c.nodes.clone();
            [Pool::Live, Pool::All]
                .into_iter()
                .map(|pool| {
                    random_circuits(sweep, &selection, *eps, Ablation::Zero, pool, settings.random, settings.seed)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        ChosenCircuit::Edges { .. } => {
            vec![random_edge_circuits(sweep, c, Ablation::Zero, settings.random, settings.seed)?]
        }
    })
}

#[cfg(test)]
mod tests {
    use modcirc_dataset::{ChecksumPolicy, Rng};
    use modcirc_mlp::Activation;

    use super::*;

    /// The circuit's numbers computed again by plain loops: the hidden
    /// neurons outside it carry their corrupted values (faithfulness), or
    /// nothing (zero ablation's logit difference).
    #[test]
    fn a_chosen_circuit_scores_what_plain_loops_give_and_its_edge_list_scores_the_same() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
        let mnist = Mnist::load(dir, ChecksumPolicy::Auto).unwrap();
        let mut rng = Rng::new(5);
        let model = Mlp::init(&[784, 3, 10], Activation::Relu, &mut || rng.next_f64()).unwrap();
        let task = Task::parse("3:8,8:3").unwrap();
        let settings =
            EvaluateSettings { bootstraps: 4, sample: 100, random: 20, optimal_pairs: 50, ..Default::default() };
        let m = EvaluateModel { model: &model, path: "hand-made", sha256: "0" };
        let kept = [0usize, 2];
        let nodes = ChosenCircuit::Nodes { nodes: vec![kept.to_vec()], eps: 0.0 };
        let e = evaluate(&mnist, m, &task, &nodes, &settings).unwrap();

        let (l1, l2) = (&model.layers[0], &model.layers[1]);
        let hidden = |x: &[f32]| -> Vec<f64> {
            (0..3)
                .map(|o| {
                    let z: f64 =
                        (0..784).map(|i| l1.weight[o * 784 + i] as f64 * x[i] as f64).sum::<f64>() + l1.bias[o] as f64;
                    z.max(0.0)
                })
                .collect()
        };
        let logits = |h: &[f64]| -> Vec<f64> {
            (0..10)
                .map(|o| (0..3).map(|i| l2.weight[o * 3 + i] as f64 * h[i]).sum::<f64>() + l2.bias[o] as f64)
                .collect()
        };
        let pairs = PairedDataset::new(&mnist.test, &task, 0).unwrap().pairs;
        let image = |i: usize| &mnist.test.images[i * 784..(i + 1) * 784];
        let (mut full, mut empty, mut circuit, mut distance) = (0.0, 0.0, 0.0, 0.0);
        for p in &pairs {
            let (hc, hr) = (hidden(image(p.clean)), hidden(image(p.corrupted)));
            let patched: Vec<f64> = (0..3).map(|i| if kept.contains(&i) { hc[i] } else { hr[i] }).collect();
            let metric = |h: &[f64]| {
                let l = logits(h);
                l[mnist.test.labels[p.clean] as usize] - l[mnist.test.labels[p.corrupted] as usize]
            };
            (full, empty, circuit) = (full + metric(&hc), empty + metric(&hr), circuit + metric(&patched));
            for h in [&hc, &hr] {
                let zeroed: Vec<f64> = (0..3).map(|i| if kept.contains(&i) { h[i] } else { 0.0 }).collect();
                let (a, b) = (logits(&zeroed), logits(h));
                distance += a.iter().zip(&b).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            }
        }
        let want = (circuit - empty) / (full - empty);
        assert!((e.faithfulness.unwrap() - want).abs() < 1e-4, "{:?} against {want}", e.faithfulness);
        let zero = e.ablations.iter().find(|a| a.ablation == Ablation::Zero).unwrap();
        let want_distance = distance / (2 * pairs.len()) as f64;
        assert!((zero.logit_difference - want_distance).abs() < 1e-3 * want_distance.max(1.0));
        assert_eq!((e.kept.clone(), e.edges, e.weights), (vec![2], 2 * 784 + 2 * 10, 3 * 784 + 3 * 10));
        assert_eq!(e.ablations.len(), 4);
        for r in &e.random {
            let p = r.faithfulness.unwrap().p_value;
            assert!((1.0 / 21.0..=1.0).contains(&p), "{p}");
        }

        // The same circuit as its edges: every weight into and out of neurons 0 and 2.
        let mut edges = Vec::new();
        for &o in &kept {
            edges.extend((0..784).map(|i| [0, o, i]));
            edges.extend((0..10).map(|d| [1, d, o]));
        }
        let by_edges = evaluate(&mnist, m, &task, &ChosenCircuit::Edges { edges }, &settings).unwrap();
        assert!((by_edges.faithfulness.unwrap() - want).abs() < 1e-4);
        assert_eq!(by_edges.edges, e.edges);
        assert_eq!(by_edges.random.len(), 1);
        assert_eq!(by_edges.random[0].pool, Pool::Edges);

        // Indices past the model are refused, naming the layer.
        let past = ChosenCircuit::Nodes { nodes: vec![vec![3]], eps: 0.0 };
        let err = evaluate(&mnist, m, &task, &past, &settings).unwrap_err().to_string();
        assert!(err.contains("hidden layer 1") && err.contains("neuron 3"), "{err}");
        let bad = ChosenCircuit::Edges { edges: vec![[1, 10, 0]] };
        assert!(evaluate(&mnist, m, &task, &bad, &settings).unwrap_err().to_string().contains("edge [1, 10, 0]"));
    }
}
