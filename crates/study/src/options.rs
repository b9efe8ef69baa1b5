//! A discovery's options as a user gives them, from any front end (the
//! command line's flags, Python's keywords), and the one path from them to
//! [`DiscoverySettings`]: the same conflicts, bounds and checks against
//! the model for every caller, with errors that name the option (each
//! front end spells the name its own way: `--min-effect`, `min_effect`).

use modcirc_acdc::{Ablation, AcdcError, SelectionRule, DEFAULT_BOOTSTRAPS, DEFAULT_EPS, DEFAULT_K, DEFAULT_SAMPLE};
use modcirc_mlp::{DeviceSpec, Mlp};

use crate::discovery::{DiscoverySettings, Split, DEFAULT_MAX_MEMORY_GIB};

/// The most bootstrap resamples a discovery takes.
pub const MAX_BOOTSTRAPS: usize = 100_000;
/// The most pairs a resample takes.
pub const MAX_SAMPLE: usize = 1_000_000;

/// How the circuit's neurons are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Select {
    /// The K lowest scores per hidden layer (the study's rule).
    #[default]
    TopK,
    /// Every live neuron whose effect is at least the minimum effect.
    Threshold,
}

/// The smallest effect a threshold keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinEffect {
    /// In logit-difference units.
    Logits(f64),
    /// A fraction of the baseline (`0.05` is 5%).
    Share(f64),
}

/// A discovery's options; `None` is the study's default.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// K per hidden layer (one for all, or one each), under [`Select::TopK`].
    pub k: Option<Vec<usize>>,
    /// The selection rule.
    pub select: Select,
    /// The smallest effect, under [`Select::Threshold`] (default 0 logits).
    pub min_effect: Option<MinEffect>,
    /// Under [`Select::TopK`], fill K from live neurons only.
    pub live_only: bool,
    /// Also find the smallest circuits reaching this faithfulness.
    pub target_faithfulness: Option<f64>,
    /// Edge threshold, relative to a layer's largest |weight|.
    pub eps: Option<f64>,
    /// What removed neurons carry.
    pub ablation: Ablation,
    /// Bootstrap resamples.
    pub bootstraps: Option<usize>,
    /// Pairs per resample.
    pub sample: Option<usize>,
    /// Where the pairs come from.
    pub split: Split,
    /// Seeds the pairing shuffle and the bootstrap.
    pub seed: u64,
    /// The largest working set allowed, in GiB.
    pub max_memory_gib: Option<u64>,
    /// Where the patching sweep runs.
    pub device: DeviceSpec,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        let d = DiscoverySettings::default();
        DiscoveryOptions {
            k: None,
            select: Select::TopK,
            min_effect: None,
            live_only: false,
            target_faithfulness: None,
            eps: None,
            ablation: d.config.ablation,
            bootstraps: None,
            sample: None,
            split: d.split,
            seed: d.config.seed,
            max_memory_gib: None,
            device: DeviceSpec::Cpu,
        }
    }
}

/// An option that cannot be used, named as [`DiscoveryOptions`] names it.
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// An option that applies under another selection rule only.
    #[error("{option} applies to select {rule} only{why}")]
    Conflict {
        /// The option given.
        option: &'static str,
        /// The rule it needs (`topk` or `threshold`).
        rule: &'static str,
        /// More about it (empty, or starting with a space).
        why: &'static str,
    },
    /// A value outside its bounds.
    #[error("{option}: {message}")]
    Bounds {
        /// The option.
        option: &'static str,
        /// What is wrong with its value.
        message: String,
    },
    /// A discovery that would hold more memory than allowed.
    #[error("a discovery on this {sizes} model would hold up to {gib:.1} GiB, above max_memory_gib {max} (raise it to run anyway)")]
    Memory {
        /// The model's layer sizes (`784-100-100-10`).
        sizes: String,
        /// GiB it would hold.
        gib: f64,
        /// The limit.
        max: u64,
    },
    /// Options the model refuses (a K wider than a layer).
    #[error("{source}")]
    Model {
        /// The options concerned.
        options: &'static [&'static str],
        /// The check's complaint.
        #[source]
        source: AcdcError,
    },
}

impl OptionError {
    /// The options the error concerns, as [`DiscoveryOptions`] names them.
    pub fn options(&self) -> Vec<&'static str> {
        match self {
            OptionError::Conflict { option, .. } | OptionError::Bounds { option, .. } => vec![option],
            OptionError::Memory { .. } => vec!["max_memory_gib"],
            OptionError::Model { options, .. } => options.to_vec(),
        }
    }
}

impl DiscoveryOptions {
    /// The settings the options name, or the first conflict or value out
    /// of bounds.
    pub fn settings(&self) -> Result<DiscoverySettings, OptionError> {
        let conflict = |option, rule, why| Err(OptionError::Conflict { option, rule, why });
        let selection = match self.select {
            Select::TopK => {
                if self.min_effect.is_some() {
                    return conflict("min_effect", "threshold", "");
                }
                SelectionRule::TopK { k: self.k.clone().unwrap_or(vec![DEFAULT_K]), live_only: self.live_only }
            }
            Select::Threshold => {
                if self.live_only {
                    return conflict("live_only", "topk", " (a threshold keeps live neurons only)");
                }
                if self.k.is_some() {
                    return conflict("k", "topk", "");
                }
                match self.min_effect {
                    Some(MinEffect::Share(min_share)) => SelectionRule::ShareThreshold { min_share },
                    Some(MinEffect::Logits(min_effect)) => SelectionRule::Threshold { min_effect },
                    None => SelectionRule::Threshold { min_effect: 0.0 },
                }
            }
        };
        let bounds = |option, message: String| Err(OptionError::Bounds { option, message });
        if let Some(f) = self.target_faithfulness.filter(|f| !(f.is_finite() && *f > 0.0)) {
            return bounds("target_faithfulness", format!("{f} is not a finite number above 0"));
        }
        let (eps, bootstraps, sample) = (
            self.eps.unwrap_or(DEFAULT_EPS),
            self.bootstraps.unwrap_or(DEFAULT_BOOTSTRAPS),
            self.sample.unwrap_or(DEFAULT_SAMPLE),
        );
        if !(0.0..1.0).contains(&eps) {
            return bounds("eps", format!("{eps} is not in [0, 1)"));
        }
        if !(1..=MAX_BOOTSTRAPS).contains(&bootstraps) {
            return bounds("bootstraps", format!("{bootstraps} is not in 1..={MAX_BOOTSTRAPS}"));
        }
        if !(1..=MAX_SAMPLE).contains(&sample) {
            return bounds("sample", format!("{sample} is not in 1..={MAX_SAMPLE}"));
        }
        let mut settings = DiscoverySettings { split: self.split, ..DiscoverySettings::default() };
        let c = &mut settings.config;
        (c.selection, c.eps, c.ablation, c.bootstraps, c.sample) = (selection, eps, self.ablation, bootstraps, sample);
        (c.seed, c.device, c.target_faithfulness) = (self.seed, self.device, self.target_faithfulness);
        Ok(settings)
    }

    /// [`settings`](Self::settings), checked against `model` before any
    /// work: K against its widths, and the working set of a discovery on
    /// `images` images against the memory allowed.
    pub fn checked(&self, model: &Mlp, images: usize) -> Result<DiscoverySettings, OptionError> {
        let settings = self.settings()?;
        let max = self.max_memory_gib.unwrap_or(DEFAULT_MAX_MEMORY_GIB);
        let need = settings.config.working_set_bytes(model, images);
        if need > max << 30 {
            let sizes = model.sizes().iter().map(usize::to_string).collect::<Vec<_>>().join("-");
            return Err(OptionError::Memory { sizes, gib: need as f64 / (1u64 << 30) as f64, max });
        }
        settings.config.check(model).map_err(|source| {
            let options: &'static [&'static str] = match source {
                AcdcError::BadK { .. } => &["k"],
                AcdcError::BadSelection(_) => &["k", "min_effect"],
                _ => &["sample", "bootstraps", "eps"],
            };
            OptionError::Model { options, source }
        })?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_and_bounds_name_the_option() {
        let threshold_k = DiscoveryOptions { select: Select::Threshold, k: Some(vec![3]), ..Default::default() };
        let topk_min = DiscoveryOptions { min_effect: Some(MinEffect::Logits(0.5)), ..Default::default() };
        let eps = DiscoveryOptions { eps: Some(1.0), ..Default::default() };
        let sample = DiscoveryOptions { sample: Some(0), ..Default::default() };
        for (o, option) in [(threshold_k, "k"), (topk_min, "min_effect"), (eps, "eps"), (sample, "sample")] {
            let e = o.settings().unwrap_err();
            assert_eq!(e.options(), [option], "{e}");
            assert!(e.to_string().starts_with(option), "{e}");
        }
        let default = DiscoveryOptions::default().settings().unwrap();
        assert_eq!(default, DiscoverySettings::default(), "no option is the study's discovery");
    }

    #[test]
    fn a_k_wider_than_a_layer_and_a_working_set_too_large_are_refused() {
        let mut x = 0.0f64;
        let mut next = || {
            x = (x + 0.37) % 1.0;
            x - 0.5
        };
        let model = Mlp::init(&[784, 8, 8, 10], modcirc_mlp::Activation::Silu, &mut next).unwrap();
        let wide = DiscoveryOptions { k: Some(vec![9]), ..Default::default() };
        assert_eq!(wide.checked(&model, 100).unwrap_err().options(), ["k"]);
        let huge = DiscoveryOptions { sample: Some(MAX_SAMPLE), max_memory_gib: Some(1), ..Default::default() };
        let e = huge.checked(&model, 10_000).unwrap_err();
        assert!(matches!(e, OptionError::Memory { max: 1, .. }), "{e}");
    }
}
