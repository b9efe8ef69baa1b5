//! `cargo xtask export`: a discovered circuit as a graph (JSON or Graphviz DOT).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use modcirc_present::export::{checked_graph, read_source, to_dot, CircuitKind};
use modcirc_store::atomic::dir_of;
use modcirc_store::listing::sha256_file;

use crate::flags::{artifacts_dir, load_model, refuse_overwrite, remove_stale_temps, summary, write_output, DataArgs};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The checkpoint the discovery was made on.
    #[arg(long)]
    pub model: PathBuf,
    /// A `discover` output (its node circuit) or a `beyond` output (its
    /// ACDC or top-|EAP| circuit) of that model.
    #[arg(long)]
    pub discovery: PathBuf,
    /// Which circuit of the file: nodes (a `discover` output's, its
    /// default), or a method's edges in a `beyond` output: acdc (its
    /// default), eap, eap-ig, eap-ig-activations, mask, mask-warm or
    /// ensemble (each method's top edges at the node circuit's size).
    #[arg(long, value_parser = parse_circuit)]
    pub circuit: Option<CircuitKind>,
    /// json: every neuron and weight with its score and whether the circuit
    /// keeps it (docs/circuit-graph.md); dot: the circuit alone, by layer, for `dot -Tsvg`.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// The hidden layers' activation, for a model without a sidecar: it
    /// must be the one the discovery recorded.
    #[arg(long)]
    pub activation: Option<modcirc_mlp::Activation>,
    /// Output file; default ./artifacts/export/DISCOVERY.json or .dot.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print nothing but errors: no progress, notes, warnings or summary.
    #[arg(long)]
    pub quiet: bool,
}

/// `--circuit`: `nodes` or a method's name.
fn parse_circuit(s: &str) -> Result<CircuitKind, String> {
    s.parse().map_err(|e: modcirc_present::PresentError| e.to_string())
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
    let src = read_source(&bytes, args.circuit.clone())
        .with_context(|| format!("--discovery {}", args.discovery.display()))?;
    let ck = load_model(&args.model, args.activation)?;
    let sha256 = sha256_file(&args.model)?;
    let mnist = args.data.load()?;
    let graph = checked_graph(&mnist, &ck, &sha256, &src).with_context(|| {
        format!(
            "--discovery {} on --model {} (--activation, --data-dir)",
            args.discovery.display(),
            args.model.display()
        )
    })?;
    let text = match args.format {
        Format::Json => serde_json::to_string(&graph)?,
        Format::Dot => to_dot(&graph),
    };
    if path != std::path::Path::new("-") {
        remove_stale_temps([dir_of(&path)], args.quiet)?;
    }
    write_output(&path, text.as_bytes())?;
    let line = format!("{} of {} -> {}", graph.summary(), args.model.display(), path.display());
    summary(&path, args.quiet, &line);
    Ok(())
}
