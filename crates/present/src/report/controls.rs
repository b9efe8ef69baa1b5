//! REPORT.md's STUDY §10 sections: random circuits of the same size,
//! alternative circuits, the any-digit control, ablation sensitivity and the
//! tests of differences.

use std::fmt::Write as _;

use modcirc_acdc::{AgainstRandom, Pool};
use modcirc_bimt::Regime;
use modcirc_report::markdown_table;
use modcirc_study::controls::ControlsResult;
use modcirc_study::judged_controls::{SPECIFICITY_MARGIN, TEST_ALPHA};
use modcirc_study::paper::TASKS;
use modcirc_study::results::Results;
use modcirc_study::verdicts::ci_opt;

use super::Table;

/// Every §10 section the run has data for.
pub(super) fn sections(s: &mut String, r: &Results) {
    if r.controls.is_empty() {
        return;
    }
    let c0: Vec<&ControlsResult> = TASKS
        .iter()
        .flat_map(|t| Regime::ALL.iter().map(move |reg| (*t, *reg)))
        .filter_map(|(t, reg)| r.controls.iter().find(|c| c.regime == Some(reg) && c.seed == Some(0) && c.task == t))
        .collect();
    random_section(s, &c0);
    alternatives_section(s, &c0);
    any_digit_section(s, &c0);
    ablation_section(s, r);
    tests_section(s, r);
}

fn label(c: &ControlsResult) -> &'static str {
    c.regime.map_or("unknown", Regime::label)
}

fn against(a: Option<&AgainstRandom>) -> [String; 3] {
    match a {
        Some(a) => [
            format!("{:.3}", a.circuit),
            format!("{:.3} [{:.3}, {:.3}]", a.random.mean, a.random.lo, a.random.hi),
            format!("{:.0}%, p = {:.3}", a.percentile, a.p_value),
        ],
        None => ["–".into(), "–".into(), "–".into()],
    }
}

fn random_section(s: &mut String, c0: &[&ControlsResult]) {
    let r = c0.first().map_or(0, |c| c.settings.random);
    let _ = writeln!(s, "## Controls: random circuits of the same size (STUDY §10)\n");
    let _ = writeln!(s, "Seed-0 models, each task's full pair set. {r} random circuits per row with the discovered circuit's number of neurons per hidden layer, drawn from the layer's live neurons (dead ones only where too few are live) and, in the last columns, from all of its neurons, with their eps edges, judged like the circuit. Percentile: the share of random circuits strictly worse than the circuit; p = (1 + #random at least as good) / (1 + R), so the smallest possible p is {:.4}. Faithfulness and accuracy higher is better, logit difference lower.\n", 1.0 / (1.0 + r as f64));
    let rows: Vec<Vec<String>> = c0
        .iter()
        .map(|c| {
            let live = c.against(Pool::Live);
            let all = c.against(Pool::All);
            let [f, fr, fp] = against(live.and_then(|a| a.faithfulness.as_ref()));
            let [ld, ldr, ldp] = against(live.map(|a| &a.logit_difference));
            let [_, afr, afp] = against(all.and_then(|a| a.faithfulness.as_ref()));
            vec![c.task.clone(), label(c).into(), f, fr, fp, ld, ldr, ldp, afr, afp]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "task",
            "model",
            "faithfulness",
            "random (live): mean [95% range]",
            "percentile, p",
            "logit difference",
            "random (live)",
            "percentile, p",
            "random (all neurons): faithfulness",
            "percentile, p",
        ],
        &rows,
    ));
    s.push('\n');
}

fn alternatives_section(s: &mut String, c0: &[&ControlsResult]) {
    let Some(first) = c0.first() else { return };
    let _ = writeln!(s, "## Controls: alternative circuits (STUDY §10)\n");
    let _ = writeln!(s, "After the discovered circuit C, the best circuit disjoint from it by the same scores and tie rule (the same number of live neurons per hidden layer), then the best disjoint from both, up to {}; fewer where a layer runs out of live neurons. \"Faithful\" counts those reaching faithfulness {}: a model with several has no unique circuit for the task at that size.\n", first.settings.alternatives, first.settings.faithful);
    let rows: Vec<Vec<String>> = c0
        .iter()
        .map(|c| {
            let f: Vec<String> = c
                .alternatives
                .iter()
                .map(|a| a.metrics.faithfulness.map_or("–".into(), |f| format!("{f:.3}")))
                .collect();
            vec![
                c.task.clone(),
                label(c).into(),
                c.circuit.faithfulness.map_or("–".into(), |f| format!("{f:.3}")),
                if f.is_empty() { "none".into() } else { f.join(", ") },
                format!("{} of {}", c.faithful_alternatives, c.alternatives.len()),
            ]
        })
        .collect();
    s.push_str(&markdown_table(&["task", "model", "C", "C2, C3, … faithfulness", "faithful"], &rows));
    s.push('\n');
}

fn any_digit_section(s: &mut String, c0: &[&ControlsResult]) {
    let _ = writeln!(s, "## Controls: the any-digit circuit (STUDY §10)\n");
    let _ = writeln!(s, "The same discovery on as many pairs of random test images whose predicted classes differ, with the answer metric on the model's own predictions, m = L[pred(clean)] − L[pred(corrupted)]. It is no task of the study: what a circuit of the same size reaches on any pair of digits. Where it comes within {SPECIFICITY_MARGIN} of the task's circuit (or above), the task's circuit is not specific to its task (a finding below).\n");
    let rows: Vec<Vec<String>> = c0
        .iter()
        .map(|c| {
            let f = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
            vec![
                c.task.clone(),
                label(c).into(),
                f(c.circuit.faithfulness),
                f(c.any_digit.circuit.faithfulness),
                ci_opt(&c.any_digit.faithfulness, 3),
                c.any_digit.kept.iter().map(|k| k.to_string()).collect::<Vec<_>>().join("/"),
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &["task", "model", "task circuit", "any-digit circuit", "any-digit over resamples", "kept per layer"],
        &rows,
    ));
    s.push('\n');
}

fn ablation_section(s: &mut String, r: &Results) {
    if r.ablation_sensitivity.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Controls: ablation sensitivity (STUDY §10)\n");
    let _ = writeln!(s, "RQ1-H1 and RQ1-H3 decided again with each seed-0 discovery's resample circuits judged under another ablation (the study's is {}). The patching scores do not depend on the ablation, so the circuits are the same neurons under every ablation (Jaccard overlap 1 by construction); only their metrics change.\n", r.discover_flags.config.ablation);
    let rows: Vec<Vec<String>> = r
        .ablation_sensitivity
        .iter()
        .map(|row| {
            let mut cells = vec![row.ablation.to_string()];
            cells.extend(row.verdicts.iter().map(|v| v.verdict.clone()));
            cells
        })
        .collect();
    s.push_str(&markdown_table(&["ablation", "RQ1-H1", "RQ1-H3"], &rows));
    s.push('\n');
}

fn tests_section(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Tests of differences over seeds (STUDY §10)\n");
    match differences_table(r) {
        None => {
            let _ = writeln!(s, "Not run: each regime needs at least two seeds (a run of two seeds or more).\n");
        }
        Some(t) => {
            let _ = writeln!(s, "{}\n", t.note);
            s.push_str(&t.markdown());
            s.push('\n');
        }
    }
}

/// The tests of differences over seeds (STUDY §10), for REPORT.md and
/// REPORT.html alike; `None` where none ran.
pub fn differences_table(r: &Results) -> Option<Table> {
    if r.differences.is_empty() {
        return None;
    }
    let mut note = format!("For each task and RQ1 metric, BIMT against each other regime over seeds (each seed's bootstrap mean): the exact permutation test of the difference of means over every split of the pooled seeds, one-sided in the direction the metric's hypothesis's rule tests (*BIMT <* or *BIMT >*; the two-sided p beside it), then Holm's correction within each metric's family (its regimes × tasks), not over every test at once. *d*: the difference in pooled standard deviations, positive in the tested direction (– where neither side varies); *seeds needed*: the seeds per regime at which a difference of that size would be called at {TEST_ALPHA} in its family (the smallest attainable p and the normal approximation of the test both below it; – where it is not in the tested direction).");
    if let Some(d) = r.differences.iter().max_by_key(|d| d.seeds) {
        if let Some(floor) = d.smallest_p_holm {
            let _ = write!(
                note,
                " With {} + {} seeds the smallest Holm-adjusted p a family of {} tests can give is {floor:.4}: {}.",
                d.seeds[0],
                d.seeds[1],
                r.differences.iter().filter(|t| t.metric == d.metric).count(),
                if floor < TEST_ALPHA {
                    "a complete separation of the seeds is called"
                } else {
                    "no difference can be called, however clear, without more seeds"
                }
            );
        }
    }
    let called: Vec<String> = r
        .differences
        .iter()
        .filter(|d| d.p_holm < TEST_ALPHA)
        .map(|d| format!("{} {} vs {}", d.task, d.metric, d.other.label()))
        .collect();
    let _ = write!(
        note,
        " Called at {TEST_ALPHA} after correction: {}.",
        if called.is_empty() { "none".into() } else { called.join(", ") }
    );
    Some(Table {
        title: "Tests of differences over seeds (STUDY §10)".into(),
        note,
        header: [
            "family",
            "task",
            "metric",
            "tested",
            "vs",
            "BIMT",
            "other",
            "seeds",
            "d",
            "p (one-sided)",
            "p (two-sided)",
            "p (Holm, family)",
            "seeds needed",
        ]
        .map(String::from)
        .to_vec(),
        rows: difference_rows(r),
    })
}

/// One row per test of differences, as the report's table shows it.
fn difference_rows(r: &Results) -> Vec<Vec<String>> {
    r.differences
        .iter()
        .map(|d| {
            let side = match d.alternative {
                modcirc_metrics::Alternative::Greater => "BIMT >",
                modcirc_metrics::Alternative::Less => "BIMT <",
                modcirc_metrics::Alternative::TwoSided => "≠",
            };
            vec![
                d.hypothesis.clone(),
                d.task.clone(),
                d.metric.clone(),
                side.into(),
                d.other.label().into(),
                format!("{:.4}", d.bimt_mean),
                format!("{:.4}", d.other_mean),
                format!("{}+{}", d.seeds[0], d.seeds[1]),
                d.effect.map_or("–".into(), |e| format!("{e:.2}")),
                format!("{:.4}", d.p_one_sided),
                format!("{:.4}", d.p),
                format!("{:.4}", d.p_holm),
                d.seeds_needed.map_or("–".into(), |n| n.to_string()),
            ]
        })
        .collect()
}
