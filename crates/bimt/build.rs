//! With the `cuda` feature, compiles src/kernels/*.cu to PTX with nvcc
//! (`NVCC`, else `$CUDA_ROOT/bin/nvcc`, else `nvcc` on PATH) for
//! `CUDA_COMPUTE_CAP` (default 90). Without it, does nothing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/kernels/position_costs.cu");
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_ROOT");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let nvcc = std::env::var_os("NVCC").map(PathBuf::from).unwrap_or_else(|| match std::env::var_os("CUDA_ROOT") {
        Some(root) => PathBuf::from(root).join("bin/nvcc"),
        None => PathBuf::from("nvcc"),
    });
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("position_costs.ptx");
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", &format!("-arch=sm_{cap}"), "src/kernels/position_costs.cu", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {} (set NVCC or CUDA_ROOT; see README, 'The GPU path'): {e}", nvcc.display())
        });
    assert!(status.success(), "{} failed to compile src/kernels/position_costs.cu", nvcc.display());
}
