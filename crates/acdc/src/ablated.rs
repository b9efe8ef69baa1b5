//! The ablations (STUDY §5, §12), and what a circuit's removed nodes and
//! edges carry under each, per layer of the circuit's forward.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{AcdcError, Circuit, PatchingSweep};

/// What a removed node or edge carries in the circuit's forward (STUDY §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ablation {
    /// Zero: removed edges are simply gone.
    Zero,
    /// The mean activation of the source node over the task images.
    Mean,
    /// The source node's activation on the paired corrupted image.
    Resample,
    /// The constant that best preserves the task's loss (STUDY §12), fitted
    /// per hidden neuron: the sweep must carry it
    /// ([`PatchingSweep::with_optimal`]); inputs send their mean.
    Optimal,
}

impl Ablation {
    /// Every ablation, the study's default first.
    pub const ALL: [Ablation; 4] = [Ablation::Zero, Ablation::Mean, Ablation::Resample, Ablation::Optimal];
}

impl FromStr for Ablation {
    type Err = AcdcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zero" => Ok(Ablation::Zero),
            "mean" => Ok(Ablation::Mean),
            "resample" => Ok(Ablation::Resample),
            "optimal" => Ok(Ablation::Optimal),
            _ => Err(AcdcError::UnknownAblation(s.into())),
        }
    }
}

impl fmt::Display for Ablation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ablation::Zero => "zero",
            Ablation::Mean => "mean",
            Ablation::Resample => "resample",
            Ablation::Optimal => "optimal",
        })
    }
}

/// Ablated values for one layer's inputs.
#[derive(Debug, Clone)]
pub(crate) struct AblatedRows {
    pub(crate) values: Vec<f32>,
    pub(crate) width: usize,
    /// One row per pair (resample; used by image b and by image n + b), or one row for all.
    pub(crate) per_input: bool,
    pub(crate) n: usize,
}

impl AblatedRows {
    pub(crate) fn rows(&self) -> usize {
        self.values.len() / self.width
    }
    pub(crate) fn row_for(&self, b: usize) -> usize {
        if self.per_input {
            b % self.n
        } else {
            0
        }
    }
}

/// The ablated values of each of `circuit`'s layers' inputs on `sweep`'s
/// pairs: none under zero ablation; the mean over the task's clean and
/// corrupted images; each pair's corrupted run (resample: clean image b
/// and corrupted image b both see corrupted b); or the circuit's joint fit
/// of optimal ablation (the inputs' mean for the first layer).
pub(crate) fn ablated_rows(
    sweep: &PatchingSweep<'_>,
    ablation: Ablation,
    circuit: &Circuit,
) -> Result<Vec<Option<AblatedRows>>, AcdcError> {
    let (model, n, px) = (sweep.model, sweep.images.n, sweep.images.pixels);
    let layers = circuit.kept.len();
    let joint = match (ablation, &sweep.optimal) {
        (Ablation::Optimal, None) => {
            return Err(AcdcError::BadOption(
                "optimal ablation needs the model's fitted constants on the sweep (OptimalAblation::fit, then PatchingSweep::with_optimal)".into(),
            ))
        }
        (Ablation::Optimal, Some(o)) => Some(o.joint(model, circuit)?),
        _ => None,
    };
    Ok((0..layers)
        .map(|l| {
            let width = if l == 0 { px } else { model.layers[l - 1].n_out };
            let input = |run: &modcirc_mlp::Activations, imgs: &[f32]| -> Vec<f32> {
                if l == 0 {
                    imgs.to_vec()
                } else {
                    run.post[l - 1].clone()
                }
            };
            let mean = || {
                let (clean, corrupted) =
                    (input(&sweep.clean, &sweep.images.clean), input(&sweep.corrupted, &sweep.images.corrupted));
                let mut mean = vec![0.0f64; width];
                for row in clean.chunks_exact(width).chain(corrupted.chunks_exact(width)) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64);
                }
                let values = mean.iter().map(|m| (m / (2 * n) as f64) as f32).collect();
                Some(AblatedRows { values, width, per_input: false, n })
            };
            match ablation {
                Ablation::Zero => None,
                Ablation::Mean => mean(),
                Ablation::Optimal if l == 0 => mean(),
                Ablation::Optimal => Some(AblatedRows {
                    values: joint.as_ref().expect("fitted above").layers[l - 1].clone(),
                    width,
                    per_input: false,
                    n,
                }),
                Ablation::Resample => Some(AblatedRows {
                    values: input(&sweep.corrupted, &sweep.images.corrupted),
                    width,
                    per_input: true,
                    n,
                }),
            }
        })
        .collect())
}
