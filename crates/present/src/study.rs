//! The study's run written out: its figures, `table3.csv`, `REPORT.md`,
//! `REPORT.html` and, last, `results.json`, which records every file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_bimt::Regime;
use modcirc_metrics::PhaseTimer;
use modcirc_store::atomic::write_atomic;
use modcirc_store::FileRecord;
use modcirc_study::discovery::DiscoverOutput;
use modcirc_study::results::beyond0;
use modcirc_study::Results;

use crate::check::REPORT_FILES;
use crate::figures::{figures, NetworkPanel};
use crate::html::{page_data, report_html, PageInput};
use crate::report::{markdown, table3_csv};
use crate::PresentError;

/// A model of the run, for the figures and the page.
#[derive(Debug, Clone, Copy)]
pub struct RunModel<'a> {
    /// Its regime.
    pub regime: Regime,
    /// Its training seed.
    pub seed: u64,
    /// The checkpoint.
    pub checkpoint: &'a Checkpoint,
    /// Its discoveries.
    pub discoveries: &'a [&'a DiscoverOutput],
}

/// Writes the report of `results` into `out`: the figures (timed as
/// `figures` in `timer`), `table3.csv`, `REPORT.md`, `REPORT.html`, then
/// `results.json` with the stage times, the total since `started` and the
/// record of every file (the units' its `files` holds, then the
/// report's). Returns the path of `REPORT.md`.
pub fn write_study(
    out: &Path,
    mut results: Results,
    models: &[RunModel<'_>],
    timer: &mut PhaseTimer,
    started: Instant,
) -> Result<PathBuf, PresentError> {
    let [table3, report, html, results_json] = REPORT_FILES;
    // One run's report at a time: a second run on the same directory
    // writes its whole set after the first, never files of both.
    let claim = modcirc_store::claim::wait_for_claim(&out.join(results_json), "the report")?;
    let mut files = std::mem::take(&mut results.files);
    let networks: Vec<NetworkPanel> = models
        .iter()
        .filter(|m| m.seed == 0)
        .flat_map(|m| {
            m.discoveries.iter().map(|d| NetworkPanel { regime: m.regime, checkpoint: m.checkpoint, discovery: d })
        })
        .collect();
    let written = timer.time("figures", || figures(&out.join("figures"), &results, &networks))?;
    results.figures = written.iter().map(|p| p.strip_prefix(out).unwrap_or(p).display().to_string()).collect();
    for p in &written {
        // Drawn to a file by the chart code: read once, to record its hash.
        let bytes = std::fs::read(p).map_err(|e| PresentError::io(p, e))?;
        files.push(FileRecord::of(out, p, &bytes));
    }
    results.stage_seconds = timer.phases().clone();
    results.total_seconds = started.elapsed().as_secs_f64();
    let mut store = |name: &str, bytes: &[u8]| -> Result<PathBuf, PresentError> {
        let path = out.join(name);
        write_atomic(&path, bytes)?;
        files.push(FileRecord::of(out, &path, bytes));
        Ok(path)
    };
    store(table3, table3_csv(&results).as_bytes())?;
    let report = store(report, markdown(&results).as_bytes())?;
    let pages: Vec<PageInput> = models
        .iter()
        .map(|m| PageInput {
            id: m.regime.to_string(),
            label: m.regime.label().into(),
            seed: Some(m.seed),
            checkpoint: m.checkpoint,
            discoveries: m.discoveries.to_vec(),
            // STUDY §8 runs on the seed-0 models.
            beyond: if m.seed == 0 {
                m.discoveries.iter().filter_map(|d| beyond0(&results.beyond, m.regime, &d.inputs.task.name)).collect()
            } else {
                Vec::new()
            },
            extra: Vec::new(),
        })
        .collect();
    store(html, report_html(&page_data(&results, &pages)?)?.as_bytes())?;
    results.files = files;
    let json = serde_json::to_vec_pretty(&results)
        .map_err(|e| PresentError::Json { path: out.join(results_json), source: e })?;
    claim.ensure_held()?;
    write_atomic(&out.join(results_json), &json)?;
    Ok(report)
}

/// The planted-truth suite alone (`reproduce --planted-only`): its figure,
/// `PLANTED.md` (the section REPORT.md would hold) and `planted.json` (the
/// results with every unit file). Returns the path of `PLANTED.md`.
pub fn write_planted(
    out: &Path,
    planted: &modcirc_study::planted_results::PlantedResults,
    files: &[FileRecord],
) -> Result<PathBuf, PresentError> {
    let figures = crate::figures::planted_figures(&out.join("figures"), planted)?;
    let mut listed = files.to_vec();
    for p in &figures {
        let bytes = std::fs::read(p).map_err(|e| PresentError::io(p, e))?;
        listed.push(FileRecord::of(out, p, &bytes));
    }
    let mut md = String::from("# Planted ground truth\n\n");
    crate::report::planted::write_section(&mut md, planted);
    for f in &figures {
        let rel = f.strip_prefix(out).unwrap_or(f).display().to_string();
        if rel.ends_with(".png") {
            md.push_str(&format!("![{rel}]({rel})\n\n"));
        }
    }
    let report = out.join("PLANTED.md");
    write_atomic(&report, md.as_bytes())?;
    listed.push(FileRecord::of(out, &report, md.as_bytes()));
    #[derive(serde::Serialize)]
    struct PlantedJson<'a> {
        planted: &'a modcirc_study::planted_results::PlantedResults,
        files: &'a [FileRecord],
    }
    let path = out.join("planted.json");
    let json = serde_json::to_vec_pretty(&PlantedJson { planted, files: &listed })
        .map_err(|e| PresentError::Json { path: path.clone(), source: e })?;
    write_atomic(&path, &json)?;
    Ok(report)
}
