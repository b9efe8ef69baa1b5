//! The per-neuron fit: neuron `u` alone replaced by a constant, the rest of
//! the model intact. Its loss is a function of one number, so each is a
//! one-dimensional box-constrained descent from the neuron's mean.

use modcirc_mlp::Mlp;
use rayon::prelude::*;

use super::{kl_and_gradient, minimise_in_box, Fitting, OptimalConstants};
use crate::{AcdcError, TaskImages};

/// What neuron `u` of hidden layer `h` sends in [`ablated_loss`].
#[derive(Debug, Clone, Copy)]
pub enum Replacement<'a> {
    /// The same value on every image.
    Constant(f32),
    /// `values[b]` on both images of pair `b` (resample: its value on the
    /// pair's corrupted image, as a circuit's resample ablation sends it).
    PerPair(&'a [f32]),
}

/// The mean KL to the model, and its derivative in the value neuron `u` of
/// hidden layer `h` sends, with that neuron sending `value(b)` on image `b`.
fn loss_and_slope(model: &Mlp, fit: &Fitting, h: usize, u: usize, value: &dyn Fn(usize) -> f32) -> (f64, f64) {
    let n = fit.rows();
    let last = model.layers.len() - 1;
    let next = &model.layers[h + 1];
    let width = model.layers[h].n_out;
    let column: Vec<f32> = (0..next.n_out).map(|v| next.weight[v * width + u]).collect();
    // The next layer's pre-activation moves by a rank-1 term; the rest is a plain forward.
    let mut pre = vec![fit.run.pre[h + 1].clone()];
    for b in 0..n {
        let d = value(b) - fit.run.post[h][b * width + u];
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
    let (loss, mut g) = kl_and_gradient(&fit.log_p, &pre[pre.len() - 1], model.n_classes());
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
    (loss, slope)
}

/// The mean `KL(model || ablated)` over `images`' clean and corrupted
/// images, neuron `u` of hidden layer `h` sending `with`: the per-neuron
/// fit's objective (STUDY §12).
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
    let fit = Fitting::new(model, images)?;
    Ok(match with {
        Replacement::Constant(c) => loss_and_slope(model, &fit, h, u, &|_| c).0,
        Replacement::PerPair(v) => {
            if v.len() != images.n {
                return Err(AcdcError::Shape(format!("{} replacement values for {} pairs", v.len(), images.n)));
            }
            loss_and_slope(model, &fit, h, u, &|b| v[b % images.n]).0
        }
    })
}

pub(crate) fn check_shape(model: &Mlp, images: &TaskImages) -> Result<(), AcdcError> {
    crate::sweep::check_task(model, images)?;
    if images.clean.len() != images.n * images.pixels || images.corrupted.len() != images.clean.len() {
        return Err(AcdcError::Shape(format!(
            "{} pairs of {} pixels need {} values per side",
            images.n,
            images.pixels,
            images.n * images.pixels
        )));
    }
    Ok(())
}

/// The optimal-ablation constant of every hidden neuron of `model`, each
/// fitted alone (STUDY §12) on `images` (the task's fitting pairs) with at
/// most `steps` objective evaluations, from its mean, within its range.
pub fn fit_optimal_ablation(model: &Mlp, images: &TaskImages, steps: usize) -> Result<OptimalConstants, AcdcError> {
    fit(model, &Fitting::new(model, images)?, steps)
}

pub(crate) fn fit(model: &Mlp, fitting: &Fitting, steps: usize) -> Result<OptimalConstants, AcdcError> {
    if steps == 0 || steps > 100_000 {
        return Err(AcdcError::BadOption(format!("optimal-ablation steps = {steps}: must be in 1..=100000")));
    }
    let rows = fitting.rows();
    let mut out = OptimalConstants {
        layers: Vec::new(),
        low: Vec::new(),
        high: Vec::new(),
        objective: Vec::new(),
        mean_objective: Vec::new(),
        pairs: fitting.pairs,
        steps,
        unconverged: 0,
    };
    for h in 0..model.layers.len() - 1 {
        let width = model.layers[h].n_out;
        let fitted: Vec<(f32, f32, f32, f64, f64, bool)> = (0..width)
            .into_par_iter()
            .map(|u| {
                let values: Vec<f32> = fitting.column(h, u, width).collect();
                let low = values.iter().fold(f32::INFINITY, |a, &v| a.min(v));
                let high = values.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                let mean = values.iter().map(|&v| v as f64).sum::<f64>() / rows as f64;
                let eval = |c: &[f64]| {
                    let (loss, slope) = loss_and_slope(model, fitting, h, u, &|_| c[0] as f32);
                    (loss, vec![slope])
                };
                let start = (mean as f32).clamp(low, high) as f64;
                let mean_loss = eval(&[start]).0;
                let m = minimise_in_box(&eval, vec![start], &[low as f64], &[high as f64], steps);
                let c = (m.x[0] as f32).clamp(low, high);
                // The objective at the constant as stored (float32).
                let loss = if c as f64 == m.x[0] { m.value } else { eval(&[c as f64]).0 };
                (c, low, high, loss, mean_loss, m.converged)
            })
            .collect();
        out.layers.push(fitted.iter().map(|f| f.0).collect());
        out.low.push(fitted.iter().map(|f| f.1).collect());
        out.high.push(fitted.iter().map(|f| f.2).collect());
        out.objective.push(fitted.iter().map(|f| f.3).collect());
        out.mean_objective.push(fitted.iter().map(|f| f.4).collect());
        out.unconverged += fitted.iter().filter(|f| !f.5).count();
    }
    out.check(model)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use modcirc_mlp::{Activation, Linear, Mlp};

    use super::*;

    fn images(n: usize) -> TaskImages {
        let clean: Vec<f32> = (0..2 * n).map(|i| (i as f32 * 0.37).sin()).collect();
        TaskImages {
            n,
            pixels: 2,
            corrupted: clean.iter().map(|v| -v * 0.5 + 0.2).collect(),
            clean,
            corrupted_labels: vec![1; n],
            clean_labels: vec![0; n],
        }
    }

    /// A linear network whose two logits are `(h0, 0)`: with `h0` replaced by
    /// `c`, the mean KL to the model is least where `c` is the value whose
    /// sigmoid is the mean of the model's sigmoids (the KL's first-order
    /// condition), found here by bisection.
    #[test]
    fn the_constant_solves_the_first_order_condition_on_a_linear_network() {
        let w1 = Linear { n_in: 2, n_out: 2, weight: vec![1.5, -0.5, 0.3, 0.8], bias: vec![0.4, 0.0] };
        let w2 = Linear { n_in: 2, n_out: 2, weight: vec![1.0, 0.0, 0.0, 0.0], bias: vec![0.0, 0.0] };
        let model = Mlp::new(vec![w1, w2], Activation::Identity).unwrap();
        let imgs = images(10);
        let fitted = fit_optimal_ablation(&model, &imgs, 200).unwrap();
        let both = [imgs.clean.as_slice(), &imgs.corrupted].concat();
        let h0: Vec<f64> = both.chunks(2).map(|x| 1.5 * x[0] as f64 - 0.5 * x[1] as f64 + 0.4).collect();
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let target = h0.iter().map(|&v| sig(v)).sum::<f64>() / h0.len() as f64;
        let (mut lo, mut hi) = (-10.0, 10.0);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if sig(mid) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let got = fitted.layers[0][0] as f64;
        assert!((got - lo).abs() < 1e-3, "{got} vs {lo}");
        assert!(fitted.objective[0][0] <= fitted.mean_objective[0][0]);
        assert_eq!(fitted.unconverged, 0);
        // Neuron 1 does not reach the logits, so its loss is flat and the mean stays.
        assert_eq!(fitted.objective[0][1], fitted.mean_objective[0][1]);
    }

    /// A quadratic whose unbounded minimum `(3, -2, 0.5)` lies outside the
    /// box in two coordinates: the descent ends on the box's faces there.
    #[test]
    fn the_descent_stays_in_its_box_and_ends_at_the_boxed_minimum() {
        let target = [3.0, -2.0, 0.5];
        let scale = [1.0, 10.0, 0.1];
        let f = |x: &[f64]| {
            let v = (0..3).map(|i| scale[i] * (x[i] - target[i]).powi(2)).sum::<f64>() + 1.0;
            (v, (0..3).map(|i| 2.0 * scale[i] * (x[i] - target[i])).collect())
        };
        let m = super::super::minimise_in_box(&f, vec![0.0; 3], &[-1.0, -1.0, -1.0], &[1.0, 1.0, 1.0], 500);
        assert!(m.converged, "{m:?}");
        assert_eq!(&m.x[..2], &[1.0, -1.0]);
        assert!((m.x[2] - 0.5).abs() < 1e-2, "{m:?}");
        // A cap that is hit is not convergence.
        let capped = super::super::minimise_in_box(&f, vec![0.0; 3], &[-9.0; 3], &[9.0; 3], 2);
        assert!(!capped.converged && capped.value < f(&[0.0; 3]).0);
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
