//! What every unit's computation shares: how to execute ([`Options`]),
//! who is told ([`Observer`], [`Value`], [`Source`]), and the cache's
//! lookup and claim around each unit (`Ctx`), below the executors of the
//! study's units ([`crate::execute`]) and the planted suite's
//! ([`crate::planted`]).

use std::path::Path;

use modcirc_bimt::checkpoint::TrainMeta;
use modcirc_dataset::Task;
use modcirc_store::claim::{self, Came, Claim, Holder};
use modcirc_store::listing::{self, Lookup};
use modcirc_study::beyond::BeyondResult;
use modcirc_study::controls::ControlsResult;
use modcirc_study::discovery::DiscoverOutput;
use modcirc_study::structure::StructureResult;

use crate::plan::SettingPoint;
use crate::workload::{ModelUnit, Workload};
use crate::EngineError;

/// How a unit came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Computed by this process now.
    Computed,
    /// Read from the cache.
    Cached,
    /// Computed by another process while this one waited on its claim.
    ByOther,
}

/// A unit's result, as the observer is told of it.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A trained model's sidecar.
    Trained(&'a TrainMeta),
    /// A discovery, its task and setting.
    Discovered(&'a Task, &'a SettingPoint, &'a DiscoverOutput),
    /// STUDY §8 on a discovery.
    Beyond(&'a BeyondResult),
    /// STUDY §10 on a discovery.
    Controls(&'a ControlsResult),
    /// STUDY §9 on the model.
    Structure(&'a StructureResult),
    /// A planted model's quality (STUDY §11).
    PlantedModel(&'a modcirc_bimt::iit::PlantedQuality),
    /// A method's scores on a planted model's tasks (STUDY §11).
    PlantedScores(&'a modcirc_acdc::Method, &'a [modcirc_study::planted::TaskScores]),
    /// A regime's Boolean networks (STUDY §11).
    Boolean(&'a [modcirc_study::boolean::BooleanModel]),
}

impl Value<'_> {
    /// The result in one line, as a progress log shows it: the unit's kind,
    /// model `m` and its headline numbers.
    pub fn summary(&self, m: &ModelUnit) -> String {
        let c = &m.point.config;
        let who = format!("{:>8} seed {}", c.regime.label(), c.seed);
        match *self {
            Value::Trained(meta) => {
                format!("[train]     {who}: test accuracy {:.4}, {:.1} s", meta.test_accuracy, meta.timing.total_s)
            }
            Value::Discovered(task, point, d) => {
                let s = &d.report.summary;
                format!(
                    "[discover]  {who} {:>6} K {}: logit difference {:.3}, sparsity {:.4}",
                    task.name, point.k, s.logit_difference.mean, s.sparsity.mean
                )
            }
            Value::Beyond(b) => format!(
                "[beyond]    {who} {:>6}: circuit faithfulness {:.3}, EAP at that size {:.3}, CPR {:.3}, CMD {:.3}",
                b.task, b.circuit_faithfulness, b.eap_same_size_faithfulness, b.curve.cpr, b.curve.cmd
            ),
            Value::Controls(r) => format!("[controls]  {who} {:>6}: {}", r.task, r.summary()),
            Value::PlantedModel(q) => format!(
                "[planted]   {who}: task accuracy {:.3}, IIA {:.3}, strictness failure {:.3}",
                q.task_accuracy, q.iia, q.strictness_failure
            ),
            Value::PlantedScores(method, tasks) => {
                let score = tasks.first().and_then(|t| t.method(method.name()));
                let auroc = score.map_or("none".into(), |s| format!("{:.3}", s.node_auroc));
                format!("[planted]   {who} {method}: node AUROC on V1 {auroc}")
            }
            Value::Boolean(b) => {
                let exact: Vec<_> = b.iter().filter(|n| n.exact).collect();
                let valid: usize = exact.iter().map(|n| n.valid).sum();
                format!(
                    "[boolean]   {:>8}: {} of {} networks exact, {:.1} valid circuits each",
                    c.regime.label(),
                    exact.len(),
                    b.len(),
                    valid as f64 / exact.len().max(1) as f64
                )
            }
            Value::Structure(s) => format!(
                "[structure] {who}: wiring length {:.3}, Q {:.3} (every weight) / {:.3} (eps edges)",
                s.wiring_length, s.all_weights.q, s.eps_edges.q
            ),
        }
    }
}

/// What execution tells as it goes: progress, results, waits, warnings.
/// Every method has a silent default.
pub trait Observer: Sync {
    /// A unit of model `m` starts (`label` says which), with `len` steps
    /// (training steps or bootstrap resamples; 1 where it has none).
    fn unit_started(&self, _m: &ModelUnit, _label: &str, _len: u64) {}
    /// The running unit of model `m` has done `done` of its steps.
    fn progress(&self, _m: &ModelUnit, _done: u64, _note: Option<String>) {}
    /// A unit of model `m` is done.
    fn unit_done(&self, _m: &ModelUnit, _value: Value<'_>, _source: Source) {}
    /// Every unit of model `m` is done.
    fn model_finished(&self, _m: &ModelUnit) {}
    /// Another live process holds `path`'s claim: this one waits.
    fn waiting(&self, _path: &Path, _holder: &Holder) {}
    /// Something the user should know (a stale cached file recomputed).
    fn warn(&self, _msg: &str) {}
}

/// An observer that says nothing.
pub struct Silent;
impl Observer for Silent {}

/// How to execute.
#[derive(Debug, Clone)]
pub struct Options {
    /// Models at once, each on its own thread.
    pub jobs: usize,
    /// Recompute units even when the cache holds them.
    pub force: bool,
    /// What a claim says its holder is doing.
    pub what: String,
}

pub(crate) struct Ctx<'a> {
    pub(crate) wl: &'a Workload,
    pub(crate) options: &'a Options,
    pub(crate) observer: &'a dyn Observer,
    pub(crate) concurrent: bool,
}

impl Ctx<'_> {
    /// A unit's files from the cache, when they match their listing.
    pub(crate) fn lookup(&self, main: &Path, files: &[&Path], warn: bool) -> Option<Vec<Vec<u8>>> {
        if self.options.force {
            return None;
        }
        match listing::lookup(&listing::listing_path(main), files) {
            Lookup::Hit(bytes) => Some(bytes),
            Lookup::Miss => None,
            Lookup::Stale(why) => {
                if warn {
                    self.observer.warn(&format!("{why}; recomputing it"));
                }
                None
            }
        }
    }

    /// A cached JSON unit, parsed, and its bytes.
    pub(crate) fn fetch_json<T: serde::de::DeserializeOwned>(&self, path: &Path, warn: bool) -> Option<(T, Vec<u8>)> {
        if self.options.force {
            return None;
        }
        listing::fetch_json(path).unwrap_or_else(|why| {
            if warn {
                self.observer.warn(&format!("{why}; recomputing it"));
            }
            None
        })
    }

    /// A unit from the cache (`first`), or computed as its only writer:
    /// under its claim, waiting while another live process holds it. A
    /// holder whose claim was taken over takes the taker's result when
    /// there is one.
    pub(crate) fn claimed<T>(
        &self,
        main: &Path,
        first: Option<T>,
        fetch: impl Fn() -> Option<T>,
        compute: impl FnOnce(&Claim) -> Result<T, EngineError>,
    ) -> Result<(T, Source), EngineError> {
        if let Some(v) = first {
            return Ok((v, Source::Cached));
        }
        let (v, came) = claim::exclusively(main, &self.options.what, &fetch, compute, |holder| {
            self.observer.waiting(main, holder)
        })?;
        let source = match came {
            Came::Found => Source::Cached,
            Came::Computed => Source::Computed,
            Came::Waited => Source::ByOther,
            Came::Lost => {
                self.observer
                    .warn(&format!("{}: lost its claim; the unit was completed by another process", main.display()));
                Source::ByOther
            }
        };
        Ok((v, source))
    }
}
