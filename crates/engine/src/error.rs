//! The engine's errors: a plan's, a unit's (with what it was doing), the
//! cache's.

use std::path::PathBuf;

/// What can go wrong planning or executing units.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A plan file that does not parse or names values out of range.
    #[error("{}: {message}", path.display())]
    Plan {
        /// The plan file.
        path: PathBuf,
        /// What is wrong, naming the axis.
        message: String,
    },
    /// A value a job script cannot hold.
    #[error("{what}: {message}")]
    Launch {
        /// The value, and what it is.
        what: String,
        /// Why no script can hold it.
        message: String,
    },
    /// A plan above the unit limit, not confirmed.
    #[error("the plan has {units} units ({models} models), above the limit of {limit}: check its axes, or confirm it")]
    TooLarge {
        /// Its units.
        units: usize,
        /// Its models.
        models: usize,
        /// The limit.
        limit: usize,
    },
    /// Units asked for from the cache alone that are not there.
    #[error("{count} of {total} units are not in {} yet: {names}", out.display())]
    Missing {
        /// How many are missing.
        count: usize,
        /// How many the plan (or shard) has.
        total: usize,
        /// The output directory.
        out: PathBuf,
        /// The first of them, then how many more.
        names: String,
    },
    /// Data that do not fit a model of the plan.
    #[error("train.sizes {sizes}: {message}")]
    Misfit {
        /// The widths.
        sizes: String,
        /// Why.
        message: String,
    },
    /// One unit's work failed: which unit, and why.
    #[error("{context}: {source}")]
    Unit {
        /// The unit.
        context: String,
        /// Why.
        #[source]
        source: Box<EngineError>,
    },
    /// A job that never ran because an earlier one failed.
    #[error("a job did not run after an earlier one failed")]
    JobNotRun,
    /// A value that does not serialise.
    #[error("serialising: {0}")]
    Serialise(#[source] serde_json::Error),
    /// Reading a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Storage.
    #[error(transparent)]
    Store(#[from] modcirc_store::StoreError),
    /// An analysis.
    #[error(transparent)]
    Study(#[from] modcirc_study::StudyError),
    /// Training or a checkpoint.
    #[error(transparent)]
    Bimt(#[from] modcirc_bimt::BimtError),
    /// Circuit discovery.
    #[error(transparent)]
    Acdc(#[from] modcirc_acdc::AcdcError),
    /// The data set.
    #[error(transparent)]
    Dataset(#[from] modcirc_dataset::DatasetError),
}

impl EngineError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EngineError::Io { path: path.into(), source }
    }

    /// This error, said to be of `context` (a unit, a stage).
    pub fn within(self, context: impl Into<String>) -> Self {
        EngineError::Unit { context: context.into(), source: Box::new(self) }
    }

    /// The innermost error under the units' contexts.
    pub fn root(&self) -> &EngineError {
        match self {
            EngineError::Unit { source, .. } => source.root(),
            e => e,
        }
    }
}

/// Names for an error that lists what is missing: at most `shown` of
/// them, then how many more.
pub fn list_some(names: &std::collections::BTreeSet<String>, shown: usize) -> String {
    let mut s: Vec<String> = names.iter().take(shown).cloned().collect();
    if names.len() > shown {
        s.push(format!("and {} more", names.len() - shown));
    }
    s.join(", ")
}
