//! `REPORT.md` and `table3.csv`, from the run's results.

use std::fmt::Write as _;
use std::path::Path;

use modcirc_bimt::Regime;
use modcirc_metrics::Summary;
use modcirc_report::{csv_table, markdown_table};

use crate::figures::fig2_stem;
use modcirc_study::discovery::{
    ACCURACY_MEANS, FAITHFULNESS_ABOVE_ONE, FAITHFULNESS_MEANS, LOGIT_DIFFERENCE_MEANS, SPARSITY_MEANS,
};
use modcirc_study::paper::{PaperRow, PAPER_TABLE3, TASKS};
use modcirc_study::results::{find, model0, DiscoveryResult, Results};
use modcirc_study::verdicts::{ci, ci_opt, fmt_ms};

mod analyses;
use analyses::{across_seeds, beyond_section, structure_section};

mod controls;
pub mod planted;

const TABLE3_HEADER: [&str; 25] = [
    "task",
    "model",
    "logit_difference",
    "ld_lo",
    "ld_hi",
    "paper_logit_difference",
    "paper_ld_half_width",
    "ld_minus_paper",
    "discovery_s",
    "time_lo",
    "time_hi",
    "paper_discovery_s",
    "paper_time_half_width",
    "sparsity",
    "sparsity_lo",
    "sparsity_hi",
    "paper_sparsity",
    "paper_sparsity_half_width",
    "sparsity_minus_paper",
    "circuit_accuracy",
    "accuracy_lo",
    "accuracy_hi",
    "model_accuracy",
    "model_accuracy_lo",
    "model_accuracy_hi",
];

/// A table of the report, as REPORT.md and REPORT.html both show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Table {
    /// Its title.
    pub title: String,
    /// What it shows, in a sentence or two.
    pub note: String,
    /// Column names.
    pub header: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let header: Vec<&str> = self.header.iter().map(String::as_str).collect();
        markdown_table(&header, &self.rows)
    }
}

/// The tables REPORT.html shows beside Table 3: across seeds, K
/// sensitivity, network structure and modularity, STUDY §12's methods, the
/// tests of differences, and the planted suite's.
pub fn html_tables(r: &Results) -> Vec<Table> {
    let mut t: Vec<Table> = analyses::across_seeds_table(r).into_iter().collect();
    t.extend(k_sensitivity_tables(r));
    t.extend(analyses::structure_table(r));
    t.extend(analyses::methods_table_data(r));
    t.extend(controls::differences_table(r));
    if let Some(p) = &r.planted {
        t.extend(planted::planted_tables(p));
    }
    t
}

/// Table 3: ours (mean, lo, hi) next to the paper's (mean, half-width), as CSV.
pub fn table3_csv(r: &Results) -> String {
    let rows: Vec<Vec<String>> = PAPER_TABLE3
        .iter()
        .filter_map(|row| {
            let d = find(&r.discoveries, row.regime, row.task)?;
            let f = |x: f64| format!("{x:.6}");
            // Ours as mean, lo, hi; the paper's as mean, half-width.
            let ours = |s: &Summary| [f(s.mean), f(s.lo), f(s.hi)];
            let paper = |(mean, half): (f64, f64)| [f(mean), f(half)];
            let mut cells = vec![row.task.to_string(), row.regime.label().to_string()];
            cells.extend(ours(&d.logit_difference));
            cells.extend(paper(row.logit_difference));
            cells.push(f(d.logit_difference.mean - row.logit_difference.0));
            cells.extend(ours(&d.discovery_s));
            cells.extend(paper(row.discovery_s));
            cells.extend(ours(&d.sparsity));
            cells.extend(paper(row.sparsity));
            cells.push(f(d.sparsity.mean - row.sparsity.0));
            cells.extend(ours(&d.accuracy));
            // The model's own accuracy on the same resamples' images: the circuit's reference.
            cells.extend(d.model_accuracy.as_ref().map_or([String::new(), String::new(), String::new()], ours));
            Some(cells)
        })
        .collect();
    csv_table(&TABLE3_HEADER, &rows)
}

/// The whole report, in Markdown.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    header(&mut s, r);
    table3(&mut s, r);
    dead_and_ties(&mut s, r);
    k_sensitivity_section(&mut s, r);
    training_and_inference(&mut s, r);
    across_seeds(&mut s, r);
    structure_section(&mut s, r);
    if !r.beyond.is_empty() {
        s.push_str(&beyond_section(r));
    }
    controls::sections(&mut s, r);
    planted::section(&mut s, r);
    verdicts_and_figures(&mut s, r);
    differences(&mut s, r);
    s
}

/// The title, the run's settings and its environment.
fn header(s: &mut String, r: &Results) {
    let _ = writeln!(s, "# modcirc: BIMT and automated circuit discovery, reproduced\n");
    let _ = writeln!(
        s,
        "Profile `{}`: {} training steps per model, {} bootstrap resamples of {} pairs, circuit neurons by {}, eps = {}, {} ablation, {} split. \
         Everything below was measured by this run (`results.json` holds every number; `discover/*.json` every pair, score and resample). [`REPORT.html`](REPORT.html), beside this file, shows every model's circuits to explore in a browser, offline.\n",
        r.profile, r.settings.steps, r.settings.bootstraps, r.settings.sample, r.discover_flags.config.selection,
        r.discover_flags.config.eps, r.discover_flags.config.ablation, r.discover_flags.split
    );
    let _ = writeln!(s, "## Environment\n");
    let e = &r.environment;
    let _ = writeln!(s, "- CPU: {} ({} logical CPUs); device: {}", e.cpu, e.logical_cpus, e.device);
    let _ = writeln!(
        s,
        "- OS: {}; {}; modcirc {} (trainer revision {}), commit {}",
        e.os, e.rustc, e.crate_version, e.trainer_revision, e.git_commit
    );
    let stages: Vec<String> = r.stage_seconds.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect();
    let _ = writeln!(
        s,
        "- Wall time: {:.1} s in all; stages run now (cached work not counted): {}\n",
        r.total_seconds,
        stages.join(", ")
    );
    where_the_time_goes(s, r);
}

/// Each kind of unit's time, so that the next slow step is seen at once.
fn where_the_time_goes(s: &mut String, r: &Results) {
    if r.unit_times.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "Where the time went: the units computed now, each timed on its own job (as many as the run's jobs ran side by side, \
         so the totals add up to more than the wall time; cached units cost nothing).\n"
    );
    let rows: Vec<Vec<String>> = r
        .unit_times
        .iter()
        .map(|u| vec![u.kind.clone(), u.units.to_string(), format!("{:.1}", u.total_s), format!("{:.2}", u.mean_s)])
        .chain(std::iter::once(vec![
            "**wall time of the run**".into(),
            String::new(),
            format!("{:.1}", r.total_seconds),
            String::new(),
        ]))
        .collect();
    s.push_str(&markdown_table(&["unit", "computed now", "total (s)", "mean (s)"], &rows));
    s.push('\n');
}

/// A row per discovery of Table 3 (seed 0): task, model, then `cells`.
fn paper_rows(r: &Results, cells: impl Fn(&PaperRow, &DiscoveryResult) -> Vec<String>) -> Vec<Vec<String>> {
    PAPER_TABLE3
        .iter()
        .filter_map(|row| {
            let d = find(&r.discoveries, row.regime, row.task)?;
            let mut out = vec![row.task.to_string(), row.regime.label().to_string()];
            out.extend(cells(row, d));
            Some(out)
        })
        .collect()
}

/// Table 3 next to the paper's, in two tables: the circuit's metrics, then
/// its time and accuracy with their references.
fn table3(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Table 3, reproduced\n");
    let _ = writeln!(s, "Ours: bootstrap mean [2.5%, 97.5% percentile] over the resamples. Paper: mean ± CI half-width (STUDY §7). Δ = ours − paper. Logit difference: {LOGIT_DIFFERENCE_MEANS}. Sparsity: {SPARSITY_MEANS}.\n");
    let rows = paper_rows(r, |row, d| {
        vec![
            ci(&d.logit_difference, 4),
            format!("{:.4} ± {:.4}", row.logit_difference.0, row.logit_difference.1),
            format!("{:+.4}", d.logit_difference.mean - row.logit_difference.0),
            ci(&d.sparsity, 4),
            format!("{:.4} ± {:.4}", row.sparsity.0, row.sparsity.1),
            format!("{:+.4}", d.sparsity.mean - row.sparsity.0),
        ]
    });
    s.push_str(&markdown_table(
        &[
            "task",
            "model",
            "logit difference (lower is better)",
            "paper",
            "Δ",
            "sparsity (higher is smaller)",
            "paper",
            "Δ",
        ],
        &rows,
    ));
    let _ = writeln!(s, "\nDiscovery time is the patching sweep and the selection on one resample, measured one discovery at a time with nothing else running: ours in milliseconds, the paper's in seconds (see \"How this differs\"). Accuracy: {ACCURACY_MEANS}; both are bootstrap means over the same resamples. Faithfulness: {FAITHFULNESS_MEANS}; {FAITHFULNESS_ABOVE_ONE}.\n");
    let rows = paper_rows(r, |row, d| {
        vec![
            fmt_ms(&d.discovery_s),
            format!("{:.1} ± {:.2}", row.discovery_s.0, row.discovery_s.1),
            ci(&d.accuracy, 3),
            ci_opt(&d.model_accuracy, 3),
            ci_opt(&d.faithfulness, 3),
        ]
    });
    s.push_str(&markdown_table(
        &[
            "task",
            "model",
            "discovery, ours (ms)",
            "paper (s)",
            "circuit accuracy",
            "model accuracy, same images",
            "faithfulness (bootstrap mean)",
        ],
        &rows,
    ));
}

/// Dead neurons, the dead ones a rule kept, and tie-rule picks per discovery.
fn dead_and_ties(s: &mut String, r: &Results) {
    let per_layer = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(" / ");
    let rows: Vec<Vec<String>> = r
        .discoveries
        .iter()
        .filter(|d| d.seed == 0)
        .map(|d| {
            vec![
                d.task.clone(),
                d.regime.label().into(),
                per_layer(&d.dead),
                per_layer(&d.dead_kept),
                per_layer(&d.decided_by_tie),
            ]
        })
        .collect();
    let _ = writeln!(
        s,
        "\nDead neurons (patching them leaves the corrupted run unchanged), the dead neurons each circuit keeps, and kept neurons chosen by the lower-index tie rule among equal scores, per hidden layer (1 / 2), on the full pair set. Where fewer than K neurons of a layer are live, the rest of its K are dead neurons taken by index: they carry nothing, and the section on K below shows what the verdicts owe to them.\n"
    );
    s.push_str(&markdown_table(&["task", "model", "dead neurons", "dead neurons kept", "kept by the tie rule"], &rows));
}

/// How the RQ1 verdicts and the circuits' metrics move with the selection rule.
fn k_sensitivity_section(s: &mut String, r: &Results) {
    let tables = k_sensitivity_tables(r);
    if tables.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## How the RQ1 verdicts move with K\n");
    for t in tables {
        let _ = writeln!(s, "{}\n", t.note);
        s.push_str(&t.markdown());
    }
}

/// The RQ1 verdicts under each compared rule, and each seed-0 circuit's
/// logit difference under each.
pub fn k_sensitivity_tables(r: &Results) -> Vec<Table> {
    if r.k_sensitivity.is_empty() {
        return Vec::new();
    }
    let verdict_of = |row: &modcirc_study::results::SensitivityRow, id: &str| {
        row.verdicts.iter().find(|v| v.id == id).map_or("–".to_string(), |v| v.verdict.clone())
    };
    let main = r.discover_flags.config.selection.to_string();
    let rows: Vec<Vec<String>> = r
        .k_sensitivity
        .iter()
        .map(|row| {
            let mut rule = row.rule.to_string();
            if rule == main {
                rule.push_str(" (the study's)");
            }
            vec![rule, verdict_of(row, "RQ1-H1"), verdict_of(row, "RQ1-H3")]
        })
        .collect();
    let verdicts = Table {
        title: "How the RQ1 verdicts move with K".into(),
        note: "Every discovery also evaluates these rules on its own bootstrap resamples (seed-0 models); RQ1-H1 and RQ1-H3 are decided again on each rule's circuits by the rules stated with the verdicts below. RQ1-H2 is about discovery time, which is the patching sweep's whatever the rule. *Live neurons only* fills K from neurons whose patch changes the output, so a layer with fewer keeps them all.".into(),
        header: ["rule", "RQ1-H1", "RQ1-H3"].map(String::from).to_vec(),
        rows,
    };
    let rules: Vec<&modcirc_acdc::SelectionRule> = r.k_sensitivity.iter().map(|row| &row.rule).collect();
    let rows: Vec<Vec<String>> = r
        .discoveries
        .iter()
        .filter(|d| d.seed == 0)
        .map(|d| {
            let mut cells = vec![d.task.clone(), d.regime.label().to_string()];
            cells.extend(rules.iter().map(|rule| {
                d.compared.iter().find(|c| &c.rule == *rule).map_or("–".into(), |c| {
                    let dead: Vec<String> = c.dead_kept.iter().map(usize::to_string).collect();
                    let f = c.faithfulness.as_ref().map_or(String::new(), |f| format!(", f {:.3}", f.mean));
                    format!("{:.4}{f} ({})", c.logit_difference.mean, dead.join("/"))
                })
            }));
            cells
        })
        .collect();
    let mut header = vec!["task".to_string(), "model".to_string()];
    header.extend(rules.iter().map(|rule| rule.to_string()));
    let by_rule = Table {
        title: "Each circuit under each rule".into(),
        note: "Circuit logit difference (lower is better) under each rule, bootstrap mean; then its faithfulness (f, removed edges carrying corrupted values); with the dead neurons its whole-set circuit keeps per hidden layer in brackets:".into(),
        header,
        rows,
    };
    vec![verdicts, by_rule]
}

/// RQ2: accuracy, training time and memory, inference time.
fn training_and_inference(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Training and inference (RQ2)\n");
    let rows: Vec<Vec<String>> = Regime::ALL
        .iter()
        .filter_map(|reg| model0(&r.models, *reg))
        .map(|m| {
            let inf = r.inference.iter().find(|i| i.regime == m.regime);
            vec![
                m.regime.label().into(),
                format!("{:.4}", m.meta.test_accuracy),
                format!("{:.4}", m.meta.train_accuracy),
                format!("{:.1}", m.meta.timing.total_s),
                format!("{:.1}", m.meta.timing.optimizer_s),
                format!(
                    "{:.2} ({} relocations, {} swaps)",
                    m.meta.timing.relocation_s, m.meta.timing.relocations, m.meta.timing.swaps
                ),
                format!("{:.3}", m.meta.timing.optimizer_s / m.meta.config.steps as f64 * 1e3),
                format!("{:.2}", m.heap_mib()),
                format!("{}", m.file_bytes),
                inf.map(|i| {
                    format!(
                        "{:.3} [{:.3}, {:.3}]",
                        i.batched_500_s.mean * 1e6,
                        i.batched_500_s.lo * 1e6,
                        i.batched_500_s.hi * 1e6
                    )
                })
                .unwrap_or_default(),
                inf.map(|i| {
                    format!("{:.2} [{:.2}, {:.2}]", i.batch_1_s.mean * 1e6, i.batch_1_s.lo * 1e6, i.batch_1_s.hi * 1e6)
                })
                .unwrap_or_default(),
            ]
        })
        .collect();
    s.push_str(&markdown_table(
        &[
            "model",
            "test acc.",
            "train acc.",
            "train (s)",
            "optimizer (s)",
            "relocation (s)",
            "ms / step",
            "peak heap (MiB)",
            "file (bytes)",
            "inference µs/img, batch 500",
            "batch 1",
        ],
        &rows,
    ));
    let _ = writeln!(s, "\nPeak heap is the counting allocator's peak during training minus the heap already live when training began (the data set). Training is single-threaded on the CPU; the paper measured GPU memory and time.\n");
}

/// Each verdict as a Markdown bullet: its id, verdict and hypothesis, then
/// its rule and evidence.
pub(crate) fn verdict_list(s: &mut String, verdicts: &[modcirc_study::results::Verdict]) {
    for v in verdicts {
        let _ = writeln!(
            s,
            "- **{}: {}** — {}  \n  Rule: {}  \n  Evidence: {}",
            v.id, v.verdict, v.hypothesis, v.rule, v.evidence
        );
    }
}

/// The verdicts, then every figure.
fn verdicts_and_figures(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## Verdicts on the paper's hypotheses\n");
    let _ =
        writeln!(s, "Each verdict is computed from this run's numbers by the rule stated with it (seed 0 models).\n");
    verdict_list(s, &r.verdicts);

    let _ = writeln!(s, "\n## Figures\n");
    for f in r.figures.iter().filter(|f| f.ends_with(".png")) {
        let _ = writeln!(s, "### {}\n\n![{}]({})\n", figure_title(f), f, f);
    }
}

/// How this run differs from the paper, and why.
fn differences(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## How this differs from the paper, and why\n");
    let _ = writeln!(s, "- Discovery time: the paper reports about 90 s per discovery; here one discovery of {} pairs takes milliseconds. The sweep is batched over pairs and uses the rank-1 structure of a single-neuron patch, instead of a forward pass per neuron per pair. The comparison across regimes, not the absolute number, is what RQ1-H2 is about.", r.settings.sample);
    let _ = writeln!(s, "- Sparsity: with eps = {} the edge rule also drops weights below eps·max|W| between circuit nodes, so a dense model's circuit is sparser than the paper's 0.8635 (which matches eps = 0: 1 − 12 135 / 89 400).", r.discover_flags.config.eps);
    let _ = writeln!(s, "- Logit difference: its scale depends on the trained logits (MSE to one-hot keeps them near 0..1 here), so absolute values differ from the paper's; the ordering of regimes is the comparable quantity.");
    if r.environment.device.starts_with("cpu") {
        let _ = writeln!(s, "- Memory and time are CPU measurements (heap bytes, single-threaded wall time); the paper measured a GPU. Relocation here scores swaps from `C[neuron, position]` in milliseconds, so swaps barely add to training time.");
    } else {
        let _ = writeln!(s, "- Training ran on {} through candle. Peak heap is host memory; each model's sidecar (`models/*.json`, `device_memory`) holds the device memory in use at the start and at its peak. Relocation scores swaps on the device from `C[neuron, position]`, so swaps barely add to training time.", r.environment.device);
    }
    // A sparsity interval wider than [0, 1] cannot be right; say so rather than fix it.
    for row in PAPER_TABLE3.iter().filter(|row| row.sparsity.1 >= 0.5) {
        let _ = writeln!(s, "- The paper prints the {} {} circuit's sparsity as {:.4} ± {:.4}. The half-width is kept as printed, though it spans more than the whole range of sparsity; Figs. 3 and 4 draw that bar across the panel.", row.regime.label(), row.task, row.sparsity.0, row.sparsity.1);
    }
}

fn figure_title(f: &str) -> String {
    let name = Path::new(f).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let fig2 = Regime::ALL.iter().flat_map(|r| TASKS.iter().map(move |t| (r, t)));
    if let Some((r, t)) = fig2.clone().find(|(r, t)| fig2_stem(**r, t) == name) {
        return format!("Fig. 2: the {} network and its {t} circuit", r.label());
    }
    match name.as_str() {
        "fig3_sparsity_vs_logit_difference" => "Fig. 3: circuit sparsity vs logit difference".into(),
        "fig4_sparsity_vs_discovery_time" => "Fig. 4: circuit sparsity vs discovery time".into(),
        "fig5_training_memory" => "Fig. 5: peak training memory".into(),
        "fig6_training_time" => "Fig. 6: training time".into(),
        "fig7_inference_batched" => "Fig. 7a: inference time per image, batched".into(),
        "fig7_inference_batch1" => "Fig. 7b: inference time per image, batch 1".into(),
        "training_curves" => "Training curves".into(),
        "fig8_faithfulness_curves" => "Beyond the paper: faithfulness of edge-attribution circuits".into(),
        "planted_roc" => "Planted ground truth: each method's node ROC per regime (mean over seeds and tasks)".into(),
        "fig9_modularity_vs_faithfulness" => "Fig. 9a: modularity Q against circuit faithfulness, every model".into(),
        "fig9_modularity_vs_logit_difference" => {
            "Fig. 9b: modularity Q against circuit logit difference, every model".into()
        }
        "fig10_across_seeds" => "Fig. 10: every metric across seeds, per regime".into(),
        other => other.into(),
    }
}
