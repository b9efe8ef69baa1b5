//! Which hidden neurons a circuit keeps, from their patching scores.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AcdcError, NeuronScores, DEAD_TOLERANCE};

/// How a circuit's hidden neurons are chosen from their scores. The
/// study's rule (STUDY §4) is `TopK` with one K for every layer; the others
/// are there to see how much the conclusions owe to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum SelectionRule {
    /// The K lowest scores of each hidden layer; ties, and every dead
    /// neuron (whose score counts as the baseline), go to the lower index.
    TopK {
        /// One K for every hidden layer, or one per hidden layer.
        k: Vec<usize>,
        /// Dead neurons never fill K: a layer with fewer live neurons than
        /// K keeps all its live ones.
        #[serde(default)]
        live_only: bool,
    },
    /// Every live neuron whose effect (baseline minus score) is at least
    /// `min_effect`: a layer may keep none.
    Threshold {
        /// The smallest effect kept, in logit-difference units.
        min_effect: f64,
    },
    /// Every live neuron whose effect is at least `min_share` of the
    /// baseline (the unpatched logit difference): a threshold that means
    /// the same on models whose logits have other scales.
    ShareThreshold {
        /// The smallest effect kept, as a fraction of the baseline.
        min_share: f64,
    },
}

impl SelectionRule {
    /// The study's rule: the `k` lowest scores of every hidden layer.
    pub fn top_k(k: usize) -> SelectionRule {
        SelectionRule::TopK { k: vec![k], live_only: false }
    }

    /// K of hidden layer `h` (0-based) under a `TopK` rule.
    fn k_of(k: &[usize], h: usize) -> usize {
        if k.len() == 1 {
            k[0]
        } else {
            k[h]
        }
    }

    /// Refuses a rule that does not fit hidden layers of `widths`: a K list
    /// of another length, a K outside `1..=width`, a non-finite effect.
    pub fn check(&self, widths: &[usize]) -> Result<(), AcdcError> {
        match self {
            SelectionRule::TopK { k, .. } => {
                if k.len() != 1 && k.len() != widths.len() {
                    return Err(AcdcError::BadSelection(format!(
                        "{} values of K for {} hidden layers: give one for all, or one per layer",
                        k.len(),
                        widths.len()
                    )));
                }
                for (h, &width) in widths.iter().enumerate() {
                    let kh = Self::k_of(k, h);
                    if kh == 0 || kh > width {
                        return Err(AcdcError::BadK { k: kh, layer: h + 1, width });
                    }
                }
                Ok(())
            }
            SelectionRule::Threshold { min_effect } if !min_effect.is_finite() => {
                Err(AcdcError::BadSelection(format!("min_effect = {min_effect}: must be a finite number")))
            }
            SelectionRule::Threshold { .. } => Ok(()),
            SelectionRule::ShareThreshold { min_share } if !min_share.is_finite() => {
                Err(AcdcError::BadSelection(format!("min_share = {min_share}: must be a finite number")))
            }
            SelectionRule::ShareThreshold { .. } => Ok(()),
        }
    }
}

impl fmt::Display for SelectionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionRule::TopK { k, live_only } => {
                let ks: Vec<String> = k.iter().map(usize::to_string).collect();
                write!(f, "top-K, K = {}", ks.join(","))?;
                if *live_only {
                    f.write_str(", live neurons only")?;
                }
                Ok(())
            }
            SelectionRule::Threshold { min_effect } => write!(f, "effect ≥ {min_effect}"),
            SelectionRule::ShareThreshold { min_share } => write!(f, "effect ≥ {}% of the baseline", min_share * 100.0),
        }
    }
}

/// The neurons a [`SelectionRule`] kept, and what the scores said about the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The rule.
    pub rule: SelectionRule,
    /// Kept neurons per hidden layer, ascending.
    pub nodes: Vec<Vec<usize>>,
    /// Neurons whose score equals the baseline (dead: patching them changes nothing).
    pub dead: Vec<Vec<usize>>,
    /// How many kept neurons per layer are dead: kept only to fill K.
    pub dead_kept: Vec<usize>,
    /// How many kept neurons per layer were decided by the tie rule among
    /// baseline-equal scores rather than by a lower score.
    pub decided_by_tie: Vec<usize>,
    /// How many live neurons per layer have a negative effect (their patch
    /// moves the logits away from the clean run) and were left out.
    pub harmful_left_out: Vec<usize>,
}

impl NeuronScores {
    pub(crate) fn is_dead(&self, s: f64) -> bool {
        (s - self.baseline).abs() <= DEAD_TOLERANCE * self.baseline.abs()
    }

    /// The effect of neuron `i` of hidden layer `h`: baseline minus score,
    /// how far patching it moves the corrupted logits towards the clean
    /// ones (positive: it carries the difference; 0: dead; negative: its
    /// patch moves them away).
    pub fn effect(&self, h: usize, i: usize) -> f64 {
        let s = self.layers[h][i];
        if self.is_dead(s) {
            0.0
        } else {
            self.baseline - s
        }
    }

    /// Every neuron's `|effect|`, per hidden layer: what a ranking of the
    /// neurons by exact patching ranks. A dead neuron's is 0 (the tie rule
    /// of STUDY §4 and §10), whatever rounding left in its score, so that
    /// ranks and AUROC do not rest on float noise.
    pub fn magnitudes(&self) -> Vec<Vec<f64>> {
        (0..self.layers.len()).map(|h| (0..self.layers[h].len()).map(|i| self.effect(h, i).abs()).collect()).collect()
    }

    /// The `k` lowest-scoring neurons of every hidden layer (STUDY §4).
    pub fn select(&self, k: usize) -> Result<Selection, AcdcError> {
        self.select_by(&SelectionRule::top_k(k))
    }

    /// The neurons `rule` keeps in every hidden layer.
    pub fn select_by(&self, rule: &SelectionRule) -> Result<Selection, AcdcError> {
        let widths: Vec<usize> = self.layers.iter().map(Vec::len).collect();
        rule.check(&widths)?;
        let mut sel = Selection {
            rule: rule.clone(),
            nodes: Vec::new(),
            dead: Vec::new(),
            dead_kept: Vec::new(),
            decided_by_tie: Vec::new(),
            harmful_left_out: Vec::new(),
        };
        for (h, scores) in self.layers.iter().enumerate() {
            let dead: Vec<usize> = (0..scores.len()).filter(|&j| self.is_dead(scores[j])).collect();
            let effect: Vec<f64> = (0..scores.len()).map(|j| self.effect(h, j)).collect();
            // Dead neurons score the baseline exactly, whatever rounding said.
            let score: Vec<f64> =
                (0..scores.len()).map(|j| if self.is_dead(scores[j]) { self.baseline } else { scores[j] }).collect();
            let above = |min: f64| -> Vec<usize> {
                (0..scores.len()).filter(|&j| !self.is_dead(scores[j]) && effect[j] >= min).collect()
            };
            let (mut kept, tie) = match rule {
                SelectionRule::TopK { k, live_only } => {
                    let mut order: Vec<usize> =
                        (0..scores.len()).filter(|&j| !*live_only || !self.is_dead(scores[j])).collect();
                    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]).then(a.cmp(&b)));
                    let k = SelectionRule::k_of(k, h).min(order.len());
                    let kept = order[..k].to_vec();
                    // Among the kept, those tied with the first left out were chosen by index.
                    let tie = match (kept.last(), order.get(k)) {
                        (Some(&last), Some(&next)) if score[last] == score[next] => {
                            kept.iter().filter(|&&j| score[j] == score[last]).count()
                        }
                        _ => 0,
                    };
                    (kept, tie)
                }
                SelectionRule::Threshold { min_effect } => (above(*min_effect), 0),
                SelectionRule::ShareThreshold { min_share } => (above(min_share * self.baseline), 0),
            };
            kept.sort_unstable();
            sel.dead_kept.push(kept.iter().filter(|j| dead.binary_search(j).is_ok()).count());
            sel.harmful_left_out
                .push((0..scores.len()).filter(|j| effect[*j] < 0.0 && kept.binary_search(j).is_err()).count());
            sel.decided_by_tie.push(tie);
            sel.nodes.push(kept);
            sel.dead.push(dead);
        }
        Ok(sel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Baseline 1.0; layer 1: two strong live neurons (2, 5), one harmful (0),
    /// the rest dead; layer 2: four live neurons of graded effect.
    fn scores() -> NeuronScores {
        NeuronScores {
            baseline: 1.0,
            layers: vec![vec![1.2, 1.0, 0.7, 1.0, 1.0, 0.73, 1.0, 1.0], vec![0.9, 0.5, 0.8, 0.95]],
        }
    }

    /// Dead neurons whose scores differ from the baseline by rounding alone
    /// (as in the penalised regimes, where most neurons are dead): however
    /// the rounding falls, the magnitudes, their ranks and the AUROC against
    /// a truth are the same.
    #[test]
    fn rounding_in_dead_neurons_changes_no_rank_or_auroc() {
        let truth: Vec<bool> =
            [true, false, true, false, false, true, false, false, true, true, false, false].into_iter().collect();
        let base = scores();
        let mut aurocs = Vec::new();
        let mut ranked = Vec::new();
        for noise in [0.0, 1e-16, -3e-12, 5e-10] {
            let mut s = base.clone();
            for (j, v) in s.layers[0].iter_mut().enumerate() {
                if *v == 1.0 {
                    *v += noise * (j as f64 - 3.5);
                }
            }
            let flat: Vec<f64> = s.magnitudes().concat();
            aurocs.push(modcirc_metrics::auroc(&flat, &truth).unwrap());
            ranked.push(modcirc_metrics::ranks(&flat));
        }
        assert!(aurocs.windows(2).all(|w| w[0] == w[1]), "{aurocs:?}");
        assert!(ranked.windows(2).all(|w| w[0] == w[1]));
        // Every dead neuron scores 0, every live one |baseline − score|.
        let want = [0.2, 0.0, 0.3, 0.0, 0.0, 0.27, 0.0, 0.0];
        assert!(base.magnitudes()[0].iter().zip(want).all(|(m, w)| (m - w).abs() < 1e-12));
    }

    #[test]
    fn top_k_fills_with_dead_neurons_by_index_and_says_so() {
        let sel = scores().select(4).unwrap();
        assert_eq!(sel.nodes[0], vec![1, 2, 3, 5]);
        assert_eq!(sel.dead_kept, vec![2, 0]);
        // Neurons 1 and 3 beat the other dead ones (4, 6, 7) on index only.
        assert_eq!(sel.decided_by_tie, vec![2, 0]);
        // Neuron 0 hurts and is left out: 1.2 is above the baseline.
        assert_eq!(sel.harmful_left_out, vec![1, 0]);
        assert_eq!(sel.nodes[1], vec![0, 1, 2, 3]);
    }

    #[test]
    fn live_only_keeps_the_live_neurons_when_they_are_fewer_than_k() {
        let rule = SelectionRule::TopK { k: vec![4], live_only: true };
        let sel = scores().select_by(&rule).unwrap();
        assert_eq!(sel.nodes[0], vec![0, 2, 5], "the three live neurons, harmful one last");
        assert_eq!(sel.dead_kept, vec![0, 0]);
        assert_eq!(sel.harmful_left_out, vec![0, 0]);
    }

    #[test]
    fn per_layer_k_and_threshold() {
        let sel = scores().select_by(&SelectionRule::TopK { k: vec![2, 1], live_only: false }).unwrap();
        assert_eq!(sel.nodes, vec![vec![2, 5], vec![1]]);
        let sel = scores().select_by(&SelectionRule::Threshold { min_effect: 0.15 }).unwrap();
        assert_eq!(sel.nodes, vec![vec![2, 5], vec![1, 2]]);
        assert_eq!(sel.dead_kept, vec![0, 0]);
        // A share of the baseline means the same on a model of twice the logit scale.
        let s = scores();
        let doubled = NeuronScores {
            baseline: 2.0 * s.baseline,
            layers: s.layers.iter().map(|l| l.iter().map(|v| 2.0 * v).collect()).collect(),
        };
        let share = doubled.select_by(&SelectionRule::ShareThreshold { min_share: 0.15 }).unwrap();
        assert_eq!(share.nodes, sel.nodes);
        assert_ne!(doubled.select_by(&SelectionRule::Threshold { min_effect: 0.15 }).unwrap().nodes, sel.nodes);
        let sel = scores().select_by(&SelectionRule::Threshold { min_effect: 0.5 }).unwrap();
        assert_eq!(sel.nodes, vec![vec![], vec![1]], "a layer may keep nothing");
    }

    #[test]
    fn rules_that_do_not_fit_are_refused() {
        let s = scores();
        assert!(matches!(s.select(9), Err(AcdcError::BadK { k: 9, layer: 1, width: 8 })));
        assert!(matches!(s.select(5), Err(AcdcError::BadK { k: 5, layer: 2, width: 4 })));
        let three = SelectionRule::TopK { k: vec![1, 1, 1], live_only: false };
        assert!(s.select_by(&three).unwrap_err().to_string().contains("3 values of K for 2 hidden layers"));
        assert!(s.select_by(&SelectionRule::Threshold { min_effect: f64::NAN }).is_err());
    }

    #[test]
    fn effects_are_baseline_minus_score_and_zero_when_dead() {
        let s = scores();
        assert!((s.effect(0, 2) - 0.3).abs() < 1e-12);
        assert!((s.effect(0, 0) + 0.2).abs() < 1e-12);
        assert_eq!(s.effect(0, 1), 0.0);
    }

    #[test]
    fn rules_round_trip_through_json() {
        for rule in [
            SelectionRule::top_k(15),
            SelectionRule::TopK { k: vec![15, 5], live_only: true },
            SelectionRule::Threshold { min_effect: 0.05 },
        ] {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(serde_json::from_str::<SelectionRule>(&json).unwrap(), rule, "{json}");
        }
    }
}
