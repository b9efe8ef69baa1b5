//! A sweep's results from its executed units: every model, discovery and
//! STUDY §9 analysis with its point on the plan's axes, and STUDY §10 on
//! each discovery where the plan asks.

use modcirc_study::sweep::{SweepAnalysis, SweepControls, SweepDiscovery, SweepModel, SweepResults, SWEEP_SCHEMA};

use crate::execute::ModelOutcome;
use crate::workload::Workload;

/// The results of a sweep whose every unit is in `outcomes` (`plan`: the
/// plan file's name).
pub fn sweep_results(wl: &Workload, outcomes: &[ModelOutcome], plan: &str) -> SweepResults {
    let p = &wl.plan;
    let (mut models, mut discoveries, mut analyses) = (Vec::new(), Vec::new(), Vec::new());
    for o in outcomes {
        let m = &wl.models[o.index];
        models.push(SweepModel {
            key: m.key.clone(),
            axes: p.axes_of(&m.point, None, None),
            path: wl.rel(&m.path),
            sha256: o.sha256.clone(),
            test_accuracy: o.meta.test_accuracy,
            train_seconds: o.meta.timing.total_s,
        });
        for d in &o.discoveries {
            let s = &d.output.report.summary;
            discoveries.push(SweepDiscovery {
                model: m.key.clone(),
                axes: p.axes_of(&m.point, Some(&p.settings[d.setting]), Some(&d.task)),
                path: wl.rel(&d.path),
                logit_difference: s.logit_difference,
                accuracy: s.accuracy,
                sparsity: s.sparsity,
                faithfulness: s.faithfulness,
                model_accuracy: s.model_accuracy,
                discovery_seconds: s.discovery_s,
                controls: o
                    .controls
                    .iter()
                    .find(|(setting, _, c)| *setting == d.setting && c.task == d.task.name)
                    .map(|(_, path, c)| SweepControls::of(c, wl.rel(path))),
            });
        }
        for (setting, path, r) in &o.structure {
            analyses.push(SweepAnalysis {
                model: m.key.clone(),
                axes: p.axes_of(&m.point, Some(&p.settings[*setting]), None),
                path: wl.rel(path),
                wiring_length: r.wiring_length,
                modularity_all_weights: r.all_weights.q,
                modularity_eps_edges: r.eps_edges.q,
                modularity_eps_z: r.eps_edges.null.as_ref().and_then(|n| n.z),
                seconds: r.seconds,
            });
        }
    }
    SweepResults {
        schema: SWEEP_SCHEMA.into(),
        plan: plan.into(),
        axes: p.axes.clone(),
        models,
        discoveries,
        analyses,
        planted: None,
    }
}
