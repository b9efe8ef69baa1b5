//! The study's results from its executed units: each model and discovery
//! as `results.json` lists it, discovery times measured again one at a
//! time, inference timed, and every hypothesis judged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use modcirc_acdc::{discovery_times, TaskImages};
use modcirc_bimt::Regime;
use modcirc_metrics::{PhaseTimer, Summary};
use modcirc_mlp::Mlp;
use modcirc_study::beyond::{method_rows, BeyondResult};
use modcirc_study::controls::ControlsResult;
use modcirc_study::findings::{findings, sparsity_and_stability};
use modcirc_study::judged_controls::{ablation_sensitivity, control_findings, differences};
use modcirc_study::measure::{environment, inference_timing, retime_training, RETIME_ROUNDS, RETIME_STEPS};
use modcirc_study::results::{DiscoveryResult, ModelResult, Profile, Results, UnitTime, RESULTS_SCHEMA};
use modcirc_study::seeds::across_seeds;
use modcirc_study::verdicts::{k_sensitivity, verdicts};

use crate::execute::{DiscoveryUnit, ModelOutcome, Source};
use crate::workload::Workload;
use crate::EngineError;

/// Each model as `results.json` lists it.
pub fn model_result(wl: &Workload, o: &ModelOutcome) -> ModelResult {
    let m = &wl.models[o.index];
    ModelResult {
        regime: m.point.config.regime,
        seed: m.point.config.seed,
        path: wl.rel(&m.path),
        sha256: o.sha256.clone(),
        file_bytes: o.file_bytes,
        cached: o.trained != Source::Computed,
        meta: o.meta.clone(),
        retimed: None,
    }
}

/// One discovery as `results.json` lists it. Its discovery time is
/// measured again here, one discovery at a time with nothing else
/// running: the discovery itself ran beside other jobs, which slow it by
/// an amount that has nothing to do with the model (RQ1-H2 compares these
/// times).
pub fn discovery_result(wl: &Workload, o: &ModelOutcome, d: &DiscoveryUnit) -> Result<DiscoveryResult, EngineError> {
    let m = &wl.models[o.index];
    let (regime, seed) = (m.point.config.regime, m.point.config.seed);
    let out = &d.output;
    let s = &out.report.summary;
    let images = TaskImages::from_pairs(out.inputs.flags.split.of(wl.mnist(m)), &out.pairs);
    let times = discovery_times(&o.checkpoint.model, &images, &out.report.config)
        .map_err(|e| EngineError::from(e).within(format!("timing the {} discovery of {regime} seed {seed}", d.task)))?;
    let discovery_s = Summary::of(&times)
        .ok_or_else(|| EngineError::from(modcirc_acdc::AcdcError::Shape("a discovery without resamples".into())))?;
    Ok(DiscoveryResult {
        regime,
        seed,
        task: d.task.name.clone(),
        path: wl.rel(&d.path),
        cached: d.source != Source::Computed,
        logit_difference: s.logit_difference,
        accuracy: s.accuracy,
        sparsity: s.sparsity,
        discovery_s,
        faithfulness: s.faithfulness,
        dead: out.report.selection.dead.iter().map(Vec::len).collect(),
        decided_by_tie: out.report.selection.decided_by_tie.clone(),
        dead_kept: out.report.selection.dead_kept.clone(),
        model_accuracy: Some(s.model_accuracy),
        compared: out.report.compared.clone(),
        notes: out.notes.clone(),
    })
}

/// RQ2-H2's trainings, timed again with nothing else of the run beside
/// them: the seed-0 BIMT and L1 models' configurations, alternated (on the
/// CPU trainer: a GPU run keeps its own timings).
fn retime(wl: &Workload, outcomes: &[ModelOutcome], models: &mut [ModelResult]) -> Result<(), EngineError> {
    let on_cpu = wl.plan.device == modcirc_mlp::DeviceSpec::Cpu;
    let compared: Vec<usize> = (0..models.len())
        .filter(|&i| models[i].seed == 0 && matches!(models[i].regime, Regime::Bimt | Regime::L1))
        .collect();
    if on_cpu && compared.len() == 2 {
        let configs: Vec<_> = compared
            .iter()
            .map(|&i| {
                let m = &wl.models[outcomes[i].index];
                (m.point.config.clone(), &wl.mnist(m).train)
            })
            .collect();
        let retimed = retime_training(&configs, RETIME_STEPS, RETIME_ROUNDS)
            .map_err(|e| EngineError::from(e).within("re-timing the BIMT and L1 trainings (RQ2-H2)"))?;
        for (&i, r) in compared.iter().zip(retimed) {
            models[i].retimed = Some(r);
        }
    }
    Ok(())
}

/// The study's `Results` from its executed units (`outcomes`, in the
/// plan's order): discovery times measured again (`timing` in `timer`),
/// inference timed on the seed-0 models (`inference`, telling
/// `on_inference` each repeat done), every verdict, the rows across seeds
/// and the findings. The report's files and figures are added when they
/// are written.
pub fn results(
    wl: &Workload,
    outcomes: &[ModelOutcome],
    profile: Profile,
    repo: &Path,
    timer: &mut PhaseTimer,
    on_inference: &mut dyn FnMut(usize),
) -> Result<Results, EngineError> {
    let settings = profile.settings();
    let mut models: Vec<ModelResult> = outcomes.iter().map(|o| model_result(wl, o)).collect();
    let t = Instant::now();
    retime(wl, outcomes, &mut models)?;
    let mut discoveries = Vec::new();
    for o in outcomes {
        for d in &o.discoveries {
            discoveries.push(discovery_result(wl, o, d)?);
        }
    }
    timer.add("timing", t.elapsed().as_secs_f64());
    let seed0: Vec<(Regime, &Mlp)> = outcomes
        .iter()
        .zip(&models)
        .filter(|(_, r)| r.seed == 0)
        .map(|(o, r)| (r.regime, &o.checkpoint.model))
        .collect();
    let test = &wl.data.values().next().ok_or(EngineError::JobNotRun)?.test;
    let inference =
        timer.time("inference", || inference_timing(&seed0, test, settings.inference_repeats, on_inference));
    let structure: Vec<_> = outcomes.iter().flat_map(|o| o.structure.iter().map(|(_, _, s)| s.clone())).collect();
    let across = across_seeds(&models, &discoveries, &inference, &structure);
    let controls: Vec<ControlsResult> =
        outcomes.iter().flat_map(|o| o.controls.iter().map(|(_, _, c)| c.clone())).collect();
    let seed0_verdicts = verdicts(&models, &discoveries, &inference);
    let ablation_rows = ablation_sensitivity(&discoveries, &controls);
    let beyond: Vec<BeyondResult> = outcomes.iter().flat_map(|o| o.beyond.iter().cloned()).collect();
    let mut jobs_seconds = BTreeMap::new();
    for (stage, s) in outcomes.iter().flat_map(|o| &o.seconds) {
        *jobs_seconds.entry(stage.to_string()).or_default() += s;
    }
    Ok(Results {
        schema: RESULTS_SCHEMA.into(),
        profile,
        settings,
        discover_flags: wl.plan.settings[0].settings.clone(),
        environment: environment(wl.plan.device, repo),
        stage_seconds: Default::default(),
        jobs_seconds,
        unit_times: UnitTime::table(outcomes.iter().flat_map(|o| o.seconds.iter().map(|&(k, s)| (k, s)))),
        total_seconds: 0.0,
        differences: differences(&discoveries),
        findings: findings(across.as_ref(), &discoveries, &structure)
            .into_iter()
            .chain(control_findings(&controls, &ablation_rows, &seed0_verdicts))
            .chain([sparsity_and_stability(across.as_ref(), &method_rows(&beyond))])
            .collect(),
        ablation_sensitivity: ablation_rows,
        verdicts: seed0_verdicts,
        k_sensitivity: k_sensitivity(&discoveries),
        controls,
        across_seeds: across,
        structure,
        models,
        discoveries,
        inference,
        beyond,
        planted: None,
        figures: Vec::new(),
        // Every checkpoint and sidecar first, then the analyses' files.
        files: outcomes
            .iter()
            .flat_map(|o| &o.files[..2])
            .chain(outcomes.iter().flat_map(|o| &o.files[2..]))
            .cloned()
            .collect(),
    })
}
