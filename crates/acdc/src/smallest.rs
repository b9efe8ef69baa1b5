//! The smallest faithful circuit: circuits grown by effect until they
//! recover a chosen share of the model's answer (faithfulness, STUDY §8),
//! for nodes (the K strongest neurons of every hidden layer) and for
//! edges (the top-|EAP| weights).

use modcirc_metrics::Summary;
use serde::{Deserialize, Serialize};

use crate::attribution::{faithfulness_scale, EdgeScores, FaithfulnessCurve};
use crate::{AcdcError, Circuit, NeuronScores, PatchingSweep, SelectionRule, SharedFirstLayer};

/// How node circuits grow, in words (every output says it).
pub const NODE_GROWTH: &str =
    "the K strongest neurons (by patching effect) of every hidden layer, K = 1, 2, …; a layer narrower than K keeps all its neurons; eps edges between them";

/// How edge circuits grow, in words.
pub const EDGE_GROWTH: &str =
    "the E weights of largest |EAP| score on all pairs; E on the curve's grid, then bisected between the last grid point below the target and the first at or above it";

/// How the per-layer smallest circuit is found, in words.
pub const PER_LAYER_GROWTH: &str =
    "from the smallest uniform K, each hidden layer in turn bisected to the fewest of its strongest neurons with which the circuit still reaches the target (the other layers held), until a pass over the layers changes none; eps edges between them";

/// The smallest circuit found layer by layer (never larger than the
/// uniform K's in any layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerLayerSmallest {
    /// [`PER_LAYER_GROWTH`].
    pub growth: String,
    /// Neurons kept per hidden layer (the strongest of each).
    pub kept: Vec<usize>,
    /// The circuit's edges.
    pub edges: usize,
    /// Its sparsity.
    pub sparsity: f64,
    /// Its faithfulness on all pairs (at least the target).
    pub faithfulness: f64,
    /// Its faithfulness over the bootstrap resamples (each layer's strongest
    /// neurons chosen on each resample, as many as here, judged on it).
    pub faithfulness_resampled: Option<Summary>,
}

/// Faithfulness of the node circuits of every K, on one set of pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeCurve {
    /// K, from 1 to the widest hidden layer.
    pub k: Vec<usize>,
    /// The circuit's edges at each K.
    pub edges: Vec<usize>,
    /// Its faithfulness at each K, removed edges carrying corrupted values.
    pub faithfulness: Vec<f64>,
}

impl NodeCurve {
    /// The first K whose faithfulness reaches `target`, and that faithfulness.
    pub fn first_reaching(&self, target: f64) -> Option<(usize, f64)> {
        self.k.iter().zip(&self.faithfulness).find(|(_, &f)| f >= target).map(|(&k, &f)| (k, f))
    }
}

/// The smallest circuits that reach a faithfulness target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmallestFaithful {
    /// The faithfulness to reach.
    pub target: f64,
    /// [`NODE_GROWTH`].
    pub growth: String,
    /// The smallest K reaching it on all pairs; `None`: not even the whole model's neurons do.
    pub k: Option<usize>,
    /// Neurons per hidden layer at that K.
    pub kept: Vec<usize>,
    /// The circuit's edges.
    pub edges: usize,
    /// Its sparsity (`None` where no K reaches the target).
    pub sparsity: Option<f64>,
    /// Its faithfulness on all pairs.
    pub faithfulness: Option<f64>,
    /// Its faithfulness over the bootstrap resamples (the K neurons chosen
    /// on each resample, judged on it).
    pub faithfulness_resampled: Option<Summary>,
    /// The smallest K reaching the target on each resample where one does.
    pub k_resampled: Option<Summary>,
    /// How many resamples have a K reaching the target, of how many.
    pub resamples_reaching: (usize, usize),
    /// [`EDGE_GROWTH`].
    pub edge_growth: String,
    /// The fewest top-|EAP| edges reaching the target on all pairs.
    pub eap_edges: Option<usize>,
    /// Their faithfulness.
    pub eap_faithfulness: Option<f64>,
    /// The smallest circuit found layer by layer from the uniform K's;
    /// `None` where no K reaches the target (absent in results written
    /// before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_layer: Option<PerLayerSmallest>,
}

/// The neurons of every hidden layer that a K-circuit keeps: the K lowest
/// scores (the study's rule and tie rule), all of a layer narrower than K.
pub fn k_nodes(scores: &NeuronScores, k: usize) -> Result<Vec<Vec<usize>>, AcdcError> {
    let k = scores.layers.iter().map(|l| k.min(l.len()).max(1)).collect();
    Ok(scores.select_by(&SelectionRule::TopK { k, live_only: false })?.nodes)
}

/// The `kept[h]` strongest neurons of each hidden layer `h` (the study's
/// rule and tie rule, K per layer).
pub fn layer_nodes(scores: &NeuronScores, kept: &[usize]) -> Result<Vec<Vec<usize>>, AcdcError> {
    Ok(scores.select_by(&SelectionRule::TopK { k: kept.to_vec(), live_only: false })?.nodes)
}

/// The fewest strongest neurons per hidden layer whose circuit on `sweep`
/// reaches faithfulness `target`, searched from `start` (counts per layer
/// that reach it, e.g. the smallest uniform K's): each layer in turn is
/// bisected between 1 and its count, the others held, keeping only counts
/// whose circuit was judged to reach the target; passes repeat until one
/// changes nothing. The result reaches the target and no layer is above
/// `start`. `None` where `start` itself does not reach the target.
pub fn smallest_per_layer(
    sweep: &PatchingSweep<'_>,
    scores: &NeuronScores,
    eps: f64,
    target: f64,
    start: &[usize],
) -> Result<Option<(Vec<usize>, f64)>, AcdcError> {
    let (full, empty) = faithfulness_scale(sweep)?;
    let shared = SharedFirstLayer::new(sweep, eps)?;
    let at = |kept: &[usize]| -> Result<f64, AcdcError> {
        let c = Circuit::new(sweep.model, layer_nodes(scores, kept)?, eps)?;
        Ok((c.answer_metric_shared(sweep, &shared)? - empty) / (full - empty))
    };
    let mut kept = start.to_vec();
    let mut f = at(&kept)?;
    if f < target {
        return Ok(None);
    }
    loop {
        let mut changed = false;
        for h in 0..kept.len() {
            // `hi` reaches the target (judged); below `lo` + 1 not tried or not reaching.
            let (mut lo, mut hi, mut f_hi) = (0, kept[h], f);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let mut trial = kept.clone();
                trial[h] = mid;
                let fm = at(&trial)?;
                if fm >= target {
                    (hi, f_hi) = (mid, fm);
                } else {
                    lo = mid;
                }
            }
            if hi < kept[h] {
                (kept[h], f, changed) = (hi, f_hi, true);
            }
        }
        if !changed {
            return Ok(Some((kept, f)));
        }
    }
}

/// Faithfulness of K-circuits on `sweep`, for K from 1 up to `last`
/// (`None`: every K to the widest layer), stopping early at the first
/// reaching `stop`. Each circuit's first layer comes from one shared product.
fn k_scan(
    sweep: &PatchingSweep<'_>,
    scores: &NeuronScores,
    eps: f64,
    stop: Option<f64>,
) -> Result<NodeCurve, AcdcError> {
    let model = sweep.model;
    let (full, empty) = faithfulness_scale(sweep)?;
    let shared = SharedFirstLayer::new(sweep, eps)?;
    let widest = scores.layers.iter().map(Vec::len).max().unwrap_or(0);
    let mut curve = NodeCurve { k: Vec::new(), edges: Vec::new(), faithfulness: Vec::new() };
    for k in 1..=widest {
        let c = Circuit::new(model, k_nodes(scores, k)?, eps)?;
        let f = (c.answer_metric_shared(sweep, &shared)? - empty) / (full - empty);
        curve.k.push(k);
        curve.edges.push(c.n_edges());
        curve.faithfulness.push(f);
        if stop.is_some_and(|t| f >= t) {
            break;
        }
    }
    Ok(curve)
}

/// The faithfulness of the K-circuit of every K on `sweep`, ranked by `scores`.
///
/// ```
/// use modcirc_acdc::{node_curve, PatchingSweep, TaskImages};
/// use modcirc_mlp::{Activation, Mlp};
/// let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
/// let model = Mlp::init(&[6, 8, 5, 3], Activation::Relu, &mut || u.next().unwrap()).unwrap();
/// let images = TaskImages {
///     n: 4,
///     pixels: 6,
///     clean: (0..24).map(|i| (i % 7) as f32 / 7.0).collect(),
///     corrupted: (0..24).map(|i| (i % 5) as f32 / 5.0).collect(),
///     clean_labels: vec![0, 1, 2, 0],
///     corrupted_labels: vec![1, 2, 0, 1],
/// };
/// let sweep = PatchingSweep::new(&model, &images)?;
/// let curve = node_curve(&sweep, &sweep.scores(), 0.0)?;
/// // K = 1 ..= 8; at K = 8 every neuron and every weight is kept: the model.
/// assert_eq!(curve.k.len(), 8);
/// assert!((curve.faithfulness[7] - 1.0).abs() < 1e-4);
/// # Ok::<(), modcirc_acdc::AcdcError>(())
/// ```
pub fn node_curve(sweep: &PatchingSweep<'_>, scores: &NeuronScores, eps: f64) -> Result<NodeCurve, AcdcError> {
    k_scan(sweep, scores, eps, None)
}

/// The smallest K whose K-circuit on `sweep` reaches faithfulness `target`,
/// and that faithfulness; `None` where no K does.
pub fn smallest_k(
    sweep: &PatchingSweep<'_>,
    scores: &NeuronScores,
    eps: f64,
    target: f64,
) -> Result<Option<(usize, f64)>, AcdcError> {
    Ok(k_scan(sweep, scores, eps, Some(target))?.first_reaching(target))
}

/// The fewest top-|EAP| edges reaching `target` on `sweep`: the first point
/// of `curve` (made from `eap` on the same sweep) at or above it, then
/// bisected down to the edge between it and the point before. `None` where
/// no point of the curve reaches it.
pub fn smallest_edges(
    sweep: &PatchingSweep<'_>,
    eap: &EdgeScores,
    curve: &FaithfulnessCurve,
    target: f64,
) -> Result<Option<(usize, f64)>, AcdcError> {
    let Some(first) = curve.faithfulness.iter().position(|&f| f >= target) else { return Ok(None) };
    let (full, empty) = faithfulness_scale(sweep)?;
    let at = |k: usize| -> Result<f64, AcdcError> {
        Ok((eap.top_circuit(sweep.model, k)?.answer_metric(sweep)? - empty) / (full - empty))
    };
    // Below `lo` edges (exclusive) the grid says no; `hi` edges reach the target.
    let (mut lo, mut hi, mut f_hi) =
        (if first == 0 { 0 } else { curve.edges[first - 1] }, curve.edges[first], curve.faithfulness[first]);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let f = at(mid)?;
        if f >= target {
            (hi, f_hi) = (mid, f);
        } else {
            lo = mid;
        }
    }
    Ok(Some((hi, f_hi)))
}

/// A discovery's search for its smallest circuits: on all pairs when made
/// (the smallest uniform K, the per-layer circuit shrunk from it), then
/// each resample's K-circuit and per-layer circuit judged on it, and the
/// resample's own smallest K.
pub(crate) struct SmallestSearch {
    target: f64,
    eps: f64,
    k_star: Option<(usize, f64)>,
    per_layer: Option<(Vec<usize>, f64)>,
    k_star_resampled: Vec<f64>,
    per_layer_resampled: Vec<f64>,
    k_resampled: Vec<f64>,
}

impl SmallestSearch {
    /// The search on all of `sweep`'s pairs, `node` its faithfulness by K.
    pub(crate) fn new(
        sweep: &PatchingSweep<'_>,
        scores: &NeuronScores,
        eps: f64,
        target: f64,
        node: Option<&NodeCurve>,
    ) -> Result<SmallestSearch, AcdcError> {
        let k_star = node.and_then(|c| c.first_reaching(target));
        let per_layer = match k_star {
            Some((k, _)) => {
                let start: Vec<usize> = scores.layers.iter().map(|l| k.min(l.len())).collect();
                match smallest_per_layer(sweep, scores, eps, target, &start) {
                    Err(AcdcError::Degenerate(_)) => None,
                    found => found?,
                }
            }
            None => None,
        };
        Ok(SmallestSearch {
            target,
            eps,
            k_star,
            per_layer,
            k_star_resampled: Vec::new(),
            per_layer_resampled: Vec::new(),
            k_resampled: Vec::new(),
        })
    }

    /// One resample `sub`, scored `scores`: the circuits of the found sizes
    /// chosen on it and judged on it on the faithfulness `scale` (`(m(M),
    /// m(∅))`, `None` where undefined there), and its own smallest K.
    pub(crate) fn resample(
        &mut self,
        sub: &PatchingSweep<'_>,
        scores: &NeuronScores,
        scale: Option<(f64, f64)>,
    ) -> Result<(), AcdcError> {
        if let Some((full, empty)) = scale {
            let f = |nodes| -> Result<f64, AcdcError> {
                Ok((Circuit::new(sub.model, nodes, self.eps)?.answer_metric(sub)? - empty) / (full - empty))
            };
            if let Some((k, _)) = self.k_star {
                self.k_star_resampled.push(f(k_nodes(scores, k)?)?);
            }
            if let Some((kept, _)) = &self.per_layer {
                self.per_layer_resampled.push(f(layer_nodes(scores, kept)?)?);
            }
        }
        match smallest_k(sub, scores, self.eps, self.target) {
            Ok(Some((k, _))) => self.k_resampled.push(k as f64),
            Ok(None) | Err(AcdcError::Degenerate(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The smallest circuits, `scores` the discovery's on all of `sweep`'s
    /// pairs, `eap` its edge scores with their curve, after `resamples`.
    pub(crate) fn finish(
        self,
        sweep: &PatchingSweep<'_>,
        scores: &NeuronScores,
        eap: Option<(&EdgeScores, &FaithfulnessCurve)>,
        resamples: usize,
    ) -> Result<SmallestFaithful, AcdcError> {
        let model = sweep.model;
        let at_k = match self.k_star {
            Some((k, _)) => Some(Circuit::new(model, k_nodes(scores, k)?, self.eps)?),
            None => None,
        };
        let eap_smallest = match eap {
            Some((e, curve)) => smallest_edges(sweep, e, curve, self.target)?,
            None => None,
        };
        let per_layer = match self.per_layer {
            Some((kept, f)) => {
                let c = Circuit::new(model, layer_nodes(scores, &kept)?, self.eps)?;
                Some(PerLayerSmallest {
                    growth: PER_LAYER_GROWTH.into(),
                    edges: c.n_edges(),
                    sparsity: c.sparsity(),
                    kept,
                    faithfulness: f,
                    faithfulness_resampled: Summary::of(&self.per_layer_resampled),
                })
            }
            None => None,
        };
        Ok(SmallestFaithful {
            target: self.target,
            growth: NODE_GROWTH.into(),
            k: self.k_star.map(|(k, _)| k),
            kept: at_k.as_ref().map_or_else(Vec::new, |c| c.nodes.iter().map(Vec::len).collect()),
            edges: at_k.as_ref().map_or(0, Circuit::n_edges),
            sparsity: at_k.as_ref().map(Circuit::sparsity),
            faithfulness: self.k_star.map(|(_, f)| f),
            faithfulness_resampled: Summary::of(&self.k_star_resampled),
            k_resampled: Summary::of(&self.k_resampled),
            resamples_reaching: (self.k_resampled.len(), resamples),
            edge_growth: EDGE_GROWTH.into(),
            eap_edges: eap_smallest.map(|(e, _)| e),
            eap_faithfulness: eap_smallest.map(|(_, f)| f),
            per_layer,
        })
    }
}

#[cfg(test)]
mod tests {
    use modcirc_dataset::Rng;
    use modcirc_mlp::{Activation, Mlp};

    use super::*;
    use crate::{edge_attribution, faithfulness, faithfulness_curve, TaskImages, DEFAULT_FRACTIONS};

    fn sweep_of(model: &Mlp, rng: &mut Rng, n: usize) -> TaskImages {
        let px = model.n_inputs();
        let mut img = |k: usize| (0..k).map(|_| rng.next_f64() as f32).collect::<Vec<f32>>();
        TaskImages {
            n,
            pixels: px,
            clean: img(n * px),
            corrupted: img(n * px),
            clean_labels: (0..n).map(|b| (b % 2) as u8).collect(),
            corrupted_labels: (0..n).map(|b| ((b + 1) % 2) as u8).collect(),
        }
    }

    /// The scan against its slow twin: each K's circuit built and judged
    /// on its own by `faithfulness`, on random models of several shapes.
    #[test]
    fn the_node_curve_is_each_k_circuit_judged_alone_and_the_smallest_k_is_its_first_crossing() {
        let mut rng = Rng::new(11);
        for (sizes, act) in [
            (vec![6, 9, 3], Activation::Relu),
            (vec![12, 20, 7, 4], Activation::Tanh),
            (vec![10, 5, 12, 6, 3], Activation::Silu),
        ] {
            let model = Mlp::init(&sizes, act, &mut || rng.next_f64()).unwrap();
            let images = sweep_of(&model, &mut rng, 13);
            let sweep = PatchingSweep::new(&model, &images).unwrap();
            let scores = sweep.scores();
            for eps in [0.0, 0.05] {
                let curve = node_curve(&sweep, &scores, eps).unwrap();
                assert_eq!(curve.k, (1..=*sizes[1..sizes.len() - 1].iter().max().unwrap()).collect::<Vec<_>>());
                for (i, &k) in curve.k.iter().enumerate() {
                    let c = Circuit::new(&model, k_nodes(&scores, k).unwrap(), eps).unwrap();
                    let slow = faithfulness(&sweep, &c).unwrap();
                    assert!((curve.faithfulness[i] - slow).abs() < 1e-4, "{sizes:?} K {k}");
                    assert_eq!(curve.edges[i], c.n_edges());
                }
                for target in [0.3, 0.9, 2.0] {
                    let want = curve.k.iter().zip(&curve.faithfulness).find(|(_, &f)| f >= target).map(|(&k, _)| k);
                    let got = smallest_k(&sweep, &scores, eps, target).unwrap().map(|(k, _)| k);
                    assert_eq!(got, want, "{sizes:?} eps {eps} target {target}");
                }
            }
        }
    }

    /// On random models of several shapes: the per-layer circuit reaches the
    /// target (judged again on its own), keeps no layer above the uniform
    /// K, and no layer can lose one more neuron (a local minimum).
    #[test]
    fn the_per_layer_smallest_circuit_reaches_the_target_and_is_never_larger_than_the_uniform_one() {
        let mut rng = Rng::new(23);
        let mut shrunk = 0;
        for (sizes, act) in [
            (vec![6, 9, 3], Activation::Relu),
            (vec![12, 20, 7, 4], Activation::Tanh),
            (vec![10, 5, 12, 6, 3], Activation::Silu),
            (vec![16, 30, 10, 2], Activation::Relu),
        ] {
            let model = Mlp::init(&sizes, act, &mut || rng.next_f64()).unwrap();
            let images = sweep_of(&model, &mut rng, 15);
            let sweep = PatchingSweep::new(&model, &images).unwrap();
            let scores = sweep.scores();
            for target in [0.5, 0.8, 0.95] {
                let Some((k, _)) = smallest_k(&sweep, &scores, 0.0, target).unwrap() else { continue };
                let uniform: Vec<usize> = sizes[1..sizes.len() - 1].iter().map(|&w| k.min(w)).collect();
                let (kept, f) = smallest_per_layer(&sweep, &scores, 0.0, target, &uniform).unwrap().unwrap();
                assert!(kept.iter().zip(&uniform).all(|(a, b)| a <= b && *a >= 1), "{sizes:?} {kept:?} {uniform:?}");
                let slow =
                    faithfulness(&sweep, &Circuit::new(&model, layer_nodes(&scores, &kept).unwrap(), 0.0).unwrap())
                        .unwrap();
                assert!((slow - f).abs() < 1e-4 && f >= target, "{sizes:?} target {target}: {f} {slow}");
                for h in 0..kept.len() {
                    if kept[h] > 1 {
                        let mut less = kept.clone();
                        less[h] -= 1;
                        let c = Circuit::new(&model, layer_nodes(&scores, &less).unwrap(), 0.0).unwrap();
                        assert!(faithfulness(&sweep, &c).unwrap() < target, "{sizes:?}: layer {h} could lose one");
                    }
                }
                shrunk += usize::from(kept != uniform);
            }
        }
        assert!(shrunk > 0, "some case should shrink below the uniform K");
        // A start that does not reach the target has no answer.
        let model = Mlp::init(&[6, 9, 3], Activation::Relu, &mut || rng.next_f64()).unwrap();
        let images = sweep_of(&model, &mut rng, 9);
        let sweep = PatchingSweep::new(&model, &images).unwrap();
        assert_eq!(smallest_per_layer(&sweep, &sweep.scores(), 0.0, 2.0, &[9]).unwrap(), None);
    }

    #[test]
    fn the_fewest_eap_edges_reach_the_target_and_one_fewer_does_not() {
        let mut rng = Rng::new(4);
        let model = Mlp::init(&[8, 12, 10, 2], Activation::Relu, &mut || rng.next_f64()).unwrap();
        let images = sweep_of(&model, &mut rng, 17);
        let sweep = PatchingSweep::new(&model, &images).unwrap();
        let eap = edge_attribution(&sweep).unwrap();
        let curve = faithfulness_curve(&sweep, &eap, &DEFAULT_FRACTIONS).unwrap();
        let target = 0.8;
        let (e, f) = smallest_edges(&sweep, &eap, &curve, target).unwrap().expect("the whole model reaches 0.8");
        assert!(f >= target);
        assert!((faithfulness(&sweep, &eap.top_circuit(&model, e).unwrap()).unwrap() - f).abs() < 1e-9);
        if e > 1 {
            let below = faithfulness(&sweep, &eap.top_circuit(&model, e - 1).unwrap()).unwrap();
            assert!(below < target, "{} edges already reach {below}", e - 1);
        }
    }
}
