//! Summaries of a sample: bootstrap percentile intervals (STUDY §5),
//! t-intervals over seeds, Spearman's ρ, AUROC and the ROC.

use serde::{Deserialize, Serialize};

/// Mean and 95% percentile interval of a bootstrap distribution (STUDY §5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The mean.
    pub mean: f64,
    /// 2.5th percentile.
    pub lo: f64,
    /// 97.5th percentile.
    pub hi: f64,
    /// Values summarised.
    pub n: usize,
}

impl Summary {
    /// `None` for an empty sample or one holding a NaN.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            lo: percentile(&sorted, 2.5),
            hi: percentile(&sorted, 97.5),
            n: values.len(),
        })
    }

    /// The mean of `values` with a two-sided 95% Student-t interval,
    /// `mean ± t(0.975, n−1) · sd / √n` (STUDY §9: across seeds, each seed
    /// one value). `None` for fewer than two values or a NaN; an infinite
    /// value gives an infinite interval.
    pub fn t_interval(values: &[f64]) -> Option<Summary> {
        let n = values.len();
        if n < 2 || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = t_975(n - 1) * (var / n as f64).sqrt();
        Some(Summary { mean, lo: mean - half, hi: mean + half, n })
    }

    /// Half the interval's width, the paper's "± CI".
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// Whether `x` lies in the interval.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom: exact
/// (to 4 digits) up to 30, then the normal approximation with its first
/// correction, `z + (z³ + z) / (4·df)`.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let z = 1.959_964;
            z + (z * z * z + z) / (4.0 * df as f64)
        }
    }
}

/// Linear interpolation between closest ranks (NumPy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 >= sorted.len() {
        return sorted[sorted.len() - 1];
    }
    sorted[i] + (sorted[i + 1] - sorted[i]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v: Vec<f64> = (1..=101).map(|i| i as f64).collect();
        let s = Summary::of(&v).unwrap();
        assert_eq!((s.mean, s.lo, s.hi), (51.0, 3.5, 98.5));
        assert_eq!(Summary::of(&[2.0]).unwrap().lo, 2.0);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn t_intervals_match_a_statistics_table() {
        // Five seeds 1..5: mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776.
        let s = Summary::t_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let half = 2.776 * (2.5f64 / 5.0).sqrt();
        assert!((s.mean - 3.0).abs() < 1e-12 && (s.hi - 3.0 - half).abs() < 1e-12 && s.n == 5);
        assert!(Summary::t_interval(&[1.0]).is_none());
        // Past the table: t(0.975, 1000) is 1.9623.
        assert!((t_975(1000) - 1.9623).abs() < 1e-3 && t_975(31) < t_975(30));
    }
}

/// Spearman's rank correlation of `a` and `b` (ties share their mean rank):
/// how well one ranking agrees with another, as attribution patching is
/// compared with exact patching (STUDY §8). `None` when the lengths differ,
/// there are fewer than two values, or either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let mean = (a.len() as f64 + 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - mean) * (y - mean);
        va += (x - mean) * (x - mean);
        vb += (y - mean) * (y - mean);
    }
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// 1-based ranks, ties given the mean of the ranks they span.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = rank;
        }
        i = j + 1;
    }
    r
}

#[cfg(test)]
mod spearman_tests {
    use super::*;

    #[test]
    fn rank_correlation_of_monotone_reversed_and_tied_data() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(spearman(&a, &[10.0, 20.0, 25.0, 90.0, 100.0]), Some(1.0));
        assert_eq!(spearman(&a, &[5.0, 4.0, 3.0, 2.0, 1.0]), Some(-1.0));
        // Ties share ranks: b's ranks are 1.5, 1.5, 3, 4, 5.
        let rho = spearman(&a, &[0.0, 0.0, 1.0, 2.0, 3.0]).unwrap();
        assert!((rho - 0.974_679_434_480_896_4).abs() < 1e-12, "{rho}");
        assert_eq!(spearman(&a, &[1.0; 5]), None);
        assert_eq!(spearman(&a, &a[..4]), None);
    }
}

/// The area under the ROC curve of `scores` against the truth `positive`
/// (a higher score should mean positive): the Mann-Whitney statistic
/// `U / (n_pos · n_neg)`, the share of positive-negative pairs the scores
/// order correctly, a tie counting one half (ties share their mean rank).
/// Planted ground truth is scored by it, as MIB's circuit track scores its
/// methods. `None` when the lengths differ, a class is empty, or a score is
/// not finite.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    if scores.len() != positive.len() || scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let rank_sum: f64 = ranks(scores).iter().zip(positive).filter(|(_, &p)| p).map(|(r, _)| r).sum();
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// The ROC curve of `scores` against `positive` (higher score, positive),
/// read at each false-positive rate of `fprs`: the true-positive rate of
/// the curve whose tied scores form one straight segment, the curve whose
/// area is [`auroc`]. `None` where [`auroc`] is.
pub fn roc_tpr_at(scores: &[f64], positive: &[bool], fprs: &[f64]) -> Option<Vec<f64>> {
    auroc(scores, positive)?;
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // The curve's corners: after each group of tied scores.
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if positive[order[j]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        points.push((fp / n_neg, tp / n_pos));
        i = j;
    }
    let at = |x: f64| -> f64 {
        // The highest TPR at this FPR (a vertical segment keeps its top).
        let k = points.partition_point(|p| p.0 <= x);
        let (x1, y1) = points[k - 1];
        match points.get(k) {
            Some(&(x2, y2)) if x2 > x1 => y1 + (y2 - y1) * (x - x1) / (x2 - x1),
            _ => y1,
        }
    };
    Some(fprs.iter().map(|&x| at(x.clamp(0.0, 1.0))).collect())
}

#[cfg(test)]
mod auroc_tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition, pair by pair.
    fn brute_force(scores: &[f64], positive: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &p) in positive.iter().enumerate() {
            for (j, &q) in positive.iter().enumerate() {
                if p && !q {
                    pairs += 1.0;
                    wins += match scores[i].partial_cmp(&scores[j]).unwrap() {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn perfect_reversed_tied_and_undefined() {
        let truth = [true, true, false, false];
        assert_eq!(auroc(&[4.0, 3.0, 2.0, 1.0], &truth), Some(1.0));
        assert_eq!(auroc(&[1.0, 2.0, 3.0, 4.0], &truth), Some(0.0));
        assert_eq!(auroc(&[1.0; 4], &truth), Some(0.5));
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(auroc(&[1.0, f64::NAN], &[true, false]), None);
        assert_eq!(auroc(&[1.0], &truth), None);
    }

    proptest! {
        /// Scores drawn from a few values, so that ties are common.
        #[test]
        fn equals_the_pairwise_count(cases in prop::collection::vec((0u8..6, any::<bool>()), 2..60)) {
            let scores: Vec<f64> = cases.iter().map(|&(s, _)| s as f64 * 0.5 - 1.0).collect();
            let truth: Vec<bool> = cases.iter().map(|&(_, p)| p).collect();
            match auroc(&scores, &truth) {
                Some(a) => prop_assert!((a - brute_force(&scores, &truth)).abs() < 1e-12),
                None => prop_assert!(truth.iter().all(|&p| p) || truth.iter().all(|&p| !p)),
            }
        }
    }
}

#[cfg(test)]
mod roc_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The curve is straight between corners, which lie on multiples of
        /// 1/n_neg: the midpoint rule on those intervals gives its area
        /// exactly, and that area is AUROC.
        #[test]
        fn the_curve_has_the_auroc_as_its_area(
            raw in proptest::collection::vec((0u8..6, any::<bool>()), 2..40),
        ) {
            let scores: Vec<f64> = raw.iter().map(|(s, _)| *s as f64).collect();
            let positive: Vec<bool> = raw.iter().map(|(_, p)| *p).collect();
            let n_neg = positive.iter().filter(|p| !**p).count();
            prop_assume!(n_neg > 0 && n_neg < positive.len());
            let mids: Vec<f64> = (0..n_neg).map(|k| (k as f64 + 0.5) / n_neg as f64).collect();
            let area: f64 = roc_tpr_at(&scores, &positive, &mids).unwrap().iter().sum::<f64>() / n_neg as f64;
            prop_assert!((area - auroc(&scores, &positive).unwrap()).abs() < 1e-9);
            let grid: Vec<f64> = (0..=20).map(|k| k as f64 / 20.0).collect();
            let tpr = roc_tpr_at(&scores, &positive, &grid).unwrap();
            prop_assert!(tpr.windows(2).all(|w| w[0] <= w[1] + 1e-12));
            prop_assert_eq!(*tpr.last().unwrap(), 1.0);
        }
    }
}
