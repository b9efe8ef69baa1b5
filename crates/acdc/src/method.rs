//! A discovery method as a value ([`Method`]): parsed by its kebab-case
//! name with its defaults, serialized with its options, and run by one
//! call ([`Method::scores`]) that gives every method's scores in one shape
//! ([`MethodScores`]). Judging the scores (against faithfulness or a known
//! truth) is the study crate's; adding a method is a variant here, its arm
//! in `scores`, and its name.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{
    edge_acdc, edge_attribution, edge_attribution_ig, learn_masks, learn_masks_from, node_attribution, touched_neurons,
    warm_logits, AcdcConfig, AcdcError, EdgeScores, IgPath, LearnedMasks, MaskConfig, MaskUnit, NeuronScores,
    PatchingSweep, DEFAULT_IG_STEPS, MAX_IG_STEPS,
};

/// Pairs the learned masks train on by default (the task's first; the
/// circuits are then judged on all of its pairs).
pub const DEFAULT_MASK_PAIRS: usize = 100;

/// Pairs edge-level ACDC runs on by default (the task's first).
pub const DEFAULT_ACDC_PAIRS: usize = 100;

/// An ensemble's default members (STUDY §12).
fn default_members() -> Vec<Method> {
    vec![
        Method::EapIg { steps: DEFAULT_IG_STEPS },
        Method::EapIgActivations { steps: DEFAULT_IG_STEPS },
        Method::Mask { config: MaskConfig::default(), pairs: DEFAULT_MASK_PAIRS },
    ]
}

/// A circuit-discovery method and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Method {
    /// Exact activation patching (STUDY §4): each neuron's effect
    /// `|baseline − LD|`; it selects the K lowest LD per layer.
    Patching,
    /// Attribution patching of each neuron (STUDY §8): `|s|`.
    Attribution,
    /// Edge attribution patching (STUDY §8): each edge's score.
    Eap,
    /// EAP with integrated gradients on the inputs' path (STUDY §12).
    EapIg {
        /// Points on the path.
        #[serde(default = "default_ig_steps")]
        steps: usize,
    },
    /// EAP-IG on the activations' path (STUDY §12).
    EapIgActivations {
        /// Points on the path.
        #[serde(default = "default_ig_steps")]
        steps: usize,
    },
    /// Learned edge masks (STUDY §12): the sweep's mask scores.
    Mask {
        /// The sweep of penalties.
        #[serde(default)]
        config: MaskConfig,
        /// The pairs they train on: the task's first this many (named
        /// `training_pairs` in JSON, so that it is not read as the task's).
        #[serde(default = "default_mask_pairs", rename = "training_pairs", alias = "pairs")]
        pairs: usize,
    },
    /// Learned edge masks whose logits start from EAP-IG's scores on the
    /// same pairs ([`crate::warm_logits`]; STUDY §12's warm start).
    MaskWarm {
        /// The sweep of penalties.
        #[serde(default)]
        config: MaskConfig,
        /// The pairs they train on: the task's first this many (named
        /// `training_pairs` in JSON, so that it is not read as the task's).
        #[serde(default = "default_mask_pairs", rename = "training_pairs", alias = "pairs")]
        pairs: usize,
        /// EAP-IG's points on the path.
        #[serde(default = "default_ig_steps")]
        steps: usize,
    },
    /// An ensemble (STUDY §12): each edge's score the mean of its
    /// normalised ranks (rank / number of edges, ties at their mean rank)
    /// under the member methods, each neuron's likewise.
    Ensemble {
        /// The members: edge methods, by default EAP-IG on both paths and
        /// the learned masks.
        #[serde(default = "default_members")]
        members: Vec<Method>,
    },
    /// Edge-level ACDC (STUDY §8): the edges it keeps.
    Acdc {
        /// Its options.
        #[serde(default)]
        config: AcdcConfig,
        /// The pairs it runs on: the task's first this many.
        #[serde(default = "default_acdc_pairs")]
        pairs: usize,
    },
}

fn default_ig_steps() -> usize {
    DEFAULT_IG_STEPS
}

fn default_mask_pairs() -> usize {
    DEFAULT_MASK_PAIRS
}

fn default_acdc_pairs() -> usize {
    DEFAULT_ACDC_PAIRS
}

impl Method {
    /// Every method's name, in the order tables list them.
    pub const NAMES: [&'static str; 9] =
        ["patching", "attribution", "eap", "acdc", "eap-ig", "eap-ig-activations", "mask", "mask-warm", "ensemble"];

    /// Every method with its defaults, in [`Method::NAMES`]' order.
    pub fn all() -> Vec<Method> {
        Method::NAMES.iter().map(|n| n.parse().expect("a listed name")).collect()
    }

    /// Its kebab-case name.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Patching => "patching",
            Method::Attribution => "attribution",
            Method::Eap => "eap",
            Method::EapIg { .. } => "eap-ig",
            Method::EapIgActivations { .. } => "eap-ig-activations",
            Method::Mask { .. } => "mask",
            Method::MaskWarm { .. } => "mask-warm",
            Method::Ensemble { .. } => "ensemble",
            Method::Acdc { .. } => "acdc",
        }
    }

    /// Bumped when a change changes this method's scores, so that caches
    /// keyed by it recompute only its units (mask 2: a neuron's score the
    /// largest of its edges' masks, not their sum; patching 2: a dead
    /// neuron's score 0, not its rounding).
    pub fn revision(&self) -> u32 {
        match self {
            Method::Mask { .. } | Method::Patching => 2,
            _ => 1,
        }
    }

    /// Whether its scores are trained (learned masks, or an ensemble with
    /// them): the methods that cost seconds, not milliseconds, per run.
    pub fn trains(&self) -> bool {
        match self {
            Method::Mask { .. } | Method::MaskWarm { .. } => true,
            Method::Ensemble { members } => members.iter().any(Method::trains),
            _ => false,
        }
    }

    /// Whether it scores edges (and so neurons by their edges).
    pub fn ranks_edges(&self) -> bool {
        !matches!(self, Method::Patching | Method::Attribution)
    }

    /// Refuses options out of range, naming them.
    pub fn validate(&self) -> Result<(), AcdcError> {
        let bad = |m: String| Err(AcdcError::BadOption(format!("{}: {m}", self.name())));
        match self {
            Method::EapIg { steps } | Method::EapIgActivations { steps } | Method::MaskWarm { steps, .. }
                if *steps == 0 || *steps > MAX_IG_STEPS =>
            {
                bad(format!("steps = {steps}: the points on the path must be in 1..={MAX_IG_STEPS}"))
            }
            Method::Mask { config, pairs } | Method::MaskWarm { config, pairs, .. } => {
                config.validate()?;
                if config.unit != MaskUnit::Edges {
                    return bad("its masks are edge masks".into());
                }
                if *pairs == 0 {
                    return bad("pairs = 0: the masks train on at least one pair".into());
                }
                Ok(())
            }
            Method::Acdc { config, pairs } => {
                config.validate()?;
                if *pairs == 0 {
                    return bad("pairs = 0: ACDC runs on at least one pair".into());
                }
                Ok(())
            }
            Method::Ensemble { members } => {
                if members.is_empty() {
                    return bad("members = []: an ensemble has at least one member".into());
                }
                for m in members {
                    if matches!(m, Method::Ensemble { .. }) || !m.ranks_edges() {
                        return bad(format!("member {m}: the members are edge methods, not ensembles"));
                    }
                    m.validate()?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Its scores on `sweep`'s model and pairs.
    pub fn scores(&self, sweep: &PatchingSweep<'_>) -> Result<MethodScores, AcdcError> {
        self.validate()?;
        let t = Instant::now();
        let model = sweep.model();
        let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
        let abs = |layers: &[Vec<f64>]| -> Vec<Vec<f64>> {
            layers.iter().map(|l| l.iter().map(|s| s.abs()).collect()).collect()
        };
        let mut out = MethodScores {
            method: self.clone(),
            nodes: Vec::new(),
            edges: None,
            patching: None,
            kept_edges: None,
            masks: None,
            pairs: sweep.len(),
            seconds: 0.0,
        };
        match self {
            Method::Patching => {
                let scores = sweep.scores();
                out.nodes = scores.magnitudes();
                out.patching = Some(scores);
            }
            Method::Attribution => out.nodes = abs(&node_attribution(sweep)?.layers),
            Method::Eap => out.edges = Some(edge_attribution(sweep)?),
            Method::EapIg { steps } => out.edges = Some(edge_attribution_ig(sweep, *steps, IgPath::Inputs)?),
            Method::EapIgActivations { steps } => {
                out.edges = Some(edge_attribution_ig(sweep, *steps, IgPath::Activations)?)
            }
            Method::Mask { config, pairs } | Method::MaskWarm { config, pairs, .. } => {
                let learned = on_head(sweep, *pairs, |s| match self {
                    Method::MaskWarm { steps, .. } => {
                        let start = warm_logits(&edge_attribution_ig(s, *steps, IgPath::Inputs)?);
                        learn_masks_from(s, config, Some(&start))
                    }
                    _ => learn_masks(s, config),
                })?;
                out.pairs = sweep.len().min(*pairs);
                out.edges =
                    Some(learned.edge_scores().ok_or_else(|| AcdcError::BadOption("edge masks expected".into()))?);
                // Not summed over its edges (STUDY §12): the largest of them.
                out.nodes = learned.node_scores().layers;
                out.masks = Some(learned);
            }
            Method::Ensemble { members } => {
                let scored = members.iter().map(|m| m.scores(sweep)).collect::<Result<Vec<_>, _>>()?;
                (out.edges, out.nodes) = ensemble_of(&scored);
            }
            Method::Acdc { config, pairs } => {
                let found = on_head(sweep, *pairs, |s| edge_acdc(s, config))?;
                out.pairs = sweep.len().min(*pairs);
                let binary = |m: &[Vec<bool>]| -> Vec<Vec<f64>> {
                    m.iter().map(|l| l.iter().map(|&k| k as u8 as f64).collect()).collect()
                };
                let kept = touched_neurons(&widths, edge_list(model, &found.mask));
                out.nodes = binary(&nodes_mask(&widths, &kept));
                out.edges = Some(EdgeScores {
                    layers: found.mask.iter().map(|l| l.iter().map(|&k| k as u8 as f32).collect()).collect(),
                });
                out.kept_edges = Some(found.mask);
            }
        }
        if out.nodes.is_empty() {
            let edges = out.edges.as_ref().expect("an edge method's scores");
            out.nodes = edge_node_sums(model, edges);
        }
        out.seconds = t.elapsed().as_secs_f64();
        Ok(out)
    }
}

impl Method {
    /// The scores of this method where it is an ensemble whose members are
    /// all among `scored` (scores made on the same sweep): combined without
    /// running them again; `None` otherwise.
    pub fn ensemble_from(&self, scored: &[MethodScores]) -> Option<MethodScores> {
        let Method::Ensemble { members } = self else { return None };
        let t = Instant::now();
        let found: Vec<MethodScores> =
            members.iter().map(|m| scored.iter().find(|s| &s.method == m).cloned()).collect::<Option<_>>()?;
        let (edges, nodes) = ensemble_of(&found);
        Some(MethodScores {
            method: self.clone(),
            nodes,
            edges,
            patching: None,
            kept_edges: None,
            masks: None,
            pairs: found.iter().map(|s| s.pairs).max().unwrap_or(0),
            // Its members' time and its own: what it would cost alone.
            seconds: found.iter().map(|s| s.seconds).sum::<f64>() + t.elapsed().as_secs_f64(),
        })
    }
}

/// Each of `methods`' scores on `sweep`, in order: an ensemble whose
/// members come before it is combined from theirs, not run again.
pub fn score_methods(methods: &[Method], sweep: &PatchingSweep<'_>) -> Result<Vec<MethodScores>, AcdcError> {
    let mut out: Vec<MethodScores> = Vec::with_capacity(methods.len());
    for m in methods {
        let scored = match m.ensemble_from(&out) {
            Some(s) => s,
            None => m.scores(sweep)?,
        };
        out.push(scored);
    }
    Ok(out)
}

/// An ensemble's edge and node scores from its members' (STUDY §12).
fn ensemble_of(scored: &[MethodScores]) -> (Option<EdgeScores>, Vec<Vec<f64>>) {
    let edges: Vec<Vec<Vec<f32>>> = scored.iter().filter_map(|m| m.edges.as_ref().map(|e| e.layers.clone())).collect();
    let edges = EdgeScores {
        layers: mean_ranks(&edges, |x: &f32| x.abs() as f64)
            .into_iter()
            .map(|l| l.into_iter().map(|r| r as f32).collect())
            .collect(),
    };
    let nodes = mean_ranks(&scored.iter().map(|m| m.nodes.clone()).collect::<Vec<_>>(), |x: &f64| *x);
    (Some(edges), nodes)
}

/// Each element's mean over `sets` (same shape each) of its normalised
/// rank among all the set's elements by `key` (rank / count, ascending,
/// ties at their mean rank): the ensemble's score (STUDY §12).
fn mean_ranks<T>(sets: &[Vec<Vec<T>>], key: impl Fn(&T) -> f64) -> Vec<Vec<f64>> {
    let Some(first) = sets.first() else { return Vec::new() };
    let mut sum: Vec<Vec<f64>> = first.iter().map(|l| vec![0.0; l.len()]).collect();
    for set in sets {
        let flat: Vec<f64> = set.iter().flatten().map(&key).collect();
        let ranks = normalised_ranks(&flat);
        let mut at = 0;
        for layer in &mut sum {
            for v in layer.iter_mut() {
                *v += ranks[at];
                at += 1;
            }
        }
    }
    let n = sets.len() as f64;
    sum.iter_mut().flatten().for_each(|v| *v /= n);
    sum
}

/// Each value's rank among `values` (1 for the least), ties at their mean
/// rank, divided by their number.
pub(crate) fn normalised_ranks(values: &[f64]) -> Vec<f64> {
    let n = values.len() as f64;
    modcirc_metrics::ranks(values).into_iter().map(|r| r / n).collect()
}

/// `f` on the first `pairs` of `sweep`'s pairs (the sweep itself where it
/// has no more).
fn on_head<T>(
    sweep: &PatchingSweep<'_>,
    pairs: usize,
    f: impl FnOnce(&PatchingSweep<'_>) -> Result<T, AcdcError>,
) -> Result<T, AcdcError> {
    if pairs >= sweep.len() {
        return f(sweep);
    }
    let head: Vec<usize> = (0..pairs).collect();
    f(&sweep.subset(&head))
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = AcdcError;

    /// A method by its name, with its defaults.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "patching" => Method::Patching,
            "attribution" => Method::Attribution,
            "eap" => Method::Eap,
            "eap-ig" => Method::EapIg { steps: DEFAULT_IG_STEPS },
            "eap-ig-activations" => Method::EapIgActivations { steps: DEFAULT_IG_STEPS },
            "mask" => Method::Mask { config: MaskConfig::default(), pairs: DEFAULT_MASK_PAIRS },
            "mask-warm" => {
                Method::MaskWarm { config: MaskConfig::default(), pairs: DEFAULT_MASK_PAIRS, steps: DEFAULT_IG_STEPS }
            }
            "acdc" => Method::Acdc { config: AcdcConfig::default(), pairs: DEFAULT_ACDC_PAIRS },
            "ensemble" => Method::Ensemble { members: default_members() },
            _ => {
                return Err(AcdcError::BadOption(format!(
                    "unknown method {s:?} (expected one of {})",
                    Method::NAMES.join(", ")
                )))
            }
        })
    }
}

/// What a method gives on one task: a score per neuron, and per edge
/// where it ranks edges.
#[derive(Debug, Clone)]
pub struct MethodScores {
    /// The method, with its options.
    pub method: Method,
    /// Per hidden layer, each neuron's importance (higher is more): an edge
    /// method's is the sum of `|s|` over the neuron's incoming and outgoing
    /// edges.
    pub nodes: Vec<Vec<f64>>,
    /// Per weight layer, each edge's signed score (`[o * n_in + i]`), for
    /// the methods that rank edges (ACDC's: 1 kept, 0 removed).
    pub edges: Option<EdgeScores>,
    /// Patching's scores per neuron, from which it selects its circuit.
    pub patching: Option<NeuronScores>,
    /// The edges the method keeps itself (ACDC's circuit).
    pub kept_edges: Option<Vec<Vec<bool>>>,
    /// The learned masks' sweep.
    pub masks: Option<LearnedMasks>,
    /// The pairs the scores came from.
    pub pairs: usize,
    /// Wall time of the scores.
    pub seconds: f64,
}

/// Each hidden neuron's score from edge scores: the sum of `|s|` over its
/// incoming and outgoing edges.
pub fn edge_node_sums(model: &modcirc_mlp::Mlp, edges: &EdgeScores) -> Vec<Vec<f64>> {
    let hidden = model.layers.len() - 1;
    (0..hidden)
        .map(|h| {
            let (into, out) = (&model.layers[h], &model.layers[h + 1]);
            (0..into.n_out)
                .map(|u| {
                    let incoming: f64 = (0..into.n_in).map(|i| edges.layers[h][u * into.n_in + i].abs() as f64).sum();
                    let outgoing: f64 =
                        (0..out.n_out).map(|o| edges.layers[h + 1][o * out.n_in + u].abs() as f64).sum();
                    incoming + outgoing
                })
                .collect()
        })
        .collect()
}

/// `[layer, output, input]` of every edge in `mask` (as
/// [`crate::Circuit::edge_mask`] lays it out).
pub fn edge_list(model: &modcirc_mlp::Mlp, mask: &[Vec<bool>]) -> Vec<[usize; 3]> {
    let mut out = Vec::new();
    for (l, (layer, m)) in model.layers.iter().zip(mask).enumerate() {
        out.extend(m.iter().enumerate().filter(|(_, k)| **k).map(|(idx, _)| [l, idx / layer.n_in, idx % layer.n_in]));
    }
    out
}

/// Per hidden layer of `widths`, whether each neuron is one of `nodes`.
pub fn nodes_mask(widths: &[usize], nodes: &[Vec<usize>]) -> Vec<Vec<bool>> {
    widths
        .iter()
        .zip(nodes)
        .map(|(&w, n)| {
            let mut v = vec![false; w];
            n.iter().for_each(|&i| v[i] = true);
            v
        })
        .collect()
}

/// The `k` highest `scores` of each layer, ties to the lower index.
pub fn top_k_per_layer(scores: &[Vec<f64>], k: usize) -> Vec<Vec<bool>> {
    scores
        .iter()
        .map(|s| {
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            let mut keep = vec![false; s.len()];
            order.into_iter().take(k).for_each(|i| keep[i] = true);
            keep
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_its_method_and_back() {
        for (name, method) in Method::NAMES.iter().zip(Method::all()) {
            assert_eq!(method.name(), *name);
            assert_eq!(method.to_string(), *name);
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), method, "{json}");
            // Its name alone gives its defaults.
            let bare: Method = serde_json::from_str(&format!("{{\"method\": \"{name}\"}}")).unwrap();
            assert_eq!(bare, method);
            method.validate().unwrap();
        }
        let e = "eap-gi".parse::<Method>().unwrap_err().to_string();
        assert!(e.contains("eap-gi") && e.contains("eap-ig-activations"), "{e}");
        assert!(Method::EapIg { steps: 0 }.validate().is_err());
        assert!(Method::Mask { config: MaskConfig::default(), pairs: 0 }.validate().is_err());
        assert!(serde_json::from_str::<Method>("{\"method\": \"eap-ig\", \"stpes\": 3}").is_err(), "a misspelt option");
        let nested = Method::Ensemble { members: vec![Method::Ensemble { members: vec![Method::Eap] }] };
        assert!(nested.validate().is_err());
        assert!(Method::Ensemble { members: vec![Method::Patching] }.validate().is_err(), "a node method");
        assert!(Method::Ensemble { members: Vec::new() }.validate().is_err());
    }

    #[test]
    fn ranks_are_normalised_with_ties_at_their_mean() {
        assert_eq!(normalised_ranks(&[0.3, 0.1, 0.3, 0.2]), [0.875, 0.25, 0.875, 0.5]);
        // Two members that disagree average out; one that agrees with itself keeps its order.
        let a = vec![vec![1.0, 2.0], vec![3.0]];
        let b = vec![vec![3.0, 2.0], vec![1.0]];
        let mean = mean_ranks(&[a.clone(), b], |x: &f64| *x);
        assert_eq!(mean, [vec![2.0 / 3.0, 2.0 / 3.0], vec![2.0 / 3.0]]);
        assert_eq!(mean_ranks(&[a], |x: &f64| *x), [vec![1.0 / 3.0, 2.0 / 3.0], vec![1.0]]);
    }
}
