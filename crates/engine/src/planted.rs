//! The planted-truth suite's units (STUDY §11): per regime and seed, a
//! planted MNIST-PVR model trained by interchange intervention and scored
//! (one unit: its checkpoint, and a JSON of its alignment, quality and
//! every method's scores); per regime, the Boolean networks (one JSON).
//! Cached by content key under `planted/`, claimed, and sharded like the
//! study's models.

use std::path::{Path, PathBuf};
use std::time::Instant;

use modcirc_bimt::checkpoint;
use modcirc_bimt::iit::{planted_quality, train_planted, Alignment, PlantedConfig, PlantedOutcome};
use modcirc_bimt::{Regime, TrainTiming};
use modcirc_dataset::pvr::PvrSource;
use modcirc_store::listing::{self, Lookup};
use modcirc_store::{short_hash, FileRecord};
use modcirc_study::planted::{
    boolean_suite, planted_results, score_planted, score_planted_newer, BooleanModel, PlantedResults, PlantedScores,
    PlantedSettings,
};
use serde::{Deserialize, Serialize};

use crate::execute::{Ctx, Options, Value};
use crate::jobs::run_jobs;
use crate::plan::ModelPoint;
use crate::shard::{assign, Shard};
use crate::workload::{ModelUnit, Workload};
use crate::{EngineError, Observer};

/// Bumped when a change to the suite changes what a planted model's unit holds.
pub const PLANTED_REVISION: u32 = 1;

/// Bumped when a change changes what a Boolean unit holds (2: EAP-IG and
/// learned masks; 3: the masks' penalties from 1e-8).
pub const BOOLEAN_REVISION: u32 = 3;

/// Bumped when a change changes what a planted model's STUDY §12 scores hold
/// (2: the masks' penalties from 1e-8).
pub const NEWER_REVISION: u32 = 2;

/// What a planted model's JSON holds beside its checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlantedRecord {
    /// How it was trained.
    pub config: PlantedConfig,
    /// Where each node sits.
    pub alignment: Alignment,
    /// Training time per phase.
    pub timing: TrainTiming,
    /// Its quality and every method's scores.
    pub scores: PlantedScores,
    /// Seconds scoring took.
    pub scoring_s: f64,
}

/// A Boolean suite's JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BooleanRecord {
    /// The regime.
    pub regime: Regime,
    /// Every network.
    pub networks: Vec<BooleanModel>,
}

/// One unit of the suite.
#[derive(Debug, Clone)]
enum Job {
    Model { regime: Regime, seed: u64, path: PathBuf },
    Boolean { regime: Regime, path: PathBuf },
}

/// The suite's units in `out`, each as a group for shards and progress.
fn jobs(wl: &Workload, s: &PlantedSettings) -> Result<Vec<(ModelUnit, Job)>, EngineError> {
    let sums: Vec<&str> =
        wl.data.values().next().map_or(Vec::new(), |m| m.checksums.iter().map(|c| c.sha256.as_str()).collect());
    let sums_json = json(&sums)?;
    let revision = PLANTED_REVISION.to_le_bytes();
    let measure = json(&(s.pairs, s.trials))?;
    let dir = wl.out.join("planted");
    let mut out = Vec::new();
    let base = wl.models.len();
    for &regime in &s.regimes {
        for &seed in &s.seeds {
            let config = s.config(regime, seed);
            let key = short_hash(&[
                &json(&config)?,
                &sums_json,
                &revision,
                &measure,
                &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
            ]);
            let path = dir.join(format!("{regime}-seed{seed}-{key}.safetensors"));
            let cost = config.train.steps as f64 * 3.0;
            out.push((
                unit(base + out.len(), config.train.clone(), key, path.clone(), cost),
                Job::Model { regime, seed, path },
            ));
        }
        let key = short_hash(&[
            &json(&(&s.boolean_seeds, s.boolean_steps, regime.name()))?,
            &BOOLEAN_REVISION.to_le_bytes(),
            &modcirc_bimt::TRAINER_REVISION.to_le_bytes(),
        ]);
        let path = dir.join(format!("boolean-{regime}-{key}.json"));
        let config = modcirc_bimt::TrainConfig::new(regime).steps(s.boolean_steps);
        let cost = (s.boolean_seeds.len() * s.boolean_steps) as f64 * 0.1;
        out.push((unit(base + out.len(), config, key, path.clone(), cost), Job::Boolean { regime, path }));
    }
    Ok(out)
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

/// The JSON of a planted model's STUDY §12 scores with `s`: its own key, so
/// that new methods rescore the cached models without training them again.
pub fn newer_path(checkpoint: &Path, s: &PlantedSettings) -> Result<PathBuf, EngineError> {
    let stem = checkpoint.file_stem().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut parts = vec![stem.as_bytes().to_vec(), NEWER_REVISION.to_le_bytes().to_vec()];
    parts.push(json(&(s.pairs, modcirc_study::planted::NEWER_METHODS))?);
    // The default sweep keys as it did before the sweep was a setting.
    if s.mask != modcirc_acdc::MaskConfig::default() {
        parts.push(json(&s.mask)?);
    }
    let key = short_hash(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    Ok(checkpoint.with_file_name(format!("{stem}-newer-{key}.json")))
}

/// A planted model's STUDY §12 scores, per task (quadrants 1, 2, 3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewerRecord {
    /// Per task, the scores of [`modcirc_study::planted::NEWER_METHODS`].
    pub tasks: Vec<Vec<modcirc_study::planted::MethodScore>>,
    /// Seconds scoring took.
    pub scoring_s: f64,
}

/// How many of the suite's units the cache holds, of how many.
pub fn census(wl: &Workload, s: &PlantedSettings) -> Result<(usize, usize), EngineError> {
    let all = jobs(wl, s)?;
    let done = all
        .iter()
        .filter(|(_, j)| {
            let files: Vec<PathBuf> = match j {
                Job::Model { path, .. } => vec![path.clone(), record_path(path)],
                Job::Boolean { path, .. } => vec![path.clone()],
            };
            let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            let newer = match j {
                Job::Model { path, .. } => {
                    newer_path(path, s).is_ok_and(|p| listing::fetch_json::<NewerRecord>(&p).is_ok())
                }
                Job::Boolean { .. } => true,
            };
            newer && matches!(listing::lookup(&listing::listing_path(refs[0]), &refs), Lookup::Hit(_))
        })
        .count();
    Ok((done, all.len()))
}

/// What executing the suite gives: the results and every file, as read or written.
pub struct PlantedRun {
    /// The tables and findings.
    pub results: PlantedResults,
    /// Every unit's files.
    pub files: Vec<FileRecord>,
    /// (kind, seconds) of the units computed now.
    pub seconds: Vec<(&'static str, f64)>,
}

/// Runs (or reads from the cache) the suite's units of `shard` (all when
/// `None`), `options.jobs` at once, and, for the whole suite, its results.
pub fn execute_planted(
    wl: &Workload,
    settings: &PlantedSettings,
    shard: Option<Shard>,
    options: &Options,
    observer: &dyn Observer,
) -> Result<PlantedRun, EngineError> {
    let all = jobs(wl, settings)?;
    let owner = match shard {
        Some(sh) => assign(&all.iter().map(|(m, _)| (m.key.clone(), m.cost)).collect::<Vec<_>>(), sh.count),
        None => vec![0; all.len()],
    };
    let mine: Vec<&(ModelUnit, Job)> =
        all.iter().zip(owner).filter(|(_, o)| shard.is_none_or(|sh| *o == sh.index)).map(|(j, _)| j).collect();
    let started = Instant::now();
    let ctx = Ctx { wl, options, observer, concurrent: options.jobs > 1 && mine.len() > 1 };
    let done = run_jobs(&mine, options.jobs, |(m, job)| {
        let r = run_one(&ctx, settings, m, job);
        observer.model_finished(m);
        r
    })?;
    let (mut models, mut boolean, mut files, mut seconds) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in done {
        files.extend(d.files);
        seconds.extend(d.seconds);
        match d.value {
            Done::Model(r) => models.push(r.scores),
            Done::Boolean(b) => boolean.extend(b.networks),
        }
    }
    let results = planted_results(models, boolean, started.elapsed().as_secs_f64());
    Ok(PlantedRun { results, files, seconds })
}

enum Done {
    Model(Box<PlantedRecord>),
    Boolean(BooleanRecord),
}

struct Ran {
    value: Done,
    files: Vec<FileRecord>,
    seconds: Vec<(&'static str, f64)>,
}

fn run_one(ctx: &Ctx<'_>, s: &PlantedSettings, m: &ModelUnit, job: &Job) -> Result<Ran, EngineError> {
    let (wl, obs) = (ctx.wl, ctx.observer);
    let mnist = wl.data.values().next().ok_or(EngineError::JobNotRun)?;
    match job {
        Job::Model { regime, seed, path } => {
            let record = record_path(path);
            let files = [path.as_path(), record.as_path()];
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
                    let config = s.config(*regime, *seed);
                    obs.unit_started(m, "planted: interchange intervention training", config.train.steps as u64);
                    let train = PvrSource::new(&mnist.train)?;
                    let test = PvrSource::new(&mnist.test)?;
                    let mut on_step = |p: &modcirc_bimt::Progress| {
                        if p.step.is_multiple_of(100) || p.step == p.steps {
                            let note = format!("planted: loss {:.4} acc {:.3}", p.loss, p.running_accuracy);
                            obs.progress(m, p.step as u64, Some(note));
                        }
                    };
                    let who = format!("the planted {regime} seed {seed} model");
                    let PlantedOutcome { model, layout, alignment, timing } =
                        train_planted(&config, &train, &mut on_step)
                            .map_err(|e| EngineError::from(e).within(format!("training {who}")))?;
                    obs.unit_started(m, "planted: scoring every method", 1);
                    let t = Instant::now();
                    let quality = planted_quality(&model, &alignment, &test, s.trials, *seed)?;
                    let tasks = score_planted(&model, &alignment, &test, s.pairs, *seed)
                        .map_err(|e| EngineError::from(e).within(format!("scoring {who}")))?;
                    let scores = PlantedScores { regime: *regime, seed: *seed, quality, tasks };
                    let r = PlantedRecord { config, alignment, timing, scores, scoring_s: t.elapsed().as_secs_f64() };
                    let weights = checkpoint::to_bytes(&model, &layout)?;
                    let json = serde_json::to_vec_pretty(&r).map_err(EngineError::Serialise)?;
                    claim.ensure_held()?;
                    modcirc_store::atomic::write_atomic(path, &weights)?;
                    modcirc_store::atomic::write_atomic(&record, &json)?;
                    listing::record(
                        &listing::listing_path(path),
                        &[(path.as_path(), &weights), (record.as_path(), &json)],
                    )?;
                    Ok((r, vec![weights, json]))
                },
            )?;
            // STUDY §12's methods on the same model, in a file of their own.
            let newer = newer_path(path, s)?;
            let fetch = |warn: bool| -> Option<(NewerRecord, Vec<u8>)> { ctx.fetch_json(&newer, warn) };
            let ((n, newer_bytes), newer_source) = ctx.claimed(
                &newer,
                fetch(true),
                || fetch(false),
                |claim| {
                    obs.unit_started(m, "planted: scoring EAP-IG and learned masks", 1);
                    let who = format!("the planted {regime} seed {seed} model");
                    let (model, _) = checkpoint::from_bytes(&bytes[0], path, None)?;
                    let test = PvrSource::new(&mnist.test)?;
                    let t = Instant::now();
                    let tasks = score_planted_newer(&model, &r.alignment, &test, s.pairs, *seed, &s.mask)
                        .map_err(|e| EngineError::from(e).within(format!("scoring {who} by STUDY §12's methods")))?;
                    let n = NewerRecord { tasks, scoring_s: t.elapsed().as_secs_f64() };
                    claim.ensure_held()?;
                    let bytes = listing::store_json(&newer, &n)?;
                    Ok((n, bytes))
                },
            )?;
            let mut seconds = Vec::new();
            if matches!(source, crate::Source::Computed) {
                seconds.extend([("planted training", r.timing.total_s), ("planted scoring", r.scoring_s)]);
            }
            if matches!(newer_source, crate::Source::Computed) {
                seconds.push(("planted §12 scoring", n.scoring_s));
            }
            let mut r = r;
            if n.tasks.len() == r.scores.tasks.len() {
                for (task, more) in r.scores.tasks.iter_mut().zip(n.tasks) {
                    task.methods.retain(|m| !modcirc_study::planted::NEWER_METHODS.contains(&m.method.as_str()));
                    task.methods.extend(more);
                }
            }
            let source = if matches!(source, crate::Source::Computed) { source } else { newer_source };
            obs.unit_done(m, Value::Planted(&r.scores), source);
            let files = vec![
                FileRecord::of(&wl.out, path, &bytes[0]),
                FileRecord::of(&wl.out, &record, &bytes[1]),
                FileRecord::of(&wl.out, &newer, &newer_bytes),
            ];
            Ok(Ran { value: Done::Model(Box::new(r)), files, seconds })
        }
        Job::Boolean { regime, path } => {
            let mut boolean_s = None;
            let fetch = |warn: bool| -> Option<(BooleanRecord, Vec<u8>)> { ctx.fetch_json(path, warn) };
            let ((r, bytes), source) = ctx.claimed(
                path,
                fetch(true),
                || fetch(false),
                |claim| {
                    obs.unit_started(m, "planted: Boolean networks", 1);
                    let t = Instant::now();
                    let networks = boolean_suite(s, *regime)
                        .map_err(|e| EngineError::from(e).within(format!("the Boolean networks of {regime}")))?;
                    let r = BooleanRecord { regime: *regime, networks };
                    boolean_s = Some(t.elapsed().as_secs_f64());
                    claim.ensure_held()?;
                    let bytes = listing::store_json(path, &r)?;
                    Ok((r, bytes))
                },
            )?;
            obs.unit_done(m, Value::Boolean(&r.networks), source);
            let files = vec![FileRecord::of(&wl.out, path, &bytes)];
            let seconds = boolean_s.filter(|_| matches!(source, crate::Source::Computed));
            Ok(Ran {
                value: Done::Boolean(r),
                files,
                seconds: seconds.map(|s| ("Boolean networks", s)).into_iter().collect(),
            })
        }
    }
}
