//! `cargo devtask cuda-check`: prepares a CUDA toolchain from PyPI wheels in a
//! cache folder and builds the `cuda` feature, so that a machine without a
//! CUDA install (or without a GPU) can prove the GPU path compiles.
//!
//! Steps: install the wheels of CUDA `--cuda-version` (nvcc, runtime, crt,
//! nvvm, nvrtc; curand, cublas, cccl) into `<cache>/site-<version>` unless
//! there; add the unversioned `.so`
//! links the linker wants; build a link stub for `libcuda.so.1` (no wheel
//! ships the driver) from the symbols cudarc binds; then
//! `cargo build --release -p xtask -p devtask --features xtask/cuda,devtask/cuda --target-dir target/cuda-<version>`
//! with `CUDA_ROOT`, `NVCC` and `CUDA_COMPUTE_CAP` set, so nothing queries a GPU.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};
use clap::Args;

use crate::repo_root;

/// The wheels, for CUDA `{v}` (the toolkit version, e.g. 13.0).
fn wheels(v: &str) -> Vec<String> {
    let mut w: Vec<String> =
        ["nvidia-cuda-nvcc", "nvidia-cuda-runtime", "nvidia-cuda-crt", "nvidia-nvvm", "nvidia-cuda-nvrtc"]
            .iter()
            .map(|name| format!("{name}=={v}.*"))
            .collect();
    w.extend(["nvidia-curand".into(), "nvidia-cublas>=13,<14".into(), "nvidia-cuda-cccl>=13,<14".into()]);
    w
}

#[derive(Args, Debug)]
pub struct CudaCheckArgs {
    /// Where the wheels and the stub go (default ~/.cache/modcirc-cuda, or MODCIRC_CUDA_CACHE).
    #[arg(long, env = "MODCIRC_CUDA_CACHE")]
    pub cache: Option<PathBuf>,
    /// Compute capability to compile for (90: H100/H200).
    #[arg(long, default_value = "90")]
    pub compute_cap: String,
    /// CUDA toolkit version. PTX runs only on drivers at least as new as the
    /// toolkit that wrote it: 13.0, the first CUDA 13, runs on every CUDA 13
    /// driver (a 13.0 driver rejects PTX from 13.4 as "unsupported toolchain").
    #[arg(long, default_value = "13.0")]
    pub cuda_version: String,
    /// Only print the environment to build with, do not build.
    #[arg(long)]
    pub env_only: bool,
}

pub fn run(args: CudaCheckArgs) -> anyhow::Result<()> {
    let cache = args.cache.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/modcirc-cuda")
    });
    let site = cache.join(format!("site-{}", args.cuda_version));
    let root = site.join("nvidia/cu13");
    if !root.join("bin/nvcc").exists() {
        eprintln!("installing the CUDA wheels into {} (about 1.2 GB)", site.display());
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&site)
            .args(wheels(&args.cuda_version))
            .status()
            .context("running python3 -m pip")?;
        ensure!(status.success(), "pip could not install the CUDA wheels");
    }
    link_unversioned(&root.join("lib"))?;
    let stubs = cache.join("stubs");
    build_libcuda_stub(&stubs)?;
    let env = [
        ("CUDA_ROOT", root.display().to_string()),
        ("CUDA_HOME", root.display().to_string()),
        ("CUDA_PATH", root.display().to_string()),
        ("NVCC", root.join("bin/nvcc").display().to_string()),
        ("CUDA_COMPUTE_CAP", args.compute_cap.clone()),
        ("PATH", format!("{}:{}", root.join("bin").display(), std::env::var("PATH").unwrap_or_default())),
        ("LIBRARY_PATH", format!("{}:{}", root.join("lib").display(), stubs.display())),
    ];
    if args.env_only {
        for (k, v) in &env {
            println!("export {k}={v:?}");
        }
        return Ok(());
    }
    // One target directory per toolkit version: candle's kernel build keeps
    // PTX that is newer than its sources, whatever nvcc wrote it.
    let target = repo_root().join(format!("target/cuda-{}", args.cuda_version));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "xtask",
            "-p",
            "devtask",
            "--features",
            "xtask/cuda,devtask/cuda",
            "--target-dir",
        ])
        .arg(&target)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(repo_root())
        .status()
        .context("running cargo build --features cuda")?;
    ensure!(status.success(), "the cuda feature does not build");
    println!(
        "built {}; at run time put {} and the driver's libcuda.so.1 on LD_LIBRARY_PATH",
        target.join("release/{xtask,devtask}").display(),
        root.join("lib").display()
    );
    Ok(())
}

/// `libfoo.so.13` -> `libfoo.so`, for every versioned library without one.
fn link_unversioned(lib: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(lib).with_context(|| format!("reading {}", lib.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(idx) = name.find(".so.") {
            let plain = lib.join(&name[..idx + 3]);
            if !plain.exists() {
                std::os::unix::fs::symlink(&name, &plain).with_context(|| format!("linking {}", plain.display()))?;
            }
        }
    }
    Ok(())
}

/// A `libcuda.so` with soname `libcuda.so.1` that defines every driver
/// function cudarc declares, so the link succeeds; at run time the real
/// driver library is loaded by its soname instead.
fn build_libcuda_stub(dir: &Path) -> anyhow::Result<()> {
    let out = dir.join("libcuda.so");
    if out.exists() {
        return Ok(());
    }
    let registry = PathBuf::from(std::env::var_os("CARGO_HOME").unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo").into_os_string()
    }))
    .join("registry/src");
    let mut sys = None;
    for index in std::fs::read_dir(&registry).with_context(|| format!("reading {}", registry.display()))? {
        for krate in std::fs::read_dir(index?.path())? {
            let p = krate?.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("cudarc-")) {
                sys = Some(p.join("src/driver/sys/mod.rs"));
            }
        }
    }
    let Some(sys) = sys else { bail!("cudarc's sources are not in {}: run `cargo fetch` first", registry.display()) };
    let text = std::fs::read_to_string(&sys).with_context(|| format!("reading {}", sys.display()))?;
    let mut names: Vec<&str> = text
        .split("pub unsafe fn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .filter(|n| n.starts_with("cu") && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    names.sort_unstable();
    names.dedup();
    std::fs::create_dir_all(dir)?;
    let src = dir.join("libcuda_stub.c");
    let body: String = names.iter().map(|n| format!("int {n}(void) {{ return 999; }}\n")).collect();
    std::fs::write(&src, body)?;
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .context("running gcc for the libcuda stub")?;
    ensure!(status.success(), "gcc could not build the libcuda stub");
    Ok(())
}
