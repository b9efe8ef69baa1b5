//! Circuit discovery on a network of your own, saved as PyTorch saves one.
//!
//! `cargo run --release -p modcirc-acdc --example own_model`
//!
//! It trains a 784-256-128-64-10 ReLU network on MNIST for a few hundred
//! steps (standing in for a model of yours), writes it the way
//! `safetensors.torch.save_file(net.half().state_dict(), path)` writes an
//! `nn.Sequential(Linear, ReLU, Linear, ReLU, Linear, ReLU, Linear)`: F16
//! tensors named `0.weight`, `0.bias`, `2.weight`, …, and no metadata. Then
//! it loads that file the way you would load yours, and finds the circuit of
//! the paper's "circle" task by activation patching.

use std::path::Path;

use modcirc_acdc::{discover, DiscoveryConfig, TaskImages};
use modcirc_bimt::{Regime, TrainConfig, Trainer};
use modcirc_dataset::{ChecksumPolicy, Mnist, PairedDataset, Task};
use modcirc_mlp::{file, Activation};
use safetensors::tensor::{Dtype, TensorView};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mnist = Mnist::load(root.join("fixtures/mnist"), ChecksumPolicy::Auto)?;

    // 1. A model of your own: here, a briefly trained ReLU network.
    let config = TrainConfig::new(Regime::L1).sizes(&[784, 256, 128, 64, 10]).activation(Activation::Relu).steps(600);
    let trained = Trainer::new(config)?.run(&mnist.train, None, &mut |_| {})?.model;

    // 2. Saved as PyTorch would: F16, nn.Sequential's names (Linear layers at
    //    indices 0, 2, 4, 6), no metadata, so nothing says it is ReLU.
    let mut tensors = Vec::new();
    for (k, layer) in trained.with_identity_output().layers.iter().enumerate() {
        let f16 = |v: &[f32]| v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect::<Vec<u8>>();
        tensors.push((format!("{}.weight", 2 * k), vec![layer.n_out, layer.n_in], f16(&layer.weight)));
        tensors.push((format!("{}.bias", 2 * k), vec![layer.n_out], f16(&layer.bias)));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), TensorView::new(Dtype::F16, shape.clone(), data)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let path = std::env::temp_dir().join(format!("modcirc-own-model-{}.safetensors", std::process::id()));
    std::fs::write(&path, safetensors::tensor::serialize(views, None)?)?;

    // 3. Your file: the activation must be given, since the file does not say.
    let loaded = file::load(&path, Some(Activation::Relu))?;
    std::fs::remove_file(&path)?;
    let model = loaded.model;
    println!(
        "loaded {} ({:?} naming, {} tensors) as {:?} with {}",
        path.display(),
        loaded.naming,
        loaded.dtype,
        model.sizes(),
        model.activation
    );

    // 4. Its circuit for the circle task (clean 0/6/8/9 against corrupted 1/7).
    let pairs = PairedDataset::new(&mnist.test, &Task::circle(), 0)?;
    let images = TaskImages::from_pairs(&mnist.test, &pairs.pairs);
    let config = DiscoveryConfig { bootstraps: 10, ..DiscoveryConfig::default() };
    let report = discover(&model, &images, &config, &mut |_| {})?;
    let s = &report.summary;
    println!("test accuracy {:.4}", model.accuracy(&mnist.test.images, &mnist.test.labels));
    for (h, nodes) in report.selection.nodes.iter().enumerate() {
        println!("hidden layer {} ({} neurons): circuit {:?}", h + 1, model.layers[h].n_out, nodes);
    }
    println!(
        "logit difference {:.4} [{:.4}, {:.4}], sparsity {:.4}, circuit accuracy {:.4}, on {} pairs",
        s.logit_difference.mean,
        s.logit_difference.lo,
        s.logit_difference.hi,
        s.sparsity.mean,
        s.accuracy.mean,
        images.n
    );
    Ok(())
}
