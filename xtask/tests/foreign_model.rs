//! `cargo xtask discover` on a network saved as PyTorch saves one: F16,
//! `nn.Sequential` names, ReLU, three hidden layers, no sidecar.

mod common;

use common::{root, xtask};

use std::path::Path;

use modcirc_dataset::{ChecksumPolicy, Mnist};
use modcirc_metrics::logit_difference;
use modcirc_mlp::{file, Activation, Mlp};
use safetensors::tensor::{Dtype, TensorView};

/// A seeded 784-256-128-64-10 network (`inputs` wide), written as
/// `save_file(net.half().state_dict(), path)` writes an `nn.Sequential`.
fn write_pytorch_like(path: &Path, inputs: usize) {
    let mut s = 7u64;
    let mut u = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let m = Mlp::init(&[inputs, 256, 128, 64, 10], Activation::Relu, &mut u).unwrap();
    let f16 = |v: &[f32]| v.iter().flat_map(|&x| half::f16::from_f32(x * 3.0).to_le_bytes()).collect::<Vec<u8>>();
    let mut owned = Vec::new();
    for (k, l) in m.layers.iter().enumerate() {
        owned.push((format!("net.{}.weight", 2 * k), vec![l.n_out, l.n_in], f16(&l.weight)));
        owned.push((format!("net.{}.bias", 2 * k), vec![l.n_out], f16(&l.bias)));
    }
    let views: Vec<_> =
        owned.iter().map(|(n, s, d)| (n.clone(), TensorView::new(Dtype::F16, s.clone(), d).unwrap())).collect();
    std::fs::write(path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn discover_on_a_pytorch_model_gives_the_scores_of_plain_forwards() {
    let dir = std::env::temp_dir().join(format!("modcirc-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (model_path, out) = (dir.join("f.safetensors"), dir.join("d.json"));
    write_pytorch_like(&model_path, 784);
    let model = model_path.to_str().unwrap();

    // The file does not say its activation, and the command is not told.
    let o = xtask(&["discover", "--model", model, "--task", "circle"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("does not say which activation") && err.contains("--activation"), "{err}");

    let o = xtask(&[
        "discover",
        "--model",
        model,
        "--activation",
        "relu",
        "--task",
        "circle",
        "--bootstraps",
        "2",
        "--sample",
        "50",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(json["inputs"]["regime"], serde_json::Value::Null);

    // Every hidden neuron's score, from plain batched forwards over all pairs.
    let model = file::load(&model_path, Some(Activation::Relu)).unwrap().model;
    let test = Mnist::load(root().join("fixtures/mnist"), ChecksumPolicy::Auto).unwrap().test;
    let pairs = json["pairs"].as_array().unwrap();
    let idx = |k: &str| pairs.iter().map(|p| p[k].as_u64().unwrap() as usize).collect::<Vec<_>>();
    let (clean, corrupted) =
        (model.activations(&test.gather(&idx("clean")), pairs.len()), test.gather(&idx("corrupted")));
    let corrupted = model.activations(&corrupted, pairs.len());
    let n = pairs.len();
    let scores = json["report"]["scores"]["layers"].as_array().unwrap();
    assert_eq!(scores.len(), 3);
    let mut checked = 0;
    for (h, layer) in scores.iter().enumerate() {
        let width = model.layers[h].n_out;
        for (i, score) in layer.as_array().unwrap().iter().enumerate() {
            let mut a = corrupted.post[h].clone();
            for b in 0..n {
                a[b * width + i] = clean.post[h][b * width + i];
            }
            for (l, layer) in model.layers.iter().enumerate().skip(h + 1) {
                let mut z = vec![0.0; n * layer.n_out];
                layer.forward_into(&a, n, &mut z);
                if l + 1 < model.layers.len() {
                    model.activation.apply_in_place(&mut z);
                }
                a = z;
            }
            let naive = logit_difference(&a, clean.post.last().unwrap(), 10);
            let got = score.as_f64().unwrap();
            assert!((got - naive).abs() <= 1e-5 * naive.abs(), "hidden layer {} neuron {i}: {got} vs {naive}", h + 1);
            checked += 1;
        }
    }
    assert_eq!(checked, 256 + 128 + 64);

    // A model whose input width is not the images' is refused, naming both.
    write_pytorch_like(&model_path, 700);
    let o = xtask(&["discover", "--model", model_path.to_str().unwrap(), "--activation", "relu", "--task", "circle"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("test images have 784 pixels (28x28), the model takes 700") && err.contains("--data-dir"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
