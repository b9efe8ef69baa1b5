//! What the workload's groups are made of, below the modules that lay
//! them out and run them: a model with where its checkpoint goes
//! ([`ModelUnit`], also the identity of each planted group), the data sets,
//! and the [`Census`] of what the cache holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use modcirc_dataset::Mnist;
use modcirc_store::claim::{self, ClaimState};
use modcirc_store::listing::{self, Lookup};

use crate::plan::ModelPoint;

/// The data set of each data directory a plan names (`None`: the default).
pub type Datasets = BTreeMap<Option<PathBuf>, Mnist>;

/// A model of the plan, with where its checkpoint goes.
#[derive(Debug, Clone)]
pub struct ModelUnit {
    /// Its place in the plan's models.
    pub index: usize,
    /// How it is trained, and on what.
    pub point: ModelPoint,
    /// Its content key.
    pub key: String,
    /// Its checkpoint.
    pub path: PathBuf,
    /// Estimated seconds of the model and every unit that needs it.
    pub cost: f64,
}

/// What the cache holds of a plan's units.
#[derive(Debug, Default, Clone)]
pub struct Census {
    /// Units in all.
    pub total: usize,
    /// Done: listed, and matching their listing.
    pub done: usize,
    /// Being computed: the unit and its holder.
    pub running: Vec<String>,
    /// Claimed by a holder that is gone: to be taken over.
    pub abandoned: Vec<String>,
    /// Neither done nor claimed.
    pub missing: BTreeSet<String>,
    /// Models not trained yet.
    pub missing_models: BTreeSet<String>,
    /// Analyses whose model is not trained yet.
    pub waiting: usize,
}

impl Census {
    pub(crate) fn look(&mut self, path: &Path, files: &[&Path], name: String) {
        match listing::lookup(&listing::listing_path(path), files) {
            Lookup::Hit(_) => self.done += 1,
            _ => match claim::state(path) {
                ClaimState::Held(h) => self.running.push(format!("{name} ({h})")),
                ClaimState::Abandoned(h) => self.abandoned.push(format!("{name} (was {h})")),
                ClaimState::None => {
                    self.missing.insert(name);
                }
            },
        }
    }
}
