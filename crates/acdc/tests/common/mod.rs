//! What the integration tests share: the committed MNIST, task images, and a
//! plain one-image forward with one hidden activation edited. Each test crate
//! uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use modcirc_acdc::TaskImages;
use modcirc_dataset::{ChecksumPolicy, Mnist, PairedDataset, Task};
use modcirc_mlp::Mlp;

pub fn mnist() -> &'static Mnist {
    static M: OnceLock<Mnist> = OnceLock::new();
    M.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist");
        Mnist::load(dir, ChecksumPolicy::Auto).expect("committed MNIST")
    })
}

/// The first `n` pairs of `task` on the test split.
pub fn images(task: &str, n: usize) -> TaskImages {
    let pairs = PairedDataset::new(&mnist().test, &Task::parse(task).unwrap(), 0).unwrap();
    TaskImages::from_pairs(&mnist().test, &pairs.pairs[..n.min(pairs.len())])
}

/// The logits (output-position order) of one image, with `edit` applied to
/// the post-activations of hidden layer `h` on the way.
pub fn forward_editing(model: &Mlp, image: &[f32], h: usize, edit: impl Fn(&mut [f32])) -> Vec<f32> {
    let mut a = image.to_vec();
    for (l, layer) in model.layers.iter().enumerate() {
        let mut z = vec![0.0; layer.n_out];
        layer.forward_into(&a, 1, &mut z);
        if l + 1 < model.layers.len() {
            model.activation.apply_in_place(&mut z);
        }
        if l == h {
            edit(&mut z);
        }
        a = z;
    }
    a
}
