//! Optimal ablation (Li & Janson 2024; STUDY §12): the neurons outside a
//! circuit send constants fitted jointly, all of them replaced at once, to
//! minimise the mean `KL(model || ablated)` of the outputs' softmax over
//! both images of the fitting pairs, each constant within its neuron's
//! observed range there.
//!
//! Two fits, never mixed up: the per-neuron fit ([`fit_optimal_ablation`]:
//! `u` alone replaced, the rest intact) is a ranking score and the joint
//! fit's start; a circuit's ablation is always its own joint fit
//! ([`OptimalAblation::joint`]), because constants optimal one at a time
//! are not optimal together (measured on the study's models: every circuit
//! under per-neuron constants answered one digit for every image).
//!
//! The objective is KL to the model, not cross-entropy against the digits:
//! the study's MSE-trained models are under-confident, and cross-entropy
//! rewards constants thousands of times outside any activation that push
//! two digits' logits up for every image.

mod joint;
mod single;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

pub use joint::JointFit;
pub use single::{ablated_loss, fit_optimal_ablation, Replacement};

pub(crate) use crate::mask::kl_and_gradient;

use crate::{AcdcError, Circuit, TaskImages};

/// Objective evaluations per neuron at most in the per-neuron fit (a cap
/// that is hit is counted in [`OptimalConstants::unconverged`]).
pub const DEFAULT_OPTIMAL_STEPS: usize = 200;

/// Iterations of the joint fit at most (a cap that is hit is reported in
/// [`JointFit::converged`]).
pub const DEFAULT_JOINT_STEPS: usize = 2000;

/// Convergence: the relative change of the objective in one step under this.
pub const OPTIMAL_TOLERANCE: f64 = 1e-6;

/// The training-split pairs the constants are fitted on, at most, drawn
/// from every digit pair in proportion.
pub const DEFAULT_OPTIMAL_PAIRS: usize = 500;

/// The per-neuron fits of one model and task (STUDY §12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimalConstants {
    /// `layers[h][u]`: the constant neuron `u` of hidden layer `h` sends when it alone is replaced.
    pub layers: Vec<Vec<f32>>,
    /// `low[h][u]`, `high[h][u]`: the neuron's smallest and largest value on
    /// the fitting images, the range each constant is kept within.
    pub low: Vec<Vec<f32>>,
    /// See `low`.
    pub high: Vec<Vec<f32>>,
    /// `objective[h][u]`: the mean KL with `u` sending its constant.
    pub objective: Vec<Vec<f64>>,
    /// `mean_objective[h][u]`: the mean KL with `u` sending its mean, where the descent started.
    pub mean_objective: Vec<Vec<f64>>,
    /// The pairs they were fitted on.
    pub pairs: usize,
    /// Objective evaluations per neuron at most.
    pub steps: usize,
    /// Neurons whose descent hit `steps` before converging.
    pub unconverged: usize,
}

impl OptimalConstants {
    /// Refuses constants of another shape than `model`'s hidden layers, one
    /// that is not a number, or one outside its range.
    pub fn check(&self, model: &Mlp) -> Result<(), AcdcError> {
        let widths = hidden_widths(model);
        for (what, got) in [("constants", &self.layers), ("lows", &self.low), ("highs", &self.high)] {
            let got: Vec<usize> = got.iter().map(Vec::len).collect();
            if got != widths {
                return Err(AcdcError::Shape(format!(
                    "optimal-ablation {what} for hidden layers {got:?}, the model has {widths:?}"
                )));
            }
        }
        let all = self.layers.iter().flatten().zip(self.low.iter().flatten().zip(self.high.iter().flatten()));
        for (c, (lo, hi)) in all {
            if !(c.is_finite() && lo.is_finite() && hi.is_finite()) {
                return Err(AcdcError::Degenerate("an optimal-ablation constant is not a number".into()));
            }
            if c < lo || c > hi {
                return Err(AcdcError::Degenerate(format!(
                    "an optimal-ablation constant {c} lies outside its neuron's range [{lo}, {hi}]"
                )));
            }
        }
        Ok(())
    }
}

fn hidden_widths(model: &Mlp) -> Vec<usize> {
    model.layers[..model.layers.len().saturating_sub(1)].iter().map(|l| l.n_out).collect()
}

/// The fitting pairs' run: what every fit evaluates against.
#[derive(Debug)]
pub(crate) struct Fitting {
    /// `[clean; corrupted]` images, `[2n, pixels]`.
    pub(crate) x: Vec<f32>,
    /// Both images' pixel means (what a removed input sends).
    pub(crate) input_mean: Vec<f32>,
    /// The model's pre-activations and activations on `x`.
    pub(crate) run: modcirc_mlp::Activations,
    /// The model's log-softmax on `x`, row per image.
    pub(crate) log_p: Vec<f64>,
    /// The fitting pairs.
    pub(crate) pairs: usize,
}

impl Fitting {
    pub(crate) fn new(model: &Mlp, images: &TaskImages) -> Result<Fitting, AcdcError> {
        single::check_shape(model, images)?;
        let x = [images.clean.as_slice(), &images.corrupted].concat();
        let rows = 2 * images.n;
        let run = model.activations(&x, rows);
        let logits = run.post.last().expect("a model has an output layer");
        if logits.iter().any(|v| !v.is_finite()) {
            return Err(AcdcError::Degenerate("the model's logits on the fitting pairs are not all numbers".into()));
        }
        let mut input_mean = vec![0f64; images.pixels];
        for row in x.chunks_exact(images.pixels) {
            input_mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64);
        }
        let input_mean = input_mean.iter().map(|m| (m / rows as f64) as f32).collect();
        let log_p = crate::mask::log_softmax(logits, model.n_classes());
        Ok(Fitting { x, input_mean, run, log_p, pairs: images.n })
    }

    pub(crate) fn rows(&self) -> usize {
        2 * self.pairs
    }

    /// Hidden layer `h`'s values of neuron `u` on every fitting image.
    pub(crate) fn column(&self, h: usize, u: usize, width: usize) -> impl Iterator<Item = f32> + '_ {
        self.run.post[h].iter().skip(u).step_by(width).copied()
    }
}

/// An objective's value and gradient at a point.
pub(crate) type Objective<'a> = dyn Fn(&[f64]) -> (f64, Vec<f64>) + 'a;

/// Where a box-constrained descent ended.
#[derive(Debug, Clone)]
pub(crate) struct Minimum {
    pub(crate) x: Vec<f64>,
    pub(crate) value: f64,
    pub(crate) evaluations: usize,
    pub(crate) converged: bool,
}

/// Minimises `f` (value and gradient) over the box `[low, high]` from `x`
/// by projected gradient descent with Barzilai-Borwein steps and an Armijo
/// backtrack: every accepted step lowers the objective, so the end is never
/// worse than the start. Stops when a step changes the objective by less
/// than [`OPTIMAL_TOLERANCE`] of its value, when no step lowers it at float
/// precision, or after `cap` evaluations (not converged).
pub(crate) fn minimise_in_box(f: &Objective<'_>, x: Vec<f64>, low: &[f64], high: &[f64], cap: usize) -> Minimum {
    let project = |v: f64, i: usize| v.clamp(low[i], high[i]);
    let mut x: Vec<f64> = x.iter().enumerate().map(|(i, &v)| project(v, i)).collect();
    let (mut value, mut g) = f(&x);
    let mut evaluations = 1;
    let widest = low.iter().zip(high).fold(0f64, |m, (l, h)| m.max(h - l)).max(1e-6);
    let steepest = g.iter().fold(0f64, |m, v| m.max(v.abs()));
    let mut alpha = if steepest > 0.0 { 0.1 * widest / steepest } else { 1.0 };
    while evaluations < cap {
        if value <= 1e-14 {
            return Minimum { x, value, evaluations, converged: true };
        }
        let mut accepted = None;
        for _ in 0..50 {
            let next: Vec<f64> = x.iter().zip(&g).enumerate().map(|(i, (v, d))| project(v - alpha * d, i)).collect();
            let step: Vec<f64> = next.iter().zip(&x).map(|(a, b)| a - b).collect();
            let descent: f64 = step.iter().zip(&g).map(|(s, d)| s * d).sum();
            if step.iter().all(|&s| s == 0.0) || descent >= 0.0 {
                // A stationary point of the box: nothing to move.
                return Minimum { x, value, evaluations, converged: true };
            }
            let (v, gn) = f(&next);
            evaluations += 1;
            if v <= value + 1e-4 * descent {
                accepted = Some((next, step, v, gn));
                break;
            }
            alpha *= 0.5;
            if evaluations >= cap {
                return Minimum { x, value, evaluations, converged: false };
            }
        }
        let Some((next, step, v, gn)) = accepted else {
            // No step lowers it at float precision.
            return Minimum { x, value, evaluations, converged: true };
        };
        let sy: f64 = step.iter().zip(gn.iter().zip(&g)).map(|(s, (a, b))| s * (a - b)).sum();
        let ss: f64 = step.iter().map(|s| s * s).sum();
        alpha = if sy > 0.0 { (ss / sy).clamp(1e-12, 1e12) } else { (alpha * 2.0).min(1e12) };
        let change = (value - v).abs() / value.abs().max(1e-300);
        (x, value, g) = (next, v, gn);
        if change < OPTIMAL_TOLERANCE {
            return Minimum { x, value, evaluations, converged: true };
        }
    }
    Minimum { x, value, evaluations, converged: false }
}

/// Optimal ablation as a sweep carries it: the per-neuron fits, the fitting
/// pairs' run, and each circuit's joint fit, fitted once and kept.
#[derive(Debug, Clone)]
pub struct OptimalAblation {
    constants: OptimalConstants,
    fitting: Arc<Fitting>,
    joint: Arc<Mutex<HashMap<Vec<u64>, Arc<JointFit>>>>,
    steps: usize,
}

impl OptimalAblation {
    /// Fits every neuron's constant of `model` on `images` (the task's
    /// fitting pairs) with at most `steps` objective evaluations each; joint
    /// fits take at most [`DEFAULT_JOINT_STEPS`].
    pub fn fit(model: &Mlp, images: &TaskImages, steps: usize) -> Result<OptimalAblation, AcdcError> {
        let fitting = Fitting::new(model, images)?;
        let constants = single::fit(model, &fitting, steps)?;
        Ok(OptimalAblation::from_parts(constants, fitting))
    }

    /// Per-neuron fits made before (saved with a discovery), with the pairs
    /// they were fitted on: refuses fits of another shape or number of pairs.
    pub fn with_constants(
        model: &Mlp,
        images: &TaskImages,
        constants: OptimalConstants,
    ) -> Result<OptimalAblation, AcdcError> {
        constants.check(model)?;
        if constants.pairs != images.n {
            return Err(AcdcError::Shape(format!(
                "optimal-ablation constants fitted on {} pairs, given {}",
                constants.pairs, images.n
            )));
        }
        Ok(OptimalAblation::from_parts(constants, Fitting::new(model, images)?))
    }

    fn from_parts(constants: OptimalConstants, fitting: Fitting) -> OptimalAblation {
        OptimalAblation { constants, fitting: Arc::new(fitting), joint: Arc::default(), steps: DEFAULT_JOINT_STEPS }
    }

    /// The same, joint fits capped at `steps` iterations (1 to 100 000).
    pub fn with_joint_steps(mut self, steps: usize) -> Result<OptimalAblation, AcdcError> {
        if !(1..=100_000).contains(&steps) {
            return Err(AcdcError::BadOption(format!("joint-fit steps = {steps}: must be in 1..=100000")));
        }
        self.steps = steps;
        Ok(self)
    }

    /// The per-neuron fits.
    pub fn constants(&self) -> &OptimalConstants {
        &self.constants
    }

    /// Refuses a model of another shape than the fits'.
    pub(crate) fn check(&self, model: &Mlp) -> Result<(), AcdcError> {
        self.constants.check(model)
    }

    /// The joint fit of the neurons outside `circuit` (its removed edges'
    /// sources), fitted on first use and kept for the circuit's edges.
    pub fn joint(&self, model: &Mlp, circuit: &Circuit) -> Result<Arc<JointFit>, AcdcError> {
        self.check(model)?;
        let key = circuit.edge_key();
        if let Some(fit) = self.joint.lock().expect("a fit panicked").get(&key) {
            return Ok(fit.clone());
        }
        let fit = Arc::new(joint::fit(model, &self.fitting, &self.constants, circuit, self.steps)?);
        self.joint.lock().expect("a fit panicked").insert(key, fit.clone());
        Ok(fit)
    }
}
