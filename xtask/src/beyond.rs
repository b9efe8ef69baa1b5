//! `cargo xtask beyond`: node discovery, then STUDY §8 on its circuit and task.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{AcdcConfig, AcdcMetric, DEFAULT_TAU};
use modcirc_store::atomic::dir_of;
use modcirc_study::beyond::{analyse, ACDC_PAIRS};
use modcirc_study::discovery::{FAITHFULNESS_ABOVE_ONE, FAITHFULNESS_MEANS};

use crate::discover::{discovered, DiscoverFlags, Discovered};
use crate::flags::{out_or_stdout, remove_stale_temps, summary, write_output, DataArgs, ModelTask};

#[derive(Args, Debug)]
pub struct BeyondArgs {
    #[command(flatten)]
    pub target: ModelTask,
    /// The node discovery whose circuit is judged (its flags, as `discover` takes them).
    #[command(flatten)]
    pub flags: DiscoverFlags,
    #[command(flatten)]
    pub acdc: AcdcArgs,
    /// Output JSON; default ./artifacts/beyond/MODEL-TASK.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print nothing but errors: no progress, notes, warnings or summary.
    #[arg(long)]
    pub quiet: bool,
    /// Write the JSON to standard output and nothing else there (as `--out -`).
    #[arg(long, conflicts_with = "out")]
    pub json: bool,
}

/// Edge-level ACDC's options.
#[derive(Args, Debug, Clone)]
pub struct AcdcArgs {
    /// ACDC removes an edge when the metric gets worse by less than this.
    #[arg(long, default_value_t = DEFAULT_TAU, allow_negative_numbers = true, value_parser = crate::flags::non_negative)]
    pub tau: f64,
    /// kl (of the circuit's output distribution from the model's) or answer.
    #[arg(long, default_value = "kl")]
    pub acdc_metric: AcdcMetric,
    /// Removed edges carry zero instead of the corrupted value.
    #[arg(long)]
    pub acdc_zero: bool,
    /// Pairs ACDC runs on (the first of the task's), 1 to 100 000.
    #[arg(long, default_value_t = ACDC_PAIRS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub acdc_pairs: i64,
}

impl AcdcArgs {
    /// The options, checked, so that bad ones are refused before any work.
    pub fn config(&self) -> anyhow::Result<AcdcConfig> {
        let config = AcdcConfig { tau: self.tau, metric: self.acdc_metric, zero_ablation: self.acdc_zero };
        config.validate().context("--tau")?;
        Ok(config)
    }
}

pub fn run(args: BeyondArgs) -> anyhow::Result<()> {
    let acdc = args.acdc.config()?;
    let model = &args.target.model;
    let Discovered { path, task, ck, mnist, disc } =
        discovered(&args.target, &args.flags, &args.data, &out_or_stdout(&args.out, args.json), "beyond", args.quiet)?;
    let (regime, seed) = match &ck.meta {
        Some(m) => (Some(m.config.regime), Some(m.config.seed)),
        None => (None, None),
    };
    let b = analyse(&mnist, &ck.model, (regime, seed), &disc, &acdc, args.acdc.acdc_pairs as usize)
        .with_context(|| format!("attribution and faithfulness of {} on {task}", model.display()))?;
    if path != std::path::Path::new("-") {
        remove_stale_temps([dir_of(&path)], args.quiet)?;
    }
    write_output(&path, &serde_json::to_vec_pretty(&b)?)?;
    summary(&path, args.quiet, &format!("{} on {task}: {} -> {}", model.display(), b.summary(), path.display()));
    summary(&path, args.quiet, &format!("  faithfulness: {FAITHFULNESS_MEANS}"));
    if [b.circuit_faithfulness, b.eap_same_size_faithfulness, b.acdc.faithfulness_own_pairs, b.acdc.faithfulness]
        .iter()
        .any(|&f| f > 1.0)
    {
        summary(&path, args.quiet, &format!("  {FAITHFULNESS_ABOVE_ONE}"));
    }
    Ok(())
}
