//! k-means with k-means++ starts (Arthur & Vassilvitskii 2007), the last
//! step of a spectral clustering.

use crate::rng::SplitMix;

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The labels of the lowest within-cluster sum of squares over `restarts`
/// runs, run `r` seeded with `seed + r`.
pub(crate) fn best_of(rows: &[Vec<f64>], k: usize, restarts: usize, seed: u64) -> Vec<usize> {
    (0..restarts as u64)
        .map(|r| lloyd(rows, k, &mut SplitMix::new(seed.wrapping_add(r))))
        .reduce(|best, run| if run.1 < best.1 { run } else { best })
        .map(|(labels, _)| labels)
        .unwrap_or_default()
}

/// One k-means run: k-means++ starts, then Lloyd's iterations until no
/// label changes (at most 300). Returns the labels and their inertia.
fn lloyd(rows: &[Vec<f64>], k: usize, rng: &mut SplitMix) -> (Vec<usize>, f64) {
    let n = rows.len();
    let mut centres = vec![rows[rng.below(n)].clone()];
    let mut nearest: Vec<f64> = rows.iter().map(|r| dist2(r, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        let pick = if total > 0.0 {
            let mut t = rng.unit() * total;
            nearest.iter().position(|&d| {
                t -= d;
                t < 0.0
            })
        } else {
            None
        }
        .unwrap_or_else(|| rng.below(n));
        centres.push(rows[pick].clone());
        for (d, r) in nearest.iter_mut().zip(rows) {
            *d = d.min(dist2(r, centres.last().expect("just pushed")));
        }
    }
    let assign = |centres: &[Vec<f64>]| -> Vec<usize> {
        rows.iter()
            .map(|r| (0..k).min_by(|&a, &b| dist2(r, &centres[a]).total_cmp(&dist2(r, &centres[b]))).expect("k > 0"))
            .collect()
    };
    let mut labels = assign(&centres);
    for _ in 0..300 {
        let dim = rows[0].len();
        let mut sums = vec![vec![0.0; dim]; k];
        let mut counts = vec![0usize; k];
        for (r, &l) in rows.iter().zip(&labels) {
            counts[l] += 1;
            sums[l].iter_mut().zip(r).for_each(|(s, x)| *s += x);
        }
        for c in 0..k {
            // An empty cluster keeps its centre.
            if counts[c] > 0 {
                centres[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            }
        }
        let next = assign(&centres);
        if next == labels {
            break;
        }
        labels = next;
    }
    let inertia = rows.iter().zip(&labels).map(|(r, &l)| dist2(r, &centres[l])).sum();
    (labels, inertia)
}
