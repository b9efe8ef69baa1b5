//! The planted-truth suite's units (STUDY §11): per regime and seed, a
//! planted MNIST-PVR model trained by interchange intervention (one unit:
//! its checkpoint, and a JSON of its alignment and quality) and each of the
//! settings' methods scored on its three tasks (one unit per method, keyed
//! by the method and its options, so that a new method computes only its
//! own); per regime, the Boolean networks (one JSON). Cached by content key
//! under `planted/`, claimed, counted by the census and sharded like the
//! study's models (a planted model's units go to one shard): they are
//! groups of the workload ([`Workload::planted`]), and
//! [`execute`](crate::execute()) runs them beside the study's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use modcirc_acdc::Method;
use modcirc_bimt::checkpoint;
use modcirc_bimt::iit::{planted_quality, train_planted, Alignment, PlantedConfig, PlantedOutcome, PlantedQuality};
use modcirc_bimt::{Regime, TrainTiming};
use modcirc_dataset::pvr::PvrSource;
use modcirc_mlp::Mlp;
use modcirc_store::listing;
use modcirc_store::{short_hash, FileRecord};
use modcirc_study::planted::{
    boolean_suite, planted_results, score_planted, BooleanModel, PlantedResults, PlantedScores, PlantedSettings,
    TaskScores,
};
use serde::{Deserialize, Serialize};

use crate::execute::{Ctx, Value};
use crate::plan::ModelPoint;
use crate::workload::{Census, Datasets, ModelUnit, Workload};
use crate::EngineError;

/// Bumped when a change to the suite changes what a planted model's unit
/// holds (2: its quality only; each method's scores are units of their own).
pub const PLANTED_REVISION: u32 = 2;

/// Bumped when a change changes what a Boolean unit holds (2: EAP-IG and
/// learned masks; 3: the masks' penalties from 1e-8).
pub const BOOLEAN_REVISION: u32 = 3;

/// Bumped when a change changes what a method's scores on a planted model hold.
pub const SCORES_REVISION: u32 = 1;

/// What a planted model's JSON holds beside its checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlantedRecord {
    /// How it was trained.
    pub config: PlantedConfig,
    /// Where each node sits.
    pub alignment: Alignment,
    /// Training time per phase.
    pub timing: TrainTiming,
    /// Task accuracy, IIA and strictness failure.
    pub quality: PlantedQuality,
    /// Seconds measuring the quality took.
    pub quality_s: f64,
}

/// One method's scores on a planted model's three tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoresRecord {
    /// The method, with its options.
    pub method: Method,
    /// Per task (quadrants 1, 2, 3), the method's score alone.
    pub tasks: Vec<TaskScores>,
    /// Seconds scoring took.
    pub seconds: f64,
}

/// A Boolean suite's JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BooleanRecord {
    /// The regime.
    pub regime: Regime,
    /// Every network.
    pub networks: Vec<BooleanModel>,
}

/// One group of the suite's units, which one shard runs whole: a planted
/// model with each method's scores on it, or a regime's Boolean networks.
#[derive(Debug, Clone)]
pub struct PlantedGroup {
    /// Its place (after the study's models), key, cost and main file.
    pub unit: ModelUnit,
    job: Job,
}

#[derive(Debug, Clone)]
enum Job {
    /// A planted model and each method's scores on it (their files).
    Model {
        regime: Regime,
        seed: u64,
        scores: Vec<(Method, PathBuf)>,
    },
    Boolean {
        regime: Regime,
    },
}

/// The suite's groups under `out`, numbered from `base`: per regime, each
/// seed's model and its scores, then the Boolean networks.
pub(crate) fn groups(
    s: &PlantedSettings,
    out: &Path,
    data: &Datasets,
    base: usize,
) -> Result<Vec<PlantedGroup>, EngineError> {
    let sums: Vec<&str> =
        data.values().next().map_or(Vec::new(), |m| m.checksums.iter().map(|c| c.sha256.as_str()).collect());
    let sums_json = json(&sums)?;
    let revision = PLANTED_REVISION.to_le_bytes();
    let dir = out.join(crate::keys::PLANTED_DIR);
    let mut out = Vec::new();
    for &regime in &s.regimes {
        for &seed in &s.seeds {
            let config = s.config(regime, seed);
            let key = short_hash(&[
                &json(&config)?,
                &sums_json,
                &revision,
                &json(&s.trials)?,
                &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
            ]);
            let stem = format!("{regime}-seed{seed}-{key}");
            let path = dir.join(format!("{stem}.safetensors"));
            let scores = s
                .methods
                .iter()
                .map(|m| {
                    let k = short_hash(&[stem.as_bytes(), &SCORES_REVISION.to_le_bytes(), &json(&(s.pairs, m))?]);
                    Ok((m.clone(), dir.join(format!("{stem}-{}-{k}.json", m.name()))))
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            let cost = crate::shard::cost::planted(config.train.steps, scores.len());
            let unit = unit(base + out.len(), config.train.clone(), key, path, cost);
            out.push(PlantedGroup { unit, job: Job::Model { regime, seed, scores } });
        }
        let key = short_hash(&[
            &json(&(&s.boolean_seeds, s.boolean_steps, regime.name()))?,
            &BOOLEAN_REVISION.to_le_bytes(),
            &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
        ]);
        let path = dir.join(format!("boolean-{regime}-{key}.json"));
        let config = modcirc_bimt::TrainConfig::new(regime).steps(s.boolean_steps);
        let cost = crate::shard::cost::boolean(s.boolean_seeds.len(), s.boolean_steps);
        out.push(PlantedGroup { unit: unit(base + out.len(), config, key, path, cost), job: Job::Boolean { regime } });
    }
    Ok(out)
}

impl PlantedGroup {
    /// How many units the group holds.
    pub fn units(&self) -> usize {
        match &self.job {
            Job::Model { scores, .. } => 1 + scores.len(),
            Job::Boolean { .. } => 1,
        }
    }

    /// Adds what the cache holds of the group's units to `c`.
    pub(crate) fn look(&self, wl: &Workload, c: &mut Census) {
        let path = &self.unit.path;
        c.total += self.units();
        match &self.job {
            Job::Model { scores, .. } => {
                let record = record_path(path);
                c.look(path, &[path, &record], wl.rel(path));
                for (_, p) in scores {
                    c.look(p, &[p], wl.rel(p));
                }
            }
            Job::Boolean { .. } => c.look(path, &[path], wl.rel(path)),
        }
    }
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(v).map_err(EngineError::Serialise)
}

fn unit(index: usize, config: modcirc_bimt::TrainConfig, key: String, path: PathBuf, cost: f64) -> ModelUnit {
    ModelUnit { index, point: ModelPoint { config, data_dir: None }, key, path, cost }
}

/// The JSON beside a planted checkpoint.
pub fn record_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("json")
}

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
