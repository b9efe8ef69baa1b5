//! What the binary's integration tests share: the repository root and a
//! run of the built `xtask` on the committed MNIST, quietly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `xtask args… --data-dir fixtures/mnist --quiet`.
#[allow(dead_code)] // not every test binary runs it quietly
pub fn xtask(args: &[&str]) -> Output {
    xtask_on(&root().join("fixtures/mnist"), args)
}

/// `xtask args… --data-dir DATA --quiet`.
#[allow(dead_code)] // not every test binary reads other data
pub fn xtask_on(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .args(["--data-dir", data.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap()
}

/// A 784-20-16-10 ReLU network at `dir/m.safetensors` whose first ten
/// neurons of hidden layer 1 have zero weights and a negative bias: ReLU
/// gives 0 on every image, so patching them changes nothing (dead).
#[allow(dead_code)] // not every test binary needs a model
pub fn write_dead_relu_model(dir: &Path) -> PathBuf {
    use modcirc_mlp::{file, Activation, Mlp};
    let mut s = 11u64;
    let mut u = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut m = Mlp::init(&[784, 20, 16, 10], Activation::Relu, &mut u).unwrap();
    let l = &mut m.layers[0];
    for o in 0..10 {
        l.weight[o * 784..(o + 1) * 784].fill(0.0);
        l.bias[o] = -1.0;
    }
    let path = dir.join("m.safetensors");
    file::save(&path, &m).unwrap();
    path
}
