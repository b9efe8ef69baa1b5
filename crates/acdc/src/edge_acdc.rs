//! ACDC at edge level (Conmy et al. 2023; STUDY §8): receivers in reverse
//! topological order, each incoming edge tentatively given its corrupted
//! value, and removed for good when the metric gets worse by less than `tau`.

use std::fmt;
use std::str::FromStr;

use modcirc_mlp::{Activation, Mlp};
use serde::{Deserialize, Serialize};

use crate::attribution::{check_labels, class_positions};
use crate::{AcdcError, PatchingSweep};

/// What ACDC keeps close to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcdcMetric {
    /// Mean KL divergence of the circuit's output distribution from the
    /// model's, on the clean images (lower is better).
    Kl,
    /// Mean answer metric `L[clean digit] − L[corrupted digit]` (higher is better).
    Answer,
}

impl FromStr for AcdcMetric {
    type Err = AcdcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kl" => Ok(AcdcMetric::Kl),
            "answer" => Ok(AcdcMetric::Answer),
            _ => Err(AcdcError::BadOption(format!("ACDC metric {s:?}: expected kl or answer"))),
        }
    }
}

impl fmt::Display for AcdcMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcdcMetric::Kl => "kl",
            AcdcMetric::Answer => "answer",
        })
    }
}

/// The default threshold, in nats of KL. These MSE-trained models have
/// logits near 0..1, so their output distributions are flat and KL values
/// small: the fully corrupted run of a trained BIMT model sits at about 0.1.
pub const DEFAULT_TAU: f64 = 1e-4;

/// ACDC's options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AcdcConfig {
    /// An edge goes when removing it makes the metric worse by less than this.
    pub tau: f64,
    /// What ACDC keeps low.
    pub metric: AcdcMetric,
    /// Removed edges carry zero instead of the corrupted value.
    pub zero_ablation: bool,
}

impl AcdcConfig {
    /// Checks the options, so that a command can refuse them before any work.
    pub fn validate(&self) -> Result<(), AcdcError> {
        if self.tau.is_nan() || self.tau < 0.0 {
            return Err(AcdcError::BadOption(format!("tau = {}: must be at least 0", self.tau)));
        }
        Ok(())
    }
}

impl Default for AcdcConfig {
    fn default() -> Self {
        AcdcConfig { tau: DEFAULT_TAU, metric: AcdcMetric::Kl, zero_ablation: false }
    }
}

/// The circuit ACDC found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeCircuit {
    /// What it ran with.
    pub config: AcdcConfig,
    /// `mask[l][o * n_in + i]`: whether layer `l`'s edge `i → o` is kept.
    pub mask: Vec<Vec<bool>>,
    /// Edges kept.
    pub n_edges: usize,
    /// The metric of the model itself (0 for KL) and of the final circuit.
    pub model_metric: f64,
    /// The metric of the final circuit.
    pub circuit_metric: f64,
    /// How many edge tests needed a forward pass (the others moved nothing).
    pub evaluated: usize,
}

/// The circuit run on the clean images: every layer's pre-activations, the
/// hidden post-activations, and each pair's metric.
struct State {
    n: usize,
    /// `z[l]`: `[n, width of layer l's output]`.
    z: Vec<Vec<f32>>,
    /// `a[l]`: inputs of layer `l` (`a[0]` the clean pixels, `a[l]` the
    /// post-activations of layer `l − 1`).
    a: Vec<Vec<f32>>,
    per_pair: Vec<f64>,
}

/// The metric ACDC keeps low, per pair: KL of the circuit's output
/// distribution from the model's on the clean images, or minus the answer
/// metric. Lower is better for both, so "worse by less than tau" is one test.
struct Metric {
    kind: AcdcMetric,
    /// The model's clean output distribution per pair: p and log p.
    reference: Vec<(Vec<f64>, Vec<f64>)>,
    /// The output positions of the clean and the corrupted digit, per pair.
    answer: Vec<(usize, usize)>,
}

impl Metric {
    fn new(sweep: &PatchingSweep<'_>, kind: AcdcMetric) -> Metric {
        let (model, images) = (sweep.model, &sweep.images);
        let pos = class_positions(model);
        let answer = images
            .clean_labels
            .iter()
            .zip(&images.corrupted_labels)
            .map(|(&a, &b)| (pos[a as usize], pos[b as usize]))
            .collect();
        let reference = sweep
            .clean_logits()
            .chunks_exact(model.n_classes())
            .map(|z| {
                let lse = log_sum_exp(z);
                let lp: Vec<f64> = z.iter().map(|&v| v as f64 - lse).collect();
                (lp.iter().map(|l| l.exp()).collect(), lp)
            })
            .collect();
        Metric { kind, reference, answer }
    }

    fn cost(&self, b: usize, logits: &[f32]) -> f64 {
        match self.kind {
            AcdcMetric::Kl => {
                let (p, lp) = &self.reference[b];
                let lse = log_sum_exp(logits);
                p.iter().zip(lp).zip(logits).map(|((p, lp), &z)| p * (lp - (z as f64 - lse))).sum()
            }
            AcdcMetric::Answer => -(logits[self.answer[b].0] as f64 - logits[self.answer[b].1] as f64),
        }
    }
}

/// The search: the circuit so far, and what testing one more edge needs.
struct Search<'a> {
    metric: Metric,
    tau: f64,
    state: State,
    /// Kept weights (`W ⊙ mask`), input-major (`[n_in, n_out]`): a removed
    /// edge's contribution is fixed by its ablated source, so only kept
    /// weights pass changes downstream, one contiguous row per moved input.
    kept: Vec<Vec<f32>>,
    mask: Vec<Vec<bool>>,
    trial: Trial,
    /// The per-pair sum and mean of the current circuit, refreshed on each removal.
    current_sum: f64,
    current: f64,
    evaluated: usize,
    model: &'a Mlp,
}

impl<'a> Search<'a> {
    fn new(sweep: &PatchingSweep<'a>, config: &AcdcConfig) -> Search<'a> {
        let (model, images) = (sweep.model, &sweep.images);
        let layers = model.layers.len();
        let metric = Metric::new(sweep, config.metric);
        let mut state = State {
            n: images.n,
            z: sweep.clean.pre.clone(),
            a: (0..layers)
                .map(|l| if l == 0 { images.clean.clone() } else { sweep.clean.post[l - 1].clone() })
                .collect(),
            per_pair: Vec::new(),
        };
        let classes = model.n_classes();
        state.per_pair =
            state.z[layers - 1].chunks_exact(classes).enumerate().map(|(b, z)| metric.cost(b, z)).collect();
        let current_sum: f64 = state.per_pair.iter().sum();
        let kept = model
            .layers
            .iter()
            .map(|l| {
                let mut t = vec![0.0; l.weight.len()];
                for (o, row) in l.weight.chunks_exact(l.n_in).enumerate() {
                    for (i, &w) in row.iter().enumerate() {
                        t[i * l.n_out + o] = w;
                    }
                }
                t
            })
            .collect();
        Search {
            metric,
            tau: config.tau,
            state,
            kept,
            mask: model.layers.iter().map(|l| vec![true; l.weight.len()]).collect(),
            trial: Trial::new(model),
            current: current_sum / images.n as f64,
            current_sum,
            evaluated: 0,
            model,
        }
    }

    /// Layer `l`'s inputs stay fixed while its edges are tested (edges into
    /// earlier layers come later), so each source's (pair, ablated − current)
    /// list, nonzero entries only, is taken once per layer.
    fn moved_sources(&self, l: usize, ablated: &[f32]) -> Vec<Vec<(usize, f32)>> {
        let n_in = self.model.layers[l].n_in;
        (0..n_in)
            .map(|u| {
                (0..self.state.n)
                    .filter_map(|b| {
                        let i = b * n_in + u;
                        let d = ablated[i] - self.state.a[l][i];
                        (d != 0.0).then_some((b, d))
                    })
                    .collect()
            })
            .collect()
    }

    /// Tests edge `u → v` of layer `l` (its source moving by `moved`), and
    /// removes it for good when the metric gets worse by less than tau.
    fn test_edge(&mut self, l: usize, v: usize, u: usize, moved: &[(usize, f32)]) {
        let layer = &self.model.layers[l];
        let w = layer.weight[v * layer.n_in + u];
        self.trial.clear();
        for &(b, diff) in moved {
            let d = w * diff;
            if d != 0.0 {
                self.trial.pair(&self.kept, &self.state, l, v, b, d);
            }
        }
        let n = self.state.n;
        let candidate = if self.trial.pairs.is_empty() {
            self.current
        } else {
            self.evaluated += 1;
            let mut per_pair_sum = self.current_sum;
            for (k, &b) in self.trial.pairs.iter().enumerate() {
                per_pair_sum += self.metric.cost(b, self.trial.logits(k)) - self.state.per_pair[b];
            }
            per_pair_sum / n as f64
        };
        if candidate - self.current < self.tau {
            self.mask[l][v * layer.n_in + u] = false;
            self.kept[l][u * layer.n_out + v] = 0.0;
            for k in 0..self.trial.pairs.len() {
                let b = self.trial.pairs[k];
                self.state.per_pair[b] = self.metric.cost(b, self.trial.logits(k));
                self.trial.commit(k, &mut self.state);
            }
            self.current_sum = self.state.per_pair.iter().sum();
            self.current = self.current_sum / n as f64;
        }
    }
}

/// ACDC over every edge of the model, on the pairs of `sweep`.
pub fn edge_acdc(sweep: &PatchingSweep<'_>, config: &AcdcConfig) -> Result<EdgeCircuit, AcdcError> {
    edge_acdc_with_progress(sweep, config, &mut |_| {})
}

/// [`edge_acdc`], calling `progress` after each receiving neuron's incoming
/// edges are tested with how many receivers are done (of the sum of the
/// layers' output widths).
pub fn edge_acdc_with_progress(
    sweep: &PatchingSweep<'_>,
    config: &AcdcConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<EdgeCircuit, AcdcError> {
    let (model, images) = (sweep.model, &sweep.images);
    check_labels(model, images)?;
    config.validate()?;
    // Values a removed edge carries: the corrupted run's (or zero).
    let ablated: Vec<Vec<f32>> = (0..model.layers.len())
        .map(|l| {
            let v = if l == 0 { &images.corrupted } else { &sweep.corrupted.post[l - 1] };
            if config.zero_ablation {
                vec![0.0; v.len()]
            } else {
                v.clone()
            }
        })
        .collect();
    let mut search = Search::new(sweep, config);
    let model_cost = search.current;
    let mut receivers = 0;
    for l in (0..model.layers.len()).rev() {
        let moved = search.moved_sources(l, &ablated[l]);
        for v in 0..model.layers[l].n_out {
            for (u, moved) in moved.iter().enumerate() {
                search.test_edge(l, v, u, moved);
            }
            receivers += 1;
            progress(receivers);
        }
    }
    let sign = if config.metric == AcdcMetric::Answer { -1.0 } else { 1.0 };
    Ok(EdgeCircuit {
        config: *config,
        n_edges: search.mask.iter().map(|m| m.iter().filter(|&&k| k).count()).sum(),
        mask: search.mask,
        model_metric: sign * model_cost,
        circuit_metric: sign * search.current,
        evaluated: search.evaluated,
    })
}

fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

fn log_sum_exp(z: &[f32]) -> f64 {
    let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    max + z.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}

/// One tested edge: the new pre-activations (and hidden post-activations)
/// of every layer from the receiver's on, for each pair the edge moves.
struct Trial {
    activation: Activation,
    widths: Vec<usize>,
    /// Changed pairs, in order.
    pairs: Vec<usize>,
    /// Receiver layer of this trial.
    from: usize,
    /// `z[l]` rows of the changed pairs, `[pairs.len(), width]`, for `l ≥ from`.
    z: Vec<Vec<f32>>,
    /// Post-activations of hidden layers `l ≥ from`, same layout.
    a: Vec<Vec<f32>>,
    /// Scratch: how much each neuron of the last recomputed hidden layer moved.
    delta: Vec<f32>,
}

impl Trial {
    fn new(model: &Mlp) -> Trial {
        let widths: Vec<usize> = model.layers.iter().map(|l| l.n_out).collect();
        Trial {
            activation: model.activation,
            z: vec![Vec::new(); widths.len()],
            a: vec![Vec::new(); widths.len()],
            widths,
            pairs: Vec::new(),
            from: 0,
            delta: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.pairs.clear();
        self.z.iter_mut().for_each(Vec::clear);
        self.a.iter_mut().for_each(Vec::clear);
    }

    fn logits(&self, k: usize) -> &[f32] {
        let last = self.widths.len() - 1;
        &self.z[last][k * self.widths[last]..(k + 1) * self.widths[last]]
    }

    /// Pair `b` with receiver `v` of layer `l` moved by `d`: recomputes
    /// every layer downstream through the kept weights.
    // `m` walks the layers of several parallel arrays (z, a, widths, kept).
    #[allow(clippy::needless_range_loop)]
    fn pair(&mut self, kept: &[Vec<f32>], state: &State, l: usize, v: usize, b: usize, d: f32) {
        self.from = l;
        self.pairs.push(b);
        let last = self.widths.len() - 1;
        let wl = self.widths[l];
        let start = self.z[l].len();
        self.z[l].extend_from_slice(&state.z[l][b * wl..(b + 1) * wl]);
        self.z[l][start + v] += d;
        if l == last {
            return;
        }
        let start_a = self.a[l].len();
        self.a[l].extend_from_slice(&state.a[l + 1][b * wl..(b + 1) * wl]);
        let new = self.activation.apply(self.z[l][start + v]);
        let change = new - self.a[l][start_a + v];
        self.a[l][start_a + v] = new;
        for m in l + 1..=last {
            let width = self.widths[m];
            let start = self.z[m].len();
            self.z[m].extend_from_slice(&state.z[m][b * width..(b + 1) * width]);
            let row = &mut self.z[m][start..];
            if m == l + 1 {
                // One input moved.
                if change != 0.0 {
                    axpy(row, change, &kept[m][v * width..(v + 1) * width]);
                }
            } else {
                for (i, &d) in self.delta.iter().enumerate() {
                    if d != 0.0 {
                        axpy(row, d, &kept[m][i * width..(i + 1) * width]);
                    }
                }
            }
            if m == last {
                break;
            }
            let start_a = self.a[m].len();
            self.a[m].extend_from_slice(&self.z[m][start..start + width]);
            self.activation.apply_in_place(&mut self.a[m][start_a..]);
            self.delta.clear();
            let old = &state.a[m + 1][b * width..(b + 1) * width];
            self.delta.extend(self.a[m][start_a..].iter().zip(old).map(|(n, o)| n - o));
        }
    }

    /// Writes changed pair `k` into the circuit's state.
    fn commit(&self, k: usize, state: &mut State) {
        let b = self.pairs[k];
        let last = self.widths.len() - 1;
        for l in self.from..=last {
            let w = self.widths[l];
            state.z[l][b * w..(b + 1) * w].copy_from_slice(&self.z[l][k * w..(k + 1) * w]);
            if l < last {
                state.a[l + 1][b * w..(b + 1) * w].copy_from_slice(&self.a[l][k * w..(k + 1) * w]);
            }
        }
        debug_assert!(b < state.n);
    }
}
