//! EAP-IG (Hanna et al. 2024; STUDY §12): attribution patching with the
//! gradient averaged over `m` points on the straight line from the
//! corrupted run to the clean one, instead of taken at the clean run alone.
//!
//! * [`IgPath::Inputs`]: the points are the inputs `x' + (k/m)(x − x')`,
//!   `k = 1..m`, run through the whole model (MIB's default).
//! * [`IgPath::Activations`]: for the edges into layer `l` (and the nodes
//!   feeding it), the points are layer `l`'s inputs `a' + (k/m)(a − a')`,
//!   run from layer `l` on.
//!
//! With `m = 1` the one point is the clean run, so [`edge_attribution_ig`]
//! is [`crate::edge_attribution`] (EAP) on either path.

use std::fmt;
use std::str::FromStr;

use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::attribution::{check_labels, class_positions, edge_scores, matmul, metric_gradients, node_scores};
use crate::{AcdcError, EdgeScores, NodeEffects, PatchingSweep, TaskImages};

/// MIB's default number of points on the path.
pub const DEFAULT_IG_STEPS: usize = 5;

/// The most points on the path [`edge_attribution_ig`] takes: each is a
/// forward and a backward pass over every pair.
pub const MAX_IG_STEPS: usize = 10_000;

/// Where EAP-IG's straight line runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IgPath {
    /// Between the corrupted and the clean input image.
    Inputs,
    /// Between each layer's corrupted and clean inputs.
    Activations,
}

impl IgPath {
    /// Both paths, inputs first.
    pub const ALL: [IgPath; 2] = [IgPath::Inputs, IgPath::Activations];
}

impl FromStr for IgPath {
    type Err = AcdcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inputs" => Ok(IgPath::Inputs),
            "activations" => Ok(IgPath::Activations),
            _ => Err(AcdcError::BadOption(format!("unknown EAP-IG path {s:?} (expected inputs or activations)"))),
        }
    }
}

impl fmt::Display for IgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IgPath::Inputs => "inputs",
            IgPath::Activations => "activations",
        })
    }
}

/// `∂m/∂z` of every layer and `∂m/∂a` of every hidden layer, each averaged
/// over the path's `steps` points: what EAP-IG multiplies by the weights
/// and the clean−corrupted differences.
#[derive(Debug, Clone, PartialEq)]
pub struct PathGradients {
    /// `dz[l]`: `[pairs, n_out of layer l]`.
    pub dz: Vec<Vec<f32>>,
    /// `da[h]`: `[pairs, width of hidden layer h]`.
    pub da: Vec<Vec<f32>>,
}

fn check_steps(steps: usize) -> Result<(), AcdcError> {
    if steps == 0 || steps > MAX_IG_STEPS {
        return Err(AcdcError::BadOption(format!("EAP-IG steps = {steps}: must be in 1..={MAX_IG_STEPS}")));
    }
    Ok(())
}

/// The point `k` of `steps` on the line from `corrupted` to `clean`:
/// `clean − (1 − k/steps)(clean − corrupted)`, so that the last point is
/// the clean values to the bit.
fn point(clean: &[f32], corrupted: &[f32], k: usize, steps: usize) -> Vec<f32> {
    let back = 1.0 - k as f32 / steps as f32;
    clean.iter().zip(corrupted).map(|(&a, &c)| a - back * (a - c)).collect()
}

/// `∂m/∂z` of layers `from..` and `∂m/∂(layer from's input)`, with layer
/// `from`'s input set to `input` (`[pairs, n_in]`).
fn gradients_from(model: &Mlp, input: &[f32], images: &TaskImages, from: usize) -> (Vec<f32>, Vec<f32>) {
    let n = images.n;
    let last = model.layers.len() - 1;
    let mut pre = Vec::with_capacity(last + 1 - from);
    let mut a = std::borrow::Cow::Borrowed(input);
    for l in from..=last {
        let layer = &model.layers[l];
        let mut z = vec![0.0; n * layer.n_out];
        model.layer_forward_into(l, &a, n, &mut z);
        let mut next = z.clone();
        if l != last {
            model.activation.apply_in_place(&mut next);
        }
        pre.push(z);
        a = std::borrow::Cow::Owned(next);
    }
    let classes = model.n_classes();
    let pos = class_positions(model);
    let mut g = vec![0f32; n * classes];
    for (b, (&c, &d)) in images.clean_labels.iter().zip(&images.corrupted_labels).enumerate() {
        g[b * classes + pos[c as usize]] += 1.0;
        g[b * classes + pos[d as usize]] -= 1.0;
    }
    let mut dz_from = Vec::new();
    for l in (from..=last).rev() {
        let layer = &model.layers[l];
        let dz: Vec<f32> = if l == last {
            g
        } else {
            let mut g = g;
            model.activation.scale_by_derivative(&pre[l - from], &mut g);
            g
        };
        g = matmul(&dz, n, &layer.weight, layer.n_out, layer.n_in);
        if l == from {
            dz_from = dz;
        }
    }
    (dz_from, g)
}

/// The path averages of `∂m/∂z` and `∂m/∂a` EAP-IG uses on `sweep`'s
/// pairs, over `steps` points of `path` (STUDY §12).
pub fn path_gradients(sweep: &PatchingSweep<'_>, steps: usize, path: IgPath) -> Result<PathGradients, AcdcError> {
    check_steps(steps)?;
    let (model, images) = (sweep.model, &sweep.images);
    check_labels(model, images)?;
    let layers = model.layers.len();
    let mut dz: Vec<Vec<f32>> = model.layers.iter().map(|l| vec![0.0; images.n * l.n_out]).collect();
    let mut da: Vec<Vec<f32>> = model.layers[..layers - 1].iter().map(|l| vec![0.0; images.n * l.n_out]).collect();
    let add = |sum: &mut [f32], g: &[f32]| sum.iter_mut().zip(g).for_each(|(s, g)| *s += g / steps as f32);
    for k in 1..=steps {
        match path {
            IgPath::Inputs => {
                let acts = if k == steps {
                    std::borrow::Cow::Borrowed(&sweep.clean)
                } else {
                    std::borrow::Cow::Owned(
                        model.activations(&point(&images.clean, &images.corrupted, k, steps), images.n),
                    )
                };
                let g = metric_gradients(model, &acts, images);
                dz.iter_mut().zip(&g.dz).for_each(|(s, g)| add(s, g));
                da.iter_mut().zip(&g.da).for_each(|(s, g)| add(s, g));
            }
            IgPath::Activations => {
                for l in 0..layers {
                    let (clean, corrupted) = if l == 0 {
                        (&images.clean, &images.corrupted)
                    } else {
                        (&sweep.clean.post[l - 1], &sweep.corrupted.post[l - 1])
                    };
                    let (g_z, g_in) = gradients_from(model, &point(clean, corrupted, k, steps), images, l);
                    add(&mut dz[l], &g_z);
                    if l > 0 {
                        add(&mut da[l - 1], &g_in);
                    }
                }
            }
        }
    }
    Ok(PathGradients { dz, da })
}

/// EAP-IG of every weight: `mean_b W_vu·(a'_u − a_u)·(1/m) Σ_k ∂m/∂z_v`
/// at the path's points (STUDY §12); with `steps = 1`, EAP.
pub fn edge_attribution_ig(sweep: &PatchingSweep<'_>, steps: usize, path: IgPath) -> Result<EdgeScores, AcdcError> {
    Ok(edge_scores(sweep, &path_gradients(sweep, steps, path)?.dz))
}

/// EAP-IG's node scores: `mean_b (a_u − a'_u)·(1/m) Σ_k ∂m/∂a_u` at the
/// path's points (STUDY §12), the integrated-gradients estimate of patching
/// `u` from its corrupted to its clean value.
pub fn node_attribution_ig(sweep: &PatchingSweep<'_>, steps: usize, path: IgPath) -> Result<NodeEffects, AcdcError> {
    Ok(node_scores(sweep, &path_gradients(sweep, steps, path)?.da))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_point_is_the_clean_values_to_the_bit() {
        let clean = [0.1f32, 0.7, 1e-8, 3.3];
        let corrupted = [0.9f32, -0.2, 5.0, 3.3];
        for steps in [1, 2, 5, 7] {
            assert_eq!(point(&clean, &corrupted, steps, steps), clean);
        }
        let first = point(&clean, &corrupted, 0, 4);
        assert!(first.iter().zip(&corrupted).all(|(a, c)| (a - c).abs() <= 1e-6 * c.abs().max(1.0)));
    }

    #[test]
    fn paths_parse_and_print() {
        for p in IgPath::ALL {
            assert_eq!(p.to_string().parse::<IgPath>().unwrap(), p);
        }
        assert!("input".parse::<IgPath>().is_err());
    }
}
