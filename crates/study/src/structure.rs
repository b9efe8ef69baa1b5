//! STUDY §9 on one model: wiring length, modularity (Louvain Q, spectral
//! n-cut) of its weight graph, the locality and bootstrap stability of its
//! circuits, and how specialised its circle and line circuits are.

use std::collections::BTreeSet;
use std::time::Instant;

use modcirc_acdc::edge_threshold;
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_bimt::{wiring_length, Layout, Regime};
use modcirc_dataset::ImageSet;
use modcirc_mlp::Mlp;
use modcirc_modularity::{best_louvain, louvain_runs, mean_pairwise_nmi, rewire_layers, spectral_ncuts, Graph};
use serde::{Deserialize, Serialize};

use crate::discovery::DiscoverOutput;
use crate::StudyError;

/// Version of a STUDY §9 result (docs/results-schema.md).
pub const STRUCTURE_SCHEMA: &str = "modcirc.structure/2";
/// Louvain runs per graph; the best Q is kept (STUDY §9).
pub const LOUVAIN_RUNS: usize = 10;
/// Degree-preserving rewirings of Q's null (STUDY §9).
pub const NULL_REWIRINGS: usize = 20;
/// Double-edge swaps attempted per edge in each rewiring (STUDY §9).
pub const SWAPS_PER_EDGE: usize = 10;
/// Cluster counts of the spectral n-cut (STUDY §9).
pub const NCUT_KS: [usize; 3] = [4, 8, 12];
/// Seeded k-means++ starts per spectral clustering (STUDY §9).
pub const KMEANS_RESTARTS: usize = 10;

/// The n-cut of a spectral clustering into `k` clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NCut {
    /// Clusters.
    pub k: usize,
    /// `sum over clusters of cut(C) / vol(C)` (lower: more clusterable).
    pub ncut: f64,
}

/// Modularity of one weight graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphModularity {
    /// Neurons with at least one edge (the graph's nodes).
    pub nodes: usize,
    /// Edges.
    pub edges: usize,
    /// Newman's Q of the best of [`LOUVAIN_RUNS`] Louvain runs.
    pub q: f64,
    /// Its communities.
    pub communities: usize,
    /// The spectral n-cut for each of [`NCUT_KS`] that the graph allows.
    pub ncut: Vec<NCut>,
    /// Q's spread over the Louvain runs, and how much their partitions agree.
    #[serde(default)]
    pub spread: Option<QSpread>,
    /// Q against degree-preserving rewirings of the graph (the eps graph's).
    #[serde(default)]
    pub null: Option<ModularityNull>,
}

/// How much Louvain's [`LOUVAIN_RUNS`] runs agree (STUDY §9): it has many
/// near-equal maxima.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QSpread {
    /// The least Q of the runs.
    pub min: f64,
    /// The largest (the reported Q).
    pub max: f64,
    /// Mean pairwise normalised mutual information of their partitions (1:
    /// the same communities every run).
    pub nmi: f64,
}

/// Q against [`NULL_REWIRINGS`] rewirings of the graph that keep every
/// neuron's edges per layer and every edge's weight (STUDY §9): how much
/// of Q the degrees and the sparsity alone give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModularityNull {
    /// Rewirings.
    pub rewirings: usize,
    /// The rewired graphs' mean Q (best of [`LOUVAIN_RUNS`] each).
    pub mean: f64,
    /// Their standard deviation.
    pub sd: f64,
    /// `(Q − mean) / sd`; `None` where the null does not vary.
    pub z: Option<f64>,
}

/// Where a circuit lies and how stable it is, on one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitStructure {
    /// The task.
    pub task: String,
    /// Per hidden layer: the mean pairwise Manhattan distance of the circuit's
    /// neurons over that of the layer's live neurons (below 1: gathered);
    /// `null` with fewer than two of either.
    pub locality: Vec<Option<f64>>,
    /// Mean pairwise Jaccard overlap of the bootstrap resamples' circuits
    /// (1: the same circuit every time).
    pub stability: f64,
}

/// The model's accuracy on a task's images, intact and with circuits ablated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossAblation {
    /// The task whose images (clean and corrupted of its pairs) are classified.
    pub task: String,
    /// Accuracy of the intact model.
    pub intact: f64,
    /// With the task's own circuit neurons zero-ablated.
    pub own_ablated: f64,
    /// With the other task's circuit neurons zero-ablated.
    pub other_ablated: f64,
}

/// How far the circle and line circuits are separate (STUDY §9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Specialisation {
    /// Jaccard overlap of the two circuits' neurons, per hidden layer.
    pub overlap_per_layer: Vec<f64>,
    /// Over every hidden neuron.
    pub overlap: f64,
    /// Per task.
    pub cross_ablation: Vec<CrossAblation>,
}

/// STUDY §9 on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructureResult {
    /// [`STRUCTURE_SCHEMA`].
    pub schema: String,
    /// Regime, from the sidecar.
    pub regime: Option<Regime>,
    /// Seed, from the sidecar.
    pub seed: Option<u64>,
    /// `Σ|W|·D / Σ|W|` over every layer.
    pub wiring_length: f64,
    /// The same per layer.
    pub wiring_length_per_layer: Vec<f64>,
    /// The graph of every weight.
    pub all_weights: GraphModularity,
    /// The graph of the weights the eps edge rule keeps.
    pub eps_edges: GraphModularity,
    /// The eps of that rule.
    pub eps: f64,
    /// Per task discovered.
    pub circuits: Vec<CircuitStructure>,
    /// With exactly two tasks discovered: how separate their circuits are.
    pub specialisation: Option<Specialisation>,
    /// Wall time of this analysis.
    pub seconds: f64,
}

/// The undirected graph on every neuron (numbered layer by layer, input
/// first) with edge weight `|W|`: every nonzero weight, or with `eps` only
/// those the eps edge rule keeps (STUDY §5, §9).
pub fn weight_graph(model: &Mlp, eps: Option<f64>) -> Result<Graph, StudyError> {
    graph_of(model, weight_edges(model, eps).concat())
}

/// The edges of [`weight_graph`] per weight layer, `(input neuron, output
/// neuron, |W|)` numbered as there.
fn weight_edges(model: &Mlp, eps: Option<f64>) -> Vec<Vec<(usize, usize, f64)>> {
    let sizes = model.sizes();
    let offsets: Vec<usize> = sizes.iter().scan(0, |acc, &w| Some(std::mem::replace(acc, *acc + w))).collect();
    let mut layers = Vec::new();
    for (l, layer) in model.layers.iter().enumerate() {
        let threshold = eps.map_or(0.0, |e| edge_threshold(&layer.weight, e));
        let mut edges = Vec::new();
        for o in 0..layer.n_out {
            for i in 0..layer.n_in {
                let w = layer.weight[o * layer.n_in + i].abs();
                if w > 0.0 && w >= threshold {
                    edges.push((offsets[l] + i, offsets[l + 1] + o, w as f64));
                }
            }
        }
        layers.push(edges);
    }
    layers
}

fn graph_of(model: &Mlp, edges: Vec<(usize, usize, f64)>) -> Result<Graph, StudyError> {
    Graph::from_edges(model.sizes().iter().sum(), edges).map_err(|e| StudyError::Invalid(e.to_string()))
}

/// Q of `model`'s [`weight_graph`] (with `eps`) against [`NULL_REWIRINGS`]
/// degree-preserving rewirings of it (STUDY §9: Maslov-Sneppen swaps
/// within each weight layer, [`SWAPS_PER_EDGE`] per edge, each edge keeping
/// its weight), each scored as the graph is; seeded by `seed`.
pub fn modularity_null(model: &Mlp, eps: Option<f64>, q: f64, seed: u64) -> Result<ModularityNull, StudyError> {
    let layers = weight_edges(model, eps);
    let qs: Vec<f64> = (0..NULL_REWIRINGS as u64)
        .map(|r| {
            let rewired = rewire_layers(&layers, SWAPS_PER_EDGE, seed.wrapping_add(0x4E55_0000 + r));
            let (_, g) = graph_of(model, rewired.concat())?.without_isolated();
            Ok(best_louvain(&g, LOUVAIN_RUNS, seed).q)
        })
        .collect::<Result<_, StudyError>>()?;
    let mean = qs.iter().sum::<f64>() / qs.len() as f64;
    let sd = (qs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (qs.len() - 1) as f64).sqrt();
    Ok(ModularityNull { rewirings: qs.len(), mean, sd, z: (sd > 0.0).then(|| (q - mean) / sd) })
}

/// Q, communities and n-cuts of `g` with its isolated neurons dropped.
pub fn graph_modularity(g: &Graph, seed: u64) -> Result<GraphModularity, StudyError> {
    let (_, g) = g.without_isolated();
    let edges = (0..g.len()).map(|i| g.neighbours(i).len()).sum::<usize>() / 2;
    let runs = louvain_runs(&g, LOUVAIN_RUNS, seed);
    let labels: Vec<Vec<usize>> = runs.iter().map(|p| p.labels.clone()).collect();
    let spread = QSpread {
        min: runs.iter().map(|p| p.q).fold(f64::INFINITY, f64::min),
        max: runs.iter().map(|p| p.q).fold(f64::NEG_INFINITY, f64::max),
        nmi: mean_pairwise_nmi(&labels).unwrap_or(1.0),
    };
    // The best run, the first of equals (as best_louvain).
    let p = runs.iter().fold(&runs[0], |best, p| if p.q > best.q { p } else { best });
    let ks: Vec<usize> = NCUT_KS.into_iter().filter(|&k| k < g.len()).collect();
    let spectral = spectral_ncuts(&g, &ks, KMEANS_RESTARTS, seed).map_err(|e| StudyError::Invalid(e.to_string()))?;
    let ncut = ks.iter().zip(spectral).map(|(&k, s)| NCut { k, ncut: s.ncut }).collect();
    Ok(GraphModularity { nodes: g.len(), edges, q: p.q, communities: p.count, ncut, spread: Some(spread), null: None })
}

fn manhattan(a: [f32; 2], b: [f32; 2]) -> f64 {
    ((a[0] - b[0]).abs() + (a[1] - b[1]).abs()) as f64
}

/// Mean Manhattan distance over every pair of `points`; `None` under two.
fn mean_pairwise(points: &[[f32; 2]]) -> Option<f64> {
    let n = points.len();
    (n >= 2).then(|| {
        let total: f64 =
            (0..n).flat_map(|a| (a + 1..n).map(move |b| (a, b))).map(|(a, b)| manhattan(points[a], points[b])).sum();
        total / (n * (n - 1) / 2) as f64
    })
}

/// Circuit locality of hidden layer `h` (STUDY §9): the circuit neurons'
/// mean pairwise distance over the live neurons'.
pub fn locality(layout: &Layout, h: usize, circuit: &[usize], dead: &[usize]) -> Option<f64> {
    let at = &layout.layers[h + 1];
    let kept: Vec<[f32; 2]> = circuit.iter().map(|&i| at[i]).collect();
    let live: Vec<[f32; 2]> = (0..at.len()).filter(|i| !dead.contains(i)).map(|i| at[i]).collect();
    let (c, l) = (mean_pairwise(&kept)?, mean_pairwise(&live)?);
    (l > 0.0).then_some(c / l)
}

/// Jaccard overlap `|a ∩ b| / |a ∪ b|`; 1 for two empty sets.
pub fn jaccard<T: Ord>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        1.0
    } else {
        a.intersection(b).count() as f64 / union as f64
    }
}

/// Every hidden neuron of a circuit, as (layer, index).
fn neurons(nodes: &[Vec<usize>]) -> BTreeSet<(usize, usize)> {
    nodes.iter().enumerate().flat_map(|(h, l)| l.iter().map(move |&i| (h, i))).collect()
}

/// Mean pairwise Jaccard overlap of the resamples' circuits (STUDY §9); 1
/// with fewer than two resamples.
pub fn stability(d: &DiscoverOutput) -> f64 {
    let sets: Vec<_> = d.report.bootstraps.iter().map(|b| neurons(&b.nodes)).collect();
    let pairs: Vec<f64> = (0..sets.len())
        .flat_map(|a| (a + 1..sets.len()).map(move |b| (a, b)))
        .map(|(a, b)| jaccard(&sets[a], &sets[b]))
        .collect();
    if pairs.is_empty() {
        1.0
    } else {
        pairs.iter().sum::<f64>() / pairs.len() as f64
    }
}

/// `model` with the given hidden neurons zero-ablated: their outgoing
/// weights set to 0, which is what a zero activation does downstream.
fn ablated(model: &Mlp, nodes: &[Vec<usize>]) -> Mlp {
    let mut m = model.clone();
    for (h, kept) in nodes.iter().enumerate() {
        let next = &mut m.layers[h + 1];
        for &i in kept {
            (0..next.n_out).for_each(|o| next.weight[o * next.n_in + i] = 0.0);
        }
    }
    m
}

/// The clean and corrupted images of `d`'s pairs (each once), and their labels.
fn task_images(split: &ImageSet, d: &DiscoverOutput) -> (Vec<f32>, Vec<u8>) {
    let idx: BTreeSet<usize> = d.pairs.iter().flat_map(|p| [p.clean, p.corrupted]).collect();
    let idx: Vec<usize> = idx.into_iter().collect();
    (split.gather(&idx), idx.iter().map(|&i| split.labels[i]).collect())
}

/// The model's accuracy over all its classes on `images`.
fn accuracy_on(model: &Mlp, (x, labels): &(Vec<f32>, Vec<u8>)) -> f64 {
    // One forward over every image, as the study measured it (the row
    // blocks, and so the bits, follow the call).
    modcirc_mlp::accuracy_of_logits(&model.forward(x, labels.len()), labels, model.n_classes())
}

/// Overlap and cross-ablation of two tasks' circuits.
fn specialisation(model: &Mlp, split: &ImageSet, a: &DiscoverOutput, b: &DiscoverOutput) -> Specialisation {
    let (na, nb) = (&a.report.selection.nodes, &b.report.selection.nodes);
    let per_layer = na
        .iter()
        .zip(nb)
        .map(|(x, y)| jaccard(&x.iter().collect::<BTreeSet<_>>(), &y.iter().collect::<BTreeSet<_>>()))
        .collect();
    let cross = |own: &DiscoverOutput, other: &DiscoverOutput| {
        let images = task_images(split, own);
        CrossAblation {
            task: own.inputs.task.name.clone(),
            intact: accuracy_on(model, &images),
            own_ablated: accuracy_on(&ablated(model, &own.report.selection.nodes), &images),
            other_ablated: accuracy_on(&ablated(model, &other.report.selection.nodes), &images),
        }
    };
    Specialisation {
        overlap_per_layer: per_layer,
        overlap: jaccard(&neurons(na), &neurons(nb)),
        cross_ablation: vec![cross(a, b), cross(b, a)],
    }
}

/// STUDY §9 on `ck` and its discoveries `discoveries` (one per task, run on
/// `split`); `seed` seeds Louvain and k-means.
pub fn analyse_structure(
    ck: &Checkpoint,
    split: &ImageSet,
    discoveries: &[&DiscoverOutput],
    seed: u64,
) -> Result<StructureResult, StudyError> {
    let t = Instant::now();
    let model = &ck.model;
    let eps = discoveries.first().map_or(modcirc_acdc::DEFAULT_EPS, |d| d.inputs.flags.config.eps);
    let (wiring, wiring_per_layer) = wiring_length(model, &ck.layout);
    let all_weights = graph_modularity(&weight_graph(model, None)?, seed)?;
    let mut eps_edges = graph_modularity(&weight_graph(model, Some(eps))?, seed)?;
    eps_edges.null = Some(modularity_null(model, Some(eps), eps_edges.q, seed)?);
    let circuits = discoveries
        .iter()
        .map(|d| {
            let sel = &d.report.selection;
            let locality = (0..sel.nodes.len()).map(|h| locality(&ck.layout, h, &sel.nodes[h], &sel.dead[h])).collect();
            CircuitStructure { task: d.inputs.task.name.clone(), locality, stability: stability(d) }
        })
        .collect();
    let specialisation = match discoveries {
        [a, b] => Some(specialisation(model, split, a, b)),
        _ => None,
    };
    crate::error::ensure_finite(&[
        ("wiring length", wiring),
        ("modularity Q", all_weights.q),
        ("eps-graph Q", eps_edges.q),
    ])?;
    Ok(StructureResult {
        schema: STRUCTURE_SCHEMA.into(),
        regime: ck.meta.as_ref().map(|m| m.config.regime),
        seed: ck.meta.as_ref().map(|m| m.config.seed),
        wiring_length: wiring,
        wiring_length_per_layer: wiring_per_layer,
        all_weights,
        eps_edges,
        eps,
        circuits,
        specialisation,
        seconds: t.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network of four separate blocks per layer: its Q is far above that
    /// of its rewirings (which keep degrees and weights, not the blocks),
    /// every Louvain run finds the same blocks, and the null is seeded.
    #[test]
    fn block_networks_stand_far_above_their_rewirings() {
        let (blocks, width) = (4, 16);
        let layer = |n_in: usize, n_out: usize| {
            let (bi, bo) = (n_in / blocks, n_out / blocks);
            let weight =
                (0..n_out * n_in).map(|k| if (k / n_in) / bo == (k % n_in) / bi { 0.5 } else { 0.0 }).collect();
            modcirc_mlp::Linear { n_in, n_out, weight, bias: vec![0.0; n_out] }
        };
        let layers = vec![layer(width, width), layer(width, width), layer(width, width), layer(width, 4)];
        let model = Mlp::new(layers, modcirc_mlp::Activation::Relu).unwrap();
        let g = graph_modularity(&weight_graph(&model, Some(0.01)).unwrap(), 0).unwrap();
        assert_eq!(g.communities, blocks);
        let spread = g.spread.unwrap();
        assert_eq!((spread.min, spread.max), (g.q, g.q));
        assert!((spread.nmi - 1.0).abs() < 1e-12, "{spread:?}");
        let null = modularity_null(&model, Some(0.01), g.q, 0).unwrap();
        assert_eq!(null.rewirings, NULL_REWIRINGS);
        assert!(null.mean < g.q && null.z.is_some_and(|z| z > 3.0), "Q {} vs {null:?}", g.q);
        assert_eq!(modularity_null(&model, Some(0.01), g.q, 0).unwrap(), null);
    }

    #[test]
    fn jaccard_and_locality_on_hand_made_cases() {
        let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(jaccard(&set(&[1, 2, 3]), &set(&[2, 3, 4])), 0.5);
        assert_eq!(jaccard(&set(&[]), &set(&[])), 1.0);
        // A 2x2 hidden grid at the unit square's corners: neighbours 0 and 1
        // lie 1 apart, the mean over all six pairs is (4·1 + 2·2)/6 = 4/3.
        let corners = vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let layout = Layout { layers: vec![vec![[0.0, 0.0]], corners, vec![[0.0, 0.0]]] };
        assert_eq!(locality(&layout, 0, &[0, 1], &[]), Some(0.75));
        // Neuron 3 dead: live pairs (0,1) 1, (0,2) 1, (1,2) 2 -> 4/3 again.
        assert_eq!(locality(&layout, 0, &[0, 1], &[3]), Some(0.75));
        assert_eq!(locality(&layout, 0, &[0], &[]), None);
    }

    #[test]
    fn the_weight_graph_keeps_what_the_eps_rule_keeps() {
        let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
        let m = Mlp::init(&[6, 5, 4, 3], modcirc_mlp::Activation::Relu, &mut || u.next().unwrap()).unwrap();
        let all = weight_graph(&m, None).unwrap();
        assert_eq!(all.len(), 18);
        let edges = |g: &Graph| (0..g.len()).map(|i| g.neighbours(i).len()).sum::<usize>() / 2;
        assert_eq!(edges(&all), 6 * 5 + 5 * 4 + 4 * 3);
        let kept = weight_graph(&m, Some(0.5)).unwrap();
        let expected: usize = m
            .layers
            .iter()
            .map(|l| l.weight.iter().filter(|w| w.abs() >= edge_threshold(&l.weight, 0.5)).count())
            .sum();
        assert_eq!(edges(&kept), expected);
        assert!(expected < edges(&all));
    }
}
