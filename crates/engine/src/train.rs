//! Training as a library call: one model trained on a data set and
//! measured, with the sidecar the CLI writes, so that a library user's
//! checkpoint passes `discover`'s provenance check.
//!
//! ```no_run
//! use modcirc_bimt::{checkpoint, Regime, TrainConfig};
//! use modcirc_dataset::{ChecksumPolicy, Mnist};
//! use modcirc_engine::train::train;
//! let mnist = Mnist::load("fixtures/mnist", ChecksumPolicy::Auto)?;
//! let config = TrainConfig::new(Regime::Bimt).steps(2_000);
//! let t = train(config, modcirc_mlp::DeviceSpec::Cpu, &mnist, &mut |_| {}, false)?;
//! checkpoint::save("bimt.safetensors".as_ref(), &t.model, &t.layout, &t.meta)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

#[cfg(feature = "cuda")]
use modcirc_bimt::candle_train::CandleTrainer;
use modcirc_bimt::checkpoint::{self, Checkpoint, TrainMeta, SIDECAR_SCHEMA};
use modcirc_bimt::{BimtError, Layout, Progress, TrainConfig, Trainer};
use modcirc_dataset::Mnist;
use modcirc_mlp::{DeviceSpec, Mlp};
use modcirc_store::claim::Claim;
use modcirc_store::listing;

use crate::EngineError;

/// A trained model, its layout and its sidecar.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The network.
    pub model: Mlp,
    /// Its neuron coordinates.
    pub layout: Layout,
    /// What its sidecar records: hyper-parameters, accuracy, timings,
    /// memory, data checksums, training curves.
    pub meta: TrainMeta,
}

/// The heap a training uses: the process's live heap when it starts (the
/// data set) and the peak of its own thread above that, so that concurrent
/// trainings each measure their own. Counts under a
/// `modcirc_metrics::CountingAlloc` global allocator only.
struct HeapWindow {
    at_start: u64,
    thread: modcirc_metrics::ThreadHeapWindow,
}

impl HeapWindow {
    fn start() -> HeapWindow {
        modcirc_metrics::reset_peak_rss();
        HeapWindow { at_start: modcirc_metrics::live_heap_bytes(), thread: modcirc_metrics::ThreadHeapWindow::start() }
    }
    fn peak_heap(&self) -> u64 {
        self.at_start + self.thread.peak_bytes()
    }
}

/// Trains one model on `data` on `device` (the fused CPU trainer, or
/// candle on a GPU), reporting each step to `on_step`, and measures it.
/// With `concurrent` (other trainings run beside it) the process's peak RSS
/// says nothing of this one and is not recorded; its heap peak is its
/// thread's.
pub fn train(
    config: TrainConfig,
    device: DeviceSpec,
    data: &Mnist,
    on_step: &mut dyn FnMut(&Progress),
    concurrent: bool,
) -> Result<Trained, EngineError> {
    let regime = config.regime;
    let context = || format!("training {regime} on {device}");
    if device == DeviceSpec::Cpu {
        // One step first, unmeasured: a thread's first training allocates
        // buffers it keeps (about 2 MiB of gemm workspace), which would
        // otherwise be charged to whichever model its thread trains first.
        let warm = config.clone().steps(1).history_every(1);
        Trainer::new(warm)
            .and_then(|t| t.run(&data.train, None, &mut |_| {}))
            .map_err(|e| EngineError::from(e).within(context()))?;
    }
    let window = HeapWindow::start();
    let outcome = match device {
        DeviceSpec::Cpu => Trainer::new(config.clone()).and_then(|t| t.run(&data.train, Some(&data.test), on_step)),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(_) => device
            .open()
            .map_err(BimtError::from)
            .and_then(|d| CandleTrainer::new(config.clone(), d))
            .and_then(|t| t.run(&data.train, Some(&data.test), on_step)),
        #[cfg(not(feature = "cuda"))]
        DeviceSpec::Cuda(_) => Err(BimtError::Device(format!(
            "{device}: this build has no GPU trainer (build with the `cuda` feature: README, \"The GPU path\")"
        ))),
    }
    .map_err(|e| EngineError::from(e).within(context()))?;
    let peak_heap = window.peak_heap();
    let meta = TrainMeta {
        schema: SIDECAR_SCHEMA,
        crate_version: env!("CARGO_PKG_VERSION").into(),
        train_accuracy: outcome.model.accuracy(&data.train.images, &data.train.labels),
        test_accuracy: outcome.model.accuracy(&data.test.images, &data.test.labels),
        config,
        timing: outcome.timing,
        peak_heap_bytes: Some(peak_heap),
        heap_at_start_bytes: Some(window.at_start),
        peak_rss_bytes: if concurrent { None } else { modcirc_metrics::peak_rss_bytes() },
        device: device.to_string(),
        device_memory: outcome.device_memory,
        data_dir: data.dir.display().to_string(),
        data_checksums: data.checksums.clone(),
        history: outcome.history,
        weights_sha256: None,
    };
    Ok(Trained { model: outcome.model, layout: outcome.layout, meta })
}

/// Saves a trained model at `path` as a cached unit (its checkpoint, its
/// sidecar and their listing), if `claim` is still held; returns the model
/// as the file holds it (output permutation folded in, so that a resumed
/// run computes the same bits) and what was saved.
pub fn save_unit(path: &Path, t: &Trained, claim: &Claim) -> Result<(Checkpoint, checkpoint::Saved), EngineError> {
    claim.ensure_held()?;
    let saved = checkpoint::save(path, &t.model, &t.layout, &t.meta)?;
    let sidecar = checkpoint::sidecar_path(path);
    listing::record(&listing::listing_path(path), &[(path, &saved.weights), (&sidecar, &saved.sidecar)])?;
    let (model, layout) = checkpoint::from_bytes(&saved.weights, path, None)?;
    Ok((Checkpoint { model, layout, meta: Some(saved.meta.clone()) }, saved))
}
