//! Optimal ablation (Li & Janson 2024; STUDY §12): a removed hidden neuron
//! sends the constant `c_u` that minimises the expected loss of the model
//! with `u` alone replaced by it: the cross-entropy of each image of the
//! task's pairs against its own digit, fitted by gradient descent from the
//! mean activation.
//!
//! Both images of every pair, as a circuit is judged on both: fitted on the
//! clean images alone, against the clean digits only, a constant learns the
//! clean digits' prior (it pushes every answer towards them), and a circuit
//! whose removed neurons all send such constants answers a clean digit
//! whatever the image (measured: accuracy 0.11-0.26 on the study's
//! circuits).
//!
//! The loss of one neuron's constant is one-dimensional, so the descent is
//! plain gradient descent with a step that grows while the loss falls and is
//! halved (the step undone) when it would rise: the loss never goes above
//! its value at the mean.

use modcirc_mlp::Mlp;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::attribution::{check_labels, class_positions};
use crate::{AcdcError, TaskImages};

/// Loss evaluations per neuron at most, the first included (the descent
/// stops early once a step would move the constant by less than
/// [`OPTIMAL_TOLERANCE`] of the neuron's scale).
pub const DEFAULT_OPTIMAL_STEPS: usize = 40;

/// The relative move below which the descent stops.
pub const OPTIMAL_TOLERANCE: f64 = 1e-4;

/// The training-split pairs the constants are fitted on, at most.
pub const DEFAULT_OPTIMAL_PAIRS: usize = 500;

/// The fitted constants of one model and task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimalConstants {
    /// `layers[h][u]`: the constant neuron `u` of hidden layer `h` sends when removed.
    pub layers: Vec<Vec<f32>>,
    /// `loss[h][u]`: the loss with `u` replaced by its constant.
    pub loss: Vec<Vec<f64>>,
    /// `mean_loss[h][u]`: the loss with `u` replaced by its mean activation,
    /// where the descent started.
    pub mean_loss: Vec<Vec<f64>>,
    /// The pairs they were fitted on.
    pub pairs: usize,
    /// Loss evaluations per neuron.
    pub steps: usize,
}

impl OptimalConstants {
    /// Refuses constants of another shape than `model`'s hidden layers, or
    /// one that is not a number.
    pub fn check(&self, model: &Mlp) -> Result<(), AcdcError> {
        let widths: Vec<usize> = model.layers[..model.layers.len().saturating_sub(1)].iter().map(|l| l.n_out).collect();
        let got: Vec<usize> = self.layers.iter().map(Vec::len).collect();
        if got != widths {
            return Err(AcdcError::Shape(format!(
                "optimal-ablation constants for hidden layers {got:?}, the model has {widths:?}"
            )));
        }
        if self.layers.iter().flatten().any(|c| !c.is_finite()) {
            return Err(AcdcError::Degenerate("an optimal-ablation constant is not a number".into()));
        }
        Ok(())
    }
}

/// What neuron `u` of hidden layer `h` sends in [`ablated_loss`].
#[derive(Debug, Clone, Copy)]
pub enum Replacement<'a> {
    /// The same value on every image.
    Constant(f32),
    /// `values[b]` on both images of pair `b` (resample: its value on the
    /// pair's corrupted image, as a circuit's resample ablation sends it).
    PerPair(&'a [f32]),
}

/// The run on every image (the clean images, then the corrupted ones):
/// pre-activations, activations, and each image's target.
struct Base {
    pre: Vec<Vec<f32>>,
    post: Vec<Vec<f32>>,
    targets: Vec<usize>,
}

fn base(model: &Mlp, images: &TaskImages) -> Base {
    let both = [images.clean.as_slice(), &images.corrupted].concat();
    let acts = model.activations(&both, 2 * images.n);
    let pos = class_positions(model);
    let targets = images.clean_labels.iter().chain(&images.corrupted_labels).map(|&c| pos[c as usize]).collect();
    Base { pre: acts.pre, post: acts.post, targets }
}

/// The mean cross-entropy, and its derivative in the value neuron `u` of
/// hidden layer `h` sends, with that neuron sending `value(b)` on image `b`.
fn loss_and_slope(model: &Mlp, base: &Base, h: usize, u: usize, value: &dyn Fn(usize) -> f32) -> (f64, f64) {
    let n = base.targets.len();
    let last = model.layers.len() - 1;
    let next = &model.layers[h + 1];
    let width = model.layers[h].n_out;
    let column: Vec<f32> = (0..next.n_out).map(|v| next.weight[v * width + u]).collect();
    // The next layer's pre-activation moves by a rank-1 term; the rest is a plain forward.
    let mut pre = vec![base.pre[h + 1].clone()];
    for b in 0..n {
        let d = value(b) - base.post[h][b * width + u];
        pre[0][b * next.n_out..(b + 1) * next.n_out].iter_mut().zip(&column).for_each(|(z, w)| *z += w * d);
    }
    for l in h + 2..=last {
        let mut a = pre[pre.len() - 1].clone();
        model.activation.apply_in_place(&mut a);
        let layer = &model.layers[l];
        let mut z = vec![0.0; n * layer.n_out];
        layer.forward_into(&a, n, &mut z);
        pre.push(z);
    }
    let classes = model.n_classes();
    let logits = &pre[pre.len() - 1];
    let mut loss = 0.0;
    let mut g = vec![0f32; logits.len()];
    for (b, row) in logits.chunks_exact(classes).enumerate() {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        loss += max + sum.ln() - row[base.targets[b]] as f64;
        for (k, &v) in row.iter().enumerate() {
            g[b * classes + k] =
                (((v as f64 - max).exp() / sum - (k == base.targets[b]) as u8 as f64) / n as f64) as f32;
        }
    }
    // Back to the next layer's pre-activation, then along u's column.
    for l in (h + 2..=last).rev() {
        let layer = &model.layers[l];
        let mut da = vec![0f32; n * layer.n_in];
        modcirc_mlp::linalg::mm_nn(&mut da, &g, &layer.weight, n, layer.n_in, layer.n_out, false);
        model.activation.scale_by_derivative(&pre[l - h - 2], &mut da);
        g = da;
    }
    let slope: f64 =
        g.chunks_exact(next.n_out).map(|row| row.iter().zip(&column).map(|(g, w)| (g * w) as f64).sum::<f64>()).sum();
    (loss / n as f64, slope)
}

/// The task loss of the model on `images`' clean and corrupted images (the
/// cross-entropy of each against its own digit), neuron `u` of hidden layer
/// `h` sending `with`.
pub fn ablated_loss(
    model: &Mlp,
    images: &TaskImages,
    h: usize,
    u: usize,
    with: Replacement<'_>,
) -> Result<f64, AcdcError> {
    check_shape(model, images)?;
    if h + 1 >= model.layers.len() || u >= model.layers[h].n_out {
        return Err(AcdcError::Shape(format!("no hidden neuron {u} in hidden layer {h}")));
    }
    let base = base(model, images);
    Ok(match with {
        Replacement::Constant(c) => loss_and_slope(model, &base, h, u, &|_| c).0,
        Replacement::PerPair(v) => {
            if v.len() != images.n {
                return Err(AcdcError::Shape(format!("{} replacement values for {} pairs", v.len(), images.n)));
            }
            loss_and_slope(model, &base, h, u, &|b| v[b % images.n]).0
        }
    })
}

fn check_shape(model: &Mlp, images: &TaskImages) -> Result<(), AcdcError> {
    crate::sweep::check_task(model, images)?;
    if images.clean.len() != images.n * images.pixels || images.corrupted.len() != images.clean.len() {
        return Err(AcdcError::Shape(format!(
            "{} pairs of {} pixels need {} values per side",
            images.n,
            images.pixels,
            images.n * images.pixels
        )));
    }
    check_labels(model, images)
}

/// One neuron's constant by gradient descent from `start`: `(c, loss(c), loss(start))`.
fn descend(model: &Mlp, base: &Base, h: usize, u: usize, start: f32, steps: usize) -> (f32, f64, f64) {
    let eval = |c: f32| loss_and_slope(model, base, h, u, &|_| c);
    let (mut c, (mut loss, mut slope)) = (start, eval(start));
    let first = loss;
    // The first step moves c by at most the scale of the neuron's values.
    let scale = base.post[h].iter().skip(u).step_by(model.layers[h].n_out).fold(0f32, |a, v| a.max(v.abs())).max(1e-3);
    let mut rate = if slope != 0.0 { 0.1 * scale as f64 / slope.abs() } else { 0.0 };
    for _ in 1..steps {
        if slope == 0.0 || rate * slope.abs() < OPTIMAL_TOLERANCE * scale as f64 {
            break;
        }
        let next = (c as f64 - rate * slope) as f32;
        if next == c {
            break;
        }
        let (l, s) = eval(next);
        if l < loss {
            (c, loss, slope) = (next, l, s);
            rate *= 1.5;
        } else {
            rate *= 0.5;
        }
    }
    (c, loss, first)
}

/// The optimal-ablation constant of every hidden neuron of `model`, fitted
/// on `images`' pairs (the task's training-split pairs; STUDY §12) with
/// `steps` loss evaluations per neuron, each from its mean activation.
pub fn fit_optimal_ablation(model: &Mlp, images: &TaskImages, steps: usize) -> Result<OptimalConstants, AcdcError> {
    check_shape(model, images)?;
    if steps == 0 || steps > 100_000 {
        return Err(AcdcError::BadOption(format!("optimal-ablation steps = {steps}: must be in 1..=100000")));
    }
    let base = base(model, images);
    let n = 2 * images.n;
    let (mut layers, mut loss, mut mean_loss) = (Vec::new(), Vec::new(), Vec::new());
    for h in 0..model.layers.len() - 1 {
        let width = model.layers[h].n_out;
        let fitted: Vec<(f32, f64, f64)> = (0..width)
            .into_par_iter()
            .map(|u| {
                let mean =
                    (base.post[h].iter().skip(u).step_by(width).map(|&v| v as f64).sum::<f64>() / n as f64) as f32;
                descend(model, &base, h, u, mean, steps)
            })
            .collect();
        layers.push(fitted.iter().map(|f| f.0).collect());
        loss.push(fitted.iter().map(|f| f.1).collect());
        mean_loss.push(fitted.iter().map(|f| f.2).collect());
    }
    let out = OptimalConstants { layers, loss, mean_loss, pairs: images.n, steps };
    out.check(model)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use modcirc_mlp::{Activation, Linear, Mlp};

    use super::*;

    /// A linear network whose logit difference is `1.5·h0 − 0.4` whatever
    /// `h1` is: with `h0` replaced by `c` on every image, the loss is that of
    /// one Bernoulli logit against labels that are class 1 a share `q` of
    /// the time (over both images of every pair), least where
    /// `σ(1.5c − 0.4) = q`.
    #[test]
    fn the_constant_is_the_closed_form_on_a_linear_network() {
        let w1 = Linear { n_in: 2, n_out: 2, weight: vec![1.0, -0.5, 0.3, 0.8], bias: vec![0.1, 0.0] };
        let w2 = Linear { n_in: 2, n_out: 2, weight: vec![0.5, 0.7, 2.0, 0.7], bias: vec![0.3, -0.1] };
        let model = Mlp::new(vec![w1, w2], Activation::Identity).unwrap();
        let n = 10;
        let clean: Vec<f32> = (0..2 * n).map(|i| (i as f32 * 0.37).sin()).collect();
        let clean_labels: Vec<u8> = (0..n).map(|b| (b < 3) as u8).collect();
        let images = TaskImages {
            n,
            pixels: 2,
            corrupted: clean.iter().map(|v| -v).collect(),
            clean,
            corrupted_labels: (0..n).map(|b| (b < 1) as u8).collect(),
            clean_labels,
        };
        let fitted = fit_optimal_ablation(&model, &images, 200).unwrap();
        // Class 1 on 3 of the 10 clean images and 1 of the 10 corrupted ones.
        let q: f64 = 0.2;
        let closed = ((q / (1.0 - q)).ln() + 0.4) / 1.5;
        let got = fitted.layers[0][0] as f64;
        assert!((got - closed).abs() < 1e-3, "{got} vs {closed}");
        assert!(fitted.loss[0][0] <= fitted.mean_loss[0][0]);
        // Neuron 1 does not move the difference, so its loss is flat and the mean stays.
        assert_eq!(fitted.loss[0][1], fitted.mean_loss[0][1]);
    }

    #[test]
    fn bad_steps_and_shapes_are_refused() {
        let w1 = Linear { n_in: 2, n_out: 2, weight: vec![1.0; 4], bias: vec![0.0; 2] };
        let w2 = Linear { n_in: 2, n_out: 2, weight: vec![1.0; 4], bias: vec![0.0; 2] };
        let model = Mlp::new(vec![w1, w2], Activation::Silu).unwrap();
        let images = TaskImages {
            n: 1,
            pixels: 2,
            clean: vec![0.0; 2],
            corrupted: vec![0.0; 2],
            clean_labels: vec![0],
            corrupted_labels: vec![1],
        };
        assert!(fit_optimal_ablation(&model, &images, 0).is_err());
        let wrong = TaskImages { pixels: 3, clean: vec![0.0; 3], corrupted: vec![0.0; 3], ..images.clone() };
        assert!(matches!(fit_optimal_ablation(&model, &wrong, 5), Err(AcdcError::Shape(_))));
        assert!(ablated_loss(&model, &images, 1, 0, Replacement::Constant(0.0)).is_err());
        assert!(ablated_loss(&model, &images, 0, 0, Replacement::PerPair(&[1.0, 2.0])).is_err());
    }
}
