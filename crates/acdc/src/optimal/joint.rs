//! The joint fit: every neuron outside a circuit replaced at once, their
//! constants fitted together (STUDY §12).

use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use super::{kl_and_gradient, minimise_in_box, Fitting, OptimalConstants};
use crate::{AcdcError, Circuit};

/// The constants a circuit's removed neurons send under optimal ablation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointFit {
    /// `layers[h][u]`: what neuron `u` of hidden layer `h` sends along its
    /// removed edges (a neuron without one keeps its per-neuron constant).
    pub layers: Vec<Vec<f32>>,
    /// The mean KL to the model on the fitting pairs with these constants.
    pub objective: f64,
    /// The same with every removed neuron sending its mean (mean ablation
    /// on the fitting pairs): the joint fit is never above it.
    pub mean_objective: f64,
    /// The same with the per-neuron constants, all at once.
    pub separate_objective: f64,
    /// Constants fitted: one per neuron with a removed edge into a neuron
    /// the circuit uses (what it sends along its removed edges; a removed
    /// edge into an unused neuron changes no output).
    pub fitted: usize,
    /// Objective evaluations.
    pub evaluations: usize,
    /// Whether the descent converged before its cap.
    pub converged: bool,
}

/// The circuit's run on the fitting images with its removed neurons'
/// constants as variables.
struct Problem<'a> {
    circuit: &'a Circuit,
    fitting: &'a Fitting,
    /// `kept_1 · act(z_0) + b_1`: layer 1's product does not depend on the constants.
    first: Vec<f32>,
    /// `(h, u)` of every fitted constant.
    active: Vec<(usize, usize)>,
    base: Vec<Vec<f32>>,
    classes: usize,
}

impl Problem<'_> {
    fn constants(&self, x: &[f64]) -> Vec<Vec<f32>> {
        let mut c = self.base.clone();
        self.active.iter().zip(x).for_each(|(&(h, u), &v)| c[h][u] = v as f32);
        c
    }

    /// `removed_l · c`: what the removed edges add to each row of layer `l`.
    fn removed_sum(&self, l: usize, c: &[f32]) -> Vec<f32> {
        let layer = &self.circuit.kept[l];
        let removed = &self.circuit.removed[l];
        (0..layer.n_out)
            .map(|o| removed[o * layer.n_in..(o + 1) * layer.n_in].iter().zip(c).map(|(w, v)| w * v).sum())
            .collect()
    }

    fn value_and_gradient(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let c = self.constants(x);
        let rows = self.fitting.rows();
        let kept = &self.circuit.kept;
        let last = kept.len() - 1;
        let act = self.circuit.activation;
        // pre[l - 1] = z_l for the hidden layers l = 1..last.
        let mut pre: Vec<Vec<f32>> = Vec::new();
        let mut z = Vec::new();
        for l in 1..=last {
            z = if l == 1 {
                self.first.clone()
            } else {
                let mut a = pre[l - 2].clone();
                act.apply_in_place(&mut a);
                let mut z = self.circuit.kept_product(l, &a, rows, None);
                for zr in z.chunks_exact_mut(kept[l].n_out) {
                    zr.iter_mut().zip(&kept[l].bias).for_each(|(z, b)| *z += b);
                }
                z
            };
            let extra = self.removed_sum(l, &c[l - 1]);
            z.chunks_exact_mut(kept[l].n_out).for_each(|zr| zr.iter_mut().zip(&extra).for_each(|(z, e)| *z += e));
            if l != last {
                pre.push(std::mem::take(&mut z));
            }
        }
        let (loss, mut g) = kl_and_gradient(&self.fitting.log_p, &z, self.classes);
        let mut grad: Vec<Vec<f64>> = c.iter().map(|l| vec![0.0; l.len()]).collect();
        for l in (1..=last).rev() {
            let layer = &kept[l];
            let mut colsum = vec![0f64; layer.n_out];
            for row in g.chunks_exact(layer.n_out) {
                colsum.iter_mut().zip(row).for_each(|(s, v)| *s += *v as f64);
            }
            let removed = &self.circuit.removed[l];
            for (o, s) in colsum.iter().enumerate() {
                let w = &removed[o * layer.n_in..(o + 1) * layer.n_in];
                grad[l - 1].iter_mut().zip(w).for_each(|(gr, w)| *gr += *w as f64 * s);
            }
            if l > 1 {
                let mut da = self.circuit.kept_transpose_product(l, &g, rows);
                act.scale_by_derivative(&pre[l - 2], &mut da);
                g = da;
            }
        }
        (loss, self.active.iter().map(|&(h, u)| grad[h][u]).collect())
    }
}

/// The fitting images' run through `circuit` up to what the constants move.
fn problem<'a>(model: &Mlp, fitting: &'a Fitting, constants: &OptimalConstants, circuit: &'a Circuit) -> Problem<'a> {
    let rows = fitting.rows();
    let kept = &circuit.kept;
    // The first layer: removed inputs send the fitting images' mean.
    let mut z0 = circuit.kept_product(0, &fitting.x, rows, None);
    let extra: Vec<f32> = {
        let (layer, removed) = (&kept[0], &circuit.removed[0]);
        (0..layer.n_out)
            .map(|o| {
                let w = &removed[o * layer.n_in..(o + 1) * layer.n_in];
                layer.bias[o] + w.iter().zip(&fitting.input_mean).map(|(w, v)| w * v).sum::<f32>()
            })
            .collect()
    };
    z0.chunks_exact_mut(kept[0].n_out).for_each(|zr| zr.iter_mut().zip(&extra).for_each(|(z, e)| *z += e));
    let mut a1 = z0;
    circuit.activation.apply_in_place(&mut a1);
    let mut first = circuit.kept_product(1, &a1, rows, None);
    for zr in first.chunks_exact_mut(kept[1].n_out) {
        zr.iter_mut().zip(&kept[1].bias).for_each(|(z, b)| *z += b);
    }
    // A constant matters where it reaches a neuron whose value is used: an
    // output, or a neuron with a kept edge onwards (a removed neuron's own
    // value goes nowhere; it sends its constant).
    let last = kept.len() - 1;
    let used = |l: usize, v: usize| l == last || circuit.kept_column_used(l + 1, v);
    let active: Vec<(usize, usize)> = (0..last)
        .flat_map(|h| {
            let (next, removed) = (&kept[h + 1], &circuit.removed[h + 1]);
            (0..next.n_in)
                .filter(move |&u| (0..next.n_out).any(|o| removed[o * next.n_in + u] != 0.0 && used(h + 1, o)))
                .map(move |u| (h, u))
        })
        .collect();
    Problem { circuit, fitting, first, active, base: constants.layers.clone(), classes: model.n_classes() }
}

/// The joint fit of the neurons outside `circuit`, from the better of the
/// per-neuron constants and the means, within the neurons' ranges.
pub(crate) fn fit(
    model: &Mlp,
    fitting: &Fitting,
    constants: &OptimalConstants,
    circuit: &Circuit,
    steps: usize,
) -> Result<JointFit, AcdcError> {
    circuit.check_model(model)?;
    let problem = problem(model, fitting, constants, circuit);
    let rows = fitting.rows();
    let means: Vec<f64> = problem
        .active
        .iter()
        .map(|&(h, u)| {
            let width = model.layers[h].n_out;
            (fitting.column(h, u, width).map(|v| v as f64).sum::<f64>() / rows as f64) as f32 as f64
        })
        .collect();
    let separate: Vec<f64> = problem.active.iter().map(|&(h, u)| constants.layers[h][u] as f64).collect();
    let low: Vec<f64> = problem.active.iter().map(|&(h, u)| constants.low[h][u] as f64).collect();
    let high: Vec<f64> = problem.active.iter().map(|&(h, u)| constants.high[h][u] as f64).collect();
    let f = |x: &[f64]| problem.value_and_gradient(x);
    let (mean_objective, separate_objective) = (f(&means).0, f(&separate).0);
    let start = if separate_objective <= mean_objective { separate } else { means };
    let m = minimise_in_box(&f, start, &low, &high, steps);
    let layers = problem.constants(&m.x);
    Ok(JointFit {
        layers,
        objective: m.value,
        mean_objective,
        separate_objective,
        fitted: problem.active.len(),
        evaluations: m.evaluations + 2,
        converged: m.converged,
    })
}

#[cfg(test)]
mod tests {
    use modcirc_mlp::{Activation, Linear, Mlp};

    use super::super::OptimalAblation;
    use crate::{Circuit, TaskImages};

    /// Two hidden neurons that cancel (`h0 = x`, `h1 = −x`, the logits
    /// `(h0 + h1 + 2, 0)` whatever `x` is): removed together, any pair of
    /// constants that sums to 0 gives the model exactly. Each fitted alone
    /// (the other intact) meets a skewed `x` through the sigmoid's curve, so
    /// the two per-neuron constants do not cancel; the joint fit does.
    #[test]
    fn the_joint_fit_beats_the_per_neuron_fits_where_removed_neurons_cancel() {
        let w1 = Linear { n_in: 1, n_out: 2, weight: vec![1.0, -1.0], bias: vec![0.0, 0.0] };
        let w2 = Linear { n_in: 2, n_out: 2, weight: vec![1.0, 1.0, 0.0, 0.0], bias: vec![2.0, 0.0] };
        let model = Mlp::new(vec![w1, w2], Activation::Identity).unwrap();
        let xs = |k: usize| -> Vec<f32> { (0..k).map(|i| if i % 4 == 0 { 4.0 } else { 0.0 }).collect() };
        let n = 16;
        let images = TaskImages {
            n,
            pixels: 1,
            clean: xs(n),
            corrupted: xs(n).iter().map(|v| v * 0.5).collect(),
            clean_labels: vec![0; n],
            corrupted_labels: vec![1; n],
        };
        let optimal = OptimalAblation::fit(&model, &images, 200).unwrap();
        let c = &optimal.constants().layers[0];
        assert!((c[0] + c[1]).abs() > 0.05, "the per-neuron constants cancel already: {c:?}");
        let empty = Circuit::new(&model, vec![vec![]], 0.0).unwrap();
        let fit = optimal.joint(&model, &empty).unwrap();
        assert_eq!(fit.fitted, 2);
        assert!(fit.separate_objective > 1e-3, "{fit:?}");
        assert!(fit.objective < 1e-3 * fit.separate_objective, "{fit:?}");
        assert!(fit.objective <= fit.mean_objective);
        assert!((fit.layers[0][0] + fit.layers[0][1]).abs() < 1e-2, "{fit:?}");
        // Within each neuron's range, and kept for the circuit.
        let k = optimal.constants();
        for u in 0..2 {
            assert!(k.low[0][u] <= fit.layers[0][u] && fit.layers[0][u] <= k.high[0][u]);
        }
        assert!(std::sync::Arc::ptr_eq(&fit, &optimal.joint(&model, &empty).unwrap()));
        // The full circuit removes nothing: nothing to fit.
        let full = Circuit::new(&model, vec![vec![0, 1]], 0.0).unwrap();
        assert_eq!(optimal.joint(&model, &full).unwrap().fitted, 0);
    }

    /// The gradient the descent follows is the objective's: central
    /// differences on a tanh network with two hidden layers.
    #[test]
    fn the_joint_gradient_matches_finite_differences() {
        let mut rng = modcirc_dataset::Rng::new(3);
        let model = Mlp::init(&[5, 6, 4, 3], Activation::Tanh, &mut || rng.next_f64()).unwrap();
        let n = 7;
        let img = |rng: &mut modcirc_dataset::Rng| (0..n * 5).map(|_| rng.next_f64() as f32).collect();
        let images = TaskImages {
            n,
            pixels: 5,
            clean: img(&mut rng),
            corrupted: img(&mut rng),
            clean_labels: vec![0; n],
            corrupted_labels: vec![1; n],
        };
        let fitting = super::Fitting::new(&model, &images).unwrap();
        let constants = super::super::single::fit(&model, &fitting, 50).unwrap();
        let circuit = Circuit::new(&model, vec![vec![1, 3], vec![0, 2]], 0.0).unwrap();
        let problem = super::problem(&model, &fitting, &constants, &circuit);
        assert_eq!(problem.active.len(), 6);
        let x: Vec<f64> = (0..6).map(|i| 0.1 * i as f64 - 0.2).collect();
        let (_, g) = problem.value_and_gradient(&x);
        for i in 0..6 {
            let h = 1e-2;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (problem.value_and_gradient(&up).0 - problem.value_and_gradient(&down).0) / (2.0 * h);
            assert!((numeric - g[i]).abs() < 1e-3 * (1.0 + numeric.abs()), "{i}: {numeric} vs {}", g[i]);
        }
    }
}
