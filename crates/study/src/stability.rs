//! How stable each edge method's circuit is across the discovery's
//! bootstrap resamples (STUDY §12): the method runs again on each resample,
//! its circuit is its top-|s| edges at the discovered node circuit's size,
//! and the stability is the mean pairwise Jaccard overlap of those
//! circuits' hidden neurons (1: the same neurons on every resample).

use std::collections::BTreeSet;

use modcirc_acdc::{edge_list, score_methods, touched_neurons, Method, PatchingSweep};
use modcirc_dataset::Bootstrap;
use serde::{Deserialize, Serialize};

use crate::StudyError;

/// Resamples per method whose scores are gradients (STUDY §12's default).
pub const DEFAULT_STABILITY_RESAMPLES: usize = 10;

/// Resamples per method that trains masks ([`Method::trains`]): each is a
/// whole sweep of penalties (about 2.7 s on a study model), so 10 for both
/// mask methods on every model would add some 45 minutes of CPU to the
/// full study; 3 give 3 pairs per model, and the interval over seeds says
/// how much that leaves uncertain.
pub const DEFAULT_TRAINED_RESAMPLES: usize = 3;

/// How many resamples each method's stability is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StabilitySettings {
    /// Resamples for the gradient methods (EAP, EAP-IG).
    pub resamples: usize,
    /// Resamples for the methods that train masks (and ensembles with one).
    pub trained_resamples: usize,
}

impl Default for StabilitySettings {
    fn default() -> Self {
        StabilitySettings { resamples: DEFAULT_STABILITY_RESAMPLES, trained_resamples: DEFAULT_TRAINED_RESAMPLES }
    }
}

impl StabilitySettings {
    /// The resamples `m` runs on.
    pub fn of(&self, m: &Method) -> usize {
        if m.trains() {
            self.trained_resamples
        } else {
            self.resamples
        }
    }

    /// Refuses fewer than two resamples (no pair to compare), naming the field.
    pub fn check(&self) -> Result<(), StudyError> {
        for (name, n) in [("resamples", self.resamples), ("trained_resamples", self.trained_resamples)] {
            if n < 2 {
                return Err(StudyError::Invalid(format!(
                    "stability {name} = {n}: at least two resamples are needed to compare circuits"
                )));
            }
        }
        Ok(())
    }
}

/// One method's stability on one model and task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    /// Resamples it ran on (the discovery's first, same seed and size).
    pub resamples: usize,
    /// Mean pairwise Jaccard overlap of the resamples' circuits' hidden neurons.
    pub mean: f64,
    /// The least pairwise overlap.
    pub min: f64,
    /// Hidden neurons of each resample's circuit (mean).
    pub neurons: f64,
    /// Wall time of its scores on all the resamples.
    pub seconds: f64,
}

/// Each of `methods`' stability on `sweep` (STUDY §12): its circuit of
/// `size` top-|s| edges on each of `bootstrap`'s first
/// [`StabilitySettings::of`] resamples. Methods are scored together on a
/// resample, so an ensemble reuses its members' scores there.
pub fn stabilities(
    sweep: &PatchingSweep<'_>,
    methods: &[Method],
    size: usize,
    bootstrap: &Bootstrap,
    settings: &StabilitySettings,
) -> Result<Vec<Stability>, StudyError> {
    settings.check()?;
    let model = sweep.model();
    let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
    let wanted: Vec<usize> = methods.iter().map(|m| settings.of(m)).collect();
    let mut circuits: Vec<Vec<BTreeSet<(usize, usize)>>> = vec![Vec::new(); methods.len()];
    let mut seconds = vec![0.0; methods.len()];
    for r in 0..wanted.iter().copied().max().unwrap_or(0) {
        let on: Vec<usize> = (0..methods.len()).filter(|&i| r < wanted[i]).collect();
        let resample = sweep.subset(&bootstrap.resample(r));
        let these: Vec<Method> = on.iter().map(|&i| methods[i].clone()).collect();
        let scored = score_methods(&these, &resample)?;
        for (&i, s) in on.iter().zip(&scored) {
            // An ensemble's time includes its members' (what it costs alone).
            seconds[i] += s.seconds;
            let edges = s.edges.as_ref().ok_or_else(|| {
                StudyError::Invalid(format!("{}: it scores no edges, so it has no circuit of {size} edges", s.method))
            })?;
            let nodes = touched_neurons(&widths, edge_list(model, &edges.top_edges(size)));
            circuits[i].push(nodes.iter().enumerate().flat_map(|(h, l)| l.iter().map(move |&n| (h, n))).collect());
        }
    }
    Ok(circuits
        .iter()
        .zip(&seconds)
        .map(|(sets, &seconds)| {
            let pairs: Vec<f64> = (0..sets.len())
                .flat_map(|a| (a + 1..sets.len()).map(move |b| (a, b)))
                .map(|(a, b)| crate::structure::jaccard(&sets[a], &sets[b]))
                .collect();
            Stability {
                resamples: sets.len(),
                mean: pairs.iter().sum::<f64>() / pairs.len() as f64,
                min: pairs.iter().copied().fold(f64::INFINITY, f64::min),
                neurons: sets.iter().map(BTreeSet::len).sum::<usize>() as f64 / sets.len() as f64,
                seconds,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use modcirc_acdc::{MaskConfig, TaskImages};
    use modcirc_dataset::Rng;
    use modcirc_mlp::{Activation, Mlp};

    use super::*;

    fn sweep_on(model: &Mlp, n: usize, seed: u64) -> PatchingSweep<'_> {
        let mut rng = Rng::new(seed);
        let pixels = model.layers[0].n_in;
        let mut draw = |n: usize| (0..n).map(|_| rng.next_f64() as f32).collect::<Vec<f32>>();
        let (clean, corrupted) = (draw(n * pixels), draw(n * pixels));
        let images = TaskImages {
            n,
            pixels,
            clean,
            corrupted,
            clean_labels: (0..n).map(|i| (i % 2) as u8).collect(),
            corrupted_labels: (0..n).map(|i| (i % 2 + 1) as u8).collect(),
        };
        PatchingSweep::new(model, &images).unwrap()
    }

    /// The slow twin: each method alone on each of its resamples, its
    /// circuit's neurons compared pair by pair. The ensemble's reused
    /// members, the two resample counts and the mean all agree with it.
    #[test]
    fn stabilities_equal_each_method_run_alone_on_each_resample() {
        let mut rng = Rng::new(7);
        let model = Mlp::init(&[6, 8, 5, 3], Activation::Relu, &mut || rng.next_f64()).unwrap();
        let sweep = sweep_on(&model, 30, 1);
        let mask = Method::Mask { config: MaskConfig { steps: 20, ..MaskConfig::default() }, pairs: 20 };
        let ig = Method::EapIg { steps: 4 };
        let methods = vec![Method::Eap, ig.clone(), mask.clone(), Method::Ensemble { members: vec![ig, mask] }];
        let settings = StabilitySettings { resamples: 4, trained_resamples: 2 };
        let bootstrap = Bootstrap::new(30, 30, 3).unwrap();
        let size = 12;
        let got = stabilities(&sweep, &methods, size, &bootstrap, &settings).unwrap();
        let widths = [8, 5];
        for (m, st) in methods.iter().zip(&got) {
            let n = if m.trains() { 2 } else { 4 };
            assert_eq!(st.resamples, n, "{m}");
            let sets: Vec<BTreeSet<(usize, usize)>> = (0..n)
                .map(|r| {
                    let s = m.scores(&sweep.subset(&bootstrap.resample(r))).unwrap();
                    let top = s.edges.unwrap().top_edges(size);
                    let nodes = touched_neurons(&widths, edge_list(&model, &top));
                    nodes.iter().enumerate().flat_map(|(h, l)| l.iter().map(move |&i| (h, i))).collect()
                })
                .collect();
            let mut pairs = Vec::new();
            for a in 0..n {
                for b in a + 1..n {
                    pairs.push(crate::structure::jaccard(&sets[a], &sets[b]));
                }
            }
            let mean = pairs.iter().sum::<f64>() / pairs.len() as f64;
            assert!((st.mean - mean).abs() < 1e-12, "{m}: {} vs {mean}", st.mean);
            assert!(st.min <= st.mean && (0.0..=1.0).contains(&st.mean), "{m}: {st:?}");
        }
        // Every edge: every neuron on every resample.
        let all = stabilities(&sweep, &methods[..1], model.n_weights(), &bootstrap, &settings).unwrap();
        assert_eq!((all[0].mean, all[0].neurons), (1.0, 13.0));
        assert!(StabilitySettings { resamples: 1, trained_resamples: 3 }.check().is_err());
    }
}
