//! A comparison presented: `compare.json`, `compare.md` and `compare.html`
//! (the answers per metric, then each model, its methods, each condition
//! and the tests between them), and the faithfulness-by-K figure, one
//! curve per condition with its interval over checkpoints.

use std::path::{Path, PathBuf};

use modcirc_metrics::Summary;
use modcirc_report::{line_chart, markdown_text, Legend, LinePanel, Series};
use modcirc_store::atomic::write_atomic;
use modcirc_study::compare::conditions::{floor_note, Better};
use modcirc_study::compare::Comparison;
use modcirc_study::discovery::FAITHFULNESS_FORM;

use crate::html::{report_html, PageCurve, PageData, HTML_EDGE_CAP, HTML_SCHEMA};
use crate::report::Table;
use crate::PresentError;

fn ci(s: &Summary, d: usize) -> String {
    if s.lo == s.hi {
        format!("{:.d$}", s.mean)
    } else {
        format!("{:.d$} [{:.d$}, {:.d$}]", s.mean, s.lo, s.hi)
    }
}

/// A name the user chose (a condition, a file) as one table cell: literal
/// text, no markup (the HTML page sets cells as text).
fn cell(s: &str) -> String {
    markdown_text(s)
}

fn opt(v: Option<f64>, d: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.d$}"))
}

/// What the comparison ran, in a paragraph.
fn what_ran(c: &Comparison) -> String {
    let config = &c.settings.discovery.config;
    let target = config.target_faithfulness.unwrap_or(f64::NAN);
    let b = &c.settings.beyond;
    let methods: Vec<&str> = std::iter::once("eap").chain(b.methods.iter().map(|m| m.name())).collect();
    let controls = match &c.settings.controls {
        Some(s) => format!(
            "{} random circuits of the circuit's size per pool, {} disjoint alternatives, the any-digit control",
            s.random, s.alternatives
        ),
        None => "not run".into(),
    };
    format!(
        "{} models on {}. The circuit: {}, eps = {}, {} ablation for accuracy and the logit difference. \
         Faithfulness, the headline: the circuit's on all pairs, {FAITHFULNESS_FORM}; the bootstrap mean beside it is over {} resamples of {} pairs, the circuit chosen again on each. \
         Smallest circuits reaching faithfulness {target} on all pairs: the uniform K, the per-layer circuit shrunk from it, the fewest top-|EAP| edges. \
         Controls (STUDY §10): {controls}. Methods (STUDY §8, §12): {}, each with CPR (higher is better), CMD (lower is better), its faithfulness at the circuit's size and its stability over resamples; \
         edge-level ACDC (tau = {}, on the task's first {} pairs, judged on all). Q: Newman's modularity of the eps-edge weight graph. \
         Between conditions: the exact permutation test of the difference of means over checkpoints (two-sided), Holm-corrected within each metric, {}.",
        c.models.len(),
        c.task,
        config.selection,
        config.eps,
        config.ablation,
        config.bootstraps,
        config.sample,
        methods.join(", "),
        b.acdc.tau,
        b.acdc_pairs,
        match &c.settings.baseline {
            Some(b) => format!("each condition against {}", cell(b)),
            None => "every pair of conditions".into(),
        }
    )
}

/// The comparison's tables: each model, its methods, each condition, the tests.
pub fn compare_tables(c: &Comparison) -> Vec<Table> {
    let mut tables = vec![models_table(c), methods_table(c)];
    tables.extend(conditions_table(c));
    tables.extend(tests_table(c));
    tables
}

/// A row per model: its headline numbers.
fn models_table(c: &Comparison) -> Table {
    let rows = c
        .models
        .iter()
        .map(|m| {
            let sm = &m.smallest;
            let per_layer = sm.per_layer.as_ref().map_or("not reached".into(), |p| {
                format!(
                    "{} ({:.3})",
                    p.kept.iter().map(usize::to_string).collect::<Vec<_>>().join(" / "),
                    p.faithfulness
                )
            });
            let controls = m.controls.as_ref().map_or("not run".into(), |k| match (k.margin, k.p_value) {
                (Some(margin), Some(p)) => {
                    format!("{margin:+.3} (p = {p:.4}{})", if k.p_at_floor { ", the floor" } else { "" })
                }
                _ => "undefined".into(),
            });
            vec![
                cell(&m.condition),
                cell(&file_name(&m.model)),
                opt(m.faithfulness, 3),
                m.faithfulness_resampled.as_ref().map_or("–".into(), |f| ci(f, 3)),
                format!("{:.3}", m.circuit_accuracy),
                format!("{:.4}", m.test_accuracy),
                format!(
                    "{} ({:.1}%)",
                    m.circuit_edges,
                    100.0 * m.circuit_edges as f64 / m.edges.eps_edges.max(1) as f64
                ),
                sm.k.map_or("not reached".into(), |k| k.to_string()),
                per_layer,
                sm.eap_edges.map_or("not reached".into(), |e| {
                    format!("{e} ({:.2}%)", 100.0 * e as f64 / m.edges.weights as f64)
                }),
                controls,
                opt(m.controls.as_ref().and_then(|k| k.any_digit_faithfulness), 3),
                format!("{} ({:.3})", m.acdc_edges, m.acdc_faithfulness),
                format!("{:.3}", m.modularity_q),
                format!("{:.0}% / {:.0}%", 100.0 * m.edges.eps_share, 100.0 * m.edges.activation_share),
            ]
        })
        .collect();
    Table {
        title: "Each model".into(),
        note: format!(
            "Faithfulness on all pairs first (the headline), then its bootstrap mean [95% interval]. Circuit edges: with their share of the model's own eps edges. \
             Smallest EAP edges: with their share of all weights. Margin: the circuit's faithfulness minus that of random circuits of its size from live neurons, with the one-sided p \
             (the floor is 1/(R+1): no random circuit reached it). Edge shares: of the model's weights kept by the eps rule / by the activation-aware rule ({}).",
            c.models.first().map_or("", |m| m.edges.activation_rule.as_str())
        ),
        header: [
            "condition",
            "model",
            "faithfulness",
            "bootstrap mean",
            "circuit accuracy",
            "test accuracy",
            "circuit edges",
            "smallest K",
            "per layer (faithfulness)",
            "smallest EAP edges",
            "margin over random",
            "any-digit faithfulness",
            "ACDC edges (faithfulness)",
            "Q",
            "edge shares eps / activation",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }
}

/// A row per model and method.
fn methods_table(c: &Comparison) -> Table {
    Table {
        title: "Each model's methods".into(),
        note: "STUDY §8 and §12 on each model's circuit: CPR (higher is better) and CMD (lower is better) of the method's faithfulness curve, its top edges' faithfulness at the node circuit's size on all pairs, and the mean pairwise Jaccard overlap of its circuit over resamples.".into(),
        header: ["condition", "model", "method", "CPR", "CMD", "same-size faithfulness", "stability", "seconds"]
            .map(String::from)
            .to_vec(),
        rows: c
            .models
            .iter()
            .flat_map(|m| {
                m.methods.iter().map(|x| {
                    vec![
                        cell(&m.condition),
                        cell(&file_name(&m.model)),
                        x.method.clone(),
                        format!("{:.3}", x.cpr),
                        format!("{:.3}", x.cmd),
                        format!("{:.3}", x.same_size_faithfulness),
                        opt(x.stability, 3),
                        format!("{:.2}", x.seconds),
                    ]
                })
            })
            .collect(),
    }
}

/// A row per metric, a column per condition.
fn conditions_table(c: &Comparison) -> Option<Table> {
    let first = c.conditions.first()?;
    let mut header = vec!["metric".to_string(), "better".to_string()];
    header.extend(c.conditions.iter().map(|r| format!("{} ({})", cell(&r.condition), r.models)));
    let rows = first
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let better = match v.better {
                Better::Higher => "higher",
                Better::Lower => "lower",
                Better::Neither => "–",
            };
            let mut row = vec![v.metric.clone(), better.into()];
            row.extend(c.conditions.iter().map(|r| r.values[i].summary.as_ref().map_or("–".into(), |s| ci(s, 3))));
            row
        })
        .collect();
    Some(Table {
        title: "By condition".into(),
        note: "Mean [95% t interval] over each condition's checkpoints (the number in brackets after its name); a single value where it has one.".into(),
        header,
        rows,
    })
}

/// A row per test between conditions.
fn tests_table(c: &Comparison) -> Option<Table> {
    (!c.tests.is_empty()).then(|| {
        Table {
            title: "Tests between conditions".into(),
            note: "The exact two-sided permutation test of the difference of means over checkpoints, Holm-corrected within each metric. The smallest possible p is that of the most extreme split: with few checkpoints no difference can be called.".into(),
            header: ["metric", "a", "b", "mean a", "mean b", "p", "Holm p", "smallest possible p"].map(String::from).to_vec(),
            rows: c
                .tests
                .iter()
                .map(|t| {
                    vec![
                        t.metric.clone(),
                        cell(&t.a),
                        cell(&t.b),
                        format!("{:.4}", t.mean_a),
                        format!("{:.4}", t.mean_b),
                        format!("{:.4}", t.p),
                        format!("{:.4}", t.p_holm),
                        format!("{:.4}", t.smallest_p),
                    ]
                })
                .collect(),
        }
    })
}

/// The comparison as Markdown: what ran, the warnings, the answers, then the tables.
pub fn compare_markdown(c: &Comparison) -> String {
    let mut s = format!("# {} models on {}\n\n{}\n\n", c.models.len(), c.task, what_ran(c));
    if !c.warnings.is_empty() {
        s.push_str("## Warnings\n\n");
        for w in &c.warnings {
            s.push_str(&format!("- {}\n", cell(w)));
        }
        s.push('\n');
    }
    s.push_str("## Answers\n\n");
    let note = floor_note(&c.answers);
    if let Some(n) = &note {
        s.push_str(&format!("{n}\n\n"));
    }
    for a in &c.answers {
        s.push_str(&format!("- {}\n", a.line_with(&cell, note.is_some())));
    }
    for t in compare_tables(c) {
        s.push_str(&format!("\n## {}\n\n{}\n\n", t.title, t.note));
        s.push_str(&t.markdown());
    }
    s
}

/// What `compare` prints: the warnings, the answers, and per condition
/// its headline numbers, as plain text (the tables are in the files).
pub fn compare_text(c: &Comparison) -> String {
    let mut s = format!("{} models on {}, {} conditions\n", c.models.len(), c.task, c.conditions.len());
    for w in &c.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    let headline = [
        "faithfulness",
        "circuit accuracy",
        "smallest K",
        "smallest per-layer neurons",
        "smallest EAP edges",
        "margin over random circuits",
        "Q",
    ];
    s.push_str("per condition, mean [95% t interval] over its checkpoints:\n");
    for r in &c.conditions {
        let parts: Vec<String> = headline.iter().filter_map(|m| Some(format!("{m} {}", ci(r.value(m)?, 3)))).collect();
        s.push_str(&format!("  {} ({} checkpoints): {}\n", r.condition, r.models, parts.join(", ")));
    }
    let note = floor_note(&c.answers);
    s.push_str("answers (exact permutation tests over checkpoints, Holm-corrected within each metric):\n");
    if let Some(n) = &note {
        s.push_str(&format!("  {n}\n"));
    }
    for a in &c.answers {
        s.push_str(&format!("  {}\n", a.line_with(&|n| n.to_string(), note.is_some())));
    }
    s
}

/// The files [`write_compare`] writes, relative to its directory.
pub const COMPARE_FILES: [&str; 4] = ["compare.json", "compare.md", "compare.html", "faithfulness_by_k.png"];

/// The page: the answers as a table, the tables, each model's top-|EAP| curve.
fn compare_page(c: &Comparison) -> PageData {
    let note = floor_note(&c.answers);
    let mut tables = vec![Table {
        title: "Answers".into(),
        note: c.warnings.iter().chain(&note).cloned().collect::<Vec<_>>().join(" "),
        header: vec!["metric".into(), "what the tests say".into()],
        rows: c
            .answers
            .iter()
            .map(|a| vec![a.metric.clone(), a.line_with(&|n| n.to_string(), note.is_some())])
            .collect(),
    }];
    tables.extend(compare_tables(c));
    PageData {
        schema: HTML_SCHEMA.into(),
        title: format!("modcirc: {} models on {}", c.models.len(), c.task),
        summary: what_ran(c),
        edge_cap: HTML_EDGE_CAP,
        models: Vec::new(),
        table3: Vec::new(),
        curves: node_page_curves(c),
        verdicts: Vec::new(),
        tables,
        circuit: None,
        threshold: 1.0,
    }
}

/// Each model's faithfulness by K as the page draws curves: against the
/// share of the model's weights the K-circuit keeps, named by condition and file.
fn node_page_curves(c: &Comparison) -> Vec<PageCurve> {
    c.models
        .iter()
        .filter_map(|m| {
            let curve = m.node_curve.as_ref()?;
            Some(PageCurve {
                task: format!("{}: the K strongest neurons per layer", c.task),
                model: format!("{}: {}", m.condition, file_name(&m.model)),
                fractions: curve.edges.iter().map(|&e| (e.max(1) as f64) / m.edges.weights as f64).collect(),
                edges: curve.edges.clone(),
                faithfulness: curve.faithfulness.clone(),
            })
        })
        .collect()
}

/// A path's file name, or the path where it has none.
fn file_name(path: &str) -> String {
    Path::new(path).file_name().map_or(path.to_string(), |f| f.to_string_lossy().into_owned())
}

/// Per condition, its checkpoints' faithfulness at each K (the K every
/// one of them has): the mean, and the least and largest.
fn condition_curves(c: &Comparison) -> Vec<Series> {
    c.conditions
        .iter()
        .filter_map(|r| {
            let curves: Vec<_> =
                c.models.iter().filter(|m| m.condition == r.condition).filter_map(|m| m.node_curve.as_ref()).collect();
            let n = curves.iter().map(|c| c.k.len()).min()?;
            let points: Vec<(f64, f64, f64, f64)> = (0..n)
                .map(|i| {
                    let v: Vec<f64> = curves.iter().map(|c| c.faithfulness[i]).collect();
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
                    (curves[0].k[i] as f64, mean, lo, hi)
                })
                .collect();
            Some(Series {
                name: format!(
                    "{} ({} checkpoint{})",
                    r.condition,
                    curves.len(),
                    if curves.len() == 1 { "" } else { "s" }
                ),
                points: points.iter().map(|p| (p.0, p.1)).collect(),
                band: (curves.len() > 1).then(|| points.iter().map(|p| (p.2, p.3)).collect()),
            })
        })
        .collect()
}

/// Writes `compare.json`, `compare.md`, `compare.html` and the
/// faithfulness-by-K figure (a curve per condition: the mean over its
/// checkpoints, shaded between the least and largest) into `out`.
pub fn write_compare(out: &Path, c: &Comparison) -> Result<Vec<PathBuf>, PresentError> {
    let [json, md, html, _] = COMPARE_FILES.map(|f| out.join(f));
    let bytes = serde_json::to_vec_pretty(c).map_err(|e| PresentError::Json { path: json.clone(), source: e })?;
    write_atomic(&json, &bytes)?;
    write_atomic(&md, compare_markdown(c).as_bytes())?;
    write_atomic(&html, report_html(&compare_page(c))?.as_bytes())?;
    let mut written = vec![json, md, html];
    let series = condition_curves(c);
    if !series.is_empty() {
        let panel = LinePanel {
            title: format!("{}: faithfulness of the K strongest neurons per layer", c.task),
            x_label: "K (neurons per hidden layer)".into(),
            y_label: "faithfulness on all pairs".into(),
            series,
            log_x: true,
            log_y: false,
            unit_square: false,
            legend: Legend::UpperLeft,
        };
        let files = line_chart(&out.join("faithfulness_by_k"), &[panel])?;
        written.extend(files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "png")));
    }
    Ok(written)
}
