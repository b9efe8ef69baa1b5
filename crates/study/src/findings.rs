//! Findings beyond the paper (STUDY §9), each decided from the data by a
//! stated rule, as the verdicts are: is BIMT more modular, does modularity
//! go with circuit quality, and does modular training give smaller but not
//! more specialised circuits (Golechha et al. 2025)?

use modcirc_bimt::Regime;
use modcirc_metrics::{spearman, Summary};

use crate::paper::TASKS;
use crate::rows::AcrossSeeds;
use crate::rows::{DiscoveryResult, Verdict};
use crate::seeds::structure_of;
use crate::structure::StructureResult;
use crate::verdicts::NOT_EVALUATED;

/// Every finding this run's results allow.
pub fn findings(across: Option<&AcrossSeeds>, ds: &[DiscoveryResult], structure: &[StructureResult]) -> Vec<Verdict> {
    vec![more_modular(across), modularity_and_quality(ds, structure), specialisation(across)]
}

fn above(a: &Summary, b: &Summary) -> bool {
    a.lo > b.hi
}

fn fmt(s: &Summary) -> String {
    format!("{:.3} [{:.3}, {:.3}]", s.mean, s.lo, s.hi)
}

fn more_modular(across: Option<&AcrossSeeds>) -> Verdict {
    let rule = "Supported if BIMT's 95% t-interval over seeds of Q (graph of the weights the eps rule keeps) lies entirely above every other regime's; not supported otherwise.";
    let mut v = Verdict {
        id: "F1".into(),
        hypothesis: "BIMT makes networks more modular (the paper's premise, never measured there).".into(),
        rule: rule.into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let Some(a) = across else { return v };
    let Some(b) = a.structure.iter().find(|s| s.regime == Regime::Bimt) else { return v };
    let others: Vec<_> = a.structure.iter().filter(|s| s.regime != Regime::Bimt).collect();
    if others.len() + 1 < Regime::ALL.len() {
        return v;
    }
    let yes = others.iter().all(|o| above(&b.q_eps, &o.q_eps));
    v.verdict = if yes { "supported" } else { "not supported" }.into();
    v.evidence =
        a.structure.iter().map(|s| format!("{} Q {}", s.regime.label(), fmt(&s.q_eps))).collect::<Vec<_>>().join(", ");
    v
}

fn modularity_and_quality(ds: &[DiscoveryResult], structure: &[StructureResult]) -> Verdict {
    let mut v = Verdict {
        id: "F2".into(),
        hypothesis: "More modular networks have more faithful circuits (the paper's premise that modularity helps circuit discovery).".into(),
        rule: "Spearman's rho over every model (regime x seed) of Q (eps graph) against the circuit's faithfulness (bootstrap mean): supported if rho >= 0.5 on both tasks, contradicted if rho <= -0.5 on both, not supported otherwise; at least 5 models.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let mut rhos = Vec::new();
    let mut evidence = Vec::new();
    for t in TASKS {
        let points: Vec<(f64, f64, f64)> = ds
            .iter()
            .filter(|d| d.task == t)
            .filter_map(|d| {
                let s = structure_of(structure, d.regime, d.seed)?;
                Some((s.eps_edges.q, d.faithfulness?.mean, d.logit_difference.mean))
            })
            .collect();
        if points.len() < 5 {
            return v;
        }
        let q: Vec<f64> = points.iter().map(|p| p.0).collect();
        let f: Vec<f64> = points.iter().map(|p| p.1).collect();
        let ld: Vec<f64> = points.iter().map(|p| p.2).collect();
        let (Some(rf), rl) = (spearman(&q, &f), spearman(&q, &ld)) else { return v };
        rhos.push(rf);
        evidence.push(format!(
            "{t}: rho(Q, faithfulness) {rf:.3}, rho(Q, logit difference) {}, {} models; within regimes (over seeds, STUDY §10): {}",
            rl.map_or("undefined".into(), |r| format!("{r:.3}")),
            points.len(),
            within_regimes(ds, structure, t)
        ));
    }
    v.verdict = if rhos.iter().all(|&r| r >= 0.5) {
        "supported"
    } else if rhos.iter().all(|&r| r <= -0.5) {
        "contradicted"
    } else {
        "not supported"
    }
    .into();
    v.evidence = evidence.join("; ");
    v
}

/// Spearman's rho of Q against faithfulness within each regime, over its
/// seeds: a pooled rho that only separates Vanilla from the rest shows here
/// as within-regime values near 0 or undefined.
fn within_regimes(ds: &[DiscoveryResult], structure: &[StructureResult], t: &str) -> String {
    Regime::ALL
        .iter()
        .map(|&r| {
            let (q, f): (Vec<f64>, Vec<f64>) = ds
                .iter()
                .filter(|d| d.task == t && d.regime == r)
                .filter_map(|d| Some((structure_of(structure, r, d.seed)?.eps_edges.q, d.faithfulness?.mean)))
                .unzip();
            let rho = spearman(&q, &f).map_or("undefined".into(), |x| format!("{x:.3}"));
            format!("{} {rho} ({} seeds)", r.label(), q.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn specialisation(across: Option<&AcrossSeeds>) -> Verdict {
    let mut v = Verdict {
        id: "F3".into(),
        hypothesis: "Modular training gives smaller circuits but not more task specialisation (Golechha et al. 2025).".into(),
        rule: "Across seeds, against both Vanilla and L1: 'smaller' if BIMT's sparsity interval lies entirely above theirs on both tasks; 'more specialised' if BIMT's interval of circle/line circuit overlap (Jaccard) lies entirely below theirs. Supported if smaller and not more specialised; contradicted if more specialised; not supported if neither.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let Some(a) = across else { return v };
    let refs = [Regime::Vanilla, Regime::L1];
    let row = |r: Regime, t: &str| a.rows.iter().find(|x| x.regime == r && x.task == t);
    let mut smaller = true;
    let mut evidence = Vec::new();
    for t in TASKS {
        let (Some(b), Some(o0), Some(o1)) = (row(Regime::Bimt, t), row(refs[0], t), row(refs[1], t)) else { return v };
        smaller &= above(&b.sparsity, &o0.sparsity) && above(&b.sparsity, &o1.sparsity);
        evidence.push(format!(
            "{t} sparsity: BIMT {}, Vanilla {}, L1 {}",
            fmt(&b.sparsity),
            fmt(&o0.sparsity),
            fmt(&o1.sparsity)
        ));
    }
    let overlap = |r: Regime| a.structure.iter().find(|s| s.regime == r).and_then(|s| s.overlap);
    let (Some(b), Some(o0), Some(o1)) = (overlap(Regime::Bimt), overlap(refs[0]), overlap(refs[1])) else { return v };
    let specialised = above(&o0, &b) && above(&o1, &b);
    evidence.push(format!("circle/line overlap: BIMT {}, Vanilla {}, L1 {}", fmt(&b), fmt(&o0), fmt(&o1)));
    v.verdict = match (smaller, specialised) {
        (_, true) => "contradicted",
        (true, false) => "supported",
        (false, false) => "not supported",
    }
    .into();
    v.evidence = evidence.join("; ");
    v
}
