//! What a circuit's logits are judged by: distances to the model's logits and
//! the logit difference (STUDY §4-§5).

/// `‖a − b‖₂` of two logit vectors.
pub fn l2_distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (*x - *y) as f64;
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// The paper's "logit difference" (STUDY §4, §5): the mean over rows of the
/// L2 distance between two row-major `[n, classes]` logit matrices. This is
/// a distance between logit vectors, not the answer metric
/// `L[clean] − L[corrupted]`.
pub fn logit_difference(a: &[f32], b: &[f32], classes: usize) -> f64 {
    assert_eq!(a.len(), b.len(), "logit matrices differ in size");
    let rows = a.len() / classes;
    if rows == 0 {
        return 0.0;
    }
    a.chunks_exact(classes).zip(b.chunks_exact(classes)).map(|(x, y)| l2_distance(x, y)).sum::<f64>() / rows as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_difference_is_the_mean_row_distance() {
        let a = [0.0, 0.0, 1.0, 1.0];
        let b = [3.0, 4.0, 1.0, 1.0];
        assert_eq!(logit_difference(&a, &b, 2), 2.5);
    }
}
