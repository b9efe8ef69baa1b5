//! Controls on one discovered circuit (STUDY §10): random circuits of its
//! size, the best circuits disjoint from it, the any-digit control, and its
//! resamples judged under the other ablations. Computed on the discovery's
//! own pairs, after it.

use std::time::Instant;

use modcirc_acdc::{
    alternatives, any_digit_images, discover_with, faithful_alternatives, random_circuits, Ablation, AcdcError,
    Alternative, Circuit, CircuitMetrics, DiscoveryConfig, OptimalAblation, PatchingSweep, Pool, RandomCircuits,
    TaskImages, DEFAULT_ALTERNATIVES, DEFAULT_FAITHFUL, DEFAULT_OPTIMAL_PAIRS, DEFAULT_RANDOM_CIRCUITS,
};
use modcirc_bimt::Regime;
use modcirc_dataset::{Bootstrap, Mnist};
use modcirc_metrics::Summary;
use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::discovery::DiscoverOutput;
use crate::StudyError;

/// Version of the controls files; part of their cache key.
pub const CONTROLS_SCHEMA: &str = "modcirc.controls/3";

/// How the controls are run (STUDY §10 defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlSettings {
    /// Random circuits per pool (R).
    pub random: usize,
    /// The most disjoint alternatives sought.
    pub alternatives: usize,
    /// The faithfulness from which an alternative counts as faithful.
    pub faithful: f64,
    /// Seeds the random circuits and the any-digit pairs.
    pub seed: u64,
    /// The training-split pairs optimal ablation's constants are fitted on
    /// (STUDY §12), for the judgement under each ablation.
    #[serde(default = "default_optimal_pairs")]
    pub optimal_pairs: usize,
}

fn default_optimal_pairs() -> usize {
    DEFAULT_OPTIMAL_PAIRS
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            random: DEFAULT_RANDOM_CIRCUITS,
            alternatives: DEFAULT_ALTERNATIVES,
            faithful: DEFAULT_FAITHFUL,
            seed: 0,
            optimal_pairs: DEFAULT_OPTIMAL_PAIRS,
        }
    }
}

/// The most training pairs optimal ablation's constants are fitted on.
pub const MAX_OPTIMAL_PAIRS: usize = 60_000;

/// The most random circuits a control draws.
pub const MAX_RANDOM_CIRCUITS: usize = 100_000;

impl ControlSettings {
    /// Refuses settings that cannot give a result, naming the field.
    pub fn check(&self) -> Result<(), StudyError> {
        if !(1..=MAX_RANDOM_CIRCUITS).contains(&self.random) {
            return Err(StudyError::Invalid(format!(
                "random = {}: draw between 1 and {MAX_RANDOM_CIRCUITS} random circuits",
                self.random
            )));
        }
        if !(1..=MAX_OPTIMAL_PAIRS).contains(&self.optimal_pairs) {
            return Err(StudyError::Invalid(format!(
                "optimal_pairs = {}: fit on between 1 and {MAX_OPTIMAL_PAIRS} pairs",
                self.optimal_pairs
            )));
        }
        if !self.faithful.is_finite() {
            return Err(StudyError::Invalid(format!("faithful = {}: must be a finite number", self.faithful)));
        }
        Ok(())
    }
}

/// The discovery's resamples judged under another ablation than its own:
/// the same circuits (the patching scores do not depend on the ablation),
/// other metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnderAblation {
    /// The ablation.
    pub ablation: Ablation,
    /// Over the resamples (lower is better).
    pub logit_difference: Summary,
    /// Over the resamples.
    pub accuracy: Summary,
    /// Over the resamples (the same as the discovery's).
    pub sparsity: Summary,
}

/// The any-digit control (STUDY §10): the same discovery on pairs of
/// random images whose predicted classes differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnyDigit {
    /// Its pairs (as many as the task has).
    pub pairs: usize,
    /// Neurons its circuit keeps per hidden layer.
    pub kept: Vec<usize>,
    /// Its circuit's metrics on all of its pairs.
    pub circuit: CircuitMetrics,
    /// Its circuits' faithfulness over the resamples.
    pub faithfulness: Option<Summary>,
    /// Its circuits' logit difference over the resamples.
    pub logit_difference: Summary,
}

/// STUDY §10 on one discovery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlsResult {
    /// [`CONTROLS_SCHEMA`].
    pub schema: String,
    /// The model's regime, where its sidecar says.
    pub regime: Option<Regime>,
    /// Its training seed, likewise.
    pub seed: Option<u64>,
    /// The task's name.
    pub task: String,
    /// The task's pairs.
    pub pairs: usize,
    /// How the controls ran.
    pub settings: ControlSettings,
    /// The discovered circuit's metrics on all pairs.
    pub circuit: CircuitMetrics,
    /// Against random circuits of its size: from live neurons, then from all.
    pub random: Vec<RandomCircuits>,
    /// The best circuits disjoint from it and from each other, in order.
    pub alternatives: Vec<Alternative>,
    /// How many of them reach faithfulness `settings.faithful`.
    pub faithful_alternatives: usize,
    /// The any-digit control.
    pub any_digit: AnyDigit,
    /// The resamples under each ablation other than the discovery's.
    pub ablations: Vec<UnderAblation>,
    /// Wall time of the controls.
    pub seconds: f64,
}

impl ControlsResult {
    /// The comparison with random circuits of `pool`.
    pub fn against(&self, pool: Pool) -> Option<&RandomCircuits> {
        self.random.iter().find(|r| r.pool == pool)
    }

    /// One line: the circuit's faithfulness against random circuits of live
    /// neurons, the faithful alternatives, and the any-digit control's.
    pub fn summary(&self) -> String {
        let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
        let random = match self.against(Pool::Live).and_then(|r| r.faithfulness.as_ref()) {
            Some(a) => {
                format!("random circuits {:.3} [{:.3}, {:.3}], {}", a.random.mean, a.random.lo, a.random.hi, a.p_text())
            }
            None => "random circuits –".into(),
        };
        let alternatives = if self.settings.alternatives == 0 {
            "no disjoint alternatives sought".to_string()
        } else if self.alternatives.is_empty() {
            "no disjoint alternative could be formed (too few neurons outside the circuit)".to_string()
        } else {
            format!(
                "{} of {} disjoint alternatives reach {}",
                self.faithful_alternatives,
                self.alternatives.len(),
                self.settings.faithful
            )
        };
        format!(
            "faithfulness {} ({random}); {alternatives}; any-digit circuit {}",
            f(self.circuit.faithfulness),
            f(self.any_digit.circuit.faithfulness)
        )
    }
}

/// STUDY §10 on `disc`, a discovery on `model` (of `regime` and `seed`
/// where known), with its pairs from `mnist`.
pub fn controls(
    mnist: &Mnist,
    model: &Mlp,
    (regime, seed): (Option<Regime>, Option<u64>),
    disc: &DiscoverOutput,
    settings: &ControlSettings,
) -> Result<ControlsResult, StudyError> {
    settings.check()?;
    let t = Instant::now();
    let (config, report) = (&disc.inputs.flags.config, &disc.report);
    let split = disc.inputs.flags.split.of(mnist);
    let images = TaskImages::from_pairs(split, &disc.pairs);
    // Optimal ablation's fits: the discovery's per-neuron ones where they
    // were fitted on as many pairs, else fitted here.
    let saved = disc.optimal.as_ref().filter(|c| c.pairs == settings.optimal_pairs);
    let optimal = crate::discovery::optimal_ablation(
        mnist,
        model,
        &disc.inputs.task,
        config.seed,
        settings.optimal_pairs,
        saved,
    )?;
    let sweep = PatchingSweep::new(model, &images)?.with_optimal(optimal.clone())?;
    let sel = &report.selection;
    let circuit = CircuitMetrics::of(&Circuit::new(model, sel.nodes.clone(), config.eps)?, &sweep, config.ablation)?;
    let random = [Pool::Live, Pool::All]
        .into_iter()
        .map(|pool| random_circuits(&sweep, sel, config.eps, config.ablation, pool, settings.random, settings.seed))
        .collect::<Result<Vec<_>, _>>()?;
    let alternatives = alternatives(&sweep, &report.scores, sel, config.eps, config.ablation, settings.alternatives)?;
    let any_digit = any_digit(model, split, images.n, config, settings.seed, &optimal)?;
    let ablations = Ablation::ALL
        .into_iter()
        .filter(|a| *a != config.ablation)
        .map(|a| under_ablation(&sweep, disc, a))
        .collect::<Result<Vec<_>, _>>()?;
    crate::error::ensure_finite(&[
        ("circuit logit difference", circuit.logit_difference),
        ("any-digit logit difference", any_digit.circuit.logit_difference),
    ])?;
    Ok(ControlsResult {
        schema: CONTROLS_SCHEMA.into(),
        regime,
        seed,
        task: disc.inputs.task.name.clone(),
        pairs: images.n,
        settings: settings.clone(),
        circuit,
        random,
        faithful_alternatives: faithful_alternatives(&alternatives, settings.faithful),
        alternatives,
        any_digit,
        ablations,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// The any-digit control: `n` pairs, the discovery's own settings (its
/// rule, so a circuit of the same size), without the compared rules; under
/// optimal ablation, with the task's constants.
fn any_digit(
    model: &Mlp,
    split: &modcirc_dataset::ImageSet,
    n: usize,
    config: &DiscoveryConfig,
    seed: u64,
    optimal: &OptimalAblation,
) -> Result<AnyDigit, StudyError> {
    let images = any_digit_images(model, split, n, seed)?;
    let config = DiscoveryConfig { compare: Vec::new(), ..config.clone() };
    // Under optimal ablation, the task's constants stand for the any-digit pairs' too.
    let report = discover_with(model, &images, &config, Some(optimal), &mut |_| {})?;
    let sweep = PatchingSweep::new(model, &images)?.with_optimal(optimal.clone())?;
    let circuit = Circuit::new(model, report.selection.nodes.clone(), config.eps)?;
    Ok(AnyDigit {
        pairs: n,
        kept: report.selection.nodes.iter().map(Vec::len).collect(),
        circuit: CircuitMetrics::of(&circuit, &sweep, config.ablation)?,
        faithfulness: report.summary.faithfulness,
        logit_difference: report.summary.logit_difference,
    })
}

/// The discovery's resample circuits judged under `ablation` on the same
/// resamples.
fn under_ablation(
    sweep: &PatchingSweep<'_>,
    disc: &DiscoverOutput,
    ablation: Ablation,
) -> Result<UnderAblation, StudyError> {
    let (model, config) = (sweep.model(), &disc.inputs.flags.config);
    let sampler =
        Bootstrap::new(sweep.len(), config.sample, config.seed).map_err(|e| AcdcError::Shape(e.to_string()))?;
    let mut evals = Vec::with_capacity(disc.report.bootstraps.len());
    for record in &disc.report.bootstraps {
        let sub = sweep.subset(&sampler.resample(record.index));
        evals.push(Circuit::new(model, record.nodes.clone(), config.eps)?.evaluate(&sub, ablation)?);
    }
    let of = |f: fn(&modcirc_acdc::CircuitEval) -> f64| {
        Summary::of(&evals.iter().map(f).collect::<Vec<_>>())
            .ok_or_else(|| StudyError::Invalid("the discovery has no resample to judge under another ablation".into()))
    };
    Ok(UnderAblation {
        ablation,
        logit_difference: of(|e| e.logit_difference)?,
        accuracy: of(|e| e.accuracy)?,
        sparsity: of(|e| e.sparsity)?,
    })
}
