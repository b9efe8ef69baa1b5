//! Tests of differences between two groups of seeds (STUDY §10): the exact
//! permutation test of a difference of means, and Holm's correction.

/// The most splits the exact test enumerates: C(20, 10) = 184 756.
pub const MAX_SPLITS: u64 = 184_756;

/// Which way a test of `mean(a) − mean(b)` looks (STUDY §10: one-sided in
/// the direction a hypothesis states, the two-sided p beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// `a`'s mean above `b`'s.
    Greater,
    /// `a`'s mean below `b`'s.
    Less,
    /// Either way.
    TwoSided,
}

/// The two-sided exact permutation p-value of `mean(a) − mean(b)`
/// ([`permutation_test`] with [`Alternative::TwoSided`]).
pub fn permutation_p(a: &[f64], b: &[f64]) -> Option<f64> {
    permutation_test(a, b, Alternative::TwoSided)
}

/// The exact permutation p-value of `mean(a) − mean(b)` against
/// `alternative`: the share of the C(n_a + n_b, n_a) ways of splitting the
/// pooled values into groups of `a`'s and `b`'s sizes whose difference of
/// means is at least as extreme as the observed one in that direction (the
/// observed split included, so `p > 0`). `None` where a group is empty, a
/// value is not finite, or there are more than [`MAX_SPLITS`] splits.
pub fn permutation_test(a: &[f64], b: &[f64], alternative: Alternative) -> Option<f64> {
    let (na, nb) = (a.len(), b.len());
    if na == 0 || nb == 0 || a.iter().chain(b).any(|v| !v.is_finite()) || binomial(na + nb, na)? > MAX_SPLITS {
        return None;
    }
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let total: f64 = pooled.iter().sum();
    let diff = |sum_a: f64| sum_a / na as f64 - (total - sum_a) / nb as f64;
    let observed = diff(a.iter().sum());
    // Relative slack, so that a split equal to the observed one in exact
    // arithmetic is not lost to rounding.
    let tol = 1e-12 * (1.0 + observed.abs());
    let extreme_enough = |d: f64| match alternative {
        Alternative::Greater => d >= observed - tol,
        Alternative::Less => d <= observed + tol,
        Alternative::TwoSided => d.abs() >= observed.abs() - tol,
    };
    let (mut extreme, mut splits) = (0u64, 0u64);
    let mut pick: Vec<usize> = (0..na).collect();
    loop {
        let sum: f64 = pick.iter().map(|&i| pooled[i]).sum();
        splits += 1;
        if extreme_enough(diff(sum)) {
            extreme += 1;
        }
        if !next_combination(&mut pick, na + nb) {
            break;
        }
    }
    Some(extreme as f64 / splits as f64)
}

/// The smallest p-value [`permutation_test`] can give groups of `na` and
/// `nb` distinct values one-sided: the one extreme split, 1 / C(na + nb, na)
/// (`None` where a group is empty or the count overflows).
pub fn smallest_one_sided_p(na: usize, nb: usize) -> Option<f64> {
    if na == 0 || nb == 0 {
        return None;
    }
    Some(1.0 / binomial(na + nb, na)? as f64)
}

/// The seeds per group a one-sided test at level `alpha`, Holm-corrected
/// over `family` tests, needs to call a difference of `effect` standard
/// deviations (STUDY §10: "the seeds that a difference of the observed size
/// would need"): the fewest `n` (2 to `max`) at which the test's first Holm
/// step can reject twice over, `family` times both the smallest attainable
/// p (1 / C(2n, n)) and the normal approximation of the p of such a
/// difference, `1 − Φ(effect·√(n/2))`, being below `alpha`. An infinite
/// effect (no spread within either group) needs only the first. `None`:
/// not in the test's direction (`effect ≤ 0`), or more than `max` seeds.
pub fn seeds_needed(effect: f64, family: usize, alpha: f64, max: usize) -> Option<usize> {
    if effect.is_nan() || effect <= 0.0 {
        return None;
    }
    (2..=max).find(|&n| {
        let floor = smallest_one_sided_p(n, n).unwrap_or(1.0);
        let tail = 0.5 * libm::erfc(effect * (n as f64 / 2.0).sqrt() / std::f64::consts::SQRT_2);
        family as f64 * floor.max(tail) < alpha
    })
}

/// The standardised difference `(mean(a) − mean(b)) / s`, `s` the pooled
/// standard deviation (Cohen's d): infinite where both groups are constant
/// and differ, `None` with fewer than two values on a side.
pub fn standardised_difference(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    let ss = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>();
    let pooled = ((ss(a, ma) + ss(b, mb)) / (a.len() + b.len() - 2) as f64).sqrt();
    Some(if pooled > 0.0 {
        (ma - mb) / pooled
    } else if ma == mb {
        0.0
    } else {
        (ma - mb).signum() * f64::INFINITY
    })
}

/// The smallest p-value [`permutation_p`] (two-sided) can give groups of
/// `na` and `nb` distinct values: the two extreme splits of all of them (`None` where a
/// group is empty or the count overflows).
pub fn smallest_permutation_p(na: usize, nb: usize) -> Option<f64> {
    if na == 0 || nb == 0 {
        return None;
    }
    let splits = binomial(na + nb, na)? as f64;
    Some(if na == nb { 2.0 } else { 1.0 } / splits)
}

/// `n` choose `k`, or `None` past `u64`.
fn binomial(n: usize, k: usize) -> Option<u64> {
    let k = k.min(n - k);
    let mut c: u64 = 1;
    for i in 0..k {
        c = c.checked_mul((n - i) as u64)? / (i as u64 + 1);
    }
    Some(c)
}

/// The next `k`-subset of `0..n` in lexicographic order; `false` after the last.
fn next_combination(pick: &mut [usize], n: usize) -> bool {
    let k = pick.len();
    let Some(i) = (0..k).rev().find(|&i| pick[i] < n - k + i) else { return false };
    pick[i] += 1;
    for j in i + 1..k {
        pick[j] = pick[j - 1] + 1;
    }
    true
}

/// Holm's step-down adjustment of `p` (in their order): each adjusted
/// p-value is the largest of `(m − rank)·p` over the p-values ranked up to
/// it, capped at 1. Rejecting where the adjusted value is at most α keeps
/// the family-wise error at α.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every assignment of the pooled values to group a (a bit mask with
    /// exactly `na` bits set), by brute force.
    fn brute_force(a: &[f64], b: &[f64], alternative: Alternative) -> f64 {
        let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
        let n = pooled.len();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let observed = mean(a) - mean(b);
        let slack = 1e-12 * (1.0 + observed.abs());
        let (mut hit, mut all) = (0, 0);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != a.len() {
                continue;
            }
            let (ga, gb): (Vec<f64>, Vec<f64>) = {
                let ga = (0..n).filter(|i| mask >> i & 1 == 1).map(|i| pooled[i]).collect();
                let gb = (0..n).filter(|i| mask >> i & 1 == 0).map(|i| pooled[i]).collect();
                (ga, gb)
            };
            all += 1;
            let d = mean(&ga) - mean(&gb);
            let hits = match alternative {
                Alternative::Greater => d >= observed - slack,
                Alternative::Less => d <= observed + slack,
                Alternative::TwoSided => d.abs() >= observed.abs() - slack,
            };
            hit += hits as u32;
        }
        hit as f64 / all as f64
    }

    #[test]
    fn the_exact_test_equals_brute_force_enumeration() {
        let mut s = 7u64;
        let mut u = move || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 8.0).round() / 4.0
        };
        for (na, nb) in [(1, 1), (2, 3), (3, 3), (5, 5), (4, 6), (1, 7)] {
            for shift in [0.0, 0.5, 3.0] {
                let a: Vec<f64> = (0..na).map(|_| u() + shift).collect();
                let b: Vec<f64> = (0..nb).map(|_| u()).collect();
                let p = permutation_p(&a, &b).unwrap();
                assert_eq!(p, brute_force(&a, &b, Alternative::TwoSided), "{a:?} {b:?}");
                for alt in [Alternative::Greater, Alternative::Less] {
                    assert_eq!(permutation_test(&a, &b, alt).unwrap(), brute_force(&a, &b, alt), "{alt:?} {a:?} {b:?}");
                }
            }
        }
        // 5 + 5 seeds fully separated: the two extreme splits of 252.
        let p = permutation_p(&[10.0, 11.0, 12.0, 13.0, 14.0], &[0.0, 1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(p, 2.0 / 252.0);
        assert_eq!(smallest_permutation_p(5, 5), Some(p));
        // One-sided in its direction: the one extreme split; the other way, every split.
        let (hi, lo) = ([10.0, 11.0, 12.0, 13.0, 14.0], [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(permutation_test(&hi, &lo, Alternative::Greater), Some(1.0 / 252.0));
        assert_eq!(permutation_test(&hi, &lo, Alternative::Less), Some(1.0));
        assert_eq!(smallest_one_sided_p(5, 5), Some(1.0 / 252.0));
        // Holm over a family of 8 such tests: 8/252 < 0.05, callable.
        assert!(holm(&[1.0 / 252.0; 8]).iter().all(|p| *p < 0.05));
        assert_eq!(permutation_p(&[], &[1.0]), None);
        assert_eq!(permutation_p(&[f64::NAN], &[1.0]), None);
    }

    #[test]
    fn holm_multiplies_by_the_remaining_count_and_keeps_the_order() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (a, want) in adj.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!((a - want).abs() < 1e-15, "{adj:?}");
        }
        assert_eq!(holm(&[0.5, 0.9]), [1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn seeds_needed_follow_the_floor_and_the_normal_tail() {
        // No spread: only the floor, 8 / C(2n, n) < 0.05 from n = 5 (252 splits).
        assert_eq!(seeds_needed(f64::INFINITY, 8, 0.05, 100), Some(5));
        // One standard deviation: 8·(1 − Φ(√(n/2))) < 0.05 from n = 13.
        assert_eq!(seeds_needed(1.0, 8, 0.05, 100), Some(13));
        assert_eq!(seeds_needed(1.0, 8, 0.05, 12), None);
        assert_eq!(seeds_needed(-1.0, 8, 0.05, 100), None);
        assert_eq!(seeds_needed(f64::NAN, 8, 0.05, 100), None);
        let d = standardised_difference(&[1.0, 3.0], &[0.0, 2.0]).unwrap();
        assert!((d - 1.0 / 2f64.sqrt()).abs() < 1e-12, "{d}");
        assert_eq!(standardised_difference(&[2.0, 2.0], &[1.0, 1.0]), Some(f64::INFINITY));
        assert_eq!(standardised_difference(&[1.0], &[1.0, 2.0]), None);
    }
}
