//! Controls (STUDY §10) on hand-built networks whose circuit is known: one
//! block of neurons carries the task, or two identical copies of it do.

mod common;

use modcirc_acdc::{
    alternatives, any_digit_images, faithful_alternatives, random_circuits, Ablation, PatchingSweep, Pool, TaskImages,
};
use modcirc_mlp::{Activation, Mlp};

const WIDTH: usize = 12;
const BLOCK: usize = 4;

/// A 4-12-12-3 ReLU network, every weight and input a dyadic fraction
/// so that the copies' scores tie exactly whatever the order of the sums. Each of `copies` blocks of `BLOCK` neurons in
/// both hidden layers carries pixel 0 minus pixel 1 to the logits (class 0
/// up, class 1 down), split evenly between the copies; the other neurons
/// see the same difference weakly and write it weakly, so they are live
/// but matter little.
fn network(copies: usize) -> Mlp {
    let mut m = Mlp::init(&[4, WIDTH, WIDTH, 3], Activation::Relu, &mut || 0.5).unwrap();
    let share = 1.0 / copies as f32;
    let in_block = |j: usize| j < copies * BLOCK;
    let copy_of = |j: usize| j / BLOCK;
    let [l1, l2, out] = &mut m.layers[..] else { unreachable!() };
    for j in 0..WIDTH {
        let w = if in_block(j) { [2.0, -2.0, 0.0, 0.0] } else { [0.125, -0.125, 0.25, 0.25] };
        l1.weight[j * 4..(j + 1) * 4].copy_from_slice(&w);
        l1.bias[j] = 0.0;
        for i in 0..WIDTH {
            let same_path = if in_block(j) { in_block(i) && copy_of(i) == copy_of(j) } else { i == j };
            l2.weight[j * WIDTH + i] = match (same_path, in_block(j)) {
                (true, true) => 1.0,
                (true, false) => 0.25,
                _ => 0.0,
            };
        }
        l2.bias[j] = 0.0;
    }
    for c in 0..3 {
        for i in 0..WIDTH {
            let w = if in_block(i) { share } else { 0.0625 };
            out.weight[c * WIDTH + i] = match c {
                0 => w,
                1 => -w,
                _ => 0.0,
            };
        }
        out.bias[c] = if c == 1 { 4.0 } else { 0.0 };
    }
    m
}

/// Pairs of "images": clean has pixel 0 on (class 0), corrupted pixel 1 on
/// (class 1), with a little variation and the same background pixels.
fn pairs(n: usize) -> TaskImages {
    let mut clean = Vec::new();
    let mut corrupted = Vec::new();
    for b in 0..n {
        let v = 1.0 + (b % 5) as f32 * 0.125;
        let bg = 0.25 + (b % 3) as f32 * 0.125;
        clean.extend_from_slice(&[v, 0.0, bg, bg]);
        corrupted.extend_from_slice(&[0.0, v, bg, bg]);
    }
    TaskImages { n, pixels: 4, clean, corrupted, clean_labels: vec![0; n], corrupted_labels: vec![1; n] }
}

#[test]
fn one_block_beats_every_random_circuit_and_has_no_faithful_alternative() {
    let model = network(1);
    let sweep = PatchingSweep::new(&model, &pairs(40)).unwrap();
    let scores = sweep.scores();
    let sel = scores.select(BLOCK).unwrap();
    assert_eq!(sel.nodes, vec![(0..BLOCK).collect::<Vec<_>>(); 2], "the block is found");
    assert!(sel.dead.iter().all(Vec::is_empty), "every neuron is live");
    for pool in [Pool::Live, Pool::All] {
        let r = random_circuits(&sweep, &sel, 0.01, Ablation::Zero, pool, 200, 0).unwrap();
        let f = r.faithfulness.expect("defined");
        assert!(f.circuit > 0.95, "{f:?}");
        assert_eq!((f.percentile, r.logit_difference.percentile), (100.0, 100.0), "{pool:?}: {r:?}");
        assert_eq!(f.p_value, 1.0 / 201.0);
        assert!(f.random.hi < f.circuit);
    }
    let alt = alternatives(&sweep, &scores, &sel, 0.01, Ablation::Zero, 5).unwrap();
    assert_eq!(alt.len(), 2, "12 live neurons per layer hold the circuit and two more of 4");
    assert_eq!(faithful_alternatives(&alt, 0.8), 0, "{alt:?}");
    let all: Vec<usize> = alt.iter().flat_map(|a| a.nodes[0].clone()).collect();
    assert!(all.iter().all(|&j| j >= BLOCK), "disjoint from the circuit: {all:?}");
}

#[test]
fn two_copies_of_the_block_give_an_equally_faithful_disjoint_alternative() {
    let model = network(2);
    let sweep = PatchingSweep::new(&model, &pairs(40)).unwrap();
    let scores = sweep.scores();
    let sel = scores.select(BLOCK).unwrap();
    let copy = |c: usize| (c * BLOCK..(c + 1) * BLOCK).collect::<Vec<_>>();
    assert_eq!(sel.nodes, vec![copy(0); 2], "ties go to the lower index: the first copy");
    let alt = alternatives(&sweep, &scores, &sel, 0.01, Ablation::Zero, 5).unwrap();
    assert_eq!(alt[0].nodes, vec![copy(1); 2], "the first alternative is the other copy");
    let r = random_circuits(&sweep, &sel, 0.01, Ablation::Zero, Pool::Live, 50, 1).unwrap();
    let first = r.faithfulness.unwrap().circuit;
    let second = alt[0].metrics.faithfulness.unwrap();
    assert!((first - second).abs() < 0.01, "{first} vs {second}");
    assert!(first > 0.3, "each copy carries half the answer: {first}");
}

#[test]
fn any_digit_pairs_differ_in_the_models_prediction_and_are_seeded() {
    let mnist = common::mnist();
    let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
    let model = Mlp::init(&[784, 32, 10], Activation::Relu, &mut || u.next().unwrap()).unwrap();
    let images = any_digit_images(&model, &mnist.test, 300, 7).unwrap();
    assert_eq!(images.n, 300);
    let pred = |x: &[f32]| -> Vec<u8> {
        model.forward(x, x.len() / 784).chunks(10).map(|r| modcirc_mlp::argmax(r) as u8).collect()
    };
    assert_eq!(pred(&images.clean), images.clean_labels);
    assert_eq!(pred(&images.corrupted), images.corrupted_labels);
    assert!(images.clean_labels.iter().zip(&images.corrupted_labels).all(|(a, b)| a != b));
    assert_eq!(any_digit_images(&model, &mnist.test, 300, 7).unwrap().clean, images.clean);
    assert_ne!(any_digit_images(&model, &mnist.test, 300, 8).unwrap().clean, images.clean);
}
