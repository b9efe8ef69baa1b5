//! `reproduce`'s analysis stage: for every model, at once across models,
//! the discoveries on both tasks, STUDY §8 on the seed-0 models and STUDY §9
//! on all; each unit cached by what determines it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use modcirc_acdc::{discovery_times, AcdcConfig, TaskImages};
use modcirc_dataset::Task;
use modcirc_metrics::Summary;
use modcirc_study::beyond::{analyse, BeyondResult, ACDC_PAIRS};
use modcirc_study::cache::{self, FileRecord, Lookup};
use modcirc_study::discovery::{DiscoverOutput, DiscoverySettings};
use modcirc_study::results::{DiscoveryResult, ModelResult};
use modcirc_study::structure::{analyse_structure, StructureResult};
use modcirc_study::sweep::{list_some, UnitFiles};

use super::{rel, Found, Run, Trained};
use crate::common::{claimed_unit, run_jobs, Source};
use crate::discover::discover_model;

/// One model's analyses: what the results keep, the files, the times.
struct Analysed {
    discoveries: Vec<(Task, DiscoverOutput, PathBuf, bool)>,
    beyond: Vec<BeyondResult>,
    structure: StructureResult,
    files: Vec<FileRecord>,
    /// (stage, seconds) of the work done now (cached work is not timed).
    seconds: Vec<(&'static str, f64)>,
}

/// Discovery on both tasks for every model, STUDY §8 on the seed-0
/// models and STUDY §9 on every model, models in parallel jobs.
pub(super) fn analyse_stage(run: &mut Run<'_>, models: &[Trained], flags: &DiscoverySettings) -> anyhow::Result<Found> {
    let settings_json = serde_json::to_vec(flags)?;
    if run.args.report_only {
        let missing: BTreeSet<String> = models
            .iter()
            .flat_map(|m| UnitPaths::of(&run.out, &m.result, &settings_json).all().cloned().collect::<Vec<_>>())
            .filter(|p| !matches!(cache::lookup(&cache::listing_path(p), &[p]), Lookup::Hit(_)))
            .map(|p| rel(&run.out, &p))
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "--report-only: {} analyses are not in {} yet: {} (run every --shard first)",
            missing.len(),
            run.out.display(),
            list_some(&missing, 12)
        );
    }
    let t = Instant::now();
    let shared: &Run<'_> = run;
    let analysed = run_jobs(models, shared.jobs, |m| analyse_model(shared, m, flags, &settings_json));
    run.timer.add("analyse", t.elapsed().as_secs_f64());
    let analysed = analysed?;
    let mut found = Found { discoveries: Vec::new(), beyond: Vec::new(), structure: Vec::new(), outputs: Vec::new() };
    for (m, a) in models.iter().zip(analysed) {
        let r = &m.result;
        for (stage, s) in &a.seconds {
            run.job_seconds(stage, *s);
        }
        run.files.extend(a.files);
        for (task, d, path, cached) in a.discoveries {
            if run.args.shard.is_some() {
                // A shard only fills the cache; the report (and the timing
                // of discoveries, one at a time) is `--report-only`'s.
                let s = &d.report.summary;
                run.say(format!(
                    "[discover] {:>8} seed {} {:>6}: logit difference {:.3}, sparsity {:.4}{}",
                    r.regime.label(),
                    r.seed,
                    task.name,
                    s.logit_difference.mean,
                    s.sparsity.mean,
                    if cached { " (cached)" } else { "" }
                ));
                continue;
            }
            found.discoveries.push(discovery_result(run, m, &task, &d, &path, cached)?);
            found.outputs.push((r.regime, r.seed, d));
        }
        for b in &a.beyond {
            run.say(format!(
                "[beyond]   {:>8} {:>6}: circuit faithfulness {:.3}, EAP at that size {:.3}, CPR {:.3}, CMD {:.3}",
                r.regime.label(),
                b.task,
                b.circuit_faithfulness,
                b.eap_same_size_faithfulness,
                b.curve.cpr,
                b.curve.cmd
            ));
        }
        found.beyond.extend(a.beyond);
        let s = &a.structure;
        run.say(format!(
            "[structure] {:>8} seed {}: wiring length {:.3}, Q {:.3} (every weight) / {:.3} (eps edges), {:.2} s",
            r.regime.label(),
            r.seed,
            s.wiring_length,
            s.all_weights.q,
            s.eps_edges.q,
            s.seconds
        ));
        found.structure.push(a.structure);
    }
    Ok(found)
}

/// The records of a job's files and the times of the work it did now.
#[derive(Default)]
struct Log {
    files: Vec<FileRecord>,
    seconds: Vec<(&'static str, f64)>,
}

/// Where one model's analysis units go, named by the keys of
/// [`modcirc_study::sweep`]: a discovery per task, STUDY §8 per task on
/// seed 0, STUDY §9.
pub(super) struct UnitPaths {
    discover: Vec<(Task, PathBuf)>,
    beyond: Vec<PathBuf>,
    structure: PathBuf,
}

impl UnitPaths {
    pub(super) fn of(out: &Path, r: &ModelResult, settings: &[u8]) -> UnitPaths {
        let files = UnitFiles { out, regime: r.regime, seed: r.seed };
        let tasks = [Task::circle(), Task::line()];
        UnitPaths {
            discover: tasks.iter().map(|t| (t.clone(), files.discovery(&r.sha256, settings, t))).collect(),
            beyond: if r.seed == 0 {
                tasks.iter().map(|t| files.beyond(&r.sha256, settings, t)).collect()
            } else {
                Vec::new()
            },
            structure: files.structure(&r.sha256, settings),
        }
    }

    /// Every unit's file.
    pub(super) fn all(&self) -> impl Iterator<Item = &PathBuf> {
        self.discover.iter().map(|(_, p)| p).chain(&self.beyond).chain(std::iter::once(&self.structure))
    }
}

/// One model's job: each unit from the cache, or computed and stored.
fn analyse_model(run: &Run<'_>, m: &Trained, flags: &DiscoverySettings, settings: &[u8]) -> anyhow::Result<Analysed> {
    let r = &m.result;
    let units = UnitPaths::of(&run.out, r, settings);
    let mut log = Log::default();
    let (mut discoveries, mut beyond) = (Vec::new(), Vec::new());
    let pb = run.progress.bar(units.all().count() as u64, &format!("{}/{}", r.regime.name(), r.seed));
    for (i, (task, path)) in units.discover.iter().enumerate() {
        pb.set_message(format!("discovering the {task} circuit"));
        let (d, cached) = cached_or(run, path, &mut log, "discover", || {
            let model_path = run.out.join(&r.path);
            discover_model(&run.mnist, (&m.checkpoint, &model_path, &r.sha256), task, flags, true)
        })?;
        pb.inc(1);
        if let Some(bpath) = units.beyond.get(i) {
            pb.set_message(format!("STUDY §8 on {task}"));
            let (b, _) = cached_or(run, bpath, &mut log, "beyond", || {
                let who = (Some(r.regime), Some(r.seed));
                analyse(&run.mnist, &m.checkpoint.model, who, &d, &AcdcConfig::default(), ACDC_PAIRS)
                    .with_context(|| format!("attribution and faithfulness of {} on {task}", r.regime))
            })?;
            beyond.push(b);
            pb.inc(1);
        }
        discoveries.push((task.clone(), d, path.clone(), cached));
    }
    let discs: Vec<&DiscoverOutput> = discoveries.iter().map(|(_, d, _, _)| d).collect();
    let (split, seed) = (flags.split.of(&run.mnist), flags.config.seed);
    pb.set_message("STUDY §9");
    let (structure, _) = cached_or(run, &units.structure, &mut log, "structure", || {
        analyse_structure(&m.checkpoint, split, &discs, seed)
            .with_context(|| format!("STUDY §9 on {} seed {}", r.regime, r.seed))
    })?;
    pb.finish_and_clear();
    Ok(Analysed { discoveries, beyond, structure, files: log.files, seconds: log.seconds })
}

/// The unit at `path` from the cache, or `compute`d, stored and timed
/// under `stage`, under the unit's claim (another process sharing the
/// output directory may be computing it); its record joins `log`. Returns
/// it and whether it was cached.
fn cached_or<T: serde::Serialize + serde::de::DeserializeOwned>(
    run: &Run<'_>,
    path: &Path,
    log: &mut Log,
    stage: &'static str,
    compute: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, bool)> {
    if let Some((v, record)) = run.fetch_json::<T>(path) {
        log.files.push(record);
        return Ok((v, true));
    }
    // Computed and written under the unit's claim; a unit another process
    // wrote meanwhile is taken as read.
    let mut seconds = None;
    let what = format!("reproduce {}", run.args.profile);
    let fetch = || cache::fetch_json::<T>(path).map(|(v, bytes)| (v, FileRecord::of(&run.out, path, &bytes)));
    let ((v, record), source) = claimed_unit(path, &what, &run.progress, fetch, |claim| {
        let t = Instant::now();
        let v = compute()?;
        seconds = Some(t.elapsed().as_secs_f64());
        claim.ensure_held()?;
        let record = run.put_json(path, &v)?;
        Ok((v, record))
    })?;
    if let Some(s) = seconds {
        log.seconds.push((stage, s));
    }
    log.files.push(record);
    Ok((v, !matches!(source, Source::Computed)))
}

/// One discovery's line in the results. Its discovery time is measured
/// again here, one discovery at a time with nothing else running: the
/// discovery itself ran beside other jobs, which slow it by an amount that
/// has nothing to do with the model (RQ1-H2 compares these times).
fn discovery_result(
    run: &mut Run<'_>,
    m: &Trained,
    task: &Task,
    d: &DiscoverOutput,
    path: &Path,
    cached: bool,
) -> anyhow::Result<DiscoveryResult> {
    let r = &m.result;
    let s = &d.report.summary;
    let t = Instant::now();
    let images = TaskImages::from_pairs(d.inputs.flags.split.of(&run.mnist), &d.pairs);
    let times = discovery_times(&m.checkpoint.model, &images, &d.report.config)
        .with_context(|| format!("timing the {task} discovery of {} seed {}", r.regime, r.seed))?;
    run.timer.add("timing", t.elapsed().as_secs_f64());
    let discovery_s = Summary::of(&times).context("a discovery without resamples")?;
    run.say(format!(
        "[discover] {:>8} seed {} {:>6}: logit difference {:.3}, sparsity {:.4}, {:.2} ms per discovery{}",
        r.regime.label(),
        r.seed,
        task.name,
        s.logit_difference.mean,
        s.sparsity.mean,
        discovery_s.mean * 1e3,
        if cached { " (cached)" } else { "" }
    ));
    Ok(DiscoveryResult {
        regime: r.regime,
        seed: r.seed,
        task: task.name.clone(),
        path: rel(&run.out, path),
        cached,
        logit_difference: s.logit_difference,
        accuracy: s.accuracy,
        sparsity: s.sparsity,
        discovery_s,
        faithfulness: s.faithfulness,
        dead: d.report.selection.dead.iter().map(Vec::len).collect(),
        decided_by_tie: d.report.selection.decided_by_tie.clone(),
        dead_kept: d.report.selection.dead_kept.clone(),
        model_accuracy: Some(s.model_accuracy),
        compared: d.report.compared.clone(),
        notes: d.notes.clone(),
    })
}
