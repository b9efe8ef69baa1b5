//! `cargo xtask beyond`: node discovery, then STUDY §8 on its circuit and task.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use modcirc_acdc::{
    AcdcConfig, AcdcMetric, MaskConfig, Method, DEFAULT_IG_STEPS, DEFAULT_MASK_LR, DEFAULT_MASK_STEPS, DEFAULT_TAU,
};
use modcirc_study::beyond::{analyse, BeyondSettings, ACDC_PAIRS, MASK_PAIRS};
use modcirc_study::discovery::{FAITHFULNESS_ABOVE_ONE, FAITHFULNESS_MEANS};
use modcirc_study::stability::{StabilitySettings, DEFAULT_STABILITY_RESAMPLES, DEFAULT_TRAINED_RESAMPLES};

use crate::discover::{discovered, DiscoverFlags, Discovered};
use crate::flags::{DataArgs, ModelTask, OutputArgs};

#[derive(Args, Debug)]
pub struct BeyondArgs {
    #[command(flatten)]
    pub target: ModelTask,
    /// The node discovery whose circuit is judged (its flags, as `discover` takes them).
    #[command(flatten)]
    pub flags: DiscoverFlags,
    #[command(flatten)]
    pub acdc: AcdcArgs,
    #[command(flatten)]
    pub methods: MethodArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Also write the model's page with every circuit computed (top-K, the
    /// smallest uniform and per layer, EAP, ACDC and each method's) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
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

/// The edge methods of STUDY §12, judged beside EAP.
#[derive(Args, Debug, Clone)]
pub struct MethodArgs {
    /// Which methods run beside EAP and ACDC: eap-ig (the inputs' path),
    /// eap-ig-activations, mask (learned edge masks), mask-warm (masks
    /// started from EAP-IG's scores), ensemble (of the first three, by mean
    /// rank), all (all five) or none; repeat or separate with commas.
    #[arg(long = "method", value_delimiter = ',', default_value = "all", value_parser = method_name)]
    pub methods: Vec<String>,
    /// Points on EAP-IG's path, 1 to 10 000 (1: EAP itself).
    #[arg(long, default_value_t = DEFAULT_IG_STEPS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub ig_steps: i64,
    /// The learned masks' penalties per kept edge, ascending (default: decades from 1e-8 to 1e-2).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, value_parser = crate::flags::positive)]
    pub mask_lambdas: Option<Vec<f64>>,
    /// Adam steps per penalty, 1 to 1 000 000.
    #[arg(long, default_value_t = DEFAULT_MASK_STEPS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub mask_steps: i64,
    /// The masks' Adam learning rate.
    #[arg(long, default_value_t = DEFAULT_MASK_LR, allow_negative_numbers = true, value_parser = crate::flags::positive)]
    pub mask_lr: f64,
    /// Pairs the masks train on (the first of the task's), 1 to 100 000.
    #[arg(long, default_value_t = MASK_PAIRS as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub mask_pairs: i64,
    /// Bootstrap resamples each gradient method's stability is measured on
    /// (the discovery's first), 2 to 1 000; 0: no stability.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_STABILITY_RESAMPLES as i64, allow_negative_numbers = true, value_parser = resamples)]
    pub stability_resamples: i64,
    /// Likewise for the methods that train masks (mask, mask-warm, an
    /// ensemble with masks), 2 to 1 000.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TRAINED_RESAMPLES as i64, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(2..=1_000))]
    pub mask_resamples: i64,
}

/// `--stability-resamples`: 0 (none) or 2 to 1 000.
fn resamples(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) if n == 0 || (2..=1_000).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n}: 0 (no stability) or 2 to 1000 resamples (one has nothing to compare with)")),
        Err(e) => Err(e.to_string()),
    }
}

impl MethodArgs {
    /// The settings, with `acdc`, checked, so that bad ones are refused before any work.
    pub fn settings(&self, acdc: AcdcConfig, acdc_pairs: usize) -> anyhow::Result<BeyondSettings> {
        let all = BeyondSettings::default();
        let mut names: Vec<String> = Vec::new();
        for m in &self.methods {
            match m.as_str() {
                "all" => names.extend(all.methods.iter().map(|m| m.name().to_string())),
                "none" => {}
                m => names.push(m.to_string()),
            }
        }
        names.dedup();
        let mask = MaskConfig {
            lambdas: self.mask_lambdas.clone().unwrap_or_else(|| MaskConfig::default().lambdas),
            steps: self.mask_steps as usize,
            lr: self.mask_lr,
            ..MaskConfig::default()
        };
        mask.validate().context(if self.mask_lambdas.is_some() {
            "--mask-lambdas or --mask-lr"
        } else {
            "--mask-lr"
        })?;
        let (steps, pairs) = (self.ig_steps as usize, self.mask_pairs as usize);
        // The flags apply to every method they name, an ensemble's members too.
        fn with_flags(m: Method, steps: usize, mask: &MaskConfig, pairs: usize) -> Method {
            match m {
                Method::EapIg { .. } => Method::EapIg { steps },
                Method::EapIgActivations { .. } => Method::EapIgActivations { steps },
                Method::Mask { .. } => Method::Mask { config: mask.clone(), pairs },
                Method::MaskWarm { .. } => Method::MaskWarm { config: mask.clone(), pairs, steps },
                Method::Ensemble { members } => Method::Ensemble {
                    members: members.into_iter().map(|m| with_flags(m, steps, mask, pairs)).collect(),
                },
                m => m,
            }
        }
        let methods = names
            .iter()
            .map(|name| Ok(with_flags(name.parse::<Method>().context("--method")?, steps, &mask, pairs)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let stability = (self.stability_resamples > 0).then_some(StabilitySettings {
            resamples: self.stability_resamples as usize,
            trained_resamples: self.mask_resamples as usize,
        });
        let s = BeyondSettings { acdc, acdc_pairs, methods, stability };
        s.check().context("--method")?;
        Ok(s)
    }
}

/// `--method`: `all`, `none` or a method's name (which of them run beside
/// EAP is the settings' check).
fn method_name(s: &str) -> Result<String, String> {
    match s {
        "all" | "none" => Ok(s.into()),
        _ => s.parse::<Method>().map(|_| s.into()).map_err(|e| format!("{e}, all or none")),
    }
}

pub fn run(args: BeyondArgs) -> anyhow::Result<()> {
    let acdc = args.acdc.config()?;
    let settings = args.methods.settings(acdc, args.acdc.acdc_pairs as usize)?;
    let model = &args.target.model;
    if let Some(html) = &args.html {
        let task = args.target.parse_task()?;
        let out = args.output.path(|| args.target.default_out("beyond", &task));
        crate::flags::refuse_overwrite_with_page(&out, Some(html), &args.target.inputs(&args.data))?;
    }
    let Discovered { path, task, ck, mnist, disc } =
        discovered(&args.target, &args.flags, &args.data, &args.output, "beyond")?;
    let (regime, seed) = match &ck.meta {
        Some(m) => (Some(m.config.regime), Some(m.config.seed)),
        None => (None, None),
    };
    let b = analyse(&mnist, &ck.model, (regime, seed), &disc, &settings)
        .with_context(|| format!("attribution and faithfulness of {} on {task}", model.display()))?;
    args.output.write(&path, &serde_json::to_vec_pretty(&b)?)?;
    args.output.say(&path, &format!("{} on {task}: {} -> {}", model.display(), b.summary(), path.display()));
    for line in b.methods_summary() {
        args.output.say(&path, &format!("  {line}"));
    }
    args.output.say(&path, &format!("  faithfulness: {FAITHFULNESS_MEANS}"));
    if [b.circuit_faithfulness, b.eap_same_size_faithfulness, b.acdc.faithfulness_own_pairs, b.acdc.faithfulness]
        .iter()
        .any(|&f| f > 1.0)
    {
        args.output.say(&path, &format!("  {FAITHFULNESS_ABOVE_ONE}"));
    }
    if let Some(html) = &args.html {
        let label = model.file_name().map_or("model".into(), |s| s.to_string_lossy().into_owned());
        let page = modcirc_present::html::PageInput {
            id: "model".into(),
            label,
            seed,
            checkpoint: &ck,
            discoveries: vec![&disc],
            beyond: vec![&b],
            extra: Vec::new(),
        };
        let text = modcirc_present::html::report_html(&modcirc_present::html::model_page_data(&page)?)?;
        args.output.write(html, text.as_bytes())?;
        args.output.say(&path, &format!("  page -> {}", html.display()));
    }
    Ok(())
}
