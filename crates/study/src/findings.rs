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
    let rule = "Supported if BIMT's 95% t-interval over seeds of Q (graph of the weights the eps rule keeps) lies entirely above every other regime's, and so does its interval of Q's z-score against degree-preserving rewirings (what the modules add to what sparsity and degrees alone give; STUDY §9); not supported otherwise. Q's spread over the Louvain runs (NMI of their partitions) is given beside.";
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
    let higher_q = others.iter().all(|o| above(&b.q_eps, &o.q_eps));
    let higher_z = match &b.z_eps {
        Some(bz) => others.iter().all(|o| o.z_eps.as_ref().is_some_and(|oz| above(bz, oz))),
        None => false,
    };
    v.verdict = if higher_q && higher_z { "supported" } else { "not supported" }.into();
    let opt = |x: &Option<Summary>| x.as_ref().map_or("–".into(), fmt);
    v.evidence = a
        .structure
        .iter()
        .map(|s| format!("{} Q {}, z {}, NMI {}", s.regime.label(), fmt(&s.q_eps), opt(&s.z_eps), opt(&s.nmi_eps)))
        .collect::<Vec<_>>()
        .join("; ");
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

/// STUDY §12's question: are the circuits of sparse networks (L1, BIMT)
/// more stable across resamples than Vanilla's, by every method?
pub fn sparsity_and_stability(across: Option<&AcrossSeeds>, methods: &[crate::beyond::MethodRow]) -> Verdict {
    let mut v = Verdict {
        id: "F8".into(),
        hypothesis: "Sparsity (L1, BIMT) makes circuits more stable across data resamples.".into(),
        rule: "Each comparison sets L1's or BIMT's 95% t-interval over seeds of stability (mean pairwise Jaccard of the circuits' neurons across bootstrap resamples) against Vanilla's: the discovered node circuit per task (STUDY §9) and each edge method's circuit at its size (STUDY §12). 'More stable' if the interval lies entirely above Vanilla's, 'less stable' if entirely below. Supported if more than half of the comparisons are more stable and none less; contradicted if more than half are less stable; not supported otherwise.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    // (what, sparse regime, its stability, Vanilla's)
    let mut pairs: Vec<(String, Regime, Summary, Summary)> = Vec::new();
    if let Some(a) = across {
        for t in TASKS {
            let of = |r: Regime| a.rows.iter().find(|x| x.regime == r && x.task == t).and_then(|x| x.stability);
            for r in [Regime::L1, Regime::Bimt] {
                if let (Some(s), Some(van)) = (of(r), of(Regime::Vanilla)) {
                    pairs.push((format!("node circuit, {t}"), r, s, van));
                }
            }
        }
    }
    let names = crate::judge::method_names(methods.iter().map(|m| &m.method));
    for name in &names {
        let of = |r: Regime| methods.iter().find(|m| &m.method == name && m.regime == r).and_then(|m| m.stability);
        for r in [Regime::L1, Regime::Bimt] {
            if let (Some(s), Some(van)) = (of(r), of(Regime::Vanilla)) {
                pairs.push((name.clone(), r, s, van));
            }
        }
    }
    if pairs.is_empty() {
        return v;
    }
    let more = pairs.iter().filter(|p| above(&p.2, &p.3)).count();
    let less = pairs.iter().filter(|p| above(&p.3, &p.2)).count();
    let half = pairs.len() / 2;
    v.verdict = if more > half && less == 0 {
        "supported"
    } else if less > half {
        "contradicted"
    } else {
        "not supported"
    }
    .into();
    let each: Vec<String> =
        pairs.iter().map(|(w, r, s, van)| format!("{w}: {} {} vs Vanilla {}", r.label(), fmt(s), fmt(van))).collect();
    v.evidence = format!("{more} of {} more stable, {less} less; {}", pairs.len(), each.join("; "));
    v
}

#[cfg(test)]
mod tests {
    use modcirc_bimt::Regime;
    use modcirc_metrics::Summary;

    use super::sparsity_and_stability;
    use crate::beyond::MethodRow;

    fn row(method: &str, regime: Regime, stability: f64) -> MethodRow {
        let s = |mean: f64| Summary { mean, lo: mean - 0.05, hi: mean + 0.05, n: 5 };
        MethodRow {
            method: method.into(),
            regime,
            seeds: 5,
            cpr: s(0.5),
            cmd: s(0.5),
            same_size_faithfulness: s(0.5),
            seconds: 0.1,
            curve: Vec::new(),
            agreement_rho: None,
            top_k_overlap: None,
            stability: Some(s(stability)),
            stability_seconds: Some(1.0),
        }
    }

    /// Intervals above Vanilla's on every method: supported; below on
    /// most: contradicted; overlapping: not supported; no rows: not evaluated.
    #[test]
    fn sparsity_and_stability_follows_its_rule() {
        let rows = |van: f64, l1: f64, bimt: f64| -> Vec<MethodRow> {
            ["eap", "mask"]
                .iter()
                .flat_map(|m| [row(m, Regime::Vanilla, van), row(m, Regime::L1, l1), row(m, Regime::Bimt, bimt)])
                .collect()
        };
        assert_eq!(sparsity_and_stability(None, &rows(0.5, 0.7, 0.8)).verdict, "supported");
        assert_eq!(sparsity_and_stability(None, &rows(0.8, 0.5, 0.6)).verdict, "contradicted");
        assert_eq!(sparsity_and_stability(None, &rows(0.5, 0.55, 0.9)).verdict, "not supported");
        let v = sparsity_and_stability(None, &[]);
        assert!(v.verdict.starts_with("not evaluated"), "{}", v.verdict);
    }
}
