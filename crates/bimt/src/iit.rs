//! Planted circuits by interchange intervention training (STUDY §11).
//!
//! The task is MNIST pointer value retrieval ([`modcirc_dataset::pvr`]). Its
//! high-level model has four nodes (the pointer P and the value quadrants
//! V1, V2, V3), each aligned with a block of neurons in every hidden layer
//! ([`Alignment`]); the other neurons are free. Each step trains on three
//! equal parts of one batch, under the regime's penalty and swaps:
//! * the task: composites and their labels;
//! * IIT: a base with a random node's blocks patched from a source, its
//!   target the high-level model's output with that node taken from the
//!   source;
//! * strictness (SIIT): a base with a random half of the free neurons
//!   patched from a source, its target the base's own label.
//!
//! Source activations are computed by the current network and held fixed
//! (no gradient flows into the source run). Swaps move neurons and the
//! alignment moves with them.

use std::time::Instant;

use modcirc_dataset::pvr::{pvr_label, PvrSource, PVR_NODES};
use modcirc_dataset::Rng;
use modcirc_mlp::{argmax, Mlp};
use serde::{Deserialize, Serialize};

use crate::{BimtError, Layout, Patches, TrainConfig, TrainTiming, Trainer};

/// The default block of neurons per node and hidden layer (STUDY §11).
pub const DEFAULT_BLOCK: usize = 16;

/// Interventions per measure of [`PlantedQuality`] (STUDY §11: 10 000).
pub const QUALITY_TRIALS: usize = 10_000;

/// Names of the high-level nodes, in order.
pub const NODE_NAMES: [&str; PVR_NODES] = ["P", "V1", "V2", "V3"];

/// Which high-level node each hidden neuron position implements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alignment {
    /// `nodes[h][i]`: the node (0 = P, 1..=3 = V1..V3) of position `i` of
    /// hidden layer `h`, `None` for a free neuron.
    pub nodes: Vec<Vec<Option<u8>>>,
}

impl Alignment {
    /// Node `n` on positions `n * block .. (n + 1) * block` of every hidden layer.
    pub fn blocks(widths: &[usize], block: usize) -> Result<Alignment, BimtError> {
        if block == 0 {
            return Err(BimtError::Config("the block per node must be at least 1 neuron".into()));
        }
        let nodes = widths
            .iter()
            .map(|&w| {
                if PVR_NODES * block > w {
                    return Err(BimtError::Config(format!(
                        "{PVR_NODES} nodes of {block} neurons do not fit a hidden layer of {w}"
                    )));
                }
                Ok((0..w).map(|i| (i < PVR_NODES * block).then_some((i / block) as u8)).collect())
            })
            .collect::<Result<_, _>>()?;
        Ok(Alignment { nodes })
    }

    /// The positions of node `n` in hidden layer `h`, ascending.
    pub fn positions(&self, h: usize, n: usize) -> Vec<usize> {
        (0..self.nodes[h].len()).filter(|&i| self.nodes[h][i] == Some(n as u8)).collect()
    }

    /// The free positions of hidden layer `h`, ascending.
    pub fn free(&self, h: usize) -> Vec<usize> {
        (0..self.nodes[h].len()).filter(|&i| self.nodes[h][i].is_none()).collect()
    }

    /// Follows a relocation: in neuron layer `layer` (1-based; hidden
    /// layers only matter) the neurons at `a` and `b` changed places.
    pub fn swap(&mut self, layer: usize, a: usize, b: usize) {
        if let Some(h) = layer.checked_sub(1).filter(|&h| h < self.nodes.len()) {
            self.nodes[h].swap(a, b);
        }
    }

    /// Checks that the alignment fits `model`'s hidden layers.
    pub fn check(&self, model: &Mlp) -> Result<(), BimtError> {
        let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
        let ours: Vec<usize> = self.nodes.iter().map(Vec::len).collect();
        if widths != ours {
            return Err(BimtError::Config(format!("an alignment of hidden widths {ours:?} on a model of {widths:?}")));
        }
        Ok(())
    }
}

/// How to train a planted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedConfig {
    /// The regime, widths, steps, seed and optimizer (`batch_size` is each
    /// of the three parts' rows).
    pub train: TrainConfig,
    /// Neurons per node and hidden layer.
    pub block: usize,
}

/// How well a planted model implements the high-level model (STUDY §11).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlantedQuality {
    /// Accuracy on composites of the test split.
    pub task_accuracy: f64,
    /// Interchange intervention accuracy: the patched answer equals the
    /// high-level model's, over random (base, source, node).
    pub iia: f64,
    /// IIA of the interventions on each node (P, V1, V2, V3).
    pub iia_per_node: [f64; PVR_NODES],
    /// How often patching a random half of the free neurons from a source
    /// changes the answer.
    pub strictness_failure: f64,
    /// Trials per measure.
    pub trials: usize,
}

/// A trained planted model.
#[derive(Debug, Clone)]
pub struct PlantedOutcome {
    /// The network.
    pub model: Mlp,
    /// Its coordinates.
    pub layout: Layout,
    /// Where each node sits after every swap.
    pub alignment: Alignment,
    /// Wall time per phase.
    pub timing: TrainTiming,
}

/// How many composites ahead their images are fetched while a batch is composed.
const PREFETCH_ROWS: usize = 8;

/// One batch of the three parts, built from the composite images.
struct Batch {
    x: Vec<f32>,
    labels: Vec<u8>,
    patches: Patches,
    /// The node of each IIT row.
    nodes: Vec<usize>,
}

/// Draws a step's batch: `b` task rows, `b` IIT rows, `b` strictness rows.
fn draw_batch(model: &Mlp, alignment: &Alignment, source: &PvrSource, b: usize, rng: &mut Rng) -> Batch {
    let pixels = model.n_inputs();
    let widths: Vec<usize> = alignment.nodes.iter().map(Vec::len).collect();
    let mut x = vec![0.0f32; 3 * b * pixels];
    let mut labels = vec![0u8; 3 * b];
    let mut patches = Patches::none(3 * b, &widths);
    let bases: Vec<[usize; PVR_NODES]> = (0..3 * b).map(|_| source.draw(rng)).collect();
    for (r, &idx) in bases.iter().enumerate() {
        if let Some(&ahead) = bases.get(r + PREFETCH_ROWS) {
            source.prefetch(ahead);
        }
        source.compose(idx, &mut x[r * pixels..(r + 1) * pixels]);
        labels[r] = pvr_label(source.digits(idx));
    }
    // The sources of the IIT and strictness rows, run once.
    let sources: Vec<[usize; PVR_NODES]> = (0..2 * b).map(|_| source.draw(rng)).collect();
    let mut xs = vec![0.0f32; 2 * b * pixels];
    for (r, &idx) in sources.iter().enumerate() {
        if let Some(&ahead) = sources.get(r + PREFETCH_ROWS) {
            source.prefetch(ahead);
        }
        source.compose(idx, &mut xs[r * pixels..(r + 1) * pixels]);
    }
    let acts = model.activations(&xs, 2 * b);
    let mut nodes = Vec::with_capacity(b);
    for (k, src) in sources.iter().enumerate() {
        let r = b + k;
        if k < b {
            let node = rng.below(PVR_NODES);
            nodes.push(node);
            for (h, &w) in widths.iter().enumerate() {
                for i in alignment.positions(h, node) {
                    patches.mask[h][r * w + i] = true;
                    patches.values[h][r * w + i] = acts.post[h][k * w + i];
                }
            }
            let mut digits = source.digits(bases[r]);
            digits[node] = source.digits(*src)[node];
            labels[r] = pvr_label(digits);
        } else {
            for (h, &w) in widths.iter().enumerate() {
                for i in alignment.free(h) {
                    if rng.next_u64() & 1 == 1 {
                        patches.mask[h][r * w + i] = true;
                        patches.values[h][r * w + i] = acts.post[h][k * w + i];
                    }
                }
            }
        }
    }
    Batch { x, labels, patches, nodes }
}

/// Trains a planted model on composites of `train` (STUDY §11).
/// `progress` sees each step's [`crate::Progress`].
pub fn train_planted(
    config: &PlantedConfig,
    train: &PvrSource,
    progress: &mut dyn FnMut(&crate::Progress),
) -> Result<PlantedOutcome, BimtError> {
    let c = &config.train;
    let widths: Vec<usize> = c.sizes[1..c.sizes.len() - 1].to_vec();
    let mut alignment = Alignment::blocks(&widths, config.block)?;
    if c.sizes[0] != 784 || c.sizes.last() != Some(&10) {
        return Err(BimtError::Config(format!(
            "a planted model takes 784 pixels and gives 10 classes, not {:?}",
            c.sizes
        )));
    }
    let b = c.batch_size;
    let mut trainer = Trainer::new(c.clone().batch_size(3 * b))?;
    let mut rng = Rng::derive(c.seed, 0x4949_5400);
    let start = Instant::now();
    let mut timing = TrainTiming::default();
    let mut correct = 0usize;
    let mut seen = 0usize;
    for s in 0..c.steps {
        let t0 = Instant::now();
        let batch = draw_batch(trainer.model(), &alignment, train, b, &mut rng);
        let stats = trainer.step_patched(&batch.x, &batch.labels, &batch.patches, s);
        if !stats.loss.is_finite() {
            return Err(BimtError::NonFinite { step: s + 1, loss: stats.loss });
        }
        timing.optimizer_s += t0.elapsed().as_secs_f64();
        if trainer.relocation_due(s) {
            let t1 = Instant::now();
            if let Some(r) = trainer.relocate() {
                for sw in &r.swaps {
                    alignment.swap(sw.layer, sw.position, sw.target);
                }
                timing.swaps += r.swaps.len();
            }
            timing.relocations += 1;
            timing.relocation_s += t1.elapsed().as_secs_f64();
        }
        correct += stats.correct;
        seen += 3 * b;
        let running_accuracy = correct as f64 / seen as f64;
        if (s + 1) % c.history_every == 0 {
            (correct, seen) = (0, 0);
        }
        progress(&crate::Progress {
            step: s + 1,
            steps: c.steps,
            loss: stats.loss,
            penalty: stats.penalty,
            running_accuracy,
        });
    }
    timing.total_s = start.elapsed().as_secs_f64();
    let layout = trainer.layout().clone();
    Ok(PlantedOutcome { model: trainer.into_model(), layout, alignment, timing })
}

/// The logits (position order) of `model` on `n` inputs with hidden
/// activations replaced where `patches` says: the forward that
/// [`Trainer::step_patched`] trains.
pub fn forward_patched(model: &Mlp, x: &[f32], n: usize, patches: &Patches) -> Vec<f32> {
    let last = model.layers.len() - 1;
    let mut a = x.to_vec();
    for (l, layer) in model.layers.iter().enumerate() {
        let mut z = vec![0.0; n * layer.n_out];
        layer.forward_into(&a, n, &mut z);
        if l != last {
            model.activation.apply_in_place(&mut z);
            for ((v, &m), &p) in z.iter_mut().zip(&patches.mask[l]).zip(&patches.values[l]) {
                if m {
                    *v = p;
                }
            }
        }
        a = z;
    }
    a
}

/// Task accuracy, IIA and strictness failure of a planted model on
/// composites of `test` (STUDY §11), from `trials` draws each.
pub fn planted_quality(
    model: &Mlp,
    alignment: &Alignment,
    test: &PvrSource,
    trials: usize,
    seed: u64,
) -> Result<PlantedQuality, BimtError> {
    alignment.check(model)?;
    if trials == 0 {
        return Err(BimtError::Config("planted quality needs at least one trial".into()));
    }
    let mut rng = Rng::derive(seed, 0x5155_4100);
    let classes = model.n_classes();
    let answer = |logits: &[f32], r: usize| model.out_perm[argmax(&logits[r * classes..(r + 1) * classes])] as u8;
    let (mut task, mut iia, mut strict) = (0usize, 0usize, 0usize);
    let (mut node_hits, mut node_trials) = ([0usize; PVR_NODES], [0usize; PVR_NODES]);
    // In chunks, so that memory stays small for any number of trials.
    let chunk = 1000usize;
    let mut done = 0;
    while done < trials {
        let b = chunk.min(trials - done);
        // `draw_batch` lays out b task rows, b IIT rows and b strictness rows.
        let batch = draw_batch(model, alignment, test, b, &mut rng);
        let none = Patches::none(3 * b, &alignment.nodes.iter().map(Vec::len).collect::<Vec<_>>());
        let plain = forward_patched(model, &batch.x, 3 * b, &none);
        let patched = forward_patched(model, &batch.x, 3 * b, &batch.patches);
        for r in 0..b {
            task += (answer(&plain, r) == batch.labels[r]) as usize;
            let hit = (answer(&patched, b + r) == batch.labels[b + r]) as usize;
            iia += hit;
            node_hits[batch.nodes[r]] += hit;
            node_trials[batch.nodes[r]] += 1;
            strict += (answer(&patched, 2 * b + r) != answer(&plain, 2 * b + r)) as usize;
        }
        done += b;
    }
    let t = trials as f64;
    Ok(PlantedQuality {
        task_accuracy: task as f64 / t,
        iia: iia as f64 / t,
        iia_per_node: std::array::from_fn(|n| node_hits[n] as f64 / node_trials[n].max(1) as f64),
        strictness_failure: strict as f64 / t,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{init_model, Regime};
    use modcirc_mlp::Activation;

    #[test]
    fn blocks_sit_in_order_and_follow_swaps() {
        let mut a = Alignment::blocks(&[10, 9], 2).unwrap();
        assert_eq!(a.positions(0, 1), vec![2, 3]);
        assert_eq!(a.free(1), vec![8]);
        a.swap(2, 3, 8);
        assert_eq!(a.positions(1, 1), vec![2, 8]);
        assert_eq!(a.free(1), vec![3]);
        a.swap(3, 0, 1); // the output layer: nothing to follow
        assert!(Alignment::blocks(&[7], 2).is_err());
        assert!(Alignment::blocks(&[8], 0).is_err());
    }

    /// The patched step's gradient is the gradient of the patched forward's
    /// loss (central differences), for several shapes and activations.
    #[test]
    fn patched_gradients_equal_central_differences() {
        for (sizes, act) in [
            (vec![5, 6, 3], Activation::Silu),
            (vec![4, 7, 5, 3], Activation::Tanh),
            (vec![6, 4, 4, 4, 2], Activation::Gelu),
        ] {
            let model = init_model(&sizes, act, 7).unwrap();
            let b = 4;
            let mut rng = Rng::new(11);
            let x: Vec<f32> = (0..b * sizes[0]).map(|_| rng.next_f64() as f32).collect();
            let classes = *sizes.last().unwrap();
            let labels: Vec<u8> = (0..b).map(|r| (r % classes) as u8).collect();
            let widths = &sizes[1..sizes.len() - 1];
            let mut patches = Patches::none(b, widths);
            for h in 0..widths.len() {
                for (m, v) in patches.mask[h].iter_mut().zip(patches.values[h].iter_mut()) {
                    *m = rng.next_u64().is_multiple_of(3);
                    *v = rng.next_f64() as f32 - 0.5;
                }
            }
            let loss = |m: &Mlp| {
                let y = forward_patched(m, &x, b, &patches);
                let mut sq = 0.0f64;
                for r in 0..b {
                    for p in 0..classes {
                        let t = (m.out_perm[p] == labels[r] as usize) as u8 as f64;
                        sq += (y[r * classes + p] as f64 - t).powi(2);
                    }
                }
                sq / (b * classes) as f64
            };
            let cfg = TrainConfig::new(Regime::Vanilla).sizes(&sizes).activation(act).batch_size(b).lr(1e-30);
            let mut tr = Trainer::new(cfg).unwrap().with_model(model.clone()).unwrap();
            let stats = tr.step_patched(&x, &labels, &patches, 0);
            assert!((stats.mse - loss(&model)).abs() < 1e-6, "{} vs {}", stats.mse, loss(&model));
            let (gw, _) = tr.gradients();
            for (l, g_layer) in gw.iter().enumerate() {
                for i in (0..g_layer.len()).step_by(3) {
                    let h = 1e-3f32;
                    let (mut up, mut down) = (model.clone(), model.clone());
                    up.layers[l].weight[i] += h;
                    down.layers[l].weight[i] -= h;
                    let fd = (loss(&up) - loss(&down)) / (2.0 * h as f64);
                    let g = g_layer[i] as f64;
                    assert!((g - fd).abs() < 2e-3 * (1.0 + fd.abs()), "{sizes:?} layer {l} weight {i}: {g} vs {fd}");
                }
            }
        }
    }
}
