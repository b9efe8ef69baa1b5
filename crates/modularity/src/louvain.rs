//! Louvain community detection (Blondel et al. 2008), weighted, resolution 1.

use std::collections::BTreeMap;

use crate::rng::SplitMix;
use crate::{modularity, Graph};

/// Communities of a graph and their modularity.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// Each node's community, numbered `0..count` in order of first node.
    pub labels: Vec<usize>,
    /// [`modularity`] of `labels`.
    pub q: f64,
    /// How many communities.
    pub count: usize,
}

/// Adjacency of one level: `adj[i]` holds `(j, A_ij)`, a self-loop's entry
/// being its full adjacency value (twice an original loop's weight).
type Levels = Vec<Vec<(usize, f64)>>;

/// One run of Louvain: nodes visited in an order shuffled by `seed`, each
/// moved to the neighbouring community of the largest modularity gain until
/// none moves, then communities merged into nodes, until a level changes
/// nothing.
pub fn louvain(g: &Graph, seed: u64) -> Partition {
    let mut rng = SplitMix::new(seed);
    let mut adj: Levels = (0..g.len())
        .map(|i| g.neighbours(i).iter().map(|&(j, w)| (j, if i == j { 2.0 * w } else { w })).collect())
        .collect();
    let mut node_of: Vec<usize> = (0..g.len()).collect();
    while let Some(comm) = one_level(&adj, &mut rng) {
        let (comm, count) = renumber(&comm);
        node_of.iter_mut().for_each(|v| *v = comm[*v]);
        if count == adj.len() {
            break;
        }
        adj = aggregate(&adj, &comm, count);
    }
    let (labels, count) = renumber(&node_of);
    Partition { q: modularity(g, &labels), labels, count }
}

/// The best of `runs` Louvain runs (seeds `seed`, `seed + 1`, ...) by Q; the
/// first of equals.
pub fn best_louvain(g: &Graph, runs: usize, seed: u64) -> Partition {
    louvain_runs(g, runs, seed)
        .into_iter()
        .reduce(|best, p| if p.q > best.q { p } else { best })
        .expect("at least one run")
}

/// Every one of `runs` Louvain runs (seeds `seed`, `seed + 1`, ...; at
/// least one): their spread says how sure the best Q is (STUDY §9).
pub fn louvain_runs(g: &Graph, runs: usize, seed: u64) -> Vec<Partition> {
    (0..runs.max(1) as u64).map(|r| louvain(g, seed.wrapping_add(r))).collect()
}

/// Local moving on one level; `None` when no node moved.
fn one_level(adj: &Levels, rng: &mut SplitMix) -> Option<Vec<usize>> {
    let n = adj.len();
    let k: Vec<f64> = adj.iter().map(|row| row.iter().map(|e| e.1).sum()).collect();
    let two_m: f64 = k.iter().sum();
    if two_m == 0.0 {
        return None;
    }
    let mut comm: Vec<usize> = (0..n).collect();
    let mut tot = k.clone();
    let order = rng.permutation(n);
    let mut weight_to = vec![0.0; n];
    let mut is_touched = vec![false; n];
    let mut touched: Vec<usize> = Vec::new();
    let mut moved_any = false;
    loop {
        let mut moved = false;
        for &i in &order {
            let own = comm[i];
            for &(j, w) in adj[i].iter().filter(|e| e.0 != i) {
                let c = comm[j];
                if !is_touched[c] {
                    is_touched[c] = true;
                    touched.push(c);
                }
                weight_to[c] += w;
            }
            tot[own] -= k[i];
            // The gain of joining c, up to a factor common to every c.
            let gain = |c: usize, to: f64| to - tot[c] * k[i] / two_m;
            let (mut best, mut best_gain) = (own, gain(own, weight_to[own]));
            for &c in &touched {
                let g = gain(c, weight_to[c]);
                if g > best_gain + 1e-12 {
                    (best, best_gain) = (c, g);
                }
            }
            tot[best] += k[i];
            comm[i] = best;
            moved |= best != own;
            for c in touched.drain(..) {
                (weight_to[c], is_touched[c]) = (0.0, false);
            }
            weight_to[own] = 0.0;
        }
        moved_any |= moved;
        if !moved {
            break;
        }
    }
    moved_any.then_some(comm)
}

/// Labels renumbered `0..count` in order of first appearance.
fn renumber(labels: &[usize]) -> (Vec<usize>, usize) {
    let mut map = BTreeMap::new();
    let out = labels
        .iter()
        .map(|l| {
            let next = map.len();
            *map.entry(*l).or_insert(next)
        })
        .collect();
    (out, map.len())
}

/// The graph of communities: `A'_cd` sums `A_ij` over `i` in `c`, `j` in `d`.
fn aggregate(adj: &Levels, comm: &[usize], count: usize) -> Levels {
    let mut rows: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); count];
    for (i, row) in adj.iter().enumerate() {
        for &(j, w) in row {
            *rows[comm[i]].entry(comm[j]).or_default() += w;
        }
    }
    rows.into_iter().map(|r| r.into_iter().collect()).collect()
}
