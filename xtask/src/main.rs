//! `cargo xtask`: modcirc's command line (see README.md): flags, progress
//! and printing over the library crates. The developer checks are
//! `cargo devtask`'s.

mod beyond;
mod compare;
mod controls;
mod discover;
mod evaluate;
mod export;
mod flags;
mod plan_args;
mod progress;
mod reproduce;
mod slurm;
mod sweep;
mod train;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;
use modcirc_metrics::CountingAlloc;

/// mimalloc because glibc's allocator returns freed buffers to the kernel on
/// every step at this size; wrapped to count peak heap bytes (STUDY §6).
#[global_allocator]
static ALLOC: CountingAlloc<MiMalloc> = CountingAlloc::new(MiMalloc);

#[derive(Parser)]
#[command(name = "cargo xtask", about = "The modcirc study pipeline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one regime (or all five) on MNIST and write checkpoints.
    Train(train::TrainArgs),
    /// Find a task's circuit in a trained model by activation patching.
    Discover(discover::DiscoverArgs),
    /// Beyond the paper (STUDY §8) on one model and task: attribution
    /// patching, faithfulness, edge-level ACDC.
    Beyond(beyond::BeyondArgs),
    /// Controls (STUDY §10) on one model and task: random circuits of the
    /// circuit's size, disjoint alternatives, the any-digit control.
    Controls(controls::ControlsArgs),
    /// Several checkpoints on one task, side by side: accuracy, the smallest
    /// faithful circuit, CPR/CMD, ACDC, modularity; by condition over seeds.
    Compare(compare::CompareArgs),
    /// A circuit you choose (nodes per layer, edges, or a circuit file),
    /// scored: faithfulness, accuracy, every ablation, random circuits of its size.
    Evaluate(evaluate::EvaluateArgs),
    /// A discovered circuit as a graph: JSON (EAP-IG's field names) or Graphviz DOT.
    Export(export::ExportArgs),
    /// The whole study: train, discover, time, draw, and write REPORT.md.
    Reproduce(reproduce::ReproduceArgs),
    /// Sweeps: a plan of axes run in shards (on one machine or a Slurm
    /// cluster) into one shared cache, and their report.
    Sweep(sweep::SweepArgs),
}

fn main() {
    // Output piped into `head` ends quietly when the pipe closes, as other
    // Unix tools do, rather than panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default, before any
    // thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Beyond(args) => beyond::run(args),
        Command::Controls(args) => controls::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Export(args) => export::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Sweep(args) => sweep::run(args),
    };
    if let Err(e) = result {
        if let Some(usage) = e.downcast_ref::<clap::Error>() {
            // Flags that parse but do not go together: exit 2, as clap does.
            usage.exit();
        }
        eprintln!("error: {}", message(&e));
        std::process::exit(1);
    }
}

/// The error and its causes, joined by ": ", each cause said once: many
/// errors already quote their source in their own message.
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !msg.contains(&cause) {
            msg.push_str(": ");
            msg.push_str(&cause);
        }
    }
    msg
}
