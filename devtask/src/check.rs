//! `cargo devtask check-artifacts DIR`: CI's check that a `reproduce` run wrote
//! a complete, well-formed output directory.

use std::path::PathBuf;

use clap::Args;
use modcirc_present::check::{check_artifacts, expected_figures};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The output directory of `cargo xtask reproduce`.
    pub dir: PathBuf,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let r = check_artifacts(&args.dir)?;
    println!(
        "{}: results.json, table3.csv, REPORT.md and {} figures are complete; its {} files match their recorded SHA-256",
        args.dir.display(),
        expected_figures(r.models.iter().map(|m| m.seed).collect::<std::collections::BTreeSet<_>>().len()).len(),
        r.files.len()
    );
    Ok(())
}
