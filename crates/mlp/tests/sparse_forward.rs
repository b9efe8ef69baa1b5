//! The forward pass that skips zero inputs, against its slow twin: plain
//! loops in f64 over the same network, layer by layer.
//!
//! The bound: each pre-activation is a sum of `k = n_in + 1` terms (the
//! bias and one product per input) in f32, in some order, so it is within
//! `γ_k · (|b| + Σ |w·a|)` of the exact sum, `γ_k = k·u / (1 − k·u)`,
//! `u = 2⁻²⁴` (Higham, *Accuracy and Stability of Numerical Algorithms*,
//! §3.1); a fused multiply-add only rounds less. The twin takes each layer's
//! inputs from the fast path's previous layer, so the bound holds at every
//! layer without compounding, and the activations must then be the same
//! bits.

use modcirc_mlp::{Activation, Mlp, SPARSE_DENSITY, SPARSE_MIN_ROWS};
use proptest::prelude::*;

fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` rows of `width` inputs, row `r` with a share `densities[r % len]`
/// of nonzero entries (each in ±(0.05..2)), the rest exact zeros (some of
/// them −0.0).
fn inputs(n: usize, width: usize, densities: &[f64], seed: u64) -> Vec<f32> {
    let mut u = uniform(seed);
    let mut x = Vec::with_capacity(n * width);
    for r in 0..n {
        let density = densities[r % densities.len()];
        for _ in 0..width {
            let v = if u() < density {
                let m = 0.05 + 1.95 * u();
                if u() < 0.5 {
                    -m
                } else {
                    m
                }
            } else if u() < 0.1 {
                -0.0
            } else {
                0.0
            };
            x.push(v as f32);
        }
    }
    x
}

/// `γ_k` for sums of `k` f32 terms.
fn gamma(k: usize) -> f64 {
    let ku = k as f64 * f64::from(f32::EPSILON) / 2.0;
    ku / (1.0 - ku)
}

/// Every layer of the fast path's activations against the twin, within the
/// bound; the logits of `forward` are the last layer's, the same bits.
fn check(m: &Mlp, x: &[f32], n: usize) -> Result<(), TestCaseError> {
    let acts = m.activations(x, n);
    let last = m.layers.len() - 1;
    for (l, layer) in m.layers.iter().enumerate() {
        let input = if l == 0 { x } else { &acts.post[l - 1] };
        let g = gamma(layer.n_in + 1);
        for r in 0..n {
            let a = &input[r * layer.n_in..(r + 1) * layer.n_in];
            for o in 0..layer.n_out {
                let w = &layer.weight[o * layer.n_in..(o + 1) * layer.n_in];
                let b = f64::from(layer.bias[o]);
                let exact = b + w.iter().zip(a).map(|(&w, &a)| f64::from(w) * f64::from(a)).sum::<f64>();
                let size = b.abs() + w.iter().zip(a).map(|(&w, &a)| (f64::from(w) * f64::from(a)).abs()).sum::<f64>();
                let got = acts.pre[l][r * layer.n_out + o];
                prop_assert!(
                    (f64::from(got) - exact).abs() <= g * size,
                    "layer {l}, row {r}, output {o}: {got} vs exact {exact} (bound {})",
                    g * size
                );
                let want = if l == last { got } else { m.activation.apply(got) };
                prop_assert_eq!(acts.post[l][r * layer.n_out + o].to_bits(), want.to_bits());
            }
        }
    }
    // `forward` runs blocks of `ROW_BLOCK` rows, on any thread, and the
    // same bits on one; its logits are those of `activations` (the whole
    // batch as one block) up to the rounding of the dense products after
    // the first layer, whose order `gemm` picks by the block's size.
    let logits = m.forward(x, n);
    let serial = m.forward_serial(x, n);
    prop_assert!(logits.iter().zip(&serial).all(|(a, b)| a.to_bits() == b.to_bits()));
    let whole = m.positions_to_classes(acts.post.last().unwrap());
    for (a, b) in logits.iter().zip(&whole) {
        prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "forward {a} vs activations {b}");
    }
    Ok(())
}

fn network(sizes: &[usize], activation: Activation, seed: u64) -> Mlp {
    Mlp::init(sizes, activation, &mut uniform(seed)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Random networks of 1-3 hidden layers (widths across the 8- and
    /// 64-wide tiles), every activation, batches below, at and above
    /// `SPARSE_MIN_ROWS` and `ROW_BLOCK`, rows of many densities in one batch.
    #[test]
    fn the_fast_forward_is_within_the_bound_of_the_twin(
        n_in in 1usize..300,
        hidden in prop::collection::vec(1usize..140, 1..=3),
        classes in 1usize..12,
        act in 0usize..7,
        n in prop::sample::select(vec![1usize, 5, SPARSE_MIN_ROWS - 1, SPARSE_MIN_ROWS, 40, 129, 260]),
        densities in prop::collection::vec(
            prop::sample::select(vec![0.0, 0.02, 0.1, 0.2, SPARSE_DENSITY - 0.01, SPARSE_DENSITY + 0.01, 0.6, 1.0]),
            1..4,
        ),
        seed in any::<u64>(),
    ) {
        let mut sizes = vec![n_in];
        sizes.extend(&hidden);
        sizes.push(classes);
        let m = network(&sizes, Activation::ALL[act], seed);
        check(&m, &inputs(n, n_in, &densities, seed ^ 1), n)?;
    }
}

/// All-zero and all-nonzero batches, and the two mixed in one batch, on the
/// study's shape.
#[test]
fn all_zero_and_all_nonzero_inputs() {
    let m = network(&[784, 100, 100, 10], Activation::Silu, 7);
    for densities in [&[0.0][..], &[1.0], &[0.0, 1.0], &[1.0, 0.15, 0.0]] {
        for n in [1, SPARSE_MIN_ROWS, 300] {
            check(&m, &inputs(n, 784, densities, 3), n).unwrap();
        }
    }
    // An all-zero row's first layer is its biases, whichever path.
    for n in [1, 20] {
        let acts = m.activations(&vec![0.0; 784 * n], n);
        assert!(acts.pre[0].chunks_exact(100).all(|row| row == m.layers[0].bias.as_slice()));
    }
}

/// MNIST's own test images (about 19% nonzero pixels) through the study's
/// shape, and each image's logits the same bits in any batch large enough
/// for the sparse path, whatever the other rows: a row's result depends on
/// the row alone.
#[test]
fn mnist_images_and_rows_independent_of_their_batch() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist/t10k-images-idx3-ubyte.gz");
    let idx = modcirc_dataset::idx::read_idx(&path, 3).unwrap();
    let x: Vec<f32> = idx.data[..300 * 784].iter().map(|&b| b as f32 / 255.0).collect();
    for act in [Activation::Silu, Activation::Relu] {
        let m = network(&[784, 100, 100, 10], act, 11);
        check(&m, &x, 300).unwrap();
        let all = m.forward(&x, 300);
        // Rows 100..140 alone, and shifted into another block.
        let part = m.forward(&x[100 * 784..140 * 784], 40);
        assert_eq!(&all[1000..1400], part.as_slice());
        let mut shuffled = x[200 * 784..300 * 784].to_vec();
        shuffled.extend_from_slice(&x[..200 * 784]);
        let moved = m.forward(&shuffled, 300);
        assert_eq!(&moved[..1000], &all[2000..]);
        assert_eq!(&moved[1000..], &all[..2000]);
    }
}

/// The logits do not depend on the number of threads.
#[test]
fn the_same_bits_on_one_and_two_threads() {
    let m = network(&[784, 100, 100, 10], Activation::Silu, 5);
    let x = inputs(500, 784, &[0.19, 0.05, 1.0], 9);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| m.forward(&x, 500));
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(|| m.forward(&x, 500));
    assert_eq!(one, two);
}

/// The full study's 25 checkpoints (`$MODCIRC_BENCH_MODELS`, by default
/// `artifacts/full/models`; run `cargo xtask reproduce --profile full`
/// first): every training and test image gets the same prediction on the
/// fast path as on the dense product, so the accuracies each checkpoint
/// recorded when it was trained (its `.json`) are unchanged.
/// `cargo test --release -p modcirc-mlp --test sparse_forward -- --ignored`
#[test]
#[ignore = "needs the full study's checkpoints"]
fn the_full_studys_predictions_are_unchanged() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("MODCIRC_BENCH_MODELS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("artifacts/full/models"));
    let mnist =
        modcirc_dataset::Mnist::load(root.join("fixtures/mnist"), modcirc_dataset::ChecksumPolicy::Auto).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
            continue;
        }
        let m = modcirc_mlp::file::load(&path, None).unwrap().model;
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("json")).unwrap()).unwrap();
        for (split, key) in [(&mnist.train, "train_accuracy"), (&mnist.test, "test_accuracy")] {
            let (fast, dense) = (predictions(&m, &split.images, false), predictions(&m, &split.images, true));
            let differ = fast.iter().zip(&dense).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{}: {differ} predictions differ", path.display());
            let hits = fast.iter().zip(&split.labels).filter(|(p, &l)| **p == l as usize).count();
            let accuracy = hits as f64 / split.labels.len() as f64;
            assert_eq!(accuracy, meta[key].as_f64().unwrap(), "{}: {key}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 0, "no checkpoints in {}", dir.display());
    eprintln!("{checked} checkpoints: the same predictions on every training and test image");
}

/// Each image's predicted class, by `Mlp::forward` or by dense products.
fn predictions(m: &Mlp, images: &[f32], dense: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for x in images.chunks(1000 * m.n_inputs()) {
        let n = x.len() / m.n_inputs();
        let logits = if dense {
            let mut a = x.to_vec();
            for (l, layer) in m.layers.iter().enumerate() {
                let mut z = vec![0.0; n * layer.n_out];
                layer.forward_into(&a, n, &mut z);
                if l + 1 < m.layers.len() {
                    m.activation.apply_in_place(&mut z);
                }
                a = z;
            }
            m.positions_to_classes(&a)
        } else {
            m.forward(x, n)
        };
        out.extend(logits.chunks_exact(m.n_classes()).map(modcirc_mlp::argmax));
    }
    out
}
