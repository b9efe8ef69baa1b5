//! What a training reports: its progress after each step, its timings (wall
//! and the training thread's CPU time), device memory, and the finished run.

use serde::{Deserialize, Serialize};

use crate::history::HistoryPoint;
use crate::{Layout, Mlp};

/// What the progress callback sees after every step.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The 1-based step just taken.
    pub step: usize,
    /// Steps in the run.
    pub steps: usize,
    /// This step's loss.
    pub loss: f64,
    /// This step's penalty.
    pub penalty: f64,
    /// Accuracy on the batches since the last history point.
    pub running_accuracy: f64,
}

/// Wall time, split into the phases RQ2 compares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainTiming {
    /// Forward, backward and AdamW.
    pub optimizer_s: f64,
    /// Swaps.
    pub relocation_s: f64,
    /// History points (test accuracy, wiring cost).
    pub evaluation_s: f64,
    /// The whole run.
    pub total_s: f64,
    /// Relocations made.
    pub relocations: usize,
    /// Swaps made.
    pub swaps: usize,
    /// CPU time of the training thread over the optimizer steps and swaps
    /// (`optimizer_s + relocation_s` as CPU time, not wall time): what other
    /// jobs and the machine's load leave unchanged, so RQ2-H2 is judged on
    /// it. `None` where the platform has no per-thread clock, for the GPU
    /// trainer, and in sidecars written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
}

/// The calling thread's CPU time in seconds, where the platform has a
/// per-thread clock.
pub(crate) fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid timespec for the call to fill.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9);
        }
    }
    None
}

/// Device memory in use during a GPU training, sampled around every phase
/// of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceMemory {
    /// In use when training started (the context and the uploaded data).
    pub at_start_bytes: u64,
    /// The largest sample.
    pub peak_bytes: u64,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained network.
    pub model: Mlp,
    /// Its neuron coordinates (swaps move neurons).
    pub layout: Layout,
    /// The training curves.
    pub history: Vec<HistoryPoint>,
    /// Wall time per phase.
    pub timing: TrainTiming,
    /// Device memory samples (GPU runs only).
    pub device_memory: Option<DeviceMemory>,
}
