//! Activation patching (STUDY §4): clean and corrupted runs cached once, every
//! hidden neuron patched by a rank-1 update of the next layer.

use modcirc_dataset::{DatasetError, ImageSet, Pair, PairedDataset, Task};
use modcirc_metrics::logit_difference;
use modcirc_mlp::{Activations, Mlp};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AcdcError;

/// A score within this relative distance of the unpatched baseline counts as
/// equal to it (STUDY §4): a dead neuron's patch changes nothing, though
/// floating point may say otherwise.
pub const DEAD_TOLERANCE: f64 = 1e-6;

/// The images of a task's pairs: row `b` of `clean` is paired with row `b`
/// of `corrupted`.
#[derive(Debug, Clone)]
pub struct TaskImages {
    /// Pairs.
    pub n: usize,
    /// Pixels per image.
    pub pixels: usize,
    /// `[n, pixels]`.
    pub clean: Vec<f32>,
    /// `[n, pixels]`.
    pub corrupted: Vec<f32>,
    /// The clean images' digits.
    pub clean_labels: Vec<u8>,
    /// The corrupted images' digits.
    pub corrupted_labels: Vec<u8>,
}

impl TaskImages {
    /// The pairs of `task` on `split` (STUDY §3, shuffled from `seed`) and
    /// their images: the split is named once, so the indices and the images
    /// cannot come from different splits.
    ///
    /// ```
    /// use modcirc_acdc::TaskImages;
    /// use modcirc_dataset::{ImageSet, Task};
    /// // Four 2x2 images of the digits 0, 6, 0 and 6.
    /// let split = ImageSet { rows: 2, cols: 2, images: vec![0.5; 16], labels: vec![0, 6, 0, 6] };
    /// let (pairs, images) = TaskImages::from_task(&split, &Task::parse("0:6")?, 0)?;
    /// assert_eq!((pairs.len(), images.n, images.pixels), (2, 2, 4));
    /// assert_eq!(images.clean_labels, [0, 0]);
    /// # Ok::<(), modcirc_dataset::DatasetError>(())
    /// ```
    pub fn from_task(split: &ImageSet, task: &Task, seed: u64) -> Result<(PairedDataset, TaskImages), DatasetError> {
        let pairs = PairedDataset::new(split, task, seed)?;
        let images = TaskImages::from_pairs(split, &pairs.pairs);
        Ok((pairs, images))
    }

    /// The images of `pairs`, whose indices are into `split` (the split they
    /// were drawn from: [`TaskImages::from_task`] does both at once).
    pub fn from_pairs(split: &ImageSet, pairs: &[Pair]) -> TaskImages {
        let clean: Vec<usize> = pairs.iter().map(|p| p.clean).collect();
        let corrupted: Vec<usize> = pairs.iter().map(|p| p.corrupted).collect();
        TaskImages {
            n: pairs.len(),
            pixels: split.pixels(),
            clean: split.gather(&clean),
            corrupted: split.gather(&corrupted),
            clean_labels: clean.iter().map(|&i| split.labels[i]).collect(),
            corrupted_labels: corrupted.iter().map(|&i| split.labels[i]).collect(),
        }
    }
}

/// Gathers rows `idx` of a row-major matrix with `width` columns.
pub(crate) fn gather_rows(m: &[f32], width: usize, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * width);
    for &i in idx {
        out.extend_from_slice(&m[i * width..(i + 1) * width]);
    }
    out
}

/// Activation patching over every hidden neuron (STUDY §4), with the clean
/// and corrupted runs computed once.
#[derive(Debug, Clone)]
pub struct PatchingSweep<'m> {
    pub(crate) model: &'m Mlp,
    pub(crate) images: TaskImages,
    pub(crate) clean: Activations,
    pub(crate) corrupted: Activations,
    /// Optimal ablation's fits, where given (STUDY §12).
    pub(crate) optimal: Option<crate::OptimalAblation>,
}

/// `LD_ij` for every hidden neuron, and the unpatched baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronScores {
    /// `mean_b ‖L_corr − L_clean‖₂` without any patch.
    pub baseline: f64,
    /// `layers[h][i]`: the score of neuron `i` of hidden layer `h` (0-based).
    pub layers: Vec<Vec<f64>>,
}

/// Refuses activations with an infinite or NaN value: every score and
/// metric computed from them would be NaN.
fn check_finite(a: &Activations, image: &'static str) -> Result<(), AcdcError> {
    let last = a.post.len() - 1;
    for (l, values) in a.post.iter().enumerate() {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let what = if l == last { "logits".to_string() } else { format!("hidden layer {}", l + 1) };
            return Err(AcdcError::NonFinite { what, pair: i / (values.len() / a.n), image });
        }
    }
    Ok(())
}

/// Refuses no pairs, images of another width than the model's inputs, and
/// a model without a hidden layer.
pub(crate) fn check_task(model: &Mlp, images: &TaskImages) -> Result<(), AcdcError> {
    if images.n == 0 {
        return Err(AcdcError::EmptyTask);
    }
    if images.pixels != model.n_inputs() {
        return Err(AcdcError::Shape(format!(
            "images have {} pixels, the model takes {} inputs",
            images.pixels,
            model.n_inputs()
        )));
    }
    if model.layers.len() < 2 {
        return Err(AcdcError::Shape("the model has no hidden layer".into()));
    }
    Ok(())
}

impl<'m> PatchingSweep<'m> {
    /// Runs `model` on the clean and the corrupted images once; refuses images of another width and a model without a hidden layer.
    pub fn new(model: &'m Mlp, images: &TaskImages) -> Result<PatchingSweep<'m>, AcdcError> {
        check_task(model, images)?;
        let clean = model.activations(&images.clean, images.n);
        let corrupted = model.activations(&images.corrupted, images.n);
        check_finite(&clean, "clean")?;
        check_finite(&corrupted, "corrupted")?;
        Ok(PatchingSweep { model, clean, corrupted, images: images.clone(), optimal: None })
    }

    /// The sweep restricted to pairs `idx` (repeats allowed), reusing the cached runs.
    pub fn subset(&self, idx: &[usize]) -> PatchingSweep<'m> {
        let pick = |a: &Activations| Activations {
            n: idx.len(),
            pre: a.pre.iter().map(|m| gather_rows(m, m.len() / a.n, idx)).collect(),
            post: a.post.iter().map(|m| gather_rows(m, m.len() / a.n, idx)).collect(),
        };
        let im = &self.images;
        let labels = |l: &[u8]| idx.iter().map(|&i| l[i]).collect();
        PatchingSweep {
            model: self.model,
            images: TaskImages {
                n: idx.len(),
                pixels: im.pixels,
                clean: gather_rows(&im.clean, im.pixels, idx),
                corrupted: gather_rows(&im.corrupted, im.pixels, idx),
                clean_labels: labels(&im.clean_labels),
                corrupted_labels: labels(&im.corrupted_labels),
            },
            clean: pick(&self.clean),
            corrupted: pick(&self.corrupted),
            optimal: self.optimal.clone(),
        }
    }

    /// The sweep with `optimal`'s fits for [`crate::Ablation::Optimal`];
    /// refuses fits of another shape than the model's hidden layers.
    pub fn with_optimal(mut self, optimal: crate::OptimalAblation) -> Result<PatchingSweep<'m>, AcdcError> {
        optimal.check(self.model)?;
        self.optimal = Some(optimal);
        Ok(self)
    }

    /// Optimal ablation's fits the sweep carries, if any.
    pub fn optimal(&self) -> Option<&crate::OptimalAblation> {
        self.optimal.as_ref()
    }

    /// The model the sweep patches.
    pub fn model(&self) -> &'m Mlp {
        self.model
    }

    /// The pairs' images.
    pub fn images(&self) -> &TaskImages {
        &self.images
    }

    /// Pairs.
    pub fn len(&self) -> usize {
        self.images.n
    }
    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.images.n == 0
    }

    fn logits(a: &Activations) -> &[f32] {
        a.post.last().expect("at least one layer")
    }

    /// `mean_b ‖L_corr − L_clean‖₂`.
    pub fn baseline(&self) -> f64 {
        let c = self.model.n_classes();
        logit_difference(Self::logits(&self.corrupted), Self::logits(&self.clean), c)
    }

    /// Every hidden neuron's score (layers in parallel over neurons; each
    /// score is computed the same way whatever the thread count).
    pub fn scores(&self) -> NeuronScores {
        let hidden = self.model.layers.len() - 1;
        let layers = (0..hidden)
            .map(|h| {
                let width = self.model.layers[h].n_out;
                (0..width).into_par_iter().map(|i| self.score(h, i)).collect()
            })
            .collect();
        NeuronScores { baseline: self.baseline(), layers }
    }

    /// `LD` of neuron `i` of hidden layer `h`: the corrupted run with that
    /// neuron's post-activation set to its clean value.
    pub fn score(&self, h: usize, i: usize) -> f64 {
        let width = self.model.layers[h].n_out;
        let unchanged =
            (0..self.images.n).all(|b| self.clean.post[h][b * width + i] == self.corrupted.post[h][b * width + i]);
        if unchanged {
            return self.baseline();
        }
        let c = self.model.n_classes();
        logit_difference(&self.patched_logits(h, &[i]), Self::logits(&self.clean), c)
    }

    /// Logits (output-position order) of the corrupted runs with the
    /// post-activations of `neurons` of hidden layer `h` set to their clean
    /// values. The next layer's pre-activation moves by `Σ_i d_i ⊗ W[:, i]`,
    /// `d_i` the clean-minus-corrupted activation, so only layers downstream
    /// of `h` are recomputed.
    pub fn patched_logits(&self, h: usize, neurons: &[usize]) -> Vec<f32> {
        let n = self.images.n;
        let m = self.model;
        let width = m.layers[h].n_out;
        let next = &m.layers[h + 1];
        let mut z = self.corrupted.pre[h + 1].clone();
        let mut column = vec![0.0f32; next.n_out];
        for &i in neurons {
            for (o, c) in column.iter_mut().enumerate() {
                *c = next.weight[o * next.n_in + i];
            }
            for (b, row) in z.chunks_exact_mut(next.n_out).enumerate() {
                let d = self.clean.post[h][b * width + i] - self.corrupted.post[h][b * width + i];
                if d != 0.0 {
                    row.iter_mut().zip(&column).for_each(|(zo, c)| *zo += d * c);
                }
            }
        }
        for layer in &m.layers[h + 2..] {
            m.activation.apply_in_place(&mut z);
            let mut out = vec![0.0; n * layer.n_out];
            layer.forward_into(&z, n, &mut out);
            z = out;
        }
        z
    }

    /// The model's own accuracy on the pairs' clean and corrupted images
    /// (labels: their own digits): what a circuit's accuracy is judged against.
    pub fn model_accuracy(&self) -> f64 {
        let mut logits = self.clean_logits().to_vec();
        logits.extend_from_slice(self.corrupted_logits());
        let mut labels = self.images.clean_labels.clone();
        labels.extend_from_slice(&self.images.corrupted_labels);
        let c = self.model.n_classes();
        modcirc_mlp::accuracy_of_logits(&self.model.positions_to_classes(&logits), &labels, c)
    }

    /// The corrupted runs' logits (output-position order).
    pub fn corrupted_logits(&self) -> &[f32] {
        Self::logits(&self.corrupted)
    }
    /// The clean runs' logits (output-position order).
    pub fn clean_logits(&self) -> &[f32] {
        Self::logits(&self.clean)
    }
}
