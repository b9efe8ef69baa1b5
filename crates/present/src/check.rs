//! The check that a `reproduce` run wrote a complete, well-formed output
//! directory (what CI runs after the smoke profile).

use std::path::Path;

use modcirc_bimt::Regime;

use crate::figures::fig2_stem;
use crate::PresentError;
use modcirc_study::paper::TASKS;
use modcirc_study::results::{Results, RESULTS_SCHEMA};
use modcirc_study::verdicts::NOT_EVALUATED;

/// The report's files, written in this order (`results.json` last, listing
/// the others' hashes).
pub const REPORT_FILES: [&str; 4] = ["table3.csv", "REPORT.md", "REPORT.html", "results.json"];

/// Figures every complete run has (PNG and SVG each), besides Fig. 2's.
pub const FIGURES: [&str; 12] = [
    "fig3_sparsity_vs_logit_difference",
    "fig4_sparsity_vs_discovery_time",
    "fig5_training_memory",
    "fig6_training_time",
    "fig7_inference_batched",
    "fig7_inference_batch1",
    "training_curves",
    "fig8_faithfulness_curves",
    "fig8_methods",
    "fig9_modularity_vs_faithfulness",
    "fig9_modularity_vs_logit_difference",
    "fig10_across_seeds",
];

/// The most `results.json` may hold (the full study's is about 80 MB).
pub const MAX_RESULTS_BYTES: u64 = 1 << 30;

/// The most a figure or report file that `results.json` does not list may
/// hold.
const MAX_FILE_BYTES: u64 = 256 << 20;

/// A file of the run at `relative`: a regular file inside `dir`, through
/// no link, at most `limit` bytes (compared before reading).
fn read_run(dir: &Path, relative: &str, limit: u64) -> Result<Vec<u8>, PresentError> {
    Ok(modcirc_store::read::read_inside(dir, relative, limit)?)
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), PresentError> {
    if ok {
        Ok(())
    } else {
        Err(PresentError::Invalid(what()))
    }
}

/// Every STUDY §8/§12 result of `r`: finite, its settings' methods run,
/// each with its stability where its settings measure it.
fn check_beyond(r: &Results) -> Result<(), PresentError> {
    for b in &r.beyond {
        let finite =
            [b.circuit_faithfulness, b.curve.cpr, b.curve.cmd, b.acdc.faithfulness].iter().all(|x| x.is_finite());
        ensure(finite, || format!("beyond {} / {} has non-finite faithfulness", b.regime_label(), b.task))?;
        // EAP, then every method its settings name.
        let methods: Vec<&str> = b.methods.iter().map(|m| m.method.as_str()).collect();
        let ran: Vec<&str> = std::iter::once(modcirc_acdc::Method::Eap.name())
            .chain(b.settings.iter().flat_map(|s| s.methods.iter().map(|m| m.name())))
            .collect();
        ensure(methods == ran, || {
            format!(
                "beyond {} / {} ran {methods:?}, not the edge methods of its settings {ran:?}",
                b.regime_label(),
                b.task
            )
        })?;
        for m in &b.methods {
            let ok = m.curve.cpr.is_finite() && m.curve.cmd.is_finite() && m.same_size_faithfulness.is_finite();
            ensure(ok, || format!("beyond {} / {}: {} has non-finite CPR or CMD", b.regime_label(), b.task, m.method))?;
            let measured = b.settings.as_ref().is_some_and(|s| s.stability.is_some());
            let stable = m.stability.as_ref().map(|s| (0.0..=1.0).contains(&s.mean));
            ensure(stable == measured.then_some(true), || {
                format!(
                    "beyond {} / {}: {} has no stability in [0, 1] where its settings measure it",
                    b.regime_label(),
                    b.task,
                    m.method
                )
            })?;
        }
    }
    Ok(())
}

/// Checks `dir`: `results.json` parses with the current schema and holds
/// five models, ten discoveries and STUDY §8 results with finite metrics,
/// and six evaluated verdicts; STUDY §9 on every model, the across-seed
/// results and three findings; every figure, `REPORT.md` and `table3.csv`
/// are there and not empty; every file it lists (models, sidecars,
/// discoveries, STUDY §8 results, figures, report) is present, of its
/// recorded size and hash, and every file it refers to is listed. Only
/// relative paths inside `dir` that are regular files reached through no
/// link are read, each no further than its recorded size. Returns the
/// results.
pub fn check_artifacts(dir: &Path) -> Result<Results, PresentError> {
    let path = dir.join("results.json");
    let bytes = read_run(dir, "results.json", MAX_RESULTS_BYTES)?;
    let r: Results =
        serde_json::from_slice(&bytes).map_err(|source| PresentError::Json { path: path.clone(), source })?;
    let p = path.display();
    ensure(r.schema == RESULTS_SCHEMA, || format!("{p}: schema {:?}, expected {RESULTS_SCHEMA:?}", r.schema))?;
    ensure(r.models.len() >= 5, || format!("{p}: {} models, expected five regimes", r.models.len()))?;
    ensure(r.discoveries.len() >= 10, || format!("{p}: {} discoveries, expected 10", r.discoveries.len()))?;
    ensure(r.verdicts.len() == 6, || format!("{p}: {} verdicts, expected 6", r.verdicts.len()))?;
    for v in &r.verdicts {
        let known = ["falsified", "not falsified", "supported"].contains(&v.verdict.as_str());
        ensure(known && v.verdict != NOT_EVALUATED, || format!("{p}: verdict {} is {:?}", v.id, v.verdict))?;
    }
    for d in &r.discoveries {
        ensure(d.logit_difference.mean.is_finite() && d.sparsity.mean.is_finite(), || {
            format!("discovery {} / {} has non-finite metrics", d.regime, d.task)
        })?;
    }
    ensure(r.beyond.len() == r.discoveries.len(), || {
        format!(
            "{p}: {} attribution and faithfulness results (STUDY §8 and §12) for {} discoveries",
            r.beyond.len(),
            r.discoveries.len()
        )
    })?;
    check_beyond(&r)?;
    ensure(r.structure.len() == r.models.len(), || {
        format!("{p}: STUDY §9 on {} of {} models", r.structure.len(), r.models.len())
    })?;
    for st in &r.structure {
        let finite = [st.wiring_length, st.all_weights.q, st.eps_edges.q].iter().all(|x| x.is_finite());
        ensure(finite && st.specialisation.is_some(), || {
            format!("{p}: STUDY §9 of a model is incomplete or not finite")
        })?;
    }
    let seeds = r.models.iter().map(|m| m.seed).collect::<std::collections::BTreeSet<_>>().len();
    for id in ["F1", "F2", "F3", "F4", "F5", "F6", "F8"] {
        ensure(r.findings.iter().any(|f| f.id == id), || format!("{p}: finding {id} is missing"))?;
    }
    // STUDY §10 on every discovery, and the RQ1 verdicts under the other ablations.
    ensure(r.controls.len() == r.discoveries.len(), || {
        format!("{p}: {} controls for {} discoveries", r.controls.len(), r.discoveries.len())
    })?;
    for c in &r.controls {
        let finite = c.random.len() == 2
            && c.random.iter().all(|x| x.logit_difference.circuit.is_finite() && x.logit_difference.p_value > 0.0);
        ensure(finite, || {
            format!("{p}: the controls of {:?} seed {:?} on {} are incomplete", c.regime, c.seed, c.task)
        })?;
    }
    // Every ablation but the study's zero: mean, resample and optimal.
    let others = modcirc_acdc::Ablation::ALL.len() - 1;
    ensure(r.ablation_sensitivity.len() == others, || {
        format!("{p}: {} ablation sensitivity rows, expected {others}", r.ablation_sensitivity.len())
    })?;
    // Across seeds only where there are two seeds or more (`--seeds 1` has none).
    ensure(r.across_seeds.is_some() == (seeds >= 2), || {
        format!("{p}: {seeds} seeds, but across-seed results are {}", if seeds >= 2 { "missing" } else { "there" })
    })?;
    check_hashes(dir, &r)?;
    check_files(dir, seeds)?;
    check_page(dir, &r)?;
    Ok(r)
}

/// `REPORT.html` holds every model, each neuron placed, every circuit's
/// edges among the model's.
fn check_page(dir: &Path, r: &Results) -> Result<(), PresentError> {
    let path = dir.join("REPORT.html");
    let record = r.files.iter().find(|f| f.path == "REPORT.html");
    let bytes = match record {
        Some(f) => f.read(dir)?,
        None => return Err(PresentError::Invalid("results.json does not list REPORT.html".into())),
    };
    let html = String::from_utf8(bytes).map_err(|_| PresentError::Invalid(format!("{}: not UTF-8", path.display())))?;
    let data = crate::html::embedded_data(&html)?;
    let p = path.display();
    ensure(data.models.len() == r.models.len(), || {
        format!("{p}: {} models, results.json has {}", data.models.len(), r.models.len())
    })?;
    for m in &data.models {
        let placed: Vec<usize> = m.coords.iter().map(|c| c.len() / 2).collect();
        ensure(placed == m.sizes, || {
            format!("{p}: {} seed {:?} places {placed:?} neurons of {:?}", m.label, m.seed, m.sizes)
        })?;
        for (task, t) in &m.tasks {
            for (kind, c) in &t.circuits {
                ensure(c.edges.iter().all(|&e| e < m.edges.len()), || {
                    format!(
                        "{p}: {} seed {:?} {task} {kind} circuit names an edge the page does not hold",
                        m.label, m.seed
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Every file `results.json` refers to is listed in its `files` and matches.
fn check_hashes(dir: &Path, r: &Results) -> Result<(), PresentError> {
    let sidecars: Vec<String> = r
        .models
        .iter()
        .map(|m| modcirc_bimt::checkpoint::sidecar_path(Path::new(&m.path)).display().to_string())
        .collect();
    let referred = r.models.iter().map(|m| &m.path).chain(&sidecars).chain(r.discoveries.iter().map(|d| &d.path));
    let report = REPORT_FILES[..3].iter().map(|f| f.to_string()).collect::<Vec<_>>();
    for path in referred.chain(&r.figures).chain(&report) {
        ensure(r.files.iter().any(|f| &f.path == path), || {
            format!("results.json refers to {path} but does not record its hash in `files`")
        })?;
    }
    for m in &r.models {
        let listed = r.files.iter().find(|f| f.path == m.path).map(|f| &f.sha256);
        ensure(listed == Some(&m.sha256), || format!("{}: two different hashes in results.json", m.path))?;
    }
    Ok(r.files.iter().try_for_each(|f| f.verify(dir))?)
}

/// Every figure a complete run of `seeds` seeds has: Fig. 2 per seed-0
/// model and task, and [`FIGURES`] (Fig. 10, across seeds, from two seeds
/// on).
pub fn expected_figures(seeds: usize) -> Vec<String> {
    let fig2 = Regime::ALL.iter().flat_map(|r| TASKS.iter().map(move |t| fig2_stem(*r, t)));
    let across = |f: &&&str| seeds >= 2 || !f.starts_with("fig10");
    fig2.chain(FIGURES.iter().filter(across).map(|f| f.to_string())).collect()
}

fn check_files(dir: &Path, seeds: usize) -> Result<(), PresentError> {
    for f in expected_figures(seeds) {
        let png = format!("figures/{f}.png");
        let data = read_run(dir, &png, MAX_FILE_BYTES)?;
        ensure(data.starts_with(b"\x89PNG\r\n\x1a\n") && data.len() >= 1024, || {
            format!("{} is not a non-empty PNG ({} bytes)", dir.join(&png).display(), data.len())
        })?;
        let svg = format!("figures/{f}.svg");
        ensure(!read_run(dir, &svg, MAX_FILE_BYTES)?.is_empty(), || format!("empty {}", dir.join(&svg).display()))?;
    }
    for f in &REPORT_FILES[..3] {
        ensure(!read_run(dir, f, MAX_FILE_BYTES)?.is_empty(), || format!("empty {}", dir.join(f).display()))?;
    }
    let csv = String::from_utf8(read_run(dir, "table3.csv", MAX_FILE_BYTES)?)
        .map_err(|_| PresentError::Invalid("table3.csv is not UTF-8".into()))?;
    let lines = csv.lines().count();
    ensure(lines == 11, || format!("table3.csv has {lines} lines, expected a header and 10 rows"))
}
