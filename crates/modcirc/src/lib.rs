//! modcirc: circuits in MLPs by activation patching, and the study of
//! whether brain-inspired modular training (BIMT) makes them easier to find.
//!
//! This crate is the front door: it re-exports the workspace's crates under
//! short names and what a first program needs in [`prelude`].
//!
//! Its default features are the core, which builds in about a minute:
//! [`dataset`], [`mlp`], [`acdc`] (discovery, circuits, faithfulness,
//! attribution, ACDC), [`metrics`] and [`store`]. The rest is behind
//! features: `candle` (the patching sweep on a device), `bimt` (training
//! and checkpoints with sidecars), `modularity`, `study` (the study and its
//! engine), `figures` (figures, REPORT.md/.html, exports), `full` (all of
//! them) and `cuda`. `cargo doc -p modcirc --features full --open` shows
//! them all.
//!
//! From a checkpoint file to a circuit and its faithfulness:
//!
//! ```no_run
//! use modcirc::prelude::*;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Any MLP in safetensors: a `cargo xtask train` checkpoint, or PyTorch's
//!     // `nn.Linear` stack (then name its activation: Some(Activation::Relu)).
//!     let ck = load_model(Path::new("artifacts/models/bimt.safetensors"), None)?;
//!     let mnist = Mnist::load("fixtures/mnist", ChecksumPolicy::Auto)?;
//!     // The task's pairs and their images, from one split (STUDY §3).
//!     let (pairs, images) = TaskImages::from_task(&mnist.test, &Task::circle(), 0)?;
//!     // The study's discovery: K = 15 per hidden layer, 50 bootstrap resamples.
//!     let report = discover(&ck.model, &images, &DiscoveryConfig::default(), &mut |_| {})?;
//!     let s = &report.summary;
//!     println!("{} pairs; circuit: {}", pairs.len(), report.selection.rule);
//!     println!("logit difference {:.4} [{:.4}, {:.4}] (lower is better)",
//!         s.logit_difference.mean, s.logit_difference.lo, s.logit_difference.hi);
//!     println!("accuracy {:.3}, the model's {:.3}", s.accuracy.mean, s.model_accuracy.mean);
//!     // The whole-set circuit, judged on all pairs.
//!     let sweep = PatchingSweep::new(&ck.model, &images)?;
//!     let circuit = Circuit::new(&ck.model, report.selection.nodes.clone(), report.config.eps)?;
//!     println!("faithfulness on all pairs {:.3}, sparsity {:.4}",
//!         circuit.faithfulness(&sweep)?, circuit.sparsity());
//!     // The smallest K whose circuit reaches faithfulness 0.8.
//!     if let Some((k, f)) = smallest_k(&sweep, &report.scores, report.config.eps, 0.8)? {
//!         println!("smallest faithful circuit: K = {k} (faithfulness {f:.3})");
//!     }
//!     Ok(())
//! }
//! ```
//!
//! The same program runs as `cargo run --example circuit -- MODEL.safetensors`
//! (`crates/modcirc/examples/circuit.rs`); the test below runs it on a
//! freshly initialised network.
//!
//! ```
//! # use modcirc::prelude::*;
//! # let dir = std::env::temp_dir().join(format!("modcirc-facade-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("m.safetensors");
//! # let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
//! # let model = Mlp::init(&[784, 40, 40, 10], Activation::Silu, &mut || u.next().unwrap())?;
//! # modcirc::mlp::file::save(&path, &model)?;
//! # let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
//! let ck = load_model(&path, Some(Activation::Silu))?;
//! let mnist = Mnist::load(data, ChecksumPolicy::Auto)?;
//! let (_, images) = TaskImages::from_task(&mnist.test, &Task::line(), 0)?;
//! let config = DiscoveryConfig { bootstraps: 5, ..DiscoveryConfig::default() };
//! let report = discover(&ck.model, &images, &config, &mut |_| {})?;
//! let sweep = PatchingSweep::new(&ck.model, &images)?;
//! let circuit = Circuit::new(&ck.model, report.selection.nodes.clone(), config.eps)?;
//! let f = circuit.faithfulness(&sweep)?;
//! assert!(f.is_finite() && report.selection.nodes.iter().all(|n| n.len() == DEFAULT_K));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub use modcirc_acdc as acdc;
#[cfg(feature = "bimt")]
pub use modcirc_bimt as bimt;
pub use modcirc_dataset as dataset;
#[cfg(feature = "study")]
pub use modcirc_engine as engine;
pub use modcirc_metrics as metrics;
pub use modcirc_mlp as mlp;
#[cfg(feature = "modularity")]
pub use modcirc_modularity as modularity;
#[cfg(feature = "figures")]
pub use modcirc_present as present;
#[cfg(feature = "figures")]
pub use modcirc_report as report;
pub use modcirc_store as store;
#[cfg(feature = "study")]
pub use modcirc_study as study;

/// What a first program needs: data, a network, a checkpoint, discovery and
/// its circuit.
pub mod prelude {
    pub use std::path::Path;

    pub use modcirc_acdc::{
        discover, node_curve, smallest_k, Ablation, Circuit, CircuitEval, DiscoveryConfig, DiscoveryReport,
        NeuronScores, PatchingSweep, Selection, SelectionRule, TaskImages, DEFAULT_EPS, DEFAULT_K,
    };
    #[cfg(feature = "bimt")]
    pub use modcirc_bimt::checkpoint::{load as load_checkpoint, Checkpoint};
    #[cfg(feature = "bimt")]
    pub use modcirc_bimt::{Layout, Regime, TrainConfig};
    pub use modcirc_dataset::{ChecksumPolicy, ImageSet, Mnist, PairedDataset, Task};
    #[cfg(feature = "study")]
    pub use modcirc_engine::train::train;
    pub use modcirc_metrics::Summary;
    pub use modcirc_mlp::file::load as load_model;
    pub use modcirc_mlp::{Activation, Mlp};
}
