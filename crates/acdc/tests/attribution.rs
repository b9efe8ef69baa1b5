//! Attribution patching and faithfulness (STUDY §8) on a model trained on the
//! committed MNIST.

mod common;

use common::{forward_editing, images, mnist};

use std::sync::OnceLock;

use modcirc_acdc::{
    ablated_loss, edge_acdc, edge_attribution, edge_attribution_ig, exact_node_effects, faithfulness,
    faithfulness_curve, faithfulness_under, fit_optimal_ablation, node_attribution, node_attribution_ig, Ablation,
    AcdcConfig, AcdcError, AcdcMetric, Circuit, IgPath, OptimalAblation, PatchingSweep, Replacement, TaskImages,
    DEFAULT_FRACTIONS, DEFAULT_OPTIMAL_STEPS,
};
use modcirc_bimt::{Regime, TrainConfig, Trainer};
use modcirc_metrics::spearman;
use modcirc_mlp::Mlp;

/// BIMT after 1 500 steps, with relocations, so the output permutation is not the identity.
fn model() -> &'static Mlp {
    static M: OnceLock<Mlp> = OnceLock::new();
    M.get_or_init(|| {
        Trainer::new(TrainConfig::new(Regime::Bimt).steps(1_500).swap_every(250).seed(4))
            .unwrap()
            .run(&mnist().train, None, &mut |_| {})
            .unwrap()
            .model
    })
}

/// `m` of one pair, with `a[h][u]` of its corrupted run moved by `delta`.
fn metric_with(model: &Mlp, imgs: &TaskImages, b: usize, h: usize, u: usize, delta: f32) -> f64 {
    let px = imgs.pixels;
    let a = forward_editing(model, &imgs.corrupted[b * px..(b + 1) * px], h, |z| z[u] += delta);
    let pos = |c: u8| model.out_perm.iter().position(|&k| k == c as usize).unwrap();
    a[pos(imgs.clean_labels[b])] as f64 - a[pos(imgs.corrupted_labels[b])] as f64
}

#[test]
fn node_attribution_is_the_gradient_and_exact_where_the_model_is_linear() {
    assert_ne!(model().out_perm, (0..10).collect::<Vec<_>>(), "swaps moved the outputs");
    // One pair: s(u) / (a_u − a'_u) is ∂m/∂a_u, checked by central differences.
    let one = images("circle", 1);
    let sweep = PatchingSweep::new(model(), &one).unwrap();
    let s = node_attribution(&sweep).unwrap();
    let acts = (model().activations(&one.clean, 1), model().activations(&one.corrupted, 1));
    let mut checked = 0;
    for h in 0..2 {
        for u in 0..100 {
            let d = acts.0.post[h][u] - acts.1.post[h][u];
            if d.abs() < 1e-2 {
                continue;
            }
            let step = 1e-2;
            let fd = (metric_with(model(), &one, 0, h, u, step) - metric_with(model(), &one, 0, h, u, -step))
                / (2.0 * step as f64);
            let grad = s.layers[h][u] / d as f64;
            assert!((grad - fd).abs() <= 1e-3 * fd.abs().max(1.0), "({h}, {u}): {grad} vs {fd}");
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} neurons moved");
    // Many pairs: exact for the last hidden layer, a ranking for the first.
    let imgs = images("circle", 200);
    let sweep = PatchingSweep::new(model(), &imgs).unwrap();
    let (est, exact) = (node_attribution(&sweep).unwrap(), exact_node_effects(&sweep).unwrap());
    for (e, x) in est.layers[1].iter().zip(&exact.layers[1]) {
        assert!((e - x).abs() <= 1e-4 * x.abs().max(1e-2), "{e} vs {x}");
    }
    let rho = spearman(&est.layers[0], &exact.layers[0]).unwrap();
    assert!(rho > 0.5, "first hidden layer: Spearman {rho}");
}

#[test]
fn eap_on_the_last_layer_is_the_exact_effect_of_removing_one_edge() {
    let imgs = images("line", 150);
    let sweep = PatchingSweep::new(model(), &imgs).unwrap();
    let scores = edge_attribution(&sweep).unwrap();
    let sizes: Vec<usize> = model().layers.iter().map(|l| l.weight.len()).collect();
    let all: Vec<Vec<bool>> = sizes.iter().map(|&n| vec![true; n]).collect();
    let full = Circuit::from_edges(model(), &all).unwrap();
    assert_eq!(full.n_edges(), 89_400);
    let m_full = full.answer_metric(&sweep).unwrap();
    // The three largest last-layer scores: removing that one edge moves m by exactly s.
    let last = &scores.layers[2];
    let mut idx: Vec<usize> = (0..last.len()).collect();
    idx.sort_by(|&a, &b| last[b].abs().total_cmp(&last[a].abs()));
    for &e in &idx[..3] {
        let mut mask = all.clone();
        mask[2][e] = false;
        let moved = Circuit::from_edges(model(), &mask).unwrap().answer_metric(&sweep).unwrap() - m_full;
        assert!((moved - last[e] as f64).abs() <= 1e-4 * moved.abs().max(1e-3), "edge {e}: {moved} vs {}", last[e]);
    }
    assert!(scores.layers[0].iter().any(|&s| s != 0.0) && scores.layers[1].iter().any(|&s| s != 0.0));
}

#[test]
fn faithfulness_runs_from_the_corrupted_run_to_the_model() {
    let imgs = images("circle", 150);
    let sweep = PatchingSweep::new(model(), &imgs).unwrap();
    let sizes: Vec<usize> = model().layers.iter().map(|l| l.weight.len()).collect();
    let full = Circuit::from_edges(model(), &sizes.iter().map(|&n| vec![true; n]).collect::<Vec<_>>()).unwrap();
    let empty = Circuit::from_edges(model(), &sizes.iter().map(|&n| vec![false; n]).collect::<Vec<_>>()).unwrap();
    assert!((faithfulness(&sweep, &full).unwrap() - 1.0).abs() < 1e-5);
    assert!(faithfulness(&sweep, &empty).unwrap().abs() < 1e-5);
    assert!(empty.nodes.iter().all(Vec::is_empty));
    let curve = faithfulness_curve(&sweep, &edge_attribution(&sweep).unwrap(), &DEFAULT_FRACTIONS).unwrap();
    assert_eq!(curve.edges.first(), Some(&89));
    assert_eq!(curve.edges.last(), Some(&89_400));
    assert!((curve.faithfulness.last().unwrap() - 1.0).abs() < 1e-5);
    assert!(curve.cpr.is_finite() && curve.cmd >= 0.0);
    // The top half of the edges by |EAP| recovers most of the answer.
    assert!(curve.faithfulness[8] > 0.5, "{:?}", curve.faithfulness);
}

#[test]
fn bad_masks_and_fractions_are_errors() {
    let imgs = images("circle", 20);
    let sweep = PatchingSweep::new(model(), &imgs).unwrap();
    assert!(matches!(Circuit::from_edges(model(), &[vec![true; 3]]), Err(AcdcError::Shape(_))));
    let scores = edge_attribution(&sweep).unwrap();
    for bad in [&[0.5][..], &[0.2, 0.1], &[0.0, 0.5], &[0.5, 1.5]] {
        assert!(matches!(faithfulness_curve(&sweep, &scores, bad), Err(AcdcError::BadOption(_))), "{bad:?}");
    }
    let mut foreign = imgs.clone();
    foreign.clean_labels[0] = 12;
    let s = PatchingSweep::new(model(), &foreign).unwrap();
    assert!(node_attribution(&s).unwrap_err().to_string().contains("label 12"));
}

#[test]
fn acdc_state_matches_a_fresh_forward_of_the_circuit_it_returns() {
    let imgs = images("circle", 20);
    let sweep = PatchingSweep::new(model(), &imgs).unwrap();
    let answer = |mask: &[Vec<bool>]| Circuit::from_edges(model(), mask).unwrap().answer_metric(&sweep).unwrap();
    // A moderate threshold on the answer metric: ACDC's running value is the circuit's.
    let cfg = AcdcConfig { tau: 0.02, metric: AcdcMetric::Answer, zero_ablation: false };
    let found = edge_acdc(&sweep, &cfg).unwrap();
    assert!(found.n_edges > 0 && found.n_edges < 89_400, "{} edges", found.n_edges);
    assert_eq!(found.n_edges, found.mask.iter().flatten().filter(|&&k| k).count());
    let fresh = answer(&found.mask);
    assert!((found.circuit_metric - fresh).abs() < 1e-4, "{} vs {fresh}", found.circuit_metric);
    // Each removal costs less than tau at the time it is made.
    let removed = (89_400 - found.n_edges) as f64;
    assert!(found.model_metric - found.circuit_metric < cfg.tau * removed);
    eprintln!(
        "tau {}: {} edges, metric {} -> {}, {} evaluated",
        cfg.tau, found.n_edges, found.model_metric, found.circuit_metric, found.evaluated
    );
    // tau = 0: only improvements are taken, so the answer metric cannot drop.
    let strict = edge_acdc(&sweep, &AcdcConfig { tau: 0.0, ..cfg }).unwrap();
    assert!(strict.circuit_metric >= strict.model_metric - 1e-9);
    assert!(strict.n_edges > found.n_edges);
}

#[test]
fn acdc_with_an_unbounded_threshold_removes_everything_and_lands_on_the_corrupted_run() {
    let imgs = images("line", 12);
    let sweep = PatchingSweep::new(model(), &imgs).unwrap();
    let all =
        edge_acdc(&sweep, &AcdcConfig { tau: f64::INFINITY, metric: AcdcMetric::Kl, zero_ablation: false }).unwrap();
    assert_eq!(all.n_edges, 0);
    assert_eq!(all.model_metric, 0.0);
    // KL of the corrupted run's distribution from the clean run's, directly.
    let log_softmax = |z: &[f32]| {
        let lse = z.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
        z.iter().map(|&v| v as f64 - lse).collect::<Vec<_>>()
    };
    let kl: f64 = sweep
        .clean_logits()
        .chunks_exact(10)
        .zip(sweep.corrupted_logits().chunks_exact(10))
        .map(|(p, q)| log_softmax(p).iter().zip(log_softmax(q)).map(|(lp, lq)| lp.exp() * (lp - lq)).sum::<f64>())
        .sum::<f64>()
        / imgs.n as f64;
    assert!((all.circuit_metric - kl).abs() < 1e-5 * kl.max(1e-6), "{} vs {kl}", all.circuit_metric);
    assert!(kl > 0.0);
    for bad in [-1.0, f64::NAN] {
        let e = edge_acdc(&sweep, &AcdcConfig { tau: bad, ..AcdcConfig::default() }).unwrap_err();
        assert!(matches!(e, AcdcError::BadOption(_)) && e.to_string().starts_with("tau = "), "{e}");
    }
}

/// `n` of `task`'s training-split pairs from every digit pair, as the study
/// draws optimal ablation's fitting pairs (STUDY §12).
fn fitting_images(task: &str, n: usize) -> TaskImages {
    let pairs =
        modcirc_dataset::PairedDataset::new(&mnist().train, &modcirc_dataset::Task::parse(task).unwrap(), 0).unwrap();
    TaskImages::from_pairs(&mnist().train, &pairs.stratified(n, 0))
}

#[test]
fn per_neuron_constants_lose_no_more_than_the_mean_or_zero_within_range() {
    let imgs = fitting_images("circle", 100);
    let fitted = fit_optimal_ablation(model(), &imgs, DEFAULT_OPTIMAL_STEPS).unwrap();
    let acts = model().activations(&[imgs.clean.as_slice(), &imgs.corrupted].concat(), 2 * imgs.n);
    let mut better = 0;
    for h in 0..2 {
        let width = model().layers[h].n_out;
        // Every fourth neuron: each loss below re-runs the model on the pairs.
        for u in (0..width).step_by(4) {
            let values: Vec<f32> = acts.post[h].iter().skip(u).step_by(width).copied().collect();
            let (lo, hi) = (fitted.low[h][u], fitted.high[h][u]);
            assert_eq!(lo, values.iter().fold(f32::INFINITY, |a, &v| a.min(v)));
            assert_eq!(hi, values.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)));
            let c = fitted.layers[h][u];
            assert!(lo <= c && c <= hi, "neuron ({h}, {u}): {c} outside [{lo}, {hi}]");
            let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
            let loss = |r: Replacement<'_>| ablated_loss(model(), &imgs, h, u, r).unwrap();
            let optimal = loss(Replacement::Constant(c));
            assert!((optimal - fitted.objective[h][u]).abs() < 1e-9, "the recorded loss is the constant's");
            let at_mean = loss(Replacement::Constant(mean as f32));
            assert!(optimal <= at_mean + 1e-9, "neuron ({h}, {u}): {optimal} vs the mean's {at_mean}");
            if lo <= 0.0 && 0.0 <= hi {
                let zero = loss(Replacement::Constant(0.0));
                assert!(optimal <= zero + 1e-6, "neuron ({h}, {u}): {optimal} vs zero's {zero}");
            }
            better += (optimal < at_mean - 1e-5) as usize;
        }
    }
    assert!(better > 0, "the fit never moved from the mean");
    assert!(fitted.unconverged <= 10, "{} of 200 neurons hit the cap", fitted.unconverged);
}

/// The issue this answers: per-neuron constants applied together made every
/// circuit answer one digit for every image.
#[test]
fn joint_optimal_ablation_on_a_trained_model_is_no_worse_than_the_mean_and_answers_the_task() {
    let optimal = OptimalAblation::fit(model(), &fitting_images("circle", 200), DEFAULT_OPTIMAL_STEPS).unwrap();
    // Test pairs of every digit pair: one digit for every image scores at most 0.25.
    let pairs = modcirc_dataset::PairedDataset::new(&mnist().test, &modcirc_dataset::Task::parse("circle").unwrap(), 0)
        .unwrap();
    let imgs = TaskImages::from_pairs(&mnist().test, &pairs.stratified(100, 1));
    let sweep = PatchingSweep::new(model(), &imgs).unwrap().with_optimal(optimal.clone()).unwrap();
    let scores = sweep.scores();
    let top = |k: usize| -> Vec<Vec<usize>> {
        scores
            .layers
            .iter()
            .map(|l| {
                let mut idx: Vec<usize> = (0..l.len()).collect();
                idx.sort_by(|&a, &b| l[a].total_cmp(&l[b]));
                idx.truncate(k);
                idx
            })
            .collect()
    };
    let mut rng = modcirc_dataset::Rng::new(11);
    let mut random = || -> Vec<Vec<usize>> {
        (0..2)
            .map(|_| {
                let mut idx: Vec<usize> = (0..100).collect();
                rng.shuffle(&mut idx);
                idx.truncate(15);
                idx
            })
            .collect()
    };
    let labels: Vec<u8> = imgs.clean_labels.iter().chain(&imgs.corrupted_labels).copied().collect();
    let largest_share =
        (0..10u8).map(|d| labels.iter().filter(|&&l| l == d).count()).max().unwrap() as f64 / labels.len() as f64;
    // The discovered circuits, and random ones (which answer one digit under
    // mean ablation too: only the fit's objective is asked of them).
    for (nodes, discovered) in [(top(15), true), (top(30), true), (random(), false), (random(), false)] {
        let circuit = Circuit::new(model(), nodes, 0.01).unwrap();
        let fit = optimal.joint(model(), &circuit).unwrap();
        assert!(fit.converged, "{fit:?}");
        assert!(fit.objective <= fit.mean_objective && fit.objective <= fit.separate_objective, "{fit:?}");
        let eval = circuit.evaluate(&sweep, Ablation::Optimal).unwrap();
        let mean = circuit.evaluate(&sweep, Ablation::Mean).unwrap();
        eprintln!(
            "kept {:?}: KL {:.4} (mean {:.4}, per-neuron {:.4}), accuracy {:.3} (mean {:.3}), logit difference {:.3} (mean {:.3}), {} evaluations",
            circuit.nodes.iter().map(Vec::len).collect::<Vec<_>>(),
            fit.objective,
            fit.mean_objective,
            fit.separate_objective,
            eval.accuracy,
            mean.accuracy,
            eval.logit_difference,
            mean.logit_difference,
            fit.evaluations
        );
        if discovered {
            assert!(eval.accuracy > largest_share, "{eval:?}: one digit for every image would score {largest_share}");
            assert!(eval.logit_difference < 3.0 * mean.logit_difference, "{eval:?} vs mean ablation's {mean:?}");
        }
    }
    // Faithfulness under it, each circuit (the empty one too) with its own fit.
    let f = faithfulness_under(&sweep, &Circuit::new(model(), top(15), 0.01).unwrap(), Ablation::Optimal).unwrap();
    assert!(f.is_finite() && f > 0.0, "{f}");
    // The subset keeps the fits; fits of another shape are refused.
    assert!(Circuit::new(model(), top(15), 0.01)
        .unwrap()
        .evaluate(&sweep.subset(&[0, 1, 2]), Ablation::Optimal)
        .is_ok());
    let mut wrong = optimal.constants().clone();
    wrong.layers[1].pop();
    assert!(OptimalAblation::with_constants(model(), &fitting_images("circle", 200), wrong).is_err());
    let e = Circuit::new(model(), top(15), 0.01)
        .unwrap()
        .evaluate(&PatchingSweep::new(model(), &imgs).unwrap(), Ablation::Optimal)
        .unwrap_err();
    assert!(e.to_string().contains("optimal ablation needs"), "{e}");
}

#[test]
fn eap_ig_on_the_trained_model_is_eap_at_one_step_and_converges_as_steps_grow() {
    let imgs = images("line", 60);
    let sweep = PatchingSweep::new(model(), &imgs).unwrap();
    let eap = edge_attribution(&sweep).unwrap();
    let l1 = |a: &modcirc_acdc::EdgeScores, b: &modcirc_acdc::EdgeScores| -> f64 {
        a.layers.iter().flatten().zip(b.layers.iter().flatten()).map(|(x, y)| (x - y).abs() as f64).sum()
    };
    for path in IgPath::ALL {
        let one = edge_attribution_ig(&sweep, 1, path).unwrap();
        assert!(l1(&one, &eap) <= 1e-6 * eap.layers.iter().flatten().map(|v| v.abs() as f64).sum::<f64>());
        let fine = edge_attribution_ig(&sweep, 256, path).unwrap();
        let errs: Vec<f64> =
            [2, 8, 32].iter().map(|&m| l1(&edge_attribution_ig(&sweep, m, path).unwrap(), &fine)).collect();
        assert!(errs[0] > errs[1] && errs[1] > errs[2], "{path}: {errs:?}");
        assert!(errs[2] < 0.1 * errs[0], "{path}: {errs:?}");
        // The node scores of the path too.
        let nodes = node_attribution_ig(&sweep, 5, path).unwrap();
        assert_eq!(nodes.layers.iter().map(Vec::len).collect::<Vec<_>>(), vec![100, 100]);
    }
}
