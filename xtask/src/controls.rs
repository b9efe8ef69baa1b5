//! `cargo xtask controls`: node discovery, then STUDY §10 on its circuit:
//! random circuits of its size, disjoint alternatives, the any-digit
//! control and the other ablations.

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{DEFAULT_ALTERNATIVES, DEFAULT_FAITHFUL, DEFAULT_OPTIMAL_PAIRS, DEFAULT_RANDOM_CIRCUITS};
use modcirc_study::controls::{controls, ControlSettings, MAX_OPTIMAL_PAIRS, MAX_RANDOM_CIRCUITS};

use crate::discover::{discovered, DiscoverFlags, Discovered};
use crate::flags::{DataArgs, ModelTask, OutputArgs};

#[derive(Args, Debug)]
pub struct ControlsArgs {
    #[command(flatten)]
    pub target: ModelTask,
    /// The node discovery whose circuit is judged (its flags, as `discover` takes them).
    #[command(flatten)]
    pub flags: DiscoverFlags,
    /// Random circuits of the circuit's size per pool (live neurons, all neurons).
    #[arg(long, default_value_t = DEFAULT_RANDOM_CIRCUITS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=MAX_RANDOM_CIRCUITS as i64))]
    pub random: i64,
    /// The most disjoint alternative circuits sought.
    #[arg(long, default_value_t = DEFAULT_ALTERNATIVES as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=1000))]
    pub alternatives: i64,
    /// The faithfulness from which an alternative counts as faithful.
    #[arg(long, default_value_t = DEFAULT_FAITHFUL, allow_negative_numbers = true, value_parser = crate::flags::non_negative)]
    pub faithful: f64,
    /// Seeds the random circuits and the any-digit pairs.
    #[arg(long, default_value_t = 0)]
    pub control_seed: u64,
    /// Training-split pairs optimal ablation's constants are fitted on (for
    /// the judgement under each ablation), 1 to 60 000.
    #[arg(long, default_value_t = DEFAULT_OPTIMAL_PAIRS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=MAX_OPTIMAL_PAIRS as i64))]
    pub optimal_pairs: i64,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: ControlsArgs) -> anyhow::Result<()> {
    let model = &args.target.model;
    let Discovered { path, task, ck, mnist, disc } =
        discovered(&args.target, &args.flags, &args.data, &args.output, "controls")?;
    let meta = ck.meta.as_ref().map(|m| (m.config.regime, m.config.seed));
    let c = ControlSettings {
        random: args.random as usize,
        alternatives: args.alternatives as usize,
        faithful: args.faithful,
        seed: args.control_seed,
        optimal_pairs: args.optimal_pairs as usize,
    };
    let r = controls(&mnist, &ck.model, (meta.map(|m| m.0), meta.map(|m| m.1)), &disc, &c)
        .with_context(|| format!("the controls of {} on {task}", model.display()))?;
    args.output.write(&path, &serde_json::to_vec_pretty(&r)?)?;
    args.output.say(&path, &format!("{} on {task}: {} -> {}", model.display(), r.summary(), path.display()));
    Ok(())
}
