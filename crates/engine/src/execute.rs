//! Executing a workload's units: for each model (at once across models,
//! and beside the planted suite's groups), its training, then every unit
//! that follows it, each looked up in the
//! cache, or claimed, computed, recorded and reported to an [`Observer`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use modcirc_bimt::checkpoint::{self, Checkpoint, TrainMeta};
use modcirc_dataset::Task;
use modcirc_store::listing;
use modcirc_store::FileRecord;
use modcirc_study::beyond::{analyse, BeyondResult};
use modcirc_study::controls::{controls, ControlsResult};
use modcirc_study::discovery::{discover_checkpoint, DiscoverOutput};
use modcirc_study::structure::{analyse_structure, StructureResult};

use crate::context::Ctx;
pub use crate::context::{Observer, Options, Silent, Source, Value};
use crate::jobs::run_jobs;
use crate::planted::PlantedGroup;
use crate::planted_run::{self, PlantedDone, PlantedRun};
use crate::train::{save_unit, train};
use crate::workload::{ModelUnit, Selection, Unit, UnitKind, Workload};
use crate::EngineError;

/// A discovery as executed.
#[derive(Debug, Clone)]
pub struct DiscoveryUnit {
    /// The plan's setting (index).
    pub setting: usize,
    /// The task.
    pub task: Task,
    /// The discovery.
    pub output: DiscoverOutput,
    /// Its file.
    pub path: PathBuf,
    /// How it came to be.
    pub source: Source,
}

/// One model's units as executed.
#[derive(Debug, Clone)]
pub struct ModelOutcome {
    /// The model's place in the workload.
    pub index: usize,
    /// The checkpoint as its file holds it.
    pub checkpoint: Checkpoint,
    /// The sidecar.
    pub meta: TrainMeta,
    /// SHA-256 of the checkpoint's bytes.
    pub sha256: String,
    /// Size of the checkpoint.
    pub file_bytes: u64,
    /// How the checkpoint came to be.
    pub trained: Source,
    /// Every discovery.
    pub discoveries: Vec<DiscoveryUnit>,
    /// STUDY §8 (the study's seed-0 models).
    pub beyond: Vec<BeyondResult>,
    /// STUDY §10 on each discovery (where the plan asks), with its setting
    /// and file.
    pub controls: Vec<(usize, PathBuf, ControlsResult)>,
    /// STUDY §9 per setting (index), with its file.
    pub structure: Vec<(usize, PathBuf, StructureResult)>,
    /// Every file of the model's units, as read or written.
    pub files: Vec<FileRecord>,
    /// (stage, seconds) of the units computed now.
    pub seconds: Vec<(&'static str, f64)>,
}

/// What executing a selection gives.
#[derive(Debug)]
pub struct Executed {
    /// Each selected model's outcome, in the selection's order.
    pub models: Vec<ModelOutcome>,
    /// The planted suite's tables, files and times, of the selected groups
    /// (the whole suite when all are selected); `None` when the plan has no
    /// suite.
    pub planted: Option<PlantedRun>,
}

/// Executes the groups of `selection` (each model with every unit after
/// it, each planted group), `options.jobs` groups at once.
pub fn execute(
    wl: &Workload,
    selection: &Selection<'_>,
    options: &Options,
    observer: &dyn Observer,
) -> Result<Executed, EngineError> {
    enum Group<'a> {
        Model(&'a ModelUnit),
        Planted(&'a PlantedGroup),
    }
    enum Done {
        Model(Box<ModelOutcome>),
        Planted(PlantedDone),
    }
    let models = selection.models.iter().map(|m| Group::Model(m));
    let groups: Vec<Group> = models.chain(selection.planted.iter().map(|g| Group::Planted(g))).collect();
    let ctx = Ctx { wl, options, observer, concurrent: options.jobs > 1 && groups.len() > 1 };
    let done = run_jobs(&groups, options.jobs, |g| match g {
        Group::Model(m) => Ok(Done::Model(Box::new(ctx.model(m)?))),
        Group::Planted(g) => {
            let settings = wl.plan.planted.as_ref().ok_or(EngineError::JobNotRun)?;
            let r = planted_run::run_group(&ctx, settings, g)?;
            observer.model_finished(&g.unit);
            Ok(Done::Planted(r))
        }
    })?;
    let (mut models, mut planted) = (Vec::new(), Vec::new());
    for d in done {
        match d {
            Done::Model(m) => models.push(*m),
            Done::Planted(p) => planted.push(p),
        }
    }
    let planted = wl.plan.planted.as_ref().map(|_| planted_run::results(planted));
    Ok(Executed { models, planted })
}

impl Ctx<'_> {
    /// One model: its training, then each unit after it.
    fn model(&self, m: &ModelUnit) -> Result<ModelOutcome, EngineError> {
        let mut out = self.train_unit(m)?;
        for unit in self.wl.analyses(m, &out.sha256) {
            self.analysis(m, &unit, &mut out)?;
        }
        self.observer.model_finished(m);
        Ok(out)
    }

    fn train_unit(&self, m: &ModelUnit) -> Result<ModelOutcome, EngineError> {
        let (wl, obs, c) = (self.wl, self.observer, &m.point.config);
        let first = self.fetch_model(&m.path, true);
        let fetch = || self.fetch_model(&m.path, false);
        let ((ck, saved), source) = self.claimed(&m.path, first, fetch, |claim| {
            obs.unit_started(m, "training", c.steps as u64);
            let mut on_step = |p: &modcirc_bimt::Progress| {
                if p.step.is_multiple_of(100) || p.step == p.steps {
                    let note = format!("loss {:.4} cost {:.3} acc {:.3}", p.loss, p.penalty, p.running_accuracy);
                    obs.progress(m, p.step as u64, Some(note));
                }
            };
            let t = train(c.clone(), wl.plan.device, wl.mnist(m), &mut on_step, self.concurrent)?;
            save_unit(&m.path, &t, claim)
        })?;
        let sidecar = checkpoint::sidecar_path(&m.path);
        let files =
            vec![FileRecord::of(&wl.out, &m.path, &saved.weights), FileRecord::of(&wl.out, &sidecar, &saved.sidecar)];
        let mut seconds = Vec::new();
        if source == Source::Computed {
            seconds.push(("train", saved.meta.timing.total_s));
        }
        obs.unit_done(m, Value::Trained(&saved.meta), source);
        Ok(ModelOutcome {
            index: m.index,
            checkpoint: ck,
            sha256: modcirc_store::sha256_hex(&saved.weights),
            file_bytes: saved.weights.len() as u64,
            meta: saved.meta,
            trained: source,
            discoveries: Vec::new(),
            beyond: Vec::new(),
            controls: Vec::new(),
            structure: Vec::new(),
            files,
            seconds,
        })
    }

    /// A cached checkpoint with its sidecar, both matching their listing;
    /// `None` when there is none or it cannot be trusted (then it is
    /// trained again, with a warning if `warn`).
    fn fetch_model(&self, path: &Path, warn: bool) -> Option<(Checkpoint, checkpoint::Saved)> {
        let sidecar = checkpoint::sidecar_path(path);
        let mut files = self.lookup(path, &[path, &sidecar], warn)?;
        let (sidecar, weights) = (files.pop()?, files.pop()?);
        match checkpoint::load_bytes(&weights, path, None) {
            Ok(ck) => {
                let meta = ck.meta.clone()?;
                Some((ck, checkpoint::Saved { weights, sidecar, meta }))
            }
            Err(e) => {
                if warn {
                    self.observer.warn(&format!("{e}; recomputing it"));
                }
                None
            }
        }
    }

    /// A JSON unit from the cache or computed, stored and timed under
    /// `stage`; its record joins `log`.
    fn json_unit<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        path: &Path,
        stage: &'static str,
        log: Log<'_>,
        compute: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<(T, Source), EngineError> {
        let first = self.fetch_json::<T>(path, true);
        let mut seconds = None;
        let ((v, bytes), source) = self.claimed(
            path,
            first,
            || self.fetch_json(path, false),
            |claim| {
                let t = Instant::now();
                let v = compute()?;
                seconds = Some(t.elapsed().as_secs_f64());
                claim.ensure_held()?;
                let bytes = listing::store_json(path, &v)?;
                Ok((v, bytes))
            },
        )?;
        if let (Some(s), Source::Computed) = (seconds, source) {
            log.seconds.push((stage, s));
        }
        log.files.push(FileRecord::of(&self.wl.out, path, &bytes));
        Ok((v, source))
    }

    fn analysis(&self, m: &ModelUnit, unit: &Unit, out: &mut ModelOutcome) -> Result<(), EngineError> {
        let (wl, obs) = (self.wl, self.observer);
        let c = &m.point.config;
        let who = format!("{} seed {}", c.regime, c.seed);
        let log = Log { files: &mut out.files, seconds: &mut out.seconds };
        let (ck, sha, mnist) = (&out.checkpoint, &out.sha256, wl.mnist(m));
        match unit.kind {
            UnitKind::Discover { setting, task } => {
                let (point, task) = (&wl.plan.settings[setting], &wl.plan.tasks[task]);
                let model_rel = PathBuf::from(wl.rel(&m.path));
                let (d, source) = self.json_unit(&unit.path, "discover", log, || {
                    let label = format!("discovering the {task} circuit");
                    obs.unit_started(m, &label, point.settings.config.bootstraps as u64);
                    let mut on = |done: usize| obs.progress(m, done as u64, None);
                    discover_checkpoint(mnist, ck, &model_rel, sha, task, &point.settings, &mut on)
                        .map_err(|e| EngineError::from(e).within(format!("discovering the {task} circuit of {who}")))
                })?;
                obs.unit_done(m, Value::Discovered(task, point, &d), source);
                let task = task.clone();
                out.discoveries.push(DiscoveryUnit { setting, task, output: d, path: unit.path.clone(), source });
            }
            UnitKind::Beyond { setting, task } => {
                let task = &wl.plan.tasks[task];
                let d = out.discoveries.iter().rev().find(|d| d.setting == setting && d.task == *task);
                let d = &d.ok_or(EngineError::JobNotRun)?.output;
                let settings = wl.plan.beyond.as_ref().ok_or(EngineError::JobNotRun)?;
                let (b, source) = self.json_unit(&unit.path, "beyond", log, || {
                    obs.unit_started(m, &format!("STUDY §8 and §12 on {task}"), 1);
                    analyse(mnist, &ck.model, (Some(c.regime), Some(c.seed)), d, settings).map_err(|e| {
                        EngineError::from(e).within(format!("attribution and faithfulness of {who} on {task}"))
                    })
                })?;
                obs.unit_done(m, Value::Beyond(&b), source);
                out.beyond.push(b);
            }
            UnitKind::Controls { setting, task } => {
                let task = &wl.plan.tasks[task];
                let d = out.discoveries.iter().rev().find(|d| d.setting == setting && d.task == *task);
                let d = &d.ok_or(EngineError::JobNotRun)?.output;
                let settings = wl.plan.controls.as_ref().ok_or(EngineError::JobNotRun)?;
                let (r, source) = self.json_unit(&unit.path, "controls", log, || {
                    obs.unit_started(m, &format!("controls on {task}"), 1);
                    controls(mnist, &ck.model, (Some(c.regime), Some(c.seed)), d, settings)
                        .map_err(|e| EngineError::from(e).within(format!("the controls of {who} on {task}")))
                })?;
                obs.unit_done(m, Value::Controls(&r), source);
                out.controls.push((setting, unit.path.clone(), r));
            }
            UnitKind::Structure { setting } => {
                let point = &wl.plan.settings[setting];
                let discs: Vec<&DiscoverOutput> =
                    out.discoveries.iter().filter(|d| d.setting == setting).map(|d| &d.output).collect();
                let (r, source) = self.json_unit(&unit.path, "structure", log, || {
                    obs.unit_started(m, "STUDY §9", 1);
                    let split = point.settings.split.of(mnist);
                    analyse_structure(ck, split, &discs, point.settings.config.seed)
                        .map_err(|e| EngineError::from(e).within(format!("STUDY §9 on {who}")))
                })?;
                obs.unit_done(m, Value::Structure(&r), source);
                out.structure.push((setting, unit.path.clone(), r));
            }
        }
        Ok(())
    }
}

/// Where a unit's file record and time go.
struct Log<'a> {
    files: &'a mut Vec<FileRecord>,
    seconds: &'a mut Vec<(&'static str, f64)>,
}
