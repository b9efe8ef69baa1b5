//! `cargo xtask evaluate`: a circuit the user chose, scored like a
//! discovered one (every metric, every ablation, random circuits of its size).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{DEFAULT_BOOTSTRAPS, DEFAULT_EPS, DEFAULT_OPTIMAL_PAIRS, DEFAULT_RANDOM_CIRCUITS, DEFAULT_SAMPLE};
use modcirc_present::chosen::{evaluation_summary, read_chosen};
use modcirc_present::export::CircuitKind;
use modcirc_store::listing::sha256_file;
use modcirc_study::controls::{MAX_OPTIMAL_PAIRS, MAX_RANDOM_CIRCUITS};
use modcirc_study::discovery::Split;
use modcirc_study::evaluate::{evaluate, ChosenCircuit, EvaluateModel, EvaluateSettings};

use crate::flags::{fraction_below_one, DataArgs, ModelTask, OutputArgs};

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["circuit", "nodes"]))]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub target: ModelTask,
    /// The circuit: a JSON of nodes (`{"nodes": [[0, 5], [3]], "eps": 0.01}`)
    /// or edges (`{"edges": [[layer, output, input], ...]}`), an exported
    /// circuit graph JSON, or a `discover` or `beyond` output of this model.
    #[arg(long)]
    pub circuit: Option<PathBuf>,
    /// The circuit as neurons per hidden layer, layers split by `/`: 3,17,42/5,9.
    #[arg(long)]
    pub nodes: Option<String>,
    /// Which circuit of a `discover` or `beyond` file: nodes, or a method's
    /// edges (acdc, eap, eap-ig, ...), as `export --circuit` takes them.
    #[arg(long, value_parser = parse_kind, requires = "circuit")]
    pub kind: Option<CircuitKind>,
    /// Edge threshold of a --nodes circuit, relative to each layer's largest |weight|, in [0, 1).
    #[arg(long, default_value_t = DEFAULT_EPS, allow_negative_numbers = true, value_parser = fraction_below_one)]
    pub eps: f64,
    /// test or train: where the task's pairs come from.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Seeds the pairing shuffle, the bootstrap, the random circuits and optimal ablation's pairs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bootstrap resamples of the pairs, 1 to 100 000.
    #[arg(long, default_value_t = DEFAULT_BOOTSTRAPS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub bootstraps: i64,
    /// Pairs per bootstrap resample, 1 to 1 000 000.
    #[arg(long, default_value_t = DEFAULT_SAMPLE as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub sample: i64,
    /// Random circuits of its size per pool.
    #[arg(long, default_value_t = DEFAULT_RANDOM_CIRCUITS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=MAX_RANDOM_CIRCUITS as i64))]
    pub random: i64,
    /// Training-split pairs optimal ablation's constants are fitted on, 1 to 60 000.
    #[arg(long, default_value_t = DEFAULT_OPTIMAL_PAIRS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=MAX_OPTIMAL_PAIRS as i64))]
    pub optimal_pairs: i64,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write the model's page with this circuit on it, opened on it,
    /// beside the top-K circuit `discover` finds with its defaults on the same pairs.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `--kind`: `nodes` or a method's name.
fn parse_kind(s: &str) -> Result<CircuitKind, String> {
    s.parse().map_err(|e: modcirc_present::PresentError| e.to_string())
}

pub fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let task = args.target.parse_task()?;
    let path = args.output.path(|| args.target.default_out("evaluate", &task));
    let mut inputs = args.target.inputs(&args.data);
    inputs.extend(args.circuit.iter().map(|c| ("--circuit".to_string(), c.clone())));
    crate::flags::refuse_overwrite_with_page(&path, args.html.as_deref(), &inputs)?;
    let sha256 = sha256_file(&args.target.model)?;
    let (circuit, from) = match (&args.circuit, &args.nodes) {
        (Some(file), _) => {
            let bytes = modcirc_store::read::read_regular(file, 1 << 30)
                .with_context(|| format!("--circuit {}", file.display()))?;
            let read =
                read_chosen(&bytes, args.kind.clone()).with_context(|| format!("--circuit {}", file.display()))?;
            read.check_model(&sha256)
                .with_context(|| format!("--circuit {} on --model {}", file.display(), args.target.model.display()))?;
            (read.circuit, read.from)
        }
        (None, Some(spec)) => (ChosenCircuit::nodes_from_spec(spec, args.eps).context("--nodes")?, "--nodes".into()),
        (None, None) => unreachable!("clap requires --circuit or --nodes"),
    };
    let ck = args.target.load()?;
    let mnist = args.data.load()?;
    let quiet = args.output.quiet;
    args.target.check_provenance(&ck, &mnist, &args.data, quiet)?;
    let settings = EvaluateSettings {
        split: args.split,
        seed: args.seed,
        bootstraps: args.bootstraps as usize,
        sample: args.sample as usize,
        random: args.random as usize,
        optimal_pairs: args.optimal_pairs as usize,
    };
    let model_path = args.target.model.display().to_string();
    let m = EvaluateModel { model: &ck.model, path: &model_path, sha256: &sha256 };
    let e = evaluate(&mnist, m, &task, &circuit, &settings)
        .with_context(|| format!("evaluating the circuit of {from} on --model {model_path}, --task {task}"))?;
    args.output.write(&path, &serde_json::to_vec_pretty(&e)?)?;
    args.output.say(&path, &format!("{}-> {}", evaluation_summary(&e), path.display()));
    if let Some(html) = &args.html {
        let page = page(&args, (&mnist, &ck, &sha256), &task, (&circuit, &from, &e))?;
        args.output.write(html, page.as_bytes())?;
        args.output.say(&path, &format!("  page -> {}", html.display()));
    }
    Ok(())
}

/// The model's page with the evaluated circuit on it: the top-K discovery
/// `discover` makes with its defaults on the same pairs (the page's
/// scores), and the circuit, opened on it.
fn page(
    args: &EvaluateArgs,
    (mnist, ck, sha256): (&modcirc_dataset::Mnist, &modcirc_bimt::checkpoint::Checkpoint, &str),
    task: &modcirc_dataset::Task,
    (circuit, from, e): (&ChosenCircuit, &str, &modcirc_study::evaluate::Evaluation),
) -> anyhow::Result<String> {
    use modcirc_present::html::{model_page_data, report_html, ExtraCircuit, PageInput};
    let options = modcirc_study::options::DiscoveryOptions { split: args.split, seed: args.seed, ..Default::default() };
    let settings =
        options.checked(&ck.model, args.split.of(mnist).len()).map_err(|err| anyhow::anyhow!("--html: {err}"))?;
    let disc =
        crate::discover::discover_model(mnist, (ck, &args.target.model, sha256), task, &settings, args.output.quiet)?;
    let c = circuit.build(&ck.model)?;
    let f = e.faithfulness.map_or("undefined".into(), |f| format!("{f:.3}"));
    let extra = ExtraCircuit {
        kind: "evaluated".into(),
        task: task.name.clone(),
        nodes: c.nodes.clone(),
        edges: modcirc_acdc::edge_list(&ck.model, c.edge_mask()),
        note: format!("The circuit you gave ({from}): faithfulness {f} on all pairs, {} edges.", e.edges),
    };
    let label = args.target.model.file_name().map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let page = PageInput {
        id: "model".into(),
        label,
        seed: ck.meta.as_ref().map(|m| m.config.seed),
        checkpoint: ck,
        discoveries: vec![&disc],
        beyond: Vec::new(),
        extra: vec![extra],
    };
    Ok(report_html(&model_page_data(&page)?)?)
}
