//! How sure a modularity is (STUDY §9): how much Louvain's runs agree
//! (normalised mutual information of their partitions), and a null of
//! layered graphs that keeps every node's degree and every edge's weight
//! (Maslov-Sneppen double-edge swaps within each pair of adjacent layers).

use std::collections::{BTreeMap, HashSet};

use crate::rng::SplitMix;

/// The normalised mutual information `2·I(a; b) / (H(a) + H(b))` of two
/// partitions of the same nodes (any label values): 1 for the same
/// partition under any renaming (two single communities included), near 0
/// for unrelated ones. `None` where the lengths differ or are 0.
pub fn nmi(a: &[usize], b: &[usize]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let n = a.len() as f64;
    let count = |labels: &mut dyn Iterator<Item = (usize, usize)>| {
        let mut m: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        labels.for_each(|k| *m.entry(k).or_default() += 1);
        m
    };
    let joint = count(&mut a.iter().copied().zip(b.iter().copied()));
    let ca = count(&mut a.iter().map(|&x| (x, 0)));
    let cb = count(&mut b.iter().map(|&x| (x, 0)));
    let entropy =
        |m: &BTreeMap<(usize, usize), usize>| -m.values().map(|&c| c as f64 / n).map(|p| p * p.ln()).sum::<f64>();
    let (ha, hb) = (entropy(&ca), entropy(&cb));
    if ha + hb <= 0.0 {
        return Some(1.0);
    }
    let info: f64 = joint
        .iter()
        .map(|(&(x, y), &c)| {
            let p = c as f64 / n;
            p * (p / ((ca[&(x, 0)] as f64 / n) * (cb[&(y, 0)] as f64 / n))).ln()
        })
        .sum();
    Some((2.0 * info / (ha + hb)).clamp(0.0, 1.0))
}

/// The mean [`nmi`] over every pair of `partitions` (1 with fewer than two).
pub fn mean_pairwise_nmi(partitions: &[Vec<usize>]) -> Option<f64> {
    let mut values = Vec::new();
    for i in 0..partitions.len() {
        for j in i + 1..partitions.len() {
            values.push(nmi(&partitions[i], &partitions[j])?);
        }
    }
    Some(if values.is_empty() { 1.0 } else { values.iter().sum::<f64>() / values.len() as f64 })
}

/// `layers` (each a bipartite block of edges `(from, to, weight)` between
/// two adjacent layers of nodes) after `swaps_per_edge` × edges attempted
/// double-edge swaps per block (Maslov and Sneppen 2002), seeded: two
/// edges `(a, b)`, `(c, d)` of a block become `(a, d)`, `(c, b)`, each
/// keeping its weight, unless that would join a node to itself or repeat
/// an edge. Every node keeps its number of edges to each neighbouring
/// layer, so the null keeps the layers and the degrees and moves only
/// where the edges go.
pub fn rewire_layers(
    layers: &[Vec<(usize, usize, f64)>],
    swaps_per_edge: usize,
    seed: u64,
) -> Vec<Vec<(usize, usize, f64)>> {
    let mut rng = SplitMix::new(seed);
    layers
        .iter()
        .map(|block| {
            let mut edges = block.clone();
            let mut present: HashSet<(usize, usize)> = edges.iter().map(|e| (e.0, e.1)).collect();
            if edges.len() < 2 {
                return edges;
            }
            for _ in 0..swaps_per_edge * edges.len() {
                let (i, j) = (rng.below(edges.len()), rng.below(edges.len()));
                let ((a, b, w1), (c, d, w2)) = (edges[i], edges[j]);
                if a == c || b == d || a == d || c == b || present.contains(&(a, d)) || present.contains(&(c, b)) {
                    continue;
                }
                present.remove(&(a, b));
                present.remove(&(c, d));
                present.insert((a, d));
                present.insert((c, b));
                edges[i] = (a, d, w1);
                edges[j] = (c, b, w2);
            }
            edges
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn nmi_is_one_for_the_same_partition_and_low_for_unrelated_ones() {
        assert!(close(nmi(&[0, 0, 1, 1], &[5, 5, 2, 2]), 1.0));
        assert_eq!(nmi(&[0, 0, 0], &[1, 1, 1]), Some(1.0));
        // One community against four singletons: no information.
        assert!(close(nmi(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0));
        // Crossed halves: independent.
        assert!(nmi(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap().abs() < 1e-12);
        let partial = nmi(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 1, 1]).unwrap();
        assert!(partial > 0.1 && partial < 0.9, "{partial}");
        assert_eq!(nmi(&[0], &[0, 1]), None);
        assert!(close(mean_pairwise_nmi(&[vec![0, 1], vec![1, 0], vec![0, 0]]), 1.0 / 3.0));
    }

    /// Degrees per block and the multiset of weights survive; edges stay
    /// within their block, never repeat, and do move.
    #[test]
    fn rewiring_keeps_degrees_weights_and_blocks() {
        let block: Vec<(usize, usize, f64)> = (0..6)
            .flat_map(|a| (6..10).filter(move |b| (a + b) % 3 != 0).map(move |b| (a, b, (a * 10 + b) as f64)))
            .collect();
        let second: Vec<(usize, usize, f64)> = (6..10).map(|a| (a, 10 + a % 2, a as f64)).collect();
        let out = rewire_layers(&[block.clone(), second.clone()], 10, 3);
        let degrees = |edges: &[(usize, usize, f64)]| {
            let mut d: BTreeMap<usize, usize> = BTreeMap::new();
            edges.iter().for_each(|e| {
                *d.entry(e.0).or_default() += 1;
                *d.entry(e.1).or_default() += 1;
            });
            d
        };
        let weights = |edges: &[(usize, usize, f64)]| {
            let mut w: Vec<u64> = edges.iter().map(|e| e.2.to_bits()).collect();
            w.sort_unstable();
            w
        };
        for (before, after) in [&block, &second].into_iter().zip(&out) {
            assert_eq!(degrees(before), degrees(after));
            assert_eq!(weights(before), weights(after));
            let unique: HashSet<(usize, usize)> = after.iter().map(|e| (e.0, e.1)).collect();
            assert_eq!(unique.len(), after.len());
        }
        assert_ne!(out[0], block, "no edge moved");
        assert_eq!(rewire_layers(std::slice::from_ref(&block), 10, 3)[0], out[0], "seeded");
    }
}
