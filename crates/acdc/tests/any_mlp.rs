//! Every path of the crate on tiny random networks of many shapes: 1 to 4
//! hidden layers, widths 1 to 40 (squares or not), every activation. Each
//! fast path is checked against its slow twin, computed here from plain
//! forward passes.

mod common;

use candle_core::Device;
use common::forward_editing;
use modcirc_acdc::{
    edge_acdc, edge_attribution, edge_attribution_ig, node_attribution, path_gradients, score_methods, warm_logits,
    Ablation, AcdcConfig, AcdcMetric, Circuit, DeviceSweep, IgPath, Method, PatchingSweep, TaskImages, MASK_INIT_LOGIT,
};
use modcirc_metrics::logit_difference;
use modcirc_mlp::{Activation, Mlp};
use proptest::prelude::*;

/// A random network and random pairs for it.
#[derive(Debug, Clone)]
struct Case {
    model: Mlp,
    images: TaskImages,
}

/// A deterministic uniform stream in [0, 1) from `seed`.
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(1usize..=40, 1..=4),
        1usize..=12,
        2usize..=6,
        1usize..=6,
        0usize..Activation::ALL.len(),
        any::<u64>(),
    )
        .prop_map(|(hidden, inputs, classes, n, act, seed)| {
            let mut u = uniform(seed);
            let mut sizes = vec![inputs];
            sizes.extend(&hidden);
            sizes.push(classes);
            // Twice PyTorch's initial scale, so that activations are not all tiny.
            let mut model = Mlp::init(&sizes, Activation::ALL[act], &mut u).unwrap();
            for l in &mut model.layers {
                l.weight.iter_mut().chain(&mut l.bias).for_each(|w| *w *= 2.0);
            }
            // A non-trivial output permutation, as swaps leave it.
            model.out_perm.rotate_left(seed as usize % classes);
            let mut draw = |k: usize| (0..k).map(|_| u() as f32).collect::<Vec<f32>>();
            let (clean, corrupted) = (draw(n * inputs), draw(n * inputs));
            let mut label = || (u() * classes as f64) as u8;
            let clean_labels: Vec<u8> = (0..n).map(|_| label()).collect();
            let corrupted_labels = clean_labels.iter().map(|&c| (c + 1) % classes as u8).collect();
            let images = TaskImages { n, pixels: inputs, clean, corrupted, clean_labels, corrupted_labels };
            Case { model, images }
        })
}

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= abs + rel * a.abs().max(b.abs())
}

/// `m = L[clean digit] − L[corrupted digit]` of pair `b`'s corrupted run
/// with hidden `a[h][u]` moved by `delta`, and every hidden pre-activation
/// downstream of `h` on the way.
fn metric_with(c: &Case, b: usize, h: usize, u: usize, delta: f32) -> (f64, Vec<f32>) {
    let (m, im) = (&c.model, &c.images);
    let image = &im.corrupted[b * im.pixels..(b + 1) * im.pixels];
    let mut a = image.to_vec();
    let mut downstream = Vec::new();
    for (l, layer) in m.layers.iter().enumerate() {
        let mut z = vec![0.0; layer.n_out];
        layer.forward_into(&a, 1, &mut z);
        if l > h && l + 1 < m.layers.len() {
            downstream.extend_from_slice(&z);
        }
        if l + 1 < m.layers.len() {
            m.activation.apply_in_place(&mut z);
        }
        if l == h {
            z[u] += delta;
        }
        a = z;
    }
    let pos = |d: u8| m.out_perm.iter().position(|&k| k == d as usize).unwrap();
    (a[pos(im.clean_labels[b])] as f64 - a[pos(im.corrupted_labels[b])] as f64, downstream)
}

/// Every edge kept (`true`) or removed, shaped like the weights.
fn mask(m: &Mlp, keep: bool) -> Vec<Vec<bool>> {
    m.layers.iter().map(|l| vec![keep; l.weight.len()]).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_sweep_is_a_forward_per_neuron_per_pair(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let scores = sweep.scores();
        let (m, im) = (&c.model, &c.images);
        let px = im.pixels;
        // The rank-1 update rounds at the scale of the logits: where the
        // naive forward gives exactly 0, the sweep may give a few ulps of it.
        let scale = sweep.clean_logits().iter().fold(1f64, |m, v| m.max(v.abs() as f64));
        for (h, layer) in scores.layers.iter().enumerate() {
            prop_assert_eq!(layer.len(), m.layers[h].n_out);
            for (i, &score) in layer.iter().enumerate() {
                let mut total = 0.0;
                for b in 0..im.n {
                    let clean = m.activations(&im.clean[b * px..(b + 1) * px], 1);
                    let patched = forward_editing(m, &im.corrupted[b * px..(b + 1) * px], h, |z| z[i] = clean.post[h][i]);
                    total += logit_difference(&patched, clean.post.last().unwrap(), m.n_classes());
                }
                let naive = total / im.n as f64;
                prop_assert!(close(score, naive, 1e-5, 1e-6 * scale), "({}, {}): {} vs {}", h, i, score, naive);
            }
        }
    }

    #[test]
    fn the_device_sweep_equals_the_sweep(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let (cpu, dev) = (sweep.scores(), DeviceSweep::new(&sweep, &Device::Cpu).unwrap().scores(None).unwrap());
        prop_assert_eq!(cpu.baseline, dev.baseline);
        for (a, b) in cpu.layers.iter().flatten().zip(dev.layers.iter().flatten()) {
            prop_assert!(close(*a, *b, 2e-5, 1e-6), "{} vs {} ({})", a, b, c.model.activation);
        }
        let idx: Vec<usize> = (0..c.images.n).rev().collect();
        let (cpu, dev) = (sweep.subset(&idx).scores(), DeviceSweep::new(&sweep, &Device::Cpu).unwrap().scores(Some(&idx)).unwrap());
        for (a, b) in cpu.layers.iter().flatten().zip(dev.layers.iter().flatten()) {
            prop_assert!(close(*a, *b, 2e-5, 1e-6), "resampled: {} vs {}", a, b);
        }
    }

    #[test]
    fn node_attribution_is_the_gradient_by_central_differences(c in case()) {
        let one = PatchingSweep::new(&c.model, &c.images).unwrap().subset(&[0]);
        let s = node_attribution(&one).unwrap();
        let acts = (c.model.activations(&c.images.clean[..c.images.pixels], 1),
                    c.model.activations(&c.images.corrupted[..c.images.pixels], 1));
        let step = 1e-2f32;
        for (h, layer) in s.layers.iter().enumerate() {
            for (u, &score) in layer.iter().enumerate() {
                let d = acts.0.post[h][u] - acts.1.post[h][u];
                let ((up, zu), (down, zd)) = (metric_with(&c, 0, h, u, step), metric_with(&c, 0, h, u, -step));
                // ReLU's kink: skip a neuron whose nudge flips a downstream sign.
                if c.model.activation == Activation::Relu && zu.iter().zip(&zd).any(|(a, b)| (*a > 0.0) != (*b > 0.0)) {
                    continue;
                }
                let fd = (up - down) / (2.0 * step as f64);
                prop_assert!(close(score, d as f64 * fd, 2e-3, 1e-4), "({}, {}): {} vs {}·{}", h, u, score, d, fd);
            }
        }
    }

    #[test]
    fn eap_on_an_output_edge_is_removing_that_edge(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let scores = edge_attribution(&sweep).unwrap();
        let all = mask(&c.model, true);
        let m_full = Circuit::from_edges(&c.model, &all).unwrap().answer_metric(&sweep).unwrap();
        let last = scores.layers.len() - 1;
        for e in 0..scores.layers[last].len() {
            let mut m = all.clone();
            m[last][e] = false;
            let moved = Circuit::from_edges(&c.model, &m).unwrap().answer_metric(&sweep).unwrap() - m_full;
            prop_assert!(close(moved, scores.layers[last][e] as f64, 1e-3, 1e-5), "edge {}: {} vs {}", e, moved, scores.layers[last][e]);
        }
    }

    #[test]
    fn acdc_ends_on_the_metric_of_the_circuit_it_returns(c in case(), tau in 0.0f64..0.05) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let found = edge_acdc(&sweep, &AcdcConfig { tau, metric: AcdcMetric::Answer, zero_ablation: false }).unwrap();
        let fresh = Circuit::from_edges(&c.model, &found.mask).unwrap().answer_metric(&sweep).unwrap();
        prop_assert!(close(found.circuit_metric, fresh, 1e-4, 1e-5), "{} vs {}", found.circuit_metric, fresh);
        prop_assert_eq!(found.n_edges, found.mask.iter().flatten().filter(|&&k| k).count());
    }

    #[test]
    fn a_circuit_of_everything_is_the_model(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let nodes: Vec<Vec<usize>> = c.model.layers[..c.model.n_hidden()].iter().map(|l| (0..l.n_out).collect()).collect();
        let everything = Circuit::new(&c.model, nodes, 0.0).unwrap();
        prop_assert_eq!(everything.n_edges(), c.model.n_weights());
        for ablation in [Ablation::Zero, Ablation::Mean, Ablation::Resample] {
            let eval = everything.evaluate(&sweep, ablation).unwrap();
            prop_assert!(eval.logit_difference < 1e-5, "{}: {}", ablation, eval.logit_difference);
        }
        let x = &c.images.clean;
        let got = everything.logits(&c.model, x, c.images.n);
        prop_assert!(got.iter().zip(c.model.forward(x, c.images.n)).all(|(a, b)| (a - b).abs() < 1e-5));
        let by_edges = Circuit::from_edges(&c.model, &mask(&c.model, true)).unwrap().answer_metric(&sweep).unwrap();
        let clean = (0..c.images.n).map(|b| metric_with_clean(&c, b)).sum::<f64>() / c.images.n as f64;
        prop_assert!(close(by_edges, clean, 1e-5, 1e-6), "{} vs {}", by_edges, clean);
    }
}

/// The answer metric of pair `b` with layer `from`'s input set to `input`
/// (one row), and `z` of layer `at` (pre-activation; `post`: the hidden
/// layer's activation) of unit `v` moved by `delta` (no layer: `usize::MAX`);
/// and the pre-activations from the nudge on, to see a ReLU kink crossed.
fn metric_from(
    c: &Case,
    b: usize,
    from: usize,
    input: &[f32],
    at: (usize, bool, usize),
    delta: f32,
) -> (f64, Vec<f32>) {
    let m = &c.model;
    let (layer_at, post, v) = at;
    let mut a = input.to_vec();
    let mut downstream = Vec::new();
    for l in from..m.layers.len() {
        let mut z = vec![0.0; m.layers[l].n_out];
        m.layers[l].forward_into(&a, 1, &mut z);
        if l == layer_at && !post {
            z[v] += delta;
        }
        if layer_at == usize::MAX || l >= layer_at {
            downstream.extend_from_slice(&z);
        }
        if l + 1 < m.layers.len() {
            m.activation.apply_in_place(&mut z);
        }
        if l == layer_at && post {
            z[v] += delta;
        }
        a = z;
    }
    let pos = |d: u8| m.out_perm.iter().position(|&k| k == d as usize).unwrap();
    (a[pos(c.images.clean_labels[b])] as f64 - a[pos(c.images.corrupted_labels[b])] as f64, downstream)
}

/// The point `k` of `steps` on the line from `corrupted` to `clean`, as EAP-IG takes it.
fn on_line(clean: &[f32], corrupted: &[f32], k: usize, steps: usize) -> Vec<f32> {
    let back = 1.0 - k as f32 / steps as f32;
    clean.iter().zip(corrupted).map(|(&a, &c)| a - back * (a - c)).collect()
}

/// Layer `l`'s input on pair `b`'s clean and corrupted runs (the images for `l = 0`).
fn layer_inputs(c: &Case, b: usize, l: usize) -> (Vec<f32>, Vec<f32>) {
    let px = c.images.pixels;
    let (x, y) = (&c.images.clean[b * px..(b + 1) * px], &c.images.corrupted[b * px..(b + 1) * px]);
    if l == 0 {
        return (x.to_vec(), y.to_vec());
    }
    (c.model.activations(x, 1).post[l - 1].clone(), c.model.activations(y, 1).post[l - 1].clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// An ensemble of one member orders the edges as that member does (its
    /// normalised ranks are monotone in |score|, ties together); of two
    /// identical members, the same scores.
    #[test]
    fn an_ensemble_of_one_keeps_its_members_order(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let eap = edge_attribution(&sweep).unwrap();
        let one = Method::Ensemble { members: vec![Method::Eap] }.scores(&sweep).unwrap();
        let ranks: Vec<f32> = one.edges.as_ref().unwrap().layers.concat();
        let abs: Vec<f32> = eap.layers.concat().iter().map(|s| s.abs()).collect();
        let mut order: Vec<usize> = (0..abs.len()).collect();
        order.sort_by(|&i, &j| abs[i].total_cmp(&abs[j]));
        for w in order.windows(2) {
            let (i, j) = (w[0], w[1]);
            prop_assert_eq!(abs[i] < abs[j], ranks[i] < ranks[j], "edges {} and {}", i, j);
        }
        let two = Method::Ensemble { members: vec![Method::Eap, Method::Eap] }.scores(&sweep).unwrap();
        prop_assert_eq!(two.edges.unwrap().layers, one.edges.unwrap().layers);
        prop_assert_eq!(two.nodes, one.nodes);
    }

    /// An ensemble combined from its members' scores made before it
    /// ([`score_methods`]) is the ensemble run alone, to the bit.
    #[test]
    fn an_ensemble_from_scored_members_is_the_ensemble_run_alone(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let members = vec![Method::Eap, "eap-ig".parse().unwrap()];
        let ensemble = Method::Ensemble { members: members.clone() };
        let alone = ensemble.scores(&sweep).unwrap();
        let listed = [members, vec![ensemble]].concat();
        let reused = score_methods(&listed, &sweep).unwrap().pop().unwrap();
        prop_assert_eq!(reused.edges.unwrap().layers, alone.edges.unwrap().layers);
        prop_assert_eq!(reused.nodes, alone.nodes);
    }

    /// A warm start's logits order the edges as |score| does, from
    /// −MASK_INIT_LOGIT up to MASK_INIT_LOGIT (the strongest edge).
    #[test]
    fn warm_logits_follow_the_scores_order(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let eap = edge_attribution(&sweep).unwrap();
        let logits = warm_logits(&eap);
        prop_assert_eq!(logits.iter().map(Vec::len).collect::<Vec<_>>(), eap.layers.iter().map(Vec::len).collect::<Vec<_>>());
        let (abs, flat): (Vec<f32>, Vec<f32>) = (eap.layers.concat().iter().map(|s| s.abs()).collect(), logits.concat());
        let top = (0..abs.len()).max_by(|&i, &j| abs[i].total_cmp(&abs[j])).unwrap();
        if abs.iter().filter(|&&a| a == abs[top]).count() == 1 {
            prop_assert_eq!(flat[top], MASK_INIT_LOGIT);
        }
        for i in 0..abs.len() {
            prop_assert!(flat[i].abs() <= MASK_INIT_LOGIT);
            for j in 0..abs.len() {
                if abs[i] < abs[j] {
                    prop_assert!(flat[i] < flat[j]);
                }
            }
        }
    }

    #[test]
    fn eap_ig_at_one_step_is_eap(c in case()) {
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        let eap = edge_attribution(&sweep).unwrap();
        for path in IgPath::ALL {
            let ig = edge_attribution_ig(&sweep, 1, path).unwrap();
            for (a, b) in ig.layers.iter().flatten().zip(eap.layers.iter().flatten()) {
                prop_assert!(close(*a as f64, *b as f64, 1e-5, 1e-7), "{}: {} vs {}", path, a, b);
            }
        }
    }

    /// Every gradient EAP-IG averages is the metric's central difference at
    /// that point of the path (pair 0 alone), on either path.
    #[test]
    fn eap_ig_gradients_are_central_differences(c in case(), steps in 1usize..=3, inputs in any::<bool>()) {
        let path = if inputs { IgPath::Inputs } else { IgPath::Activations };
        let one = PatchingSweep::new(&c.model, &c.images).unwrap().subset(&[0]);
        let g = path_gradients(&one, steps, path).unwrap();
        let last = c.model.layers.len() - 1;
        let step = 1e-2f32;
        for l in 0..=last {
            // Nudge layer l's pre-activations, and layer l−1's activations (its input).
            let targets = (0..c.model.layers[l].n_out).map(|v| (l, false, v))
                .chain((0..if l > 0 { c.model.layers[l - 1].n_out } else { 0 }).map(|v| (l - 1, true, v)));
            for at in targets {
                let mut fd_mean = 0.0;
                let mut kinked = false;
                for k in 1..=steps {
                    // Inputs: the whole model at the point; activations: from layer l at its point.
                    let from = if inputs { 0 } else { l };
                    let (clean, corr) = layer_inputs(&c, 0, from);
                    let start = on_line(&clean, &corr, k, steps);
                    let run = |d: f32| {
                        if at.1 && !inputs {
                            // The activations' path starts at layer l's input: nudge it there.
                            let mut x = start.clone();
                            x[at.2] += d;
                            metric_from(&c, 0, from, &x, (usize::MAX, false, 0), 0.0)
                        } else {
                            metric_from(&c, 0, from, &start, at, d)
                        }
                    };
                    let ((up, zu), (down, zd)) = (run(step), run(-step));
                    kinked |= zu.iter().zip(&zd).any(|(a, b)| (*a > 0.0) != (*b > 0.0));
                    fd_mean += (up - down) / (2.0 * step as f64) / steps as f64;
                }
                if c.model.activation == modcirc_mlp::Activation::Relu && kinked {
                    continue;
                }
                let got = if at.1 { g.da[at.0][at.2] } else { g.dz[at.0][at.2] } as f64;
                prop_assert!(close(got, fd_mean, 2e-3, 2e-4), "{} {:?}: {} vs {}", path, at, got, fd_mean);
            }
        }
    }

    /// The path average is a Riemann sum: over all edges, its distance from
    /// the fine grid's (256 points) at 64 points is at most a quarter of
    /// that at 2 (a first-order rule gives about 1/32). Not for ReLU: its
    /// integrand is a step function of the path's position, and a step
    /// between the same points of both grids leaves both sums the same
    /// distance away (a case CI found: 0.0085 at 2 points and at 64).
    #[test]
    fn eap_ig_approaches_the_fine_grid_integral(c in case()) {
        prop_assume!(c.model.activation != Activation::Relu);
        let sweep = PatchingSweep::new(&c.model, &c.images).unwrap();
        for path in IgPath::ALL {
            let fine = edge_attribution_ig(&sweep, 256, path).unwrap();
            let scale: f64 = fine.layers.iter().flatten().map(|v| v.abs() as f64).sum();
            let err = |m: usize| -> f64 {
                let s = edge_attribution_ig(&sweep, m, path).unwrap();
                s.layers.iter().flatten().zip(fine.layers.iter().flatten()).map(|(a, b)| (a - b).abs() as f64).sum()
            };
            let (coarse, finer) = (err(2), err(64));
            prop_assert!(finer <= 0.25 * coarse + 1e-5 * scale + 1e-9, "{}: {} at 64 vs {} at 2", path, finer, coarse);
        }
    }
}

/// The answer metric of pair `b`'s clean run.
fn metric_with_clean(c: &Case, b: usize) -> f64 {
    let (m, im) = (&c.model, &c.images);
    let logits = m.forward(&im.clean[b * im.pixels..(b + 1) * im.pixels], 1);
    logits[im.clean_labels[b] as usize] as f64 - logits[im.corrupted_labels[b] as usize] as f64
}
