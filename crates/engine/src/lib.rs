//! The engine that runs modcirc's unit graph, for the study
//! (`reproduce`) and for every sweep alike.
//!
//! The unit graph: a **training** per model; after it, per discovery
//! setting, a **discovery** per task (and, in the study's plan, **STUDY
//! §8** on it for the seed-0 models), then **STUDY §9** on the model with
//! that setting's discoveries. Each unit is named by a content key
//! ([`keys`]), cached with a SHA-256 listing, and computed under a claim by
//! one process at a time (`modcirc-store`).
//!
//! * [`plan`]: what to run ([`Plan::study`], or a sweep file parsed by
//!   [`parse`]).
//! * [`workload`]: a plan laid out in an output directory: keys, files,
//!   the units after each training, shards ([`shard`]) and the
//!   [`Census`](workload::Census) of the cache.
//! * [`execute`](mod@execute): look up, claim, compute, record and tell an
//!   [`Observer`]; [`jobs`]: models at once.
//! * [`collect`]: a sweep's results from its executed units;
//!   [`study`]: the study's `Results` from its.
//! * [`train`](mod@train): one model trained, with its sidecar, as a
//!   library call.
//!
//! A new kind of unit is added in [`workload::UnitKind`], its key in
//! [`keys`] and its computation in [`execute`](mod@execute): both commands
//! get it.

#![deny(missing_docs)]

pub mod collect;
mod context;
pub mod describe;
mod error;
pub mod execute;
pub mod jobs;
pub mod keys;
pub mod launch;
pub mod parse;
pub mod plan;
pub mod planted;
pub mod planted_run;
pub mod shard;
pub mod study;
pub mod train;
pub mod unit;
pub mod workload;

pub use error::{list_some, EngineError};
pub use execute::{execute, Executed, ModelOutcome, Observer, Options, Source, Value};
pub use plan::Plan;
pub use shard::Shard;
pub use workload::{Datasets, ModelUnit, Selection, Workload};
