//! A comparison presented: `compare.json`, `compare.md` (a table per
//! model and per condition) and the faithfulness-by-K figure.

use std::path::{Path, PathBuf};

use modcirc_metrics::Summary;
use modcirc_report::{line_chart, markdown_table, markdown_text, LinePanel, Series};
use modcirc_store::atomic::write_atomic;
use modcirc_study::compare::Comparison;
use modcirc_study::discovery::FAITHFULNESS_FORM;

use crate::PresentError;

fn ci(s: &Summary, d: usize) -> String {
    if s.lo == s.hi {
        format!("{:.d$}", s.mean)
    } else {
        format!("{:.d$} [{:.d$}, {:.d$}]", s.mean, s.lo, s.hi)
    }
}

/// A name the user chose (a condition, a file) as one Markdown table
/// cell: literal text, no markup.
fn cell(s: &str) -> String {
    markdown_text(s)
}

/// The comparison as Markdown: what was run, a row per model, then a row
/// per condition where one has several checkpoints.
pub fn compare_markdown(c: &Comparison) -> String {
    let target = c.settings.discovery.config.target_faithfulness.unwrap_or(f64::NAN);
    let config = &c.settings.discovery.config;
    let mut s = format!(
        "# {} models on {}\n\nThe circuit: {}, eps = {}, {} ablation for the logit difference; faithfulness: {FAITHFULNESS_FORM}. \
         Smallest circuits reaching faithfulness {target} on all pairs: nodes grow as the K strongest neurons of every hidden layer, edges as the top-|EAP| weights. \
         CPR (higher is better) and CMD (lower is better) are the areas of the top-|EAP| faithfulness curve. \
         ACDC: edge-level, tau = {}, on the task's first {} pairs, judged on all. Q: Newman's modularity of the eps-edge weight graph.\n\n",
        c.models.len(),
        c.task,
        config.selection,
        config.eps,
        config.ablation,
        c.settings.acdc.tau,
        c.settings.acdc_pairs,
    );
    let header = [
        "condition",
        "model",
        "test accuracy",
        "smallest K",
        "its edges",
        "its faithfulness",
        "smallest EAP edges",
        "faithfulness at the rule",
        "CPR",
        "CMD",
        "ACDC edges",
        "ACDC faithfulness",
        "Q",
    ];
    let opt = |v: Option<String>| v.unwrap_or_else(|| "not reached".into());
    let rows: Vec<Vec<String>> = c
        .models
        .iter()
        .map(|m| {
            let sm = &m.smallest;
            vec![
                cell(&m.condition),
                cell(&m.model),
                format!("{:.4}", m.test_accuracy),
                opt(sm.k.map(|k| k.to_string())),
                if sm.k.is_some() { sm.edges.to_string() } else { "-".into() },
                opt(sm.faithfulness.map(|f| match &sm.faithfulness_resampled {
                    Some(r) => format!("{f:.3} (resamples {:.3} [{:.3}, {:.3}])", r.mean, r.lo, r.hi),
                    None => format!("{f:.3}"),
                })),
                opt(sm.eap_edges.map(|e| e.to_string())),
                m.faithfulness.as_ref().map_or("undefined".into(), |f| ci(f, 3)),
                format!("{:.3}", m.cpr),
                format!("{:.3}", m.cmd),
                m.acdc_edges.to_string(),
                format!("{:.3}", m.acdc_faithfulness),
                format!("{:.3}", m.modularity_q),
            ]
        })
        .collect();
    s.push_str(&markdown_table(&header, &rows));
    if c.conditions.iter().any(|r| r.models > 1) {
        s.push_str("\n## By condition (mean [95% t interval] over its checkpoints)\n\n");
        let header = [
            "condition",
            "checkpoints",
            "test accuracy",
            "smallest K",
            "smallest EAP edges",
            "faithfulness at the rule",
            "CPR",
            "CMD",
            "ACDC edges",
            "ACDC faithfulness",
            "Q",
        ];
        let rows: Vec<Vec<String>> = c
            .conditions
            .iter()
            .map(|r| {
                vec![
                    cell(&r.condition),
                    r.models.to_string(),
                    ci(&r.test_accuracy, 4),
                    r.smallest_k.as_ref().map_or("not reached".into(), |k| ci(k, 1)),
                    r.smallest_eap_edges.as_ref().map_or("not reached".into(), |k| ci(k, 0)),
                    r.faithfulness.as_ref().map_or("undefined".into(), |f| ci(f, 3)),
                    ci(&r.cpr, 3),
                    ci(&r.cmd, 3),
                    ci(&r.acdc_edges, 0),
                    ci(&r.acdc_faithfulness, 3),
                    ci(&r.modularity_q, 3),
                ]
            })
            .collect();
        s.push_str(&markdown_table(&header, &rows));
    }
    s
}

/// The files [`write_compare`] writes, relative to its directory.
pub const COMPARE_FILES: [&str; 3] = ["compare.json", "compare.md", "faithfulness_by_k.png"];

/// Writes `compare.json`, `compare.md` and the faithfulness-by-K figure
/// (each model's curve, named by its condition and file) into `out`.
pub fn write_compare(out: &Path, c: &Comparison) -> Result<Vec<PathBuf>, PresentError> {
    let [json, md, _] = COMPARE_FILES.map(|f| out.join(f));
    let bytes = serde_json::to_vec_pretty(c).map_err(|e| PresentError::Json { path: json.clone(), source: e })?;
    write_atomic(&json, &bytes)?;
    write_atomic(&md, compare_markdown(c).as_bytes())?;
    let mut written = vec![json, md];
    let series: Vec<Series> = c
        .models
        .iter()
        .filter_map(|m| {
            let curve = m.node_curve.as_ref()?;
            let name = Path::new(&m.model).file_stem().map_or(m.model.clone(), |s| s.to_string_lossy().into_owned());
            Some(Series {
                name: if name == m.condition { name } else { format!("{}: {name}", m.condition) },
                points: curve.k.iter().zip(&curve.faithfulness).map(|(&k, &f)| (k as f64, f)).collect(),
            })
        })
        .collect();
    if !series.is_empty() {
        let panel = LinePanel {
            title: format!("{}: faithfulness of the K strongest neurons per layer", c.task),
            x_label: "K (neurons per hidden layer)".into(),
            y_label: "faithfulness (corrupted values)".into(),
            series,
            log_x: true,
            log_y: false,
            unit_square: false,
        };
        let files = line_chart(&out.join("faithfulness_by_k"), &[panel])?;
        written.extend(files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "png")));
    }
    Ok(written)
}
