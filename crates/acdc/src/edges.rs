//! The edge rules: which weights a circuit of kept neurons holds (the eps
//! rule, STUDY §5), the activation-aware rule beside it, and the neurons an
//! edge list touches.

use modcirc_mlp::Mlp;

/// The hidden neurons that edges `[layer, output, input]` touch, per hidden
/// layer of the given widths: an edge of layer `l > 0` reads neuron `input`
/// of hidden layer `l - 1`, and an edge of any layer but the output layer
/// writes neuron `output` of hidden layer `l`. The node rule of
/// [`crate::Circuit::from_edges`], for edge lists from elsewhere (ACDC, top-|EAP|).
///
/// ```
/// // Two hidden layers of 3 and 2; an input edge into neuron 2, an edge
/// // from it to neuron 0 of layer 2, an output edge from neuron 1.
/// let nodes = modcirc_acdc::touched_neurons(&[3, 2], [[0, 2, 7], [1, 0, 2], [2, 4, 1]]);
/// assert_eq!(nodes, vec![vec![2], vec![0, 1]]);
/// ```
pub fn touched_neurons(widths: &[usize], edges: impl IntoIterator<Item = [usize; 3]>) -> Vec<Vec<usize>> {
    let hidden = widths.len();
    let mut touched: Vec<Vec<bool>> = widths.iter().map(|&w| vec![false; w]).collect();
    for [l, o, i] in edges {
        if l > 0 {
            touched[l - 1][i] = true;
        }
        if l < hidden {
            touched[l][o] = true;
        }
    }
    touched.iter().map(|t| (0..t.len()).filter(|&i| t[i]).collect()).collect()
}

/// The smallest |weight| of a layer that the eps edge rule keeps:
/// `eps · max|W_l|` (STUDY §5).
pub fn edge_threshold(weight: &[f32], eps: f64) -> f32 {
    eps as f32 * weight.iter().fold(0f32, |m, w| m.max(w.abs()))
}

/// How the activation-aware edge rule reads, in words (every output that
/// counts by it names it).
pub const ACTIVATION_EDGE_RULE: &str =
    "activation-aware: a weight is an edge where |w| · mean |a| of its source over the task's clean and corrupted images is at least eps times the layer's largest such product";

/// Each layer's edges under the eps rule (STUDY §5: `|w| ≥ eps · max|W_l|`)
/// and under the activation-aware rule ([`ACTIVATION_EDGE_RULE`]) on the
/// `n` images `x` (`[n, inputs]`): `(eps rule, activation-aware)` per
/// layer. A weight whose source never fires carries nothing on these
/// images, however large it is: the second count leaves it out, so two
/// models whose weights shrink differently (weight decay on border
/// pixels) compare by what their weights carry.
pub fn edge_counts(model: &Mlp, x: &[f32], n: usize, eps: f64) -> Vec<(usize, usize)> {
    let mut a = x.to_vec();
    let last = model.layers.len() - 1;
    let mut counts = Vec::with_capacity(model.layers.len());
    for (l, layer) in model.layers.iter().enumerate() {
        let mean_abs: Vec<f64> = (0..layer.n_in)
            .map(|i| (0..n).map(|b| a[b * layer.n_in + i].abs() as f64).sum::<f64>() / n.max(1) as f64)
            .collect();
        let threshold = edge_threshold(&layer.weight, eps);
        let by_weight = layer.weight.iter().filter(|w| w.abs() >= threshold).count();
        let carried: Vec<f64> =
            layer.weight.iter().enumerate().map(|(j, w)| w.abs() as f64 * mean_abs[j % layer.n_in]).collect();
        let top = carried.iter().fold(0f64, |m, &c| m.max(c));
        let by_activation = carried.iter().filter(|&&c| c >= eps * top).count();
        counts.push((by_weight, by_activation));
        let mut z = vec![0f32; n * layer.n_out];
        layer.forward_into(&a, n, &mut z);
        if l != last {
            model.activation.apply_in_place(&mut z);
        }
        a = z;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eps_count_is_the_whole_circuits_and_the_activation_rule_drops_silent_sources() {
        let mut rng = modcirc_dataset::Rng::new(9);
        let model = Mlp::init(&[12, 8, 5, 3], modcirc_mlp::Activation::Relu, &mut || rng.next_f64()).unwrap();
        let n = 6;
        // Inputs 0..4 are always 0: their weights carry nothing on these images.
        let x: Vec<f32> = (0..n * 12).map(|j| if j % 12 < 4 { 0.0 } else { rng.next_f64() as f32 }).collect();
        for eps in [0.0, 0.01, 0.3] {
            let counts = edge_counts(&model, &x, n, eps);
            let all = crate::Circuit::new(&model, vec![(0..8).collect(), (0..5).collect()], eps).unwrap();
            assert_eq!(counts.iter().map(|c| c.0).sum::<usize>(), all.n_edges(), "eps {eps}");
            if eps > 0.0 {
                assert!(counts[0].1 <= 8 * 8, "at most the 8 live inputs' weights: {:?}", counts[0]);
            }
        }
        assert_eq!(edge_counts(&model, &x, n, 0.0)[0].1, 8 * 12, "eps 0 keeps every weight");
    }
}
