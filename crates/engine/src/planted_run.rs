//! Running the planted-truth suite's groups (STUDY §11): a planted model
//! trained (or read from the cache), then each method's scores on it; a
//! regime's Boolean networks. Each unit is looked up, claimed, computed and
//! recorded like the study's (the engine's unit context).

use std::path::{Path, PathBuf};
use std::time::Instant;

use modcirc_acdc::Method;
use modcirc_bimt::checkpoint;
use modcirc_bimt::iit::{planted_quality, train_planted, Alignment, PlantedOutcome};
use modcirc_bimt::Regime;
use modcirc_dataset::pvr::PvrSource;
use modcirc_mlp::Mlp;
use modcirc_store::{listing, FileRecord};
use modcirc_study::planted::{boolean_suite, score_planted, PlantedScores, PlantedSettings, TaskScores};
use modcirc_study::planted_results::{planted_results, PlantedResults};

use crate::context::{Ctx, Value};
use crate::planted::{record_path, BooleanRecord, Job, PlantedGroup, PlantedRecord, ScoresRecord};
use crate::unit::ModelUnit;
use crate::EngineError;

/// What executing the suite gives: the results and every file, as read or written.
#[derive(Debug)]
pub struct PlantedRun {
    /// The tables and findings.
    pub results: PlantedResults,
    /// Every unit's files.
    pub files: Vec<FileRecord>,
    /// (kind, seconds) of the units computed now.
    pub seconds: Vec<(&'static str, f64)>,
}

/// The suite's tables and findings from its executed groups.
pub(crate) fn results(done: Vec<PlantedDone>) -> PlantedRun {
    let (mut models, mut boolean, mut files, mut seconds) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in done {
        files.extend(d.files);
        seconds.extend(d.seconds);
        match d.value {
            Done::Model(r) => models.push(*r),
            Done::Boolean(b) => boolean.extend(b.networks),
        }
    }
    let spent = seconds.iter().map(|(_, s)| s).sum();
    let results = planted_results(models, boolean, spent);
    PlantedRun { results, files, seconds }
}

enum Done {
    Model(Box<PlantedScores>),
    Boolean(BooleanRecord),
}

/// An executed group of the suite.
pub struct PlantedDone {
    value: Done,
    files: Vec<FileRecord>,
    seconds: Vec<(&'static str, f64)>,
}

/// Runs (or reads from the cache) a group's units.
pub(crate) fn run_group(ctx: &Ctx<'_>, s: &PlantedSettings, g: &PlantedGroup) -> Result<PlantedDone, EngineError> {
    let (m, path) = (&g.unit, g.unit.path.as_path());
    match &g.job {
        Job::Model { regime, seed, scores } => run_model(ctx, s, m, (*regime, *seed), path, scores),
        Job::Boolean { regime } => run_boolean(ctx, s, m, *regime, path),
    }
}

/// A planted model's unit, then each method's scores on it.
fn run_model(
    ctx: &Ctx<'_>,
    s: &PlantedSettings,
    m: &ModelUnit,
    (regime, seed): (Regime, u64),
    path: &Path,
    scores: &[(Method, PathBuf)],
) -> Result<PlantedDone, EngineError> {
    let (wl, obs) = (ctx.wl, ctx.observer);
    let mnist = wl.data.values().next().ok_or(EngineError::JobNotRun)?;
    let who = format!("the planted {regime} seed {seed} model");
    let record = record_path(path);
    let files = [path, record.as_path()];
    let fetch = |warn: bool| -> Option<(PlantedRecord, Vec<Vec<u8>>)> {
        let bytes = ctx.lookup(path, &files, warn)?;
        let r: PlantedRecord = serde_json::from_slice(&bytes[1]).ok()?;
        Some((r, bytes))
    };
    let ((r, bytes), source) = ctx.claimed(
        path,
        fetch(true),
        || fetch(false),
        |claim| {
            let config = s.config(regime, seed);
            obs.unit_started(m, "planted: interchange intervention training", config.train.steps as u64);
            let train = PvrSource::new(&mnist.train)?;
            let test = PvrSource::new(&mnist.test)?;
            let mut on_step = |p: &modcirc_bimt::Progress| {
                if p.step.is_multiple_of(100) || p.step == p.steps {
                    let note = format!("planted: loss {:.4} acc {:.3}", p.loss, p.running_accuracy);
                    obs.progress(m, p.step as u64, Some(note));
                }
            };
            let PlantedOutcome { model, layout, alignment, timing } = train_planted(&config, &train, &mut on_step)
                .map_err(|e| EngineError::from(e).within(format!("training {who}")))?;
            let t = Instant::now();
            let quality = planted_quality(&model, &alignment, &test, s.trials, seed)?;
            let r = PlantedRecord { config, alignment, timing, quality, quality_s: t.elapsed().as_secs_f64() };
            let weights = checkpoint::to_bytes(&model, &layout)?;
            let json = serde_json::to_vec_pretty(&r).map_err(EngineError::Serialise)?;
            claim.ensure_held()?;
            modcirc_store::atomic::write_atomic(path, &weights)?;
            modcirc_store::atomic::write_atomic(&record, &json)?;
            listing::record(&listing::listing_path(path), &[(path, &weights), (record.as_path(), &json)])?;
            Ok((r, vec![weights, json]))
        },
    )?;
    obs.unit_done(m, Value::PlantedModel(&r.quality), source);
    let mut seconds = Vec::new();
    if matches!(source, crate::Source::Computed) {
        seconds.extend([("planted training", r.timing.total_s), ("planted quality", r.quality_s)]);
    }
    let mut files = vec![FileRecord::of(&wl.out, path, &bytes[0]), FileRecord::of(&wl.out, &record, &bytes[1])];
    let scored = method_scores(ctx, s, m, (seed, &who), (path, &bytes[0], &r.alignment), scores)?;
    files.extend(scored.files);
    seconds.extend(scored.seconds);
    let scores = PlantedScores { regime, seed, quality: r.quality, tasks: scored.tasks };
    Ok(PlantedDone { value: Done::Model(Box::new(scores)), files, seconds })
}

/// Each method's scores on a planted model, merged per task.
struct Scored {
    tasks: Vec<TaskScores>,
    files: Vec<FileRecord>,
    seconds: Vec<(&'static str, f64)>,
}

/// Each of `scores`' methods on the planted model in `bytes` (its unit at
/// `path`, its nodes where `alignment` says), from the cache or computed;
/// the model and the test split are read once, when a method is not cached.
fn method_scores(
    ctx: &Ctx<'_>,
    s: &PlantedSettings,
    m: &ModelUnit,
    (seed, who): (u64, &str),
    (path, bytes, alignment): (&Path, &[u8], &Alignment),
    scores: &[(Method, PathBuf)],
) -> Result<Scored, EngineError> {
    let (wl, obs) = (ctx.wl, ctx.observer);
    let mnist = wl.data.values().next().ok_or(EngineError::JobNotRun)?;
    let mut loaded: Option<(Mlp, PvrSource)> = None;
    let mut out = Scored { tasks: Vec::new(), files: Vec::new(), seconds: Vec::new() };
    for (method, at) in scores {
        let fetch = |warn: bool| -> Option<(ScoresRecord, Vec<u8>)> {
            ctx.fetch_json::<ScoresRecord>(at, warn).filter(|(r, _)| r.method == *method)
        };
        let ((sr, sr_bytes), sr_source) = ctx.claimed(
            at,
            fetch(true),
            || fetch(false),
            |claim| {
                obs.unit_started(m, &format!("planted: scoring {method}"), 1);
                if loaded.is_none() {
                    let (model, _) = checkpoint::from_bytes(bytes, path, None)?;
                    loaded = Some((model, PvrSource::new(&mnist.test)?));
                }
                let (model, test) = loaded.as_ref().expect("loaded just above");
                let t = Instant::now();
                let tasks = score_planted(model, alignment, test, s.pairs, seed, std::slice::from_ref(method))
                    .map_err(|e| EngineError::from(e).within(format!("scoring {who} by {method}")))?;
                let sr = ScoresRecord { method: method.clone(), tasks, seconds: t.elapsed().as_secs_f64() };
                claim.ensure_held()?;
                let bytes = listing::store_json(at, &sr)?;
                Ok((sr, bytes))
            },
        )?;
        obs.unit_done(m, Value::PlantedScores(method, &sr.tasks), sr_source);
        if matches!(sr_source, crate::Source::Computed) {
            out.seconds.push(("planted scoring", sr.seconds));
        }
        out.files.push(FileRecord::of(&wl.out, at, &sr_bytes));
        if out.tasks.is_empty() {
            out.tasks = sr.tasks.clone();
            out.tasks.iter_mut().for_each(|t| t.methods.clear());
        }
        if sr.tasks.len() != out.tasks.len() {
            let why = format!("{}: {} tasks, not {}", at.display(), sr.tasks.len(), out.tasks.len());
            return Err(modcirc_study::StudyError::Invalid(why).into());
        }
        for (task, one) in out.tasks.iter_mut().zip(sr.tasks) {
            task.methods.extend(one.methods);
        }
    }
    Ok(out)
}

/// A regime's Boolean networks.
fn run_boolean(
    ctx: &Ctx<'_>,
    s: &PlantedSettings,
    m: &ModelUnit,
    regime: Regime,
    path: &Path,
) -> Result<PlantedDone, EngineError> {
    let obs = ctx.observer;
    let mut boolean_s = None;
    let fetch = |warn: bool| -> Option<(BooleanRecord, Vec<u8>)> { ctx.fetch_json(path, warn) };
    let ((r, bytes), source) = ctx.claimed(
        path,
        fetch(true),
        || fetch(false),
        |claim| {
            obs.unit_started(m, "planted: Boolean networks", 1);
            let t = Instant::now();
            let networks = boolean_suite(s, regime)
                .map_err(|e| EngineError::from(e).within(format!("the Boolean networks of {regime}")))?;
            let r = BooleanRecord { regime, networks };
            boolean_s = Some(t.elapsed().as_secs_f64());
            claim.ensure_held()?;
            let bytes = listing::store_json(path, &r)?;
            Ok((r, bytes))
        },
    )?;
    obs.unit_done(m, Value::Boolean(&r.networks), source);
    let files = vec![FileRecord::of(&ctx.wl.out, path, &bytes)];
    let seconds = boolean_s.filter(|_| matches!(source, crate::Source::Computed));
    Ok(PlantedDone {
        value: Done::Boolean(r),
        files,
        seconds: seconds.map(|s| ("Boolean networks", s)).into_iter().collect(),
    })
}
