//! `cargo xtask check-artifacts DIR`: CI's check that a `reproduce` run wrote
//! a complete, well-formed output directory.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context};
use clap::Args;

use crate::reproduce::{Results, RESULTS_SCHEMA};

/// Figures every complete run must have (PNG and SVG each).
const FIGURES: [&str; 10] = [
    "fig2_network_bimt",
    "fig2_network_l1",
    "fig3_sparsity_vs_logit_difference",
    "fig4_sparsity_vs_discovery_time",
    "fig5_training_memory",
    "fig6_training_time",
    "fig7_inference_batched",
    "fig7_inference_batch1",
    "training_curves",
    "fig8_faithfulness_curves",
];

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The output directory of `cargo xtask reproduce`.
    pub dir: PathBuf,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let path = args.dir.join("results.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let results: Results =
        serde_json::from_slice(&bytes).with_context(|| format!("{} does not parse", path.display()))?;
    ensure!(
        results.schema == RESULTS_SCHEMA,
        "{}: schema {:?}, expected {RESULTS_SCHEMA:?}",
        path.display(),
        results.schema
    );
    ensure!(results.models.len() >= 5, "{}: {} models, expected five regimes", path.display(), results.models.len());
    ensure!(
        results.discoveries.len() >= 10,
        "{}: {} discoveries, expected 10",
        path.display(),
        results.discoveries.len()
    );
    ensure!(results.verdicts.len() == 6, "{}: {} verdicts, expected 6", path.display(), results.verdicts.len());
    for v in &results.verdicts {
        ensure!(
            ["falsified", "not falsified", "supported"].contains(&v.verdict.as_str()),
            "{}: verdict {} is {:?}",
            path.display(),
            v.id,
            v.verdict
        );
    }
    for d in &results.discoveries {
        ensure!(
            d.logit_difference.mean.is_finite() && d.sparsity.mean.is_finite(),
            "discovery {} / {} has non-finite metrics",
            d.regime,
            d.task
        );
    }
    ensure!(
        results.beyond.len() >= 10,
        "{}: {} attribution and faithfulness results (STUDY §8), expected 10",
        path.display(),
        results.beyond.len()
    );
    for b in &results.beyond {
        ensure!(
            b.circuit_faithfulness.is_finite()
                && b.curve.cpr.is_finite()
                && b.curve.cmd.is_finite()
                && b.acdc.faithfulness.is_finite(),
            "beyond {} / {} has non-finite faithfulness",
            b.regime_label(),
            b.task
        );
    }
    for f in FIGURES {
        let png = args.dir.join("figures").join(format!("{f}.png"));
        let data = std::fs::read(&png).with_context(|| format!("missing figure {}", png.display()))?;
        if !data.starts_with(b"\x89PNG\r\n\x1a\n") || data.len() < 1024 {
            bail!("{} is not a non-empty PNG ({} bytes)", png.display(), data.len());
        }
        let svg = args.dir.join("figures").join(format!("{f}.svg"));
        ensure!(std::fs::metadata(&svg).map(|m| m.len() > 0).unwrap_or(false), "missing or empty {}", svg.display());
    }
    for f in ["REPORT.md", "table3.csv"] {
        let p = args.dir.join(f);
        ensure!(std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false), "missing or empty {}", p.display());
    }
    let csv = std::fs::read_to_string(args.dir.join("table3.csv"))?;
    ensure!(csv.lines().count() == 11, "table3.csv has {} lines, expected a header and 10 rows", csv.lines().count());
    println!("{}: results.json, table3.csv, REPORT.md and {} figures are complete", args.dir.display(), FIGURES.len());
    Ok(())
}
