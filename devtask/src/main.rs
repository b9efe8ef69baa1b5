//! `cargo devtask`: the developer checks, kept apart from the product's
//! command line (`cargo xtask`) as rust-analyzer keeps its xtask apart
//! from its product: a run's files, REPORT.html in a headless browser, the
//! CUDA build, and the GPU path against the CPU.

mod check;
mod check_html;
mod cuda;
mod gpu_check;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use modcirc_dataset::{ChecksumPolicy, Mnist, DATA_DIR_ENV, DEFAULT_DATA_DIR};

#[derive(Parser)]
#[command(name = "cargo devtask", about = "modcirc's developer checks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that a `reproduce` output directory is complete (used by CI).
    CheckArtifacts(check::CheckArgs),
    /// Open a run's REPORT.html in headless Chromium and check what it renders (used by CI).
    CheckHtml(check_html::CheckHtmlArgs),
    /// Install a CUDA toolchain from PyPI into a cache and build the `cuda` feature.
    CudaCheck(cuda::CudaCheckArgs),
    /// On a GPU machine: check the CUDA kernel and GPU training against the CPU.
    GpuCheck(gpu_check::GpuCheckArgs),
}

/// The repository root: where this binary was built (one level above it),
/// or, for a binary copied to another machine, the current directory.
pub fn repo_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    if built.join("Cargo.toml").exists() {
        built.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    }
}

/// `--data-dir`: the IDX files a check trains and discovers on.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDir {
    /// Directory of the four IDX files (raw or gzip'd); default: the committed MNIST.
    #[arg(long, env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
}

impl DataDir {
    pub fn load(&self) -> anyhow::Result<Mnist> {
        let dir = self.data_dir.clone().unwrap_or_else(|| repo_root().join(DEFAULT_DATA_DIR));
        Ok(Mnist::load(&dir, ChecksumPolicy::Auto)?)
    }
}

fn main() {
    let result = match Cli::parse().command {
        Command::CheckArtifacts(args) => check::run(args),
        Command::CheckHtml(args) => check_html::run(args),
        Command::CudaCheck(args) => cuda::run(args),
        Command::GpuCheck(args) => gpu_check::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
