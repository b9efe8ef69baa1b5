//! How modular a weighted, undirected graph is (STUDY §9): Newman's
//! modularity Q of the communities Louvain finds, and the normalised cut of
//! a spectral clustering (Filan et al. 2021). The graph is plain data; how a
//! network becomes one (neurons as nodes, `|W|` as edge weights) is the
//! caller's choice.
//!
//! ```
//! use modcirc_modularity::{best_louvain, spectral_ncut, Graph};
//! // Two triangles joined by one weak edge.
//! let edges = [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 1.0), (3, 4, 1.0), (4, 5, 1.0), (3, 5, 1.0), (2, 3, 0.1)];
//! let g = Graph::from_edges(6, edges).unwrap();
//! let p = best_louvain(&g, 10, 0);
//! assert_eq!(p.count, 2);
//! assert!(p.q > 0.4);
//! let s = spectral_ncut(&g, 2, 10, 0).unwrap();
//! assert_eq!(s.labels[0], s.labels[2]);
//! assert_ne!(s.labels[0], s.labels[3]);
//! assert!(s.ncut < 0.05);
//! ```

#![warn(missing_docs)]

mod kmeans;
mod louvain;
mod rng;
mod uncertainty;

pub use louvain::{best_louvain, louvain, louvain_runs, Partition};
pub use uncertainty::{mean_pairwise_nmi, nmi, rewire_layers};

/// What can go wrong building a graph or clustering it.
#[derive(Debug, thiserror::Error)]
pub enum ModularityError {
    /// An edge to a node that does not exist.
    #[error("edge ({a}, {b}) in a graph of {n} nodes")]
    NoSuchNode {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
        /// Nodes in the graph.
        n: usize,
    },
    /// A weight that is negative, NaN or infinite.
    #[error("edge ({a}, {b}) has weight {w}: weights must be finite and at least 0")]
    BadWeight {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
        /// The weight.
        w: f64,
    },
    /// A node without any edge: its degree is 0 and the normalised
    /// Laplacian is undefined there.
    #[error("node {0} has no edge: drop isolated nodes before a spectral clustering")]
    Isolated(usize),
    /// More clusters than nodes, or none.
    #[error("{k} clusters of a graph of {n} nodes")]
    BadK {
        /// Clusters asked for.
        k: usize,
        /// Nodes.
        n: usize,
    },
    /// The eigensolver did not converge.
    #[error("the eigendecomposition did not converge")]
    Eigen,
}

/// A weighted, undirected graph: `adj[i]` lists `(j, w)` for every edge,
/// both ways, parallel edges summed, a self-loop listed once with its
/// weight counted twice in the degree (Newman's convention).
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    adj: Vec<Vec<(usize, f64)>>,
}

impl Graph {
    /// A graph of `n` nodes and the given edges `(a, b, w)`; edges of weight 0
    /// are left out.
    pub fn from_edges(
        n: usize,
        edges: impl IntoIterator<Item = (usize, usize, f64)>,
    ) -> Result<Graph, ModularityError> {
        let mut adj: Vec<std::collections::BTreeMap<usize, f64>> = vec![Default::default(); n];
        for (a, b, w) in edges {
            if a >= n || b >= n {
                return Err(ModularityError::NoSuchNode { a, b, n });
            }
            if !w.is_finite() || w < 0.0 {
                return Err(ModularityError::BadWeight { a, b, w });
            }
            if w == 0.0 {
                continue;
            }
            *adj[a].entry(b).or_default() += w;
            if a != b {
                *adj[b].entry(a).or_default() += w;
            }
        }
        Ok(Graph { adj: adj.into_iter().map(|m| m.into_iter().collect()).collect() })
    }

    /// Nodes.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }

    /// `(neighbour, weight)` of node `i`.
    pub fn neighbours(&self, i: usize) -> &[(usize, f64)] {
        &self.adj[i]
    }

    /// Weighted degree `k_i` (a self-loop counts twice).
    pub fn degree(&self, i: usize) -> f64 {
        self.adj[i].iter().map(|&(j, w)| if j == i { 2.0 * w } else { w }).sum()
    }

    /// `2m`: the sum of every degree.
    pub fn total_degree(&self) -> f64 {
        (0..self.len()).map(|i| self.degree(i)).sum()
    }

    /// The nodes with at least one edge, and the graph on them alone
    /// (renumbered in order).
    pub fn without_isolated(&self) -> (Vec<usize>, Graph) {
        let kept: Vec<usize> = (0..self.len()).filter(|&i| !self.adj[i].is_empty()).collect();
        let mut index = vec![usize::MAX; self.len()];
        for (new, &old) in kept.iter().enumerate() {
            index[old] = new;
        }
        let adj = kept.iter().map(|&i| self.adj[i].iter().map(|&(j, w)| (index[j], w)).collect()).collect();
        (kept, Graph { adj })
    }
}

/// Newman's modularity of the partition `labels` (any label values):
/// `Q = sum over communities c of [ in_c / 2m - (tot_c / 2m)^2 ]`, where
/// `in_c` sums the adjacency entries inside `c` and `tot_c` its degrees
/// (STUDY §9). 0 for a graph without edges.
pub fn modularity(g: &Graph, labels: &[usize]) -> f64 {
    let two_m = g.total_degree();
    if two_m == 0.0 {
        return 0.0;
    }
    let mut inside = std::collections::BTreeMap::<usize, f64>::new();
    let mut total = std::collections::BTreeMap::<usize, f64>::new();
    for i in 0..g.len() {
        *total.entry(labels[i]).or_default() += g.degree(i);
        for &(j, w) in g.neighbours(i) {
            if labels[j] == labels[i] {
                *inside.entry(labels[i]).or_default() += if i == j { 2.0 * w } else { w };
            }
        }
    }
    total.iter().map(|(c, tot)| inside.get(c).copied().unwrap_or(0.0) / two_m - (tot / two_m).powi(2)).sum()
}

/// The normalised cut of `labels`: `sum over clusters C of cut(C) / vol(C)`,
/// where `cut(C)` is the weight of the edges leaving `C` and `vol(C)` the
/// sum of its degrees (STUDY §9; lower: more clusterable). A cluster of
/// volume 0 contributes 0.
pub fn ncut(g: &Graph, labels: &[usize]) -> f64 {
    let mut cut = std::collections::BTreeMap::<usize, f64>::new();
    let mut vol = std::collections::BTreeMap::<usize, f64>::new();
    for i in 0..g.len() {
        *vol.entry(labels[i]).or_default() += g.degree(i);
        for &(j, w) in g.neighbours(i) {
            if labels[j] != labels[i] {
                *cut.entry(labels[i]).or_default() += w;
            }
        }
    }
    vol.iter().filter(|(_, &v)| v > 0.0).map(|(c, v)| cut.get(c).copied().unwrap_or(0.0) / v).sum()
}

/// A spectral clustering and its normalised cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectral {
    /// Each node's cluster, `0..k`.
    pub labels: Vec<usize>,
    /// [`ncut`] of `labels`.
    pub ncut: f64,
}

/// Spectral clustering into `k` clusters (STUDY §9, after Filan et al.
/// 2021): the `k` eigenvectors of the normalised Laplacian
/// `I - D^-1/2 A D^-1/2` with the smallest eigenvalues, each node's row
/// normalised to unit length, then k-means from `restarts` seeded k-means++
/// starts, keeping the lowest within-cluster sum of squares. Every node
/// must have an edge.
pub fn spectral_ncut(g: &Graph, k: usize, restarts: usize, seed: u64) -> Result<Spectral, ModularityError> {
    Ok(spectral_ncuts(g, &[k], restarts, seed)?.remove(0))
}

/// [`spectral_ncut`] for each of `ks`, from one eigendecomposition.
pub fn spectral_ncuts(g: &Graph, ks: &[usize], restarts: usize, seed: u64) -> Result<Vec<Spectral>, ModularityError> {
    let n = g.len();
    if let Some(&k) = ks.iter().find(|&&k| k == 0 || k > n) {
        return Err(ModularityError::BadK { k, n });
    }
    let degree: Vec<f64> = (0..n).map(|i| g.degree(i)).collect();
    if let Some(i) = degree.iter().position(|&d| d <= 0.0) {
        return Err(ModularityError::Isolated(i));
    }
    let inv_sqrt: Vec<f64> = degree.iter().map(|d| 1.0 / d.sqrt()).collect();
    let mut lap = faer::Mat::<f64>::identity(n, n);
    for i in 0..n {
        for &(j, w) in g.neighbours(i) {
            // A self-loop's adjacency entry is twice its weight.
            let a = if i == j { 2.0 * w } else { w };
            lap[(i, j)] -= a * inv_sqrt[i] * inv_sqrt[j];
        }
    }
    let eig = lap.self_adjoint_eigen(faer::Side::Lower).map_err(|_| ModularityError::Eigen)?;
    let values = eig.S().column_vector();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let u = eig.U();
    Ok(ks
        .iter()
        .map(|&k| {
            let mut rows: Vec<Vec<f64>> = (0..n).map(|i| order[..k].iter().map(|&c| u[(i, c)]).collect()).collect();
            for r in &mut rows {
                let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm > 0.0 {
                    r.iter_mut().for_each(|x| *x /= norm);
                }
            }
            let labels = kmeans::best_of(&rows, k, restarts.max(1), seed);
            Spectral { ncut: ncut(g, &labels), labels }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q as its definition reads: a double sum over every pair of nodes.
    fn naive_modularity(g: &Graph, labels: &[usize]) -> f64 {
        let n = g.len();
        let mut a = vec![vec![0.0; n]; n];
        for (i, row) in a.iter_mut().enumerate() {
            for &(j, w) in g.neighbours(i) {
                row[j] = if i == j { 2.0 * w } else { w };
            }
        }
        let two_m = g.total_degree();
        let mut q = 0.0;
        for i in 0..n {
            for j in 0..n {
                if labels[i] == labels[j] {
                    q += a[i][j] - g.degree(i) * g.degree(j) / two_m;
                }
            }
        }
        q / two_m
    }

    #[test]
    fn modularity_matches_its_double_sum_on_random_graphs() {
        let mut r = rng::SplitMix::new(9);
        for trial in 0..20 {
            let n = 3 + trial;
            let edges: Vec<_> = (0..3 * n)
                .map(|_| (r.below(n), r.below(n), if r.unit() < 0.2 { 0.0 } else { r.unit() * 3.0 }))
                .collect();
            let g = Graph::from_edges(n, edges).unwrap();
            let labels: Vec<usize> = (0..n).map(|_| r.below(3)).collect();
            let (fast, slow) = (modularity(&g, &labels), naive_modularity(&g, &labels));
            assert!((fast - slow).abs() < 1e-12, "n = {n}: {fast} vs {slow}");
        }
    }

    #[test]
    fn bad_edges_and_isolated_nodes_are_errors() {
        assert!(matches!(Graph::from_edges(2, [(0, 2, 1.0)]), Err(ModularityError::NoSuchNode { .. })));
        assert!(matches!(Graph::from_edges(2, [(0, 1, f64::NAN)]), Err(ModularityError::BadWeight { .. })));
        assert!(matches!(Graph::from_edges(2, [(0, 1, -1.0)]), Err(ModularityError::BadWeight { .. })));
        let g = Graph::from_edges(4, [(0, 1, 1.0), (1, 3, 2.0)]).unwrap();
        assert!(matches!(spectral_ncut(&g, 2, 1, 0), Err(ModularityError::Isolated(2))));
        let (kept, h) = g.without_isolated();
        assert_eq!(kept, [0, 1, 3]);
        assert_eq!(h.neighbours(1), [(0, 1.0), (2, 2.0)]);
        assert!(matches!(spectral_ncut(&h, 4, 1, 0), Err(ModularityError::BadK { k: 4, n: 3 })));
    }

    #[test]
    fn two_cliques_joined_by_a_weak_edge_split_into_the_cliques() {
        // Two 8-cliques of weight 1, one edge of weight 0.01 between them.
        let mut edges = Vec::new();
        for base in [0, 8] {
            for a in 0..8 {
                for b in a + 1..8 {
                    edges.push((base + a, base + b, 1.0));
                }
            }
        }
        edges.push((7, 8, 0.01));
        let g = Graph::from_edges(16, edges).unwrap();
        let cliques: Vec<usize> = (0..16).map(|i| i / 8).collect();
        // Each clique: 28 edges, volume 56 + 0.01; one cut edge of 0.01.
        let vol = 56.01;
        let expected_q = 2.0 * (56.0 / (2.0 * vol) - 0.25);
        assert!((modularity(&g, &cliques) - expected_q).abs() < 1e-12);
        let p = best_louvain(&g, 10, 0);
        assert_eq!((p.count, p.labels[0] == p.labels[7], p.labels[0] == p.labels[8]), (2, true, false));
        assert!((p.q - expected_q).abs() < 1e-12, "{}", p.q);
        let s = spectral_ncut(&g, 2, 10, 0).unwrap();
        assert!((s.ncut - 2.0 * 0.01 / vol).abs() < 1e-12, "{}", s.ncut);
        assert!(s.labels[..8].iter().all(|&l| l == s.labels[0]) && s.labels[8..].iter().all(|&l| l != s.labels[0]));
    }

    /// Zachary's karate club (1977): 34 members, 78 friendships.
    const KARATE: [(usize, usize); 78] = [
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (0, 5),
        (0, 6),
        (0, 7),
        (0, 8),
        (0, 10),
        (0, 11),
        (0, 12),
        (0, 13),
        (0, 17),
        (0, 19),
        (0, 21),
        (0, 31),
        (1, 2),
        (1, 3),
        (1, 7),
        (1, 13),
        (1, 17),
        (1, 19),
        (1, 21),
        (1, 30),
        (2, 3),
        (2, 7),
        (2, 8),
        (2, 9),
        (2, 13),
        (2, 27),
        (2, 28),
        (2, 32),
        (3, 7),
        (3, 12),
        (3, 13),
        (4, 6),
        (4, 10),
        (5, 6),
        (5, 10),
        (5, 16),
        (6, 16),
        (8, 30),
        (8, 32),
        (8, 33),
        (9, 33),
        (13, 33),
        (14, 32),
        (14, 33),
        (15, 32),
        (15, 33),
        (18, 32),
        (18, 33),
        (19, 33),
        (20, 32),
        (20, 33),
        (22, 32),
        (22, 33),
        (23, 25),
        (23, 27),
        (23, 29),
        (23, 32),
        (23, 33),
        (24, 25),
        (24, 27),
        (24, 31),
        (25, 31),
        (26, 29),
        (26, 33),
        (27, 33),
        (28, 31),
        (28, 33),
        (29, 32),
        (29, 33),
        (30, 32),
        (30, 33),
        (31, 32),
        (31, 33),
        (32, 33),
    ];

    #[test]
    fn louvain_finds_the_karate_clubs_published_modularity() {
        let g = Graph::from_edges(34, KARATE.iter().map(|&(a, b)| (a, b, 1.0))).unwrap();
        let p = best_louvain(&g, 10, 0);
        // The best Q known for this graph is 0.4198 (four communities);
        // Louvain's best of ten runs reaches it or comes within 0.003.
        assert!(p.q > 0.4168 && p.q < 0.4198 + 1e-9, "Q = {}", p.q);
        assert!((p.q - modularity(&g, &p.labels)).abs() < 1e-12);
        assert!((4..=5).contains(&p.count), "{} communities", p.count);
        // The two leaders (0 and 33) end in different communities.
        assert_ne!(p.labels[0], p.labels[33]);
        // Seeded: the same seed gives the same partition.
        assert_eq!(best_louvain(&g, 10, 0), p);
    }
}
