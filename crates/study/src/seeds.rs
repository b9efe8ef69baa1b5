//! The study across training seeds (STUDY §9): each metric's mean over
//! seeds of each seed's value, with a 95% t-interval over seeds; the
//! paper's hypotheses judged on those intervals; and, per hypothesis, in how
//! many seeds the seed-0 rule gives the seed-0 answer.

use modcirc_bimt::Regime;
use modcirc_metrics::Summary;

use crate::paper::TASKS;
use crate::rows::{
    AcrossSeeds, Agreement, DiscoveryResult, InferenceResult, ModelResult, SeedRow, StructureRow, Verdict,
};
use crate::structure::StructureResult;
use crate::verdicts::verdicts;

fn t(values: Vec<f64>) -> Option<Summary> {
    Summary::t_interval(&values)
}

/// The STUDY §9 result of `regime` and `seed`.
pub fn structure_of(st: &[StructureResult], regime: Regime, seed: u64) -> Option<&StructureResult> {
    st.iter().find(|s| s.regime == Some(regime) && s.seed == Some(seed))
}

/// `None` with fewer than two seeds.
pub fn across_seeds(
    models: &[ModelResult],
    ds: &[DiscoveryResult],
    inference: &[InferenceResult],
    structure: &[StructureResult],
) -> Option<AcrossSeeds> {
    let mut seeds: Vec<u64> = models.iter().map(|m| m.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    if seeds.len() < 2 {
        return None;
    }
    let mut rows = Vec::new();
    for task in TASKS {
        for regime in Regime::ALL {
            let mine: Vec<&DiscoveryResult> = ds.iter().filter(|d| d.regime == regime && d.task == task).collect();
            let of = |f: fn(&DiscoveryResult) -> f64| t(mine.iter().map(|d| f(d)).collect());
            let stability: Vec<f64> = mine
                .iter()
                .filter_map(|d| structure_of(structure, regime, d.seed))
                .filter_map(|s| s.circuits.iter().find(|c| c.task == task).map(|c| c.stability))
                .collect();
            let faithfulness: Option<Vec<f64>> = mine.iter().map(|d| d.faithfulness.map(|f| f.mean)).collect();
            let (Some(logit_difference), Some(sparsity), Some(accuracy), Some(discovery_s)) = (
                of(|d| d.logit_difference.mean),
                of(|d| d.sparsity.mean),
                of(|d| d.accuracy.mean),
                of(|d| d.discovery_s.mean),
            ) else {
                continue;
            };
            rows.push(SeedRow {
                regime,
                task: task.into(),
                seeds: mine.len(),
                logit_difference,
                sparsity,
                accuracy,
                discovery_s,
                faithfulness: faithfulness.and_then(t),
                stability: (stability.len() == mine.len()).then_some(stability).and_then(t),
            });
        }
    }
    let structure_rows = structure_rows(structure);
    let as_seed0 = |d: &SeedRow| DiscoveryResult {
        faithfulness: d.faithfulness,
        ..DiscoveryResult::of_metrics(d.regime, 0, &d.task, [d.logit_difference, d.accuracy, d.sparsity, d.discovery_s])
    };
    let pooled: Vec<DiscoveryResult> = rows.iter().map(as_seed0).collect();
    let across = verdicts(&mean_models(models), &pooled, inference);
    let per_seed: Vec<Vec<Verdict>> = seeds
        .iter()
        .map(|&s| verdicts(&relabel(models, s, |m| &mut m.seed), &relabel(ds, s, |d| &mut d.seed), inference))
        .collect();
    let agreement = per_seed[0]
        .iter()
        .map(|v0| Agreement {
            id: v0.id.clone(),
            seed0: v0.verdict.clone(),
            agree: per_seed.iter().filter(|vs| vs.iter().any(|v| v.id == v0.id && v.verdict == v0.verdict)).count(),
            seeds: seeds.len(),
        })
        .collect();
    Some(AcrossSeeds { seeds, rows, structure: structure_rows, verdicts: across, agreement })
}

/// Each regime's network structure over seeds.
fn structure_rows(structure: &[StructureResult]) -> Vec<StructureRow> {
    Regime::ALL
        .iter()
        .filter_map(|&regime| {
            let mine: Vec<&StructureResult> = structure.iter().filter(|s| s.regime == Some(regime)).collect();
            let of = |f: &dyn Fn(&StructureResult) -> Option<f64>| -> Option<Summary> {
                t(mine.iter().map(|s| f(s)).collect::<Option<Vec<f64>>>()?)
            };
            Some(StructureRow {
                regime,
                seeds: mine.len(),
                wiring_length: of(&|s| Some(s.wiring_length))?,
                q_all: of(&|s| Some(s.all_weights.q))?,
                q_eps: of(&|s| Some(s.eps_edges.q))?,
                z_eps: of(&|s| s.eps_edges.null.as_ref()?.z),
                nmi_eps: of(&|s| s.eps_edges.spread.as_ref().map(|p| p.nmi)),
                ncut8_eps: of(&|s| s.eps_edges.ncut.iter().find(|n| n.k == 8).map(|n| n.ncut)),
                overlap: of(&|s| s.specialisation.as_ref().map(|x| x.overlap)),
            })
        })
        .collect()
}

/// The items of seed `seed`, labelled seed 0, so that the seed-0 rules
/// judge them.
fn relabel<T: Clone>(items: &[T], seed: u64, field: fn(&mut T) -> &mut u64) -> Vec<T> {
    items
        .iter()
        .filter_map(|x| {
            let mut x = x.clone();
            (*field(&mut x) == seed).then(|| {
                *field(&mut x) = 0;
                x
            })
        })
        .collect()
}

/// Per regime, a seed-0 model whose peak heap and training times are the
/// means over seeds: what the RQ2 rules judge across seeds.
fn mean_models(models: &[ModelResult]) -> Vec<ModelResult> {
    Regime::ALL
        .iter()
        .filter_map(|&r| {
            let mine: Vec<&ModelResult> = models.iter().filter(|m| m.regime == r).collect();
            let mut m = (*mine.iter().find(|m| m.seed == 0)?).clone();
            let n = mine.len() as f64;
            let mean = |f: fn(&ModelResult) -> f64| mine.iter().map(|m| f(m)).sum::<f64>() / n;
            m.meta.heap_at_start_bytes = Some(0);
            m.meta.peak_heap_bytes = Some((mean(|m| m.heap_mib()) * (1u64 << 20) as f64) as u64);
            m.meta.timing.total_s = mean(|m| m.meta.timing.total_s);
            m.meta.timing.optimizer_s = mean(|m| m.meta.timing.optimizer_s);
            m.meta.timing.relocation_s = mean(|m| m.meta.timing.relocation_s);
            let cpu: Option<Vec<f64>> = mine.iter().map(|m| m.meta.timing.cpu_s).collect();
            m.meta.timing.cpu_s = cpu.map(|c| c.iter().sum::<f64>() / n);
            // Only seed 0 is re-timed: the mean is of the CPU times.
            m.retimed = None;
            Some(m)
        })
        .collect()
}
