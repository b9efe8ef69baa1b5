//! Which device a computation runs on: `cpu` or `cuda[:N]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MlpError;

/// A device as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(into = "String", try_from = "String")]
pub enum DeviceSpec {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA device `N`.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = MlpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MlpError::Device(format!("device {s:?}: expected cpu, cuda or cuda:N"));
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(DeviceSpec::Cuda).ok_or_else(bad),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = MlpError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl DeviceSpec {
    /// Opens the candle device. Asking for CUDA in a build without the
    /// `cuda` feature, or where no driver or GPU answers, is an error that
    /// says which.
    #[cfg(feature = "candle")]
    pub fn open(self) -> Result<candle_core::Device, MlpError> {
        match self {
            DeviceSpec::Cpu => Ok(candle_core::Device::Cpu),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(n) => candle_core::Device::new_cuda(n).map_err(|e| {
                MlpError::Device(format!(
                    "cuda:{n}: no usable CUDA device (is the NVIDIA driver installed and a GPU visible?): {e}"
                ))
            }),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(n) => Err(MlpError::Device(format!(
                "cuda:{n}: this binary was built without CUDA support; build with the cargo feature `cuda` (README, 'The GPU path')"
            ))),
        }
    }
}

/// Device memory in use (total − free), where the device reports it (CUDA).
#[cfg(feature = "candle")]
pub fn device_memory_in_use(device: &candle_core::Device) -> Option<u64> {
    match device {
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(d) => {
            d.cuda_stream().context().mem_get_info().ok().map(|(free, total)| (total - free) as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap().to_string(), "cuda:3");
        for bad in ["gpu", "cuda:", "cuda:x", "CPU"] {
            assert!(bad.parse::<DeviceSpec>().unwrap_err().to_string().contains("expected cpu, cuda or cuda:N"));
        }
    }

    #[test]
    #[cfg(all(feature = "candle", not(feature = "cuda")))]
    fn cuda_without_the_feature_says_so() {
        let e = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
        assert!(e.contains("built without CUDA support"), "{e}");
    }
}
