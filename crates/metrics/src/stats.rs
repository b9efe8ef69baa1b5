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

    /// Half the interval's width, the paper's "± CI".
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// Whether `x` lies in the interval.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
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
fn ranks(v: &[f64]) -> Vec<f64> {
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
