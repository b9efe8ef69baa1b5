//! `cargo xtask export`: a discovered circuit as a graph (JSON or Graphviz DOT).

use std::path::PathBuf;

use anyhow::{ensure, Context};
use clap::Args;
use modcirc_present::export::{circuit_graph, to_dot};
use modcirc_store::atomic::dir_of;
use modcirc_store::listing::sha256_file;
use modcirc_study::discovery::{differing_files, DiscoverOutput};

use crate::flags::{artifacts_dir, load_model, refuse_overwrite, remove_stale_temps, summary, write_output, DataArgs};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The checkpoint the discovery was made on.
    #[arg(long)]
    pub model: PathBuf,
    /// A `discover` output (JSON) of that model.
    #[arg(long)]
    pub discovery: PathBuf,
    /// json: every neuron and weight with its score and whether the circuit
    /// keeps it (docs/circuit-graph.md); dot: the circuit alone, by layer, for `dot -Tsvg`.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// The hidden layers' activation, where the file does not record it.
    #[arg(long)]
    pub activation: Option<modcirc_mlp::Activation>,
    /// Output file; default ./artifacts/export/DISCOVERY.json or .dot.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// No notes (of temporary files removed); warnings and errors still print.
    #[arg(long)]
    pub quiet: bool,
}

/// `--format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The graph JSON.
    Json,
    /// Graphviz DOT.
    Dot,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let ext = match args.format {
        Format::Json => "json",
        Format::Dot => "dot",
    };
    let path = args.out.clone().unwrap_or_else(|| {
        let stem = args.discovery.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        artifacts_dir().join("export").join(format!("{stem}.{ext}"))
    });
    let mut inputs = args.data.inputs();
    inputs.push(("--model".into(), args.model.clone()));
    inputs.push(("--model's sidecar".into(), modcirc_bimt::checkpoint::sidecar_path(&args.model)));
    inputs.push(("--discovery".into(), args.discovery.clone()));
    refuse_overwrite(&[("--out", &path)], &inputs)?;
    let bytes = std::fs::read(&args.discovery).with_context(|| format!("reading {}", args.discovery.display()))?;
    let disc: DiscoverOutput = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a `discover` output (--discovery)", args.discovery.display()))?;
    let ck = load_model(&args.model, args.activation)?;
    let sha256 = sha256_file(&args.model)?;
    ensure!(
        sha256 == disc.inputs.model_sha256,
        "--discovery {} was made on {} (SHA-256 {}), not on --model {} (SHA-256 {sha256})",
        args.discovery.display(),
        disc.inputs.model,
        disc.inputs.model_sha256,
        args.model.display()
    );
    let mnist = args.data.load()?;
    let differ = differing_files(&disc.inputs.data_checksums, &mnist.checksums);
    ensure!(
        differ.is_empty(),
        "--discovery {} indexes pairs of {}, but {} here differ ({}): pass --data-dir {}",
        args.discovery.display(),
        disc.inputs.data_dir,
        mnist.dir.display(),
        differ.join(", "),
        disc.inputs.data_dir
    );
    let graph = circuit_graph(&mnist, &ck, &disc).context("--model, --discovery")?;
    let text = match args.format {
        Format::Json => serde_json::to_string(&graph)?,
        Format::Dot => to_dot(&graph),
    };
    if path != std::path::Path::new("-") {
        remove_stale_temps([dir_of(&path)], args.quiet)?;
    }
    write_output(&path, text.as_bytes())?;
    let kept = graph.edges.values().filter(|e| e.in_graph).count();
    let hidden = graph.nodes.values().filter(|n| n.score.is_some());
    summary(
        &path,
        &format!(
            "{} circuit of {}: {} of {} edges, {} of {} hidden neurons -> {}",
            graph.cfg.task,
            args.model.display(),
            kept,
            graph.edges.len(),
            hidden.clone().filter(|n| n.in_graph).count(),
            hidden.count(),
            path.display()
        ),
    );
    Ok(())
}
