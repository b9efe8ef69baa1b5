//! One judgement of a method's scores ([`modcirc_acdc::MethodScores`]),
//! whatever the method:
//!
//! * against faithfulness ([`judge_faithfulness`], STUDY §8 and §12): the
//!   faithfulness curve of its top-|s| edges (with CPR and CMD), and its
//!   circuit at a given size;
//! * against a known truth ([`judge_truth`], STUDY §11): node and edge
//!   AUROC, the node ROC, and the precision and recall of its circuit.
//!
//! The §8/§12 analysis, the planted scoring and the Boolean suite each run
//! their settings' methods through [`modcirc_acdc::Method::scores`] and
//! judge them here.

use modcirc_acdc::edge_list;
use modcirc_acdc::{
    faithfulness, faithfulness_curve, nodes_mask, smallest_edges, top_k_per_layer, touched_neurons, Circuit,
    FaithfulnessCurve, MethodScores, NeuronScores, PatchingSweep, DEFAULT_FRACTIONS,
};
use modcirc_metrics::{auroc, roc_tpr_at};
use serde::{Deserialize, Serialize};

use crate::StudyError;

/// The faithfulness an edge method's circuit must reach against a truth:
/// the smallest top-|s| edge set at or above it is its circuit.
pub const EAP_TARGET_FAITHFULNESS: f64 = 0.8;

/// The false-positive rates at which each ROC curve's true-positive rate is
/// kept (0, 0.02, …, 1), so curves of many models can be averaged.
pub fn roc_grid() -> Vec<f64> {
    (0..=50).map(|i| i as f64 / 50.0).collect()
}

/// One edge method of STUDY §8 or §12, judged like EAP: the faithfulness
/// of the circuits of its top-|s| edges over their size, with CPR and CMD.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdgeMethod {
    /// The method's name ([`modcirc_acdc::Method::name`]).
    pub method: String,
    /// Wall time of its scores (for masks, the whole sweep of penalties).
    pub seconds: f64,
    /// The pairs its scores came from (the masks' training pairs; all of
    /// the task's for the gradient methods).
    pub pairs: usize,
    /// Its faithfulness curve on all of the task's pairs.
    pub curve: FaithfulnessCurve,
    /// The top edges at the discovered circuit's size, `[layer, output, input]`.
    #[serde(default)]
    pub same_size_edges: Vec<[usize; 3]>,
    /// Their faithfulness on all pairs.
    pub same_size_faithfulness: f64,
    /// Learned masks only: each penalty's circuit (mask above one half),
    /// judged on all pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mask_points: Vec<MaskCircuit>,
    /// How its node scores agree with exact patching (STUDY §12); absent in
    /// results written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
    /// How stable its circuit is across the discovery's resamples (STUDY
    /// §12); absent in results written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stability: Option<crate::stability::Stability>,
}

/// How a method's node scores agree with exact patching's effects on the
/// same pairs (STUDY §12): what an approximation is worth, measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Spearman's ρ of its node scores against the exact effects
    /// `|baseline − LD|` over every hidden neuron (`None` where either is constant).
    pub rho: Option<f64>,
    /// The mean over hidden layers of the share of the K neurons of
    /// largest exact effect among its K of largest score.
    pub top_k_overlap: f64,
    /// K (the study's, at most the narrowest layer's width).
    pub k: usize,
}

/// `nodes`' agreement with `exact` (STUDY §12): ρ over every hidden neuron,
/// and the top-`k` overlap per layer (ties to the lower index, both sides);
/// a dead neuron's exact effect is 0.
pub fn agreement(nodes: &[Vec<f64>], exact: &NeuronScores, k: usize) -> Agreement {
    let effects = exact.magnitudes();
    let rho = modcirc_metrics::spearman(&nodes.concat(), &effects.concat());
    let top = |l: &[f64], k: usize| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..l.len()).collect();
        idx.sort_by(|&a, &b| l[b].total_cmp(&l[a]).then(a.cmp(&b)));
        idx.truncate(k);
        idx
    };
    let overlaps: Vec<f64> = nodes
        .iter()
        .zip(&effects)
        .map(|(n, e)| {
            let k = k.min(n.len()).max(1);
            let (a, b) = (top(n, k), top(e, k));
            a.iter().filter(|i| b.contains(i)).count() as f64 / k as f64
        })
        .collect();
    Agreement { rho, top_k_overlap: overlaps.iter().sum::<f64>() / overlaps.len().max(1) as f64, k }
}

/// One penalty of the learned-mask sweep and its circuit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaskCircuit {
    /// The penalty per kept edge.
    pub lambda: f64,
    /// Edges kept.
    pub edges: usize,
    /// `KL(model ‖ masked)` of the soft mask on the training pairs, nats.
    pub kl: f64,
    /// The circuit's faithfulness on all pairs.
    pub faithfulness: f64,
}

/// An edge method's scores judged on all of `sweep`'s pairs: its curve,
/// its `same_size` top edges, and each learned mask's circuit.
pub fn judge_faithfulness(
    sweep: &PatchingSweep<'_>,
    scores: &MethodScores,
    same_size: usize,
    exact: Option<&NeuronScores>,
) -> Result<EdgeMethod, StudyError> {
    let model = sweep.model();
    let method = scores.method.name();
    let edges = scores
        .edges
        .as_ref()
        .ok_or_else(|| StudyError::Invalid(format!("{method} scores no edges: its faithfulness curve is undefined")))?;
    let mask = edges.top_edges(same_size);
    let curve = faithfulness_curve(sweep, edges, &DEFAULT_FRACTIONS)?;
    let same_size_faithfulness = faithfulness(sweep, &Circuit::from_edges(model, &mask)?)?;
    crate::error::ensure_finite(&[
        ("CPR", curve.cpr),
        ("CMD", curve.cmd),
        ("same-size faithfulness", same_size_faithfulness),
    ])?;
    let mut mask_points = Vec::new();
    for p in scores.masks.iter().flat_map(|m| &m.points) {
        let f = faithfulness(sweep, &Circuit::from_edges(model, &p.mask)?)?;
        mask_points.push(MaskCircuit { lambda: p.lambda, edges: p.kept, kl: p.kl, faithfulness: f });
    }
    Ok(EdgeMethod {
        method: method.into(),
        seconds: scores.seconds,
        pairs: scores.pairs,
        curve,
        same_size_edges: edge_list(model, &mask),
        same_size_faithfulness,
        mask_points,
        agreement: exact.map(|e| agreement(&scores.nodes, e, agreement_k(e))),
        stability: None,
    })
}

/// The K of [`agreement`]: the study's, at most the narrowest layer's width.
pub fn agreement_k(exact: &NeuronScores) -> usize {
    modcirc_acdc::DEFAULT_K.min(exact.layers.iter().map(Vec::len).min().unwrap_or(0))
}

/// Which neurons and edges are the truth's (STUDY §11).
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    /// `nodes[h][i]`: neuron `i` of hidden layer `h` is true.
    pub nodes: Vec<Vec<bool>>,
    /// `edges[l][o * n_in + i]`, as weights are stored.
    pub edges: Vec<Vec<bool>>,
}

impl Truth {
    /// The live truth of `model` (STUDY §11): the true neurons with at
    /// least one outgoing weight the eps rule keeps (a neuron that does
    /// nothing no method can rank), and the true edges the eps rule keeps
    /// between live ends.
    pub fn live(&self, model: &modcirc_mlp::Mlp, eps: f64) -> Truth {
        let kept: Vec<Vec<bool>> = model
            .layers
            .iter()
            .map(|l| {
                let t = modcirc_acdc::edge_threshold(&l.weight, eps);
                l.weight.iter().map(|w| w.abs() > 0.0 && w.abs() >= t).collect()
            })
            .collect();
        let nodes: Vec<Vec<bool>> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(h, layer)| {
                let next = &model.layers[h + 1];
                let live = |i: usize| (0..next.n_out).any(|o| kept[h + 1][o * next.n_in + i]);
                layer.iter().enumerate().map(|(i, &t)| t && live(i)).collect()
            })
            .collect();
        let hidden = nodes.len();
        let edges = self
            .edges
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let n_in = model.layers[l].n_in;
                let ends = |k: usize| {
                    let (o, i) = (k / n_in, k % n_in);
                    (l == 0 || nodes[l - 1][i]) && (l == hidden || nodes[l][o])
                };
                layer.iter().enumerate().map(|(k, &t)| t && kept[l][k] && ends(k)).collect()
            })
            .collect();
        Truth { nodes, edges }
    }
}

/// A method's circuit on a task with a known truth, judged against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    /// The method's name ([`modcirc_acdc::Method::name`]).
    pub method: String,
    /// AUROC of its per-neuron scores against truth membership.
    pub node_auroc: f64,
    /// AUROC of its per-edge scores against the true edges (edge methods).
    pub edge_auroc: Option<f64>,
    /// Share of the neurons it selects that are true.
    pub node_precision: f64,
    /// Share of the true neurons it selects.
    pub node_recall: f64,
    /// Share of the edges it selects that are true (edge methods).
    pub edge_precision: Option<f64>,
    /// Share of the true edges it selects (edge methods).
    pub edge_recall: Option<f64>,
    /// Neurons it selects.
    pub selected_nodes: usize,
    /// The node ROC's true-positive rate at each of [`roc_grid`]'s rates.
    pub node_roc: Vec<f64>,
    /// Wall time of the scores and the selection.
    pub seconds: f64,
    /// Node AUROC against the live truth ([`Truth::live`], STUDY §11);
    /// `None` where it has no true or no other neuron.
    #[serde(default)]
    pub live_node_auroc: Option<f64>,
    /// Edge AUROC against the live truth (edge methods).
    #[serde(default)]
    pub live_edge_auroc: Option<f64>,
}

/// A circuit: per hidden layer whether each neuron is kept, and per weight
/// layer whether each edge is, where the method selects edges.
pub type Selected = (Vec<Vec<bool>>, Option<Vec<Vec<bool>>>);

/// The circuit a method selects on `sweep`: the edges ACDC keeps; an edge
/// method's fewest top-|s| edges reaching faithfulness
/// [`EAP_TARGET_FAITHFULNESS`] (every edge where none does), with the
/// neurons they touch; patching's `k` lowest LD per layer; attribution's
/// `k` highest `|s|`. Neurons per hidden layer, and edges where it has them.
pub fn selected_circuit(sweep: &PatchingSweep<'_>, scores: &MethodScores, k: usize) -> Result<Selected, StudyError> {
    let model = sweep.model();
    let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
    let touched = |mask: &[Vec<bool>]| nodes_mask(&widths, &touched_neurons(&widths, edge_list(model, mask)));
    match (&scores.kept_edges, &scores.edges, &scores.patching) {
        (Some(kept), _, _) => Ok((touched(kept), Some(kept.clone()))),
        (None, Some(edges), _) => {
            let curve = faithfulness_curve(sweep, edges, &DEFAULT_FRACTIONS)?;
            let n_edges = match smallest_edges(sweep, edges, &curve, EAP_TARGET_FAITHFULNESS)? {
                Some((n, _)) => n,
                None => model.n_weights(),
            };
            let mask = edges.top_edges(n_edges);
            Ok((touched(&mask), Some(mask)))
        }
        (None, None, Some(patching)) => Ok((nodes_mask(&widths, &patching.select(k)?.nodes), None)),
        (None, None, None) => Ok((top_k_per_layer(&scores.nodes, k), None)),
    }
}

/// A method's scores and its circuit on `sweep` ([`selected_circuit`])
/// judged against `truth`; the time is the scores' and the selection's.
pub fn judge_truth(
    sweep: &PatchingSweep<'_>,
    scores: &MethodScores,
    truth: &Truth,
    k: usize,
) -> Result<MethodScore, StudyError> {
    let t = std::time::Instant::now();
    let method = scores.method.name();
    let (selected_nodes, selected_edges) = selected_circuit(sweep, scores, k)?;
    let (node_scores, positive) = (flat(&scores.nodes), flat(&truth.nodes));
    let undefined =
        |what: &str| StudyError::Invalid(format!("{method}: the {what} AUROC is undefined (a non-finite score)"));
    let node_auroc = auroc(&node_scores, &positive).ok_or_else(|| undefined("node"))?;
    let node_roc = roc_tpr_at(&node_scores, &positive, &roc_grid()).ok_or_else(|| undefined("node"))?;
    let (node_precision, node_recall) = precision_recall(&flat(&selected_nodes), &positive);
    let (mut edge_auroc, mut edge_precision, mut edge_recall) = (None, None, None);
    if let (Some(edges), Some(selected)) = (&scores.edges, &selected_edges) {
        let edge_scores: Vec<f64> = edges.layers.iter().flatten().map(|&s| s.abs() as f64).collect();
        let truth_edges = flat(&truth.edges);
        edge_auroc = Some(auroc(&edge_scores, &truth_edges).ok_or_else(|| undefined("edge"))?);
        let (p, r) = precision_recall(&flat(selected), &truth_edges);
        (edge_precision, edge_recall) = (Some(p), Some(r));
    }
    Ok(MethodScore {
        method: method.into(),
        node_auroc,
        edge_auroc,
        node_precision,
        node_recall,
        edge_precision,
        edge_recall,
        selected_nodes: selected_nodes.iter().flatten().filter(|s| **s).count(),
        node_roc,
        seconds: scores.seconds + t.elapsed().as_secs_f64(),
        live_node_auroc: None,
        live_edge_auroc: None,
    })
}

/// `score` with its AUROC against the `live` truth as well ([`Truth::live`]).
pub fn with_live_truth(score: MethodScore, scores: &MethodScores, live: &Truth) -> MethodScore {
    let positive = flat(&live.nodes);
    let live_edge_auroc = scores.edges.as_ref().and_then(|edges| {
        let edge_scores: Vec<f64> = edges.layers.iter().flatten().map(|&s| s.abs() as f64).collect();
        auroc(&edge_scores, &flat(&live.edges))
    });
    MethodScore { live_node_auroc: auroc(&flat(&scores.nodes), &positive), live_edge_auroc, ..score }
}

/// A summary over seeds: the mean and its 95% t-interval from two seeds,
/// the point from one.
pub(crate) fn over_seeds(values: &[f64]) -> Option<modcirc_metrics::Summary> {
    if values.len() >= 2 {
        modcirc_metrics::Summary::t_interval(values)
    } else {
        modcirc_metrics::Summary::of(values)
    }
}

/// The methods named in `names`, each once, in the order they first come
/// (tables list methods as the results ran them).
pub(crate) fn method_names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

pub(crate) fn flat<T: Copy>(layers: &[Vec<T>]) -> Vec<T> {
    layers.iter().flatten().copied().collect()
}

/// Precision and recall of `selected` against `truth` (flattened alike).
fn precision_recall(selected: &[bool], truth: &[bool]) -> (f64, f64) {
    let hit = selected.iter().zip(truth).filter(|(s, t)| **s && **t).count() as f64;
    let (s, t) = (selected.iter().filter(|s| **s).count() as f64, truth.iter().filter(|t| **t).count() as f64);
    (if s > 0.0 { hit / s } else { 0.0 }, if t > 0.0 { hit / t } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use modcirc_acdc::NeuronScores;

    use super::agreement;

    /// Scores in the exact effects' order agree fully; in the reverse order,
    /// ρ is −1 and the top-2 of 4 miss them all.
    #[test]
    fn agreement_is_one_in_the_exact_order_and_minus_one_reversed() {
        // Effects |baseline − LD|: layer 0 (4, 3, 2, 1), layer 1 (1, 2, 3, 4) + 4.
        let exact = NeuronScores { baseline: 10.0, layers: vec![vec![6.0, 7.0, 8.0, 9.0], vec![5.0, 4.0, 3.0, 2.0]] };
        let same = vec![vec![0.4, 0.3, 0.2, 0.1], vec![0.5, 0.6, 0.7, 0.8]];
        let a = agreement(&same, &exact, 2);
        assert_eq!((a.rho, a.top_k_overlap, a.k), (Some(1.0), 1.0, 2));
        let reversed: Vec<Vec<f64>> = same.iter().map(|l| l.iter().map(|v| -v).collect()).collect();
        let b = agreement(&reversed, &exact, 2);
        assert!((b.rho.unwrap() + 1.0).abs() < 1e-12, "{b:?}");
        assert_eq!(b.top_k_overlap, 0.0);
        // Constant scores: ρ undefined.
        assert_eq!(agreement(&[vec![1.0; 4], vec![1.0; 4]], &exact, 2).rho, None);
    }

    /// A true neuron whose every outgoing weight is below the eps rule's
    /// threshold is not in the live truth, nor are its edges; a true edge
    /// the eps rule drops is not either.
    #[test]
    fn the_live_truth_drops_true_neurons_that_do_nothing() {
        use modcirc_mlp::{Activation, Linear, Mlp};
        let layer =
            |n_in: usize, n_out: usize, weight: Vec<f32>| Linear { n_in, n_out, weight, bias: vec![0.0; n_out] };
        // 2 inputs -> 3 hidden -> 2 outputs; hidden 1's outgoing weights are tiny.
        let model = Mlp::new(
            vec![
                layer(2, 3, vec![1.0, 0.5, 1.0, 1.0, 0.0001, 1.0]),
                layer(3, 2, vec![1.0, 1e-6, 1.0, 1.0, -1e-6, 1.0]),
            ],
            Activation::Relu,
        )
        .unwrap();
        let truth = super::Truth {
            nodes: vec![vec![true, true, false]],
            edges: vec![vec![true; 6], vec![true, true, false, true, true, false]],
        };
        let live = truth.live(&model, 0.01);
        assert_eq!(live.nodes, [vec![true, false, false]]);
        // Hidden 1's in- and out-edges go, and so do the edges the eps rule
        // drops; hidden 0's stay.
        assert_eq!(live.edges[0], [true, true, false, false, false, false]);
        assert_eq!(live.edges[1], [true, false, false, true, false, false]);
    }
}
