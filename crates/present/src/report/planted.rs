//! "Does each method find the planted circuit?" (STUDY §11): the AUROC
//! table (methods x regimes), the planted models' quality, the Boolean
//! suite's counts and the findings.

use std::fmt::Write as _;

use modcirc_metrics::Summary;
use modcirc_study::planted_results::PlantedResults;
use modcirc_study::results::Results;

use super::{verdict_list, Table};

fn ci(s: &Summary) -> String {
    format!("{:.3} [{:.3}, {:.3}]", s.mean, s.lo, s.hi)
}

/// The suite's tables, for REPORT.md and REPORT.html alike.
pub fn planted_tables(p: &PlantedResults) -> Vec<Table> {
    let seeds = p.models.iter().map(|m| m.seed).max().map_or(0, |s| s + 1);
    let auroc = Table {
        title: "Node AUROC against the planted circuit".into(),
        note: format!(
            "Per method and regime, over every planted model: mean over seeds of each planted model's node AUROC (the mean of its three tasks), with a 95% t-interval over {seeds} seed(s) (with few seeds an interval can pass 0 or 1); *live*: the same against the live truth (the blocks' neurons with an outgoing weight the eps rule keeps, and the kept edges among them: no method can rank a neuron that does nothing); edge AUROC, and the precision and recall of the edges selected, for the edge methods; precision and recall of the neurons each method selects (patching and attribution: the {k} strongest per layer; EAP: the neurons of its fewest top-|s| edges reaching faithfulness {target}; ACDC: the neurons its edges touch).",
            k = modcirc_acdc::DEFAULT_K,
            target = modcirc_study::planted::EAP_TARGET_FAITHFULNESS
        ),
        header: [
            "method",
            "regime",
            "node AUROC",
            "live node AUROC",
            "edge AUROC",
            "live edge AUROC",
            "node precision",
            "node recall",
            "edge precision",
            "edge recall",
        ]
        .map(String::from)
        .to_vec(),
        rows: p
            .auroc
            .iter()
            .map(|a| {
                vec![
                    a.method.clone(),
                    a.regime.label().into(),
                    ci(&a.node_auroc),
                    a.live_node_auroc.as_ref().map_or("—".into(), ci),
                    a.edge_auroc.as_ref().map_or("—".into(), ci),
                    a.live_edge_auroc.as_ref().map_or("—".into(), ci),
                    ci(&a.node_precision),
                    ci(&a.node_recall),
                    a.edge_precision.as_ref().map_or("—".into(), ci),
                    a.edge_recall.as_ref().map_or("—".into(), ci),
                ]
            })
            .collect(),
    };
    let quality = Table {
        title: "The planted models".into(),
        note: "Task accuracy on test composites, interchange intervention accuracy (IIA) and strictness failure (the answer changes when a random half of the free neurons is patched), each over random trials, then over seeds.".into(),
        header: ["regime", "task accuracy", "IIA", "strictness failure"].map(String::from).to_vec(),
        rows: p
            .quality
            .iter()
            .map(|q| vec![q.regime.label().into(), ci(&q.task_accuracy), ci(&q.iia), ci(&q.strictness_failure)])
            .collect(),
    };
    let mut header: Vec<String> =
        ["regime", "networks", "exact", "valid (mean)", "valid (median)", "minimal (mean)"].map(String::from).to_vec();
    let names = p.boolean_rows.first().map_or(&[][..], |b| &b.methods[..]);
    header.extend(names.iter().map(|(m, _, _)| format!("{m}: valid / minimal")));
    let boolean = Table {
        title: "Boolean networks: every circuit enumerated".into(),
        note: "Networks that reached zero error on their truth table (\"exact\"); per exact network the number of valid circuits (every other hidden neuron at its mean reproduces the table) and of minimal ones; per method the share of exact networks whose circuit (the shortest valid prefix of its ranking; ACDC: the neurons its edges touch) is valid and is minimal.".into(),
        header,
        rows: p
            .boolean_rows
            .iter()
            .map(|b| {
                let mut row = vec![
                    b.regime.label().into(),
                    b.networks.to_string(),
                    b.exact.to_string(),
                    format!("{:.2}", b.valid_mean),
                    format!("{}", b.valid_median),
                    format!("{:.2}", b.minimal_mean),
                ];
                row.extend(b.methods.iter().map(|(_, v, m)| format!("{v:.2} / {m:.2}")));
                row
            })
            .collect(),
    };
    vec![auroc, quality, boolean]
}

/// The section of REPORT.md.
pub fn section(s: &mut String, r: &Results) {
    if let Some(p) = &r.planted {
        let _ = writeln!(s, "## Does each method find the planted circuit? (STUDY §11)\n");
        write_section(s, p);
    }
}

/// The section's body (REPORT.md's, or PLANTED.md's alone).
pub fn write_section(s: &mut String, p: &PlantedResults) {
    let _ = writeln!(
        s,
        "MNIST pointer value retrieval models trained by interchange intervention so that known blocks of neurons implement the pointer and each value quadrant; on the task of value quadrant q the truth is q's blocks and the edges among them. Small Boolean networks have every circuit enumerated. This run spent {:.1} s on the suite's units (units read from the cache take none).\n",
        p.seconds
    );
    let _ = writeln!(
        s,
        "Under the penalised regimes training cuts part of every block off (its outgoing weights shrink to nothing): such a neuron does nothing, so no method can tell it from the untouched neurons outside the truth, and the ROC curves rise to the share of live true neurons, then run through the ties along the diagonal.\n"
    );
    for t in planted_tables(p) {
        let _ = writeln!(s, "### {}\n\n{}\n", t.title, t.note);
        s.push_str(&t.markdown());
        s.push('\n');
    }
    let _ = writeln!(s, "### Findings\n");
    let _ = writeln!(s, "{}\n", excluded_line(p));
    verdict_list(s, &p.findings);
    s.push('\n');
}

/// Which planted models P1 and P3 leave out, and why (STUDY §11).
fn excluded_line(p: &PlantedResults) -> String {
    use modcirc_study::planted_results::{MAX_STRICTNESS_FAILURE, MIN_IIA};
    let bar = format!("IIA >= {MIN_IIA} and strictness failure <= {MAX_STRICTNESS_FAILURE}");
    if p.excluded.is_empty() {
        return format!("Every planted model meets {bar}: P1 and P3 judge them all.");
    }
    let each: Vec<String> = p
        .excluded
        .iter()
        .map(|e| {
            format!(
                "{} seed {} (IIA {:.3}, strictness failure {:.3})",
                e.regime.label(),
                e.seed,
                e.iia,
                e.strictness_failure
            )
        })
        .collect();
    format!(
        "A planted model is truth only where its mechanism holds ({bar}); P1 and P3 leave out {} of {} models, reported above with the rest: {}.",
        p.excluded.len(),
        p.models.len(),
        each.join(", ")
    )
}
