use serde::{Deserialize, Serialize};

/// Mean and 95% percentile interval of a bootstrap distribution (STUDY §5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    /// 2.5th percentile.
    pub lo: f64,
    /// 97.5th percentile.
    pub hi: f64,
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
