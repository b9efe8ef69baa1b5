//! The BIMT study's model and its training (STUDY §2).
//!
//! * The network is `modcirc_mlp::Mlp` (the study's: 784-100-100-10, SiLU;
//!   any widths and activation train), laid out on 2-D neuron coordinates
//!   ([`Layout`]).
//! * [`Regime`]: Vanilla, L1, L1+Local, L1+Swap, BIMT.
//! * [`ConnectionCost`]: `cc(wf)` and the swap cost, with their gradients.
//! * [`relocate`]: the swap step, fast (`C[neuron, position]`) and naive.
//! * [`Trainer`]: AdamW with the lambda schedule and periodic swaps.
//! * [`checkpoint`]: safetensors files PyTorch loads, plus a JSON sidecar.
//!
//! The CPU training step is hand-fused on the `gemm` crate (the kernels
//! candle itself uses) because candle's per-op overhead doubles the cost of a
//! step at this size; [`candle_ref`] holds the same network in candle, and the
//! tests check the fused gradients against candle's autograd.
//!
//! ```
//! use modcirc_bimt::{Regime, TrainConfig, Trainer};
//! use modcirc_dataset::{ChecksumPolicy, Mnist};
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
//! let mnist = Mnist::load(dir, ChecksumPolicy::Auto)?; // dir: e.g. "fixtures/mnist"
//! let config = TrainConfig::new(Regime::Bimt).steps(300).seed(1);
//! let outcome = Trainer::new(config)?.run(&mnist.train, Some(&mnist.test), &mut |_| {})?;
//! println!("test accuracy {:.3}", outcome.model.accuracy(&mnist.test.images, &mnist.test.labels));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod adamw;
mod batches;
#[cfg(feature = "candle")]
pub mod candle_ref;
#[cfg(feature = "candle")]
pub mod candle_train;
pub mod checkpoint;
mod config;
mod cost;
mod error;
mod history;
pub mod iit;
mod layout;
mod model;
mod outcome;
#[cfg(feature = "candle")]
pub mod position_costs;
mod regime;
pub mod relocate;
mod train;

pub use cost::{wiring_length, ConnectionCost, L0, SWAP_WEIGHT_FACTOR};
pub use error::BimtError;
pub use layout::Layout;
pub use model::{init_model, STUDY_ACTIVATION, STUDY_SIZES};

pub use batches::BatchSampler;
pub use history::HistoryPoint;
pub(crate) use modcirc_mlp::{linalg, Mlp};
pub use regime::Regime;
pub use relocate::{Relocation, Swap};
pub use train::{
    DeviceMemory, Patches, Progress, StepStats, TrainConfig, TrainOutcome, TrainTiming, Trainer, STUDY_STEPS,
    TRAINER_REVISION,
};
