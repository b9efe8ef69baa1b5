//! Controls on a discovered circuit (STUDY §10): is it better than chance
//! (random circuits of its size), and is it the only one (the best circuits
//! disjoint from it, found by the same scores)?

use modcirc_dataset::{ImageSet, Rng};
use modcirc_metrics::Summary;
use modcirc_mlp::{argmax, Mlp};
use serde::{Deserialize, Serialize};

use crate::attribution::{faithfulness, faithfulness_of};
use crate::{Ablation, AcdcError, Circuit, NeuronScores, PatchingSweep, Selection, SharedFirstLayer, TaskImages};

/// Random circuits drawn per pool for a circuit's comparison (STUDY §10).
pub const DEFAULT_RANDOM_CIRCUITS: usize = 200;
/// The most disjoint alternatives sought after the discovered circuit.
pub const DEFAULT_ALTERNATIVES: usize = 5;
/// The faithfulness from which an alternative counts as a faithful circuit.
pub const DEFAULT_FAITHFUL: f64 = 0.8;

/// What a random circuit's neurons are drawn from, per hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// The layer's live neurons (dead ones only when too few are live).
    Live,
    /// Every neuron of the layer.
    All,
    /// Edges, not neurons: as many weights of each layer as the circuit
    /// keeps there, drawn from all of the layer's (for edge circuits).
    Edges,
}

/// One circuit's metrics on the pairs of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CircuitMetrics {
    /// Distance of its logits to the model's (lower is better).
    pub logit_difference: f64,
    /// Its accuracy on the clean and corrupted images.
    pub accuracy: f64,
    /// Its faithfulness (STUDY §8); `None` where the model answers the
    /// same on clean and corrupted images.
    pub faithfulness: Option<f64>,
}

impl CircuitMetrics {
    /// `circuit`'s metrics on `sweep`'s pairs under `ablation` (faithfulness
    /// always patches with the corrupted run, STUDY §8).
    pub fn of(circuit: &Circuit, sweep: &PatchingSweep<'_>, ablation: Ablation) -> Result<CircuitMetrics, AcdcError> {
        let eval = circuit.evaluate(sweep, ablation)?;
        let faithfulness = defined(faithfulness(sweep, circuit))?;
        Ok(CircuitMetrics { logit_difference: eval.logit_difference, accuracy: eval.accuracy, faithfulness })
    }

    /// [`CircuitMetrics::of`], the first layer's products from `shared`:
    /// for many circuits on one sweep.
    pub fn of_shared(
        circuit: &Circuit,
        sweep: &PatchingSweep<'_>,
        ablation: Ablation,
        shared: &SharedFirstLayer,
    ) -> Result<CircuitMetrics, AcdcError> {
        let eval = circuit.evaluate_shared(sweep, ablation, shared)?;
        let faithfulness =
            defined(circuit.answer_metric_shared(sweep, shared).and_then(|m| faithfulness_of(sweep, m)))?;
        Ok(CircuitMetrics { logit_difference: eval.logit_difference, accuracy: eval.accuracy, faithfulness })
    }
}

/// A faithfulness, or `None` where it is undefined.
fn defined(f: Result<f64, AcdcError>) -> Result<Option<f64>, AcdcError> {
    match f {
        Ok(f) => Ok(Some(f)),
        Err(AcdcError::Degenerate(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The discovered circuit's value of one metric against the random
/// circuits' (STUDY §10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgainstRandom {
    /// The discovered circuit's value.
    pub circuit: f64,
    /// The random circuits' mean and 2.5-97.5 percentile range.
    pub random: Summary,
    /// The share of random circuits strictly worse than the discovered
    /// one, in percent.
    pub percentile: f64,
    /// `(1 + #random at least as good) / (1 + R)`: the one-sided
    /// permutation p-value of "no better than a random circuit of its size".
    pub p_value: f64,
}

impl AgainstRandom {
    /// Whether `p_value` is the smallest this many random circuits can give,
    /// 1/(R+1): none of them was as good.
    pub fn at_floor(&self) -> bool {
        self.p_value <= (1.0 + 1e-9) / (self.random.n as f64 + 1.0)
    }

    /// `p = …`, saying so where it is the floor (a smaller p needs more random circuits).
    pub fn p_text(&self) -> String {
        if self.at_floor() {
            format!("p = {:.4} (the floor 1/(R+1): none of {} random circuits reached it)", self.p_value, self.random.n)
        } else {
            format!("p = {:.4}", self.p_value)
        }
    }

    /// The comparison of `circuit` with `random`, where `lower_is_better`
    /// says which way is better; `None` where `random` is empty or holds NaN.
    pub fn of(circuit: f64, random: &[f64], lower_is_better: bool) -> Option<AgainstRandom> {
        let summary = Summary::of(random)?;
        let better = |a: f64, b: f64| if lower_is_better { a < b } else { a > b };
        let worse = random.iter().filter(|&&r| better(circuit, r)).count();
        let r = random.len() as f64;
        Some(AgainstRandom {
            circuit,
            random: summary,
            percentile: 100.0 * worse as f64 / r,
            p_value: (1 + random.len() - worse) as f64 / (1.0 + r),
        })
    }
}

/// The discovered circuit against R random circuits of its size from one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomCircuits {
    /// Where their neurons came from.
    pub pool: Pool,
    /// How many were drawn (R).
    pub drawn: usize,
    /// Logit difference (lower is better).
    pub logit_difference: AgainstRandom,
    /// Accuracy.
    pub accuracy: AgainstRandom,
    /// Faithfulness, over the random circuits where it is defined; `None`
    /// where it is not defined for the discovered circuit.
    pub faithfulness: Option<AgainstRandom>,
}

/// `r` random circuits with `selection`'s number of neurons per hidden
/// layer, drawn from `pool` with the seed `seed`, and the `eps` edges
/// between them, judged like the discovered circuit on `sweep`'s pairs
/// under `ablation` (STUDY §10).
pub fn random_circuits(
    sweep: &PatchingSweep<'_>,
    selection: &Selection,
    eps: f64,
    ablation: Ablation,
    pool: Pool,
    r: usize,
    seed: u64,
) -> Result<RandomCircuits, AcdcError> {
    let model = sweep.model();
    let shared = SharedFirstLayer::new(sweep, eps)?;
    let found =
        CircuitMetrics::of_shared(&Circuit::new(model, selection.nodes.clone(), eps)?, sweep, ablation, &shared)?;
    let stream = match pool {
        Pool::Live => 0x11FE,
        Pool::All => 0xA11,
        Pool::Edges => {
            return Err(AcdcError::BadOption(
                "random circuits of neurons: the edge pool is for random_edge_circuits".into(),
            ))
        }
    };
    against_draws(pool, &found, r, (seed, stream), |rng| {
        let nodes = selection
            .nodes
            .iter()
            .zip(&selection.dead)
            .enumerate()
            .map(|(h, (kept, dead))| draw_layer(model.layers[h].n_out, kept.len(), dead, pool, rng))
            .collect();
        CircuitMetrics::of_shared(&Circuit::new(model, nodes, eps)?, sweep, ablation, &shared)
    })
}

/// The circuit's metrics `found` against `r` random circuits, the `i`-th
/// drawn by `draw` from stream `stream + (i << 16)` of `seed`.
fn against_draws(
    pool: Pool,
    found: &CircuitMetrics,
    r: usize,
    (seed, stream): (u64, u64),
    mut draw: impl FnMut(&mut Rng) -> Result<CircuitMetrics, AcdcError>,
) -> Result<RandomCircuits, AcdcError> {
    if r == 0 {
        return Err(AcdcError::BadOption("random circuits: R must be at least 1".into()));
    }
    let draws: Vec<CircuitMetrics> =
        (0..r).map(|i| draw(&mut Rng::derive(seed, stream + ((i as u64) << 16)))).collect::<Result<_, _>>()?;
    let of = |f: fn(&CircuitMetrics) -> f64, v: f64, lower| {
        AgainstRandom::of(v, &draws.iter().map(f).collect::<Vec<_>>(), lower)
            .ok_or_else(|| AcdcError::Degenerate("a random circuit's metric is not a number".into()))
    };
    let faithful: Vec<f64> = draws.iter().filter_map(|d| d.faithfulness).collect();
    Ok(RandomCircuits {
        pool,
        drawn: draws.len(),
        logit_difference: of(|d| d.logit_difference, found.logit_difference, true)?,
        accuracy: of(|d| d.accuracy, found.accuracy, false)?,
        faithfulness: found.faithfulness.and_then(|f| AgainstRandom::of(f, &faithful, false)),
    })
}

/// `r` random edge circuits of `circuit`'s size: as many weights of each
/// layer as it keeps there, drawn uniformly from all of the layer's with
/// the seed `seed`, judged like it on `sweep`'s pairs under `ablation`
/// (STUDY §10's control, for a circuit given by its edges).
pub fn random_edge_circuits(
    sweep: &PatchingSweep<'_>,
    circuit: &Circuit,
    ablation: Ablation,
    r: usize,
    seed: u64,
) -> Result<RandomCircuits, AcdcError> {
    let model = sweep.model();
    let found = CircuitMetrics::of(circuit, sweep, ablation)?;
    let counts: Vec<usize> = circuit.edge_mask().iter().map(|m| m.iter().filter(|&&k| k).count()).collect();
    against_draws(Pool::Edges, &found, r, (seed, 0xED6E), |rng| {
        let mask: Vec<Vec<bool>> = model
            .layers
            .iter()
            .zip(&counts)
            .map(|(layer, &n)| {
                let mut order: Vec<usize> = (0..layer.weight.len()).collect();
                rng.shuffle(&mut order);
                let mut m = vec![false; layer.weight.len()];
                order[..n].iter().for_each(|&j| m[j] = true);
                m
            })
            .collect();
        CircuitMetrics::of(&Circuit::from_edges(model, &mask)?, sweep, ablation)
    })
}

/// `k` distinct neurons of a layer of `width`, ascending: uniformly from the
/// live ones (`dead` excluded) under [`Pool::Live`], then from the dead
/// ones when fewer than `k` are live; uniformly from all under
/// [`Pool::All`].
fn draw_layer(width: usize, k: usize, dead: &[usize], pool: Pool, rng: &mut Rng) -> Vec<usize> {
    let is_dead = |j: &usize| dead.binary_search(j).is_ok();
    let mut order: Vec<usize> = match pool {
        Pool::All | Pool::Edges => (0..width).collect(),
        Pool::Live => (0..width).filter(|j| !is_dead(j)).collect(),
    };
    rng.shuffle(&mut order);
    if order.len() < k {
        let mut rest: Vec<usize> = dead.to_vec();
        rng.shuffle(&mut rest);
        order.extend(rest);
    }
    let mut kept = order[..k].to_vec();
    kept.sort_unstable();
    kept
}

/// A circuit disjoint from the discovered one and from every alternative
/// before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// Kept neurons per hidden layer.
    pub nodes: Vec<Vec<usize>>,
    /// Its metrics on the same pairs.
    pub metrics: CircuitMetrics,
}

/// After the discovered circuit (`selection`), the best circuit disjoint
/// from it by the same scores and tie rule (the lowest-scoring remaining
/// live neurons, the same number per hidden layer), then the best disjoint
/// from both, and so on: up to `max` of them, fewer when a layer has fewer
/// live neurons left than the circuit keeps (STUDY §10).
pub fn alternatives(
    sweep: &PatchingSweep<'_>,
    scores: &NeuronScores,
    selection: &Selection,
    eps: f64,
    ablation: Ablation,
    max: usize,
) -> Result<Vec<Alternative>, AcdcError> {
    let model = sweep.model();
    let shared = SharedFirstLayer::new(sweep, eps)?;
    let mut used: Vec<Vec<bool>> = scores.layers.iter().map(|l| vec![false; l.len()]).collect();
    let mark = |used: &mut Vec<Vec<bool>>, nodes: &[Vec<usize>]| {
        for (u, n) in used.iter_mut().zip(nodes) {
            n.iter().for_each(|&j| u[j] = true);
        }
    };
    mark(&mut used, &selection.nodes);
    let mut found = Vec::new();
    while found.len() < max {
        let mut nodes = Vec::with_capacity(used.len());
        for (h, kept) in selection.nodes.iter().enumerate() {
            let score = &scores.layers[h];
            let mut order: Vec<usize> =
                (0..score.len()).filter(|&j| !used[h][j] && !scores.is_dead(score[j])).collect();
            if order.len() < kept.len() {
                return Ok(found);
            }
            order.sort_by(|&a, &b| score[a].total_cmp(&score[b]).then(a.cmp(&b)));
            let mut next = order[..kept.len()].to_vec();
            next.sort_unstable();
            nodes.push(next);
        }
        mark(&mut used, &nodes);
        let metrics = CircuitMetrics::of_shared(&Circuit::new(model, nodes.clone(), eps)?, sweep, ablation, &shared)?;
        found.push(Alternative { nodes, metrics });
    }
    Ok(found)
}

/// How many of `alternatives` reach faithfulness `threshold`.
pub fn faithful_alternatives(alternatives: &[Alternative], threshold: f64) -> usize {
    alternatives.iter().filter(|a| a.metrics.faithfulness.is_some_and(|f| f >= threshold)).count()
}

/// The any-digit control's pairs (STUDY §10): `n` pairs of images of
/// `split` drawn at random (seeded) whose classes as `model` predicts
/// them differ, labelled with those predictions, so that the answer metric
/// is `L[pred(clean)] − L[pred(corrupted)]`. No task of the study: what a
/// circuit of a given size reaches on any pair of digits.
pub fn any_digit_images(model: &Mlp, split: &ImageSet, n: usize, seed: u64) -> Result<TaskImages, AcdcError> {
    let (images, px, c) = (split.len(), split.pixels(), model.n_classes());
    if px != model.n_inputs() {
        return Err(AcdcError::Shape(format!("images have {px} pixels, the model takes {} inputs", model.n_inputs())));
    }
    let logits = model.forward(&split.images, images);
    let predicted: Vec<u8> = logits.chunks_exact(c).map(|row| argmax(row) as u8).collect();
    if predicted.iter().all(|&p| Some(&p) == predicted.first()) {
        return Err(AcdcError::Degenerate(
            "the model predicts one class for every image: no pair of two classes".into(),
        ));
    }
    let mut rng = Rng::derive(seed, 0xA11D);
    let (mut clean, mut corrupted) = (Vec::with_capacity(n), Vec::with_capacity(n));
    while clean.len() < n {
        let (a, b) = (rng.below(images), rng.below(images));
        if predicted[a] != predicted[b] {
            clean.push(a);
            corrupted.push(b);
        }
    }
    Ok(TaskImages {
        n,
        pixels: px,
        clean: split.gather(&clean),
        corrupted: split.gather(&corrupted),
        clean_labels: clean.iter().map(|&i| predicted[i]).collect(),
        corrupted_labels: corrupted.iter().map(|&i| predicted[i]).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_p_value_at_its_floor_says_so() {
        let floor = AgainstRandom::of(1.0, &[0.0; 20], false).unwrap();
        assert!((floor.p_value - 1.0 / 21.0).abs() < 1e-12 && floor.at_floor());
        assert!(
            floor.p_text().contains("the floor 1/(R+1): none of 20 random circuits reached it"),
            "{}",
            floor.p_text()
        );
        let above = AgainstRandom::of(0.5, &[0.0, 1.0, 0.2, 0.9], false).unwrap();
        assert!(!above.at_floor() && above.p_text() == "p = 0.6000", "{}", above.p_text());
    }

    #[test]
    fn the_p_value_counts_ties_as_at_least_as_good() {
        let a = AgainstRandom::of(1.0, &[0.5, 1.0, 2.0, 3.0], true).unwrap();
        assert_eq!(a.percentile, 50.0);
        assert_eq!(a.p_value, 3.0 / 5.0);
        let b = AgainstRandom::of(4.0, &[0.5, 1.0, 2.0, 3.0], false).unwrap();
        assert_eq!((b.percentile, b.p_value), (100.0, 1.0 / 5.0));
        assert_eq!(b.random.mean, 1.625);
        assert!(AgainstRandom::of(1.0, &[], true).is_none());
    }

    #[test]
    fn a_layer_is_drawn_from_its_live_neurons_and_filled_with_dead_ones() {
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let live = draw_layer(10, 4, &[0, 1, 2, 3, 4, 5], Pool::Live, &mut rng);
            assert_eq!(live, [6, 7, 8, 9]);
            let some = draw_layer(10, 6, &[0, 1, 2, 3, 4, 5], Pool::Live, &mut rng);
            assert!(some.ends_with(&[6, 7, 8, 9]) && some.len() == 6);
            let all = draw_layer(10, 3, &[0, 1], Pool::All, &mut rng);
            assert!(all.len() == 3 && all.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
