//! What the binary's integration tests share: the repository root and a
//! run of the built `xtask` on the committed MNIST, quietly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `xtask args… --data-dir fixtures/mnist --quiet`.
pub fn xtask(args: &[&str]) -> Output {
    let data = root().join("fixtures/mnist");
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .args(["--data-dir", data.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap()
}
