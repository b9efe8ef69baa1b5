//! The paper's six hypotheses, each decided from a run's numbers by a
//! stated rule (STUDY §7).

use modcirc_acdc::SelectionRule;
use modcirc_bimt::Regime;
use modcirc_metrics::Summary;

use crate::paper::TASKS;
use crate::rows::{find, model0, DiscoveryResult, InferenceResult, ModelResult, SensitivityRow, Verdict};

/// The verdict of a rule whose results are missing.
pub const NOT_EVALUATED: &str = "not evaluated (results missing)";

/// `a` lies entirely below `b` (the intervals are disjoint).
fn below(a: &Summary, b: &Summary) -> bool {
    a.hi < b.lo
}

/// A mean and its interval, as the report and verdicts print them.
pub fn ci(s: &Summary, digits: usize) -> String {
    format!("{:.d$} [{:.d$}, {:.d$}]", s.mean, s.lo, s.hi, d = digits)
}

/// [`ci`], or a dash where there is no value.
pub fn ci_opt(s: &Option<Summary>, digits: usize) -> String {
    s.as_ref().map_or("–".into(), |s| ci(s, digits))
}

/// Seconds as milliseconds, with the interval.
pub fn fmt_ms(s: &Summary) -> String {
    format!("{:.2} [{:.2}, {:.2}]", s.mean * 1e3, s.lo * 1e3, s.hi * 1e3)
}

/// BIMT's discovery on task `t` and every other regime's, when all are there.
fn task_results<'a>(ds: &'a [DiscoveryResult], t: &str) -> Option<(&'a DiscoveryResult, Vec<&'a DiscoveryResult>)> {
    let others = Regime::ALL.iter().filter(|r| **r != Regime::Bimt).map(|r| find(ds, *r, t)).collect::<Option<_>>()?;
    Some((find(ds, Regime::Bimt, t)?, others))
}

/// `verdict` if every task was evaluated.
fn evaluated(per_task: &[String], verdict: &str) -> String {
    if per_task.len() == TASKS.len() { verdict } else { NOT_EVALUATED }.into()
}

/// Every verdict this run's results allow, seed 0.
pub fn verdicts(models: &[ModelResult], ds: &[DiscoveryResult], inference: &[InferenceResult]) -> Vec<Verdict> {
    let mut out = vec![rq1_h1(ds), rq1_h2(ds), rq1_h3(ds)];
    out.extend(rq2_h1(models));
    out.extend(rq2_h2(models));
    out.push(rq2_h3(inference));
    out
}

/// RQ1-H1 and RQ1-H3 on each rule the seed-0 discoveries compared
/// (`DiscoveryConfig::compare`), each discovery's metrics replaced by that
/// rule's on the same resamples. RQ1-H2 is left out: the discovery time is
/// the patching sweep's, which no rule changes.
pub fn k_sensitivity(ds: &[DiscoveryResult]) -> Vec<SensitivityRow> {
    let seed0: Vec<&DiscoveryResult> = ds.iter().filter(|d| d.seed == 0).collect();
    let mut rules: Vec<&SelectionRule> = Vec::new();
    for c in seed0.iter().flat_map(|d| &d.compared) {
        if !rules.contains(&&c.rule) {
            rules.push(&c.rule);
        }
    }
    rules
        .into_iter()
        .map(|rule| {
            let under_rule: Vec<DiscoveryResult> = seed0
                .iter()
                .filter_map(|d| {
                    let c = d.compared.iter().find(|c| &c.rule == rule)?;
                    Some(DiscoveryResult::of_metrics(
                        d.regime,
                        0,
                        &d.task,
                        [c.logit_difference, c.accuracy, c.sparsity, d.discovery_s],
                    ))
                })
                .collect();
            SensitivityRow { rule: rule.clone(), verdicts: rq1_circuit_verdicts(&under_rule) }
        })
        .collect()
}

/// RQ1-H1 and RQ1-H3, the verdicts that depend on the circuits' metrics,
/// on `ds` (for the K and ablation sensitivity rows).
pub fn rq1_circuit_verdicts(ds: &[DiscoveryResult]) -> Vec<Verdict> {
    vec![rq1_h1(ds), rq1_h3(ds)]
}

fn rq1_h1(ds: &[DiscoveryResult]) -> Verdict {
    let mut per_task = Vec::new();
    let mut all = true;
    for t in TASKS {
        let Some((b, rest)) = task_results(ds, t) else { continue };
        let ld_best = rest.iter().all(|o| below(&b.logit_difference, &o.logit_difference));
        let sp_best = rest.iter().all(|o| below(&o.sparsity, &b.sparsity));
        all &= ld_best && sp_best;
        per_task.push(format!("{t}: BIMT's logit-difference interval below all others: {ld_best}; sparsity interval above all others: {sp_best}"));
    }
    Verdict {
        id: "RQ1-H1".into(),
        hypothesis: "Modularity only helps visualise small networks and contributes marginally to circuit discovery.".into(),
        rule: "Falsified if, on both tasks, BIMT's 95% interval of circuit logit difference lies entirely below every other regime's and its sparsity interval entirely above every other regime's.".into(),
        verdict: evaluated(&per_task, if all { "falsified" } else { "not falsified" }),
        evidence: per_task.join("; "),
    }
}

fn rq1_h2(ds: &[DiscoveryResult]) -> Verdict {
    let others: Vec<Regime> = Regime::ALL.into_iter().filter(|r| *r != Regime::Bimt).collect();
    let mut per_task = Vec::new();
    let mut faster = true;
    for t in TASKS {
        let Some((b, rest)) = task_results(ds, t) else { continue };
        faster &= rest.iter().all(|o| below(&b.discovery_s, &o.discovery_s));
        let rest: Vec<String> = others
            .iter()
            .filter_map(|r| find(ds, *r, t).map(|o| format!("{} {}", r.label(), fmt_ms(&o.discovery_s))))
            .collect();
        per_task.push(format!("{t}: BIMT {} ms, others {}", fmt_ms(&b.discovery_s), rest.join(", ")));
    }
    Verdict {
        id: "RQ1-H2".into(),
        hypothesis: "Modularity narrows the search space for automated circuit discovery, speeding it up.".into(),
        rule: "Supported if, on both tasks, BIMT's 95% interval of discovery time lies entirely below every other regime's; falsified otherwise.".into(),
        verdict: evaluated(&per_task, if faster { "supported" } else { "falsified" }),
        evidence: per_task.join("; "),
    }
}

fn rq1_h3(ds: &[DiscoveryResult]) -> Verdict {
    let mut per_task = Vec::new();
    let mut hampered = false;
    for t in TASKS {
        let (Some(b), Some(l1)) = (find(ds, Regime::Bimt, t), find(ds, Regime::L1, t)) else { continue };
        let worse_ld = below(&l1.logit_difference, &b.logit_difference);
        let worse_acc = below(&b.accuracy, &l1.accuracy);
        hampered |= worse_ld || worse_acc;
        per_task.push(format!(
            "{t}: logit difference BIMT {} vs L1 {}; circuit accuracy BIMT {} vs L1 {}",
            ci(&b.logit_difference, 3),
            ci(&l1.logit_difference, 3),
            ci(&b.accuracy, 3),
            ci(&l1.accuracy, 3)
        ));
    }
    Verdict {
        id: "RQ1-H3".into(),
        hypothesis: "Modular training hampers the ability to find optimal circuits.".into(),
        rule: "Not falsified if, on some task, BIMT's circuit is worse than L1's (the same penalty without locality or swaps): its logit-difference interval entirely above L1's, or its accuracy interval entirely below; falsified otherwise.".into(),
        verdict: evaluated(&per_task, if hampered { "not falsified" } else { "falsified" }),
        evidence: per_task.join("; "),
    }
}

fn rq2_h1(models: &[ModelResult]) -> Option<Verdict> {
    let (local, l1) = (model0(models, Regime::L1Local)?, model0(models, Regime::L1)?);
    let ratio = local.heap_mib() / l1.heap_mib().max(1e-9);
    let all: Vec<String> = Regime::ALL
        .iter()
        .filter_map(|r| model0(models, *r).map(|m| format!("{} {:.2} MiB", r.label(), m.heap_mib())))
        .collect();
    Some(Verdict {
        id: "RQ2-H1".into(),
        hypothesis: "Modular training needs more memory, for the coordinates it stores.".into(),
        rule: "Falsified if the peak training heap (above the loaded data set) of L1+Local is within 10% of L1's."
            .into(),
        verdict: if (ratio - 1.0).abs() <= 0.10 { "falsified" } else { "not falsified" }.into(),
        evidence: format!("L1+Local / L1 = {ratio:.3}; {}", all.join(", ")),
    })
}

fn rq2_h2(models: &[ModelResult]) -> Option<Verdict> {
    let (b, l1) = (model0(models, Regime::Bimt)?, model0(models, Regime::L1)?);
    let (bt, lt) = (&b.meta.timing, &l1.meta.timing);
    // The re-timing where this run made one (the two trainings alternated
    // with nothing else of the run beside them, the least round: other
    // jobs and the machine's load fall on both alike); else the training
    // thread's CPU time, which other jobs change less than wall time; else
    // wall time.
    let retimed = b.retimed.as_ref().zip(l1.retimed.as_ref()).filter(|(b, l)| b.steps == l.steps);
    let (bv, lv, measure) = match (retimed, bt.cpu_s, lt.cpu_s) {
        (Some((rb, rl)), _, _) => (
            rb.best(),
            rl.best(),
            format!(
                "{} steps and their swaps of each, re-timed after the units one regime at a time, alternated, the \
                 least of {} rounds",
                rb.steps,
                rb.seconds.len()
            ),
        ),
        (None, Some(b), Some(l)) => (b, l, "CPU time of the training thread over its steps and swaps".into()),
        _ => (bt.total_s, lt.total_s, "training wall time (no CPU time recorded)".into()),
    };
    let ratio = bv / lv.max(1e-9);
    Some(Verdict {
        id: "RQ2-H2".into(),
        hypothesis: "Modular training takes much longer, because of the distance calculations.".into(),
        rule: "Supported if BIMT's training time exceeds L1's by more than 10%, on the same number of optimizer steps \
               and swaps re-timed after the units, the two alternated, the least of the rounds (other jobs and the \
               machine's load fall on both alike; the training thread's CPU time where no re-timing was made, wall \
               time where neither was recorded); falsified otherwise."
            .into(),
        verdict: if ratio > 1.10 { "supported" } else { "falsified" }.into(),
        evidence: format!(
            "on {measure}: BIMT {bv:.3} s vs L1 {lv:.3} s, ratio {ratio:.3} (wall: BIMT {:.1} s, optimizer {:.1} s, \
             relocation {:.2} s; L1 {:.1} s, optimizer {:.1} s)",
            bt.total_s, bt.optimizer_s, bt.relocation_s, lt.total_s, lt.optimizer_s
        ),
    })
}

fn rq2_h3(inference: &[InferenceResult]) -> Verdict {
    let mut disjoint = Vec::new();
    for (i, a) in inference.iter().enumerate() {
        for b in &inference[i + 1..] {
            if below(&a.batched_500_s, &b.batched_500_s) || below(&b.batched_500_s, &a.batched_500_s) {
                disjoint.push(format!("{} vs {}", a.regime.label(), b.regime.label()));
            }
        }
    }
    let verdict = match (inference.len(), disjoint.is_empty()) {
        (0 | 1, _) => NOT_EVALUATED,
        (_, true) => "not falsified",
        (_, false) => "falsified",
    };
    let times: Vec<String> =
        inference.iter().map(|i| format!("{} {:.3} µs", i.regime.label(), i.batched_500_s.mean * 1e6)).collect();
    Verdict {
        id: "RQ2-H3".into(),
        hypothesis: "Inference times do not differ between the regimes, as inference is one forward pass.".into(),
        rule:
            "Falsified if the 95% intervals of batched (500) per-image inference time of any two regimes are disjoint."
                .into(),
        verdict: verdict.into(),
        evidence: format!(
            "{}; disjoint pairs: {}",
            times.join(", "),
            if disjoint.is_empty() { "none".to_string() } else { disjoint.join(", ") }
        ),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn s(mean: f64, half: f64) -> Summary {
        Summary { mean, lo: mean - half, hi: mean + half, n: 50 }
    }

    /// A discovery whose metrics are `ld`, `sparsity`, `time` (ms) and `acc`, each ± a small half-width.
    fn disc(regime: Regime, task: &str, ld: f64, sparsity: f64, time: f64, acc: f64) -> DiscoveryResult {
        DiscoveryResult::of_metrics(
            regime,
            0,
            task,
            [s(ld, 0.01), s(acc, 0.01), s(sparsity, 0.001), s(time * 1e-3, 1e-4)],
        )
    }

    /// A seed-0 model of `regime` whose training took `cpu` seconds of CPU
    /// time, re-timed at `retimed` seconds per round where given.
    fn trained(regime: Regime, cpu: f64, retimed: Option<&[f64]>) -> ModelResult {
        let timing =
            modcirc_bimt::TrainTiming { total_s: cpu, optimizer_s: cpu, cpu_s: Some(cpu), ..Default::default() };
        ModelResult {
            regime,
            seed: 0,
            path: String::new(),
            sha256: String::new(),
            file_bytes: 0,
            cached: false,
            meta: modcirc_bimt::checkpoint::TrainMeta {
                schema: 1,
                crate_version: String::new(),
                config: modcirc_bimt::TrainConfig::new(regime),
                train_accuracy: 0.9,
                test_accuracy: 0.9,
                timing,
                peak_heap_bytes: None,
                heap_at_start_bytes: None,
                peak_rss_bytes: None,
                device: "cpu".into(),
                device_memory: None,
                data_dir: String::new(),
                data_checksums: Vec::new(),
                history: Vec::new(),
                weights_sha256: None,
            },
            retimed: retimed.map(|r| crate::rows::Retimed { steps: 2_000, seconds: r.to_vec() }),
        }
    }

    #[test]
    fn rq2_h2_rests_on_the_re_timing_where_there_is_one() {
        // CPU times that a busy machine moved past the 10% rule, and a
        // re-timing whose least rounds are even.
        let retimed =
            [trained(Regime::Bimt, 15.0, Some(&[0.70, 0.61, 0.66])), trained(Regime::L1, 12.0, Some(&[0.62, 0.60]))];
        let v = rq2_h2(&retimed).unwrap();
        assert_eq!(v.verdict, "falsified", "{}", v.evidence);
        assert!(v.evidence.contains("re-timed") && v.evidence.contains("ratio 1.017"), "{}", v.evidence);
        // Without a re-timing, the CPU times decide.
        let cpu = [trained(Regime::Bimt, 15.0, None), trained(Regime::L1, 12.0, None)];
        let v = rq2_h2(&cpu).unwrap();
        assert_eq!(v.verdict, "supported", "{}", v.evidence);
        assert!(v.evidence.contains("CPU time"), "{}", v.evidence);
        // A re-timing of one of the two is not a comparison.
        let one = [trained(Regime::Bimt, 15.0, Some(&[0.6])), trained(Regime::L1, 12.0, None)];
        assert!(rq2_h2(&one).unwrap().evidence.contains("CPU time"));
    }

    fn verdict<'a>(v: &'a [Verdict], id: &str) -> &'a str {
        &v.iter().find(|v| v.id == id).unwrap_or_else(|| panic!("{id} missing")).verdict
    }

    /// BIMT at `bimt`, every other regime at `other`, on both tasks.
    fn study(bimt: (f64, f64, f64, f64), other: (f64, f64, f64, f64)) -> Vec<DiscoveryResult> {
        let mut ds = Vec::new();
        for t in TASKS {
            for r in Regime::ALL {
                let (ld, sp, time, acc) = if r == Regime::Bimt { bimt } else { other };
                ds.push(disc(r, t, ld, sp, time, acc));
            }
        }
        ds
    }

    #[test]
    fn a_bimt_better_on_every_count_falsifies_h1_and_supports_h2() {
        let ds = study((0.3, 0.99, 5.0, 0.95), (0.6, 0.95, 9.0, 0.8));
        let v = verdicts(&[], &ds, &[]);
        assert_eq!(verdict(&v, "RQ1-H1"), "falsified");
        assert_eq!(verdict(&v, "RQ1-H2"), "supported");
        assert_eq!(verdict(&v, "RQ1-H3"), "falsified");
    }

    #[test]
    fn overlapping_intervals_decide_nothing_and_a_worse_bimt_keeps_h3() {
        // Logit differences 0.3 ± 0.01 vs 0.305 ± 0.01 overlap: no regime is "below".
        let mut ds = study((0.3, 0.99, 9.0, 0.95), (0.305, 0.95, 9.0, 0.8));
        let v = verdicts(&[], &ds, &[]);
        assert_eq!(verdict(&v, "RQ1-H1"), "not falsified");
        assert_eq!(verdict(&v, "RQ1-H2"), "falsified");
        // BIMT's line circuit worse than L1's: H3 stands.
        let l1_line = ds.iter().position(|d| d.regime == Regime::L1 && d.task == "line").unwrap();
        ds[l1_line].logit_difference = s(0.1, 0.01);
        assert_eq!(verdict(&verdicts(&[], &ds, &[]), "RQ1-H3"), "not falsified");
    }

    /// A compared rule's metrics, intervals as in [`disc`].
    fn compared(k: usize, ld: f64, sparsity: f64, accuracy: Summary) -> modcirc_acdc::RuleSummary {
        modcirc_acdc::RuleSummary {
            rule: SelectionRule::top_k(k),
            kept: vec![],
            dead_kept: vec![],
            logit_difference: s(ld, 0.01),
            accuracy,
            sparsity: s(sparsity, 0.001),
            faithfulness: None,
            faithfulness_ablated: None,
        }
    }

    #[test]
    fn k_sensitivity_decides_h1_and_h3_again_on_each_compared_rule() {
        // BIMT's circuit is the best at the study's K, and the worst at K = 5.
        let mut ds = study((0.3, 0.99, 5.0, 0.95), (0.6, 0.95, 9.0, 0.8));
        for d in &mut ds {
            let ld5 = if d.regime == Regime::Bimt { 0.7 } else { 0.5 };
            d.compared = vec![
                compared(5, ld5, 0.98, d.accuracy),
                compared(15, d.logit_difference.mean, d.sparsity.mean, d.accuracy),
            ];
        }
        let rows = k_sensitivity(&ds);
        assert_eq!(rows.iter().map(|r| r.rule.clone()).collect::<Vec<_>>(), [5, 15].map(SelectionRule::top_k));
        assert_eq!(verdict(&rows[0].verdicts, "RQ1-H1"), "not falsified");
        assert_eq!(verdict(&rows[0].verdicts, "RQ1-H3"), "not falsified", "BIMT's K = 5 circuit is worse than L1's");
        // At K = 15 the compared metrics are the study's: the same verdicts.
        let main = verdicts(&[], &ds, &[]);
        for id in ["RQ1-H1", "RQ1-H3"] {
            assert_eq!(verdict(&rows[1].verdicts, id), verdict(&main, id), "{id}");
        }
        assert_eq!(verdict(&rows[1].verdicts, "RQ1-H1"), "falsified");
        // Only seed 0 (the paper's design) is judged.
        ds.iter_mut().for_each(|d| d.seed = 1);
        assert!(k_sensitivity(&ds).is_empty());
    }

    #[test]
    fn missing_results_are_not_evaluated_rather_than_vacuously_decided() {
        let v = verdicts(&[], &[], &[]);
        for id in ["RQ1-H1", "RQ1-H2", "RQ1-H3", "RQ2-H3"] {
            assert_eq!(verdict(&v, id), NOT_EVALUATED, "{id}");
        }
        let mut ds = study((0.3, 0.99, 5.0, 0.95), (0.6, 0.95, 9.0, 0.8));
        ds.retain(|d| !(d.regime == Regime::L1Swap && d.task == "circle"));
        assert_eq!(verdict(&verdicts(&[], &ds, &[]), "RQ1-H1"), NOT_EVALUATED);
    }
}
