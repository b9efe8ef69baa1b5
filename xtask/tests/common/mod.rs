//! What the binary's integration tests share: the repository root and a
//! run of the built `xtask` on the committed MNIST, quietly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `xtask args… --data-dir fixtures/mnist --quiet`.
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
