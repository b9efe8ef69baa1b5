//! Circuit discovery by activation patching on MLP checkpoints (STUDY §4-§5).
//!
//! * [`PatchingSweep`]: clean and corrupted runs cached once; every hidden
//!   neuron patched with its clean value, for all pairs at once. Patching one
//!   neuron changes the next layer's pre-activation by a rank-1 term, so
//!   nothing upstream is recomputed.
//! * `DeviceSweep` (feature `candle`, on by default): the same scores as
//!   candle tensor ops on any candle device (`--device cuda` with the
//!   `cuda` feature).
//! * [`NeuronScores::select`]: the K lowest scores per hidden layer;
//!   [`NeuronScores::select_by`] any [`SelectionRule`] (K per layer, live
//!   neurons only, an effect threshold), saying how many kept neurons are dead.
//! * [`Circuit`]: node sets, the `eps` edge rule, sparsity, and the
//!   circuit's forward under an [`Ablation`].
//! * Beyond the paper (STUDY §8): [`node_attribution`] and
//!   [`edge_attribution`] (attribution patching on the answer metric),
//!   [`exact_node_effects`] to check the first against, and
//!   [`faithfulness`] / [`faithfulness_curve`] (with CPR and CMD);
//!   [`edge_acdc`], ACDC over every edge.
//! * The smallest faithful circuit: [`node_curve`] and [`smallest_k`] grow
//!   circuits K neurons per layer, [`smallest_per_layer`] shrinks each layer
//!   on its own, [`smallest_edges`] grows by top-|EAP| weights.
//! * The methods the benchmarks rank best (STUDY §12): EAP-IG
//!   ([`edge_attribution_ig`], [`node_attribution_ig`], on the inputs' or
//!   the activations' path), optimal ablation ([`fit_optimal_ablation`],
//!   [`Ablation::Optimal`]) and learned masks ([`learn_masks`]).
//! * Every method as a value ([`Method`], parsed by name): one call,
//!   [`Method::scores`], gives its neuron and edge scores ([`MethodScores`]).
//! * Controls (STUDY §10): [`random_circuits`] of a circuit's size and its
//!   disjoint [`alternatives`].
//!
//! ```
//! use modcirc_acdc::{Ablation, Circuit, PatchingSweep, TaskImages};
//! use modcirc_mlp::{Activation, Mlp};
//! // A 6-20-20-3 ReLU network and four pairs of 6-pixel "images".
//! let mut u = (1..).map(|i| (i as f64 * 0.618_034).fract());
//! let model = Mlp::init(&[6, 20, 20, 3], Activation::Relu, &mut || u.next().unwrap()).unwrap();
//! let imgs = TaskImages {
//!     n: 4,
//!     pixels: 6,
//!     clean: (0..24).map(|i| (i % 7) as f32 / 7.0).collect(),
//!     corrupted: (0..24).map(|i| (i % 5) as f32 / 5.0).collect(),
//!     clean_labels: vec![0, 1, 2, 0],
//!     corrupted_labels: vec![1, 2, 0, 1],
//! };
//! let sweep = PatchingSweep::new(&model, &imgs)?;
//! let scores = sweep.scores();
//! let selection = scores.select(15)?;
//! let circuit = Circuit::new(&model, selection.nodes.clone(), 0.01)?;
//! let eval = circuit.evaluate(&sweep, Ablation::Zero)?;
//! println!("sparsity {:.4}, logit difference {:.3}", circuit.sparsity(), eval.logit_difference);
//! assert!(selection.nodes.iter().all(|n| n.len() == 15));
//! # Ok::<(), modcirc_acdc::AcdcError>(())
//! ```

#![warn(missing_docs)]

mod ablated;
mod attribution;
pub mod boolean;
mod circuit;
mod controls;
#[cfg(feature = "candle")]
mod device_sweep;
mod discovery;
mod edge_acdc;
mod edges;
mod error;
mod integrated;
mod mask;
mod method;
mod optimal;
mod select;
mod shared;
mod smallest;
mod sweep;

pub use ablated::Ablation;
pub use attribution::{
    edge_attribution, exact_node_effects, faithfulness, faithfulness_curve, faithfulness_under, node_attribution,
    EdgeScores, FaithfulnessCurve, NodeEffects, DEFAULT_FRACTIONS,
};
pub use circuit::{Circuit, CircuitEval};
pub use controls::{
    alternatives, any_digit_images, faithful_alternatives, random_circuits, random_edge_circuits, AgainstRandom,
    Alternative, CircuitMetrics, Pool, RandomCircuits, DEFAULT_ALTERNATIVES, DEFAULT_FAITHFUL, DEFAULT_RANDOM_CIRCUITS,
};
#[cfg(feature = "candle")]
pub use device_sweep::DeviceSweep;
pub use discovery::{
    discover, discover_with, discovery_times, BootstrapRecord, DiscoveryConfig, DiscoveryReport, DiscoverySummary,
    RuleSummary, DEFAULT_BOOTSTRAPS, DEFAULT_EPS, DEFAULT_K, DEFAULT_SAMPLE, MAX_RESAMPLE_BYTES,
};
pub use edge_acdc::{edge_acdc, edge_acdc_with_progress, AcdcConfig, AcdcMetric, EdgeCircuit, DEFAULT_TAU};
pub use edges::{edge_counts, edge_threshold, touched_neurons, ACTIVATION_EDGE_RULE};
pub use error::AcdcError;
pub use integrated::{
    edge_attribution_ig, node_attribution_ig, path_gradients, IgPath, PathGradients, DEFAULT_IG_STEPS, MAX_IG_STEPS,
};
pub use mask::{
    learn_masks, learn_masks_from, warm_logits, LearnedMasks, MaskConfig, MaskPoint, MaskUnit, DEFAULT_MASK_LAMBDAS,
    DEFAULT_MASK_LR, DEFAULT_MASK_STEPS, MASK_INIT_LOGIT,
};
pub use method::{
    edge_list, edge_node_sums, nodes_mask, score_methods, top_k_per_layer, Method, MethodScores, DEFAULT_ACDC_PAIRS,
    DEFAULT_MASK_PAIRS,
};
pub use optimal::{
    ablated_loss, fit_optimal_ablation, JointFit, OptimalAblation, OptimalConstants, Replacement, DEFAULT_JOINT_STEPS,
    DEFAULT_OPTIMAL_PAIRS, DEFAULT_OPTIMAL_STEPS, OPTIMAL_TOLERANCE,
};
pub use select::{Selection, SelectionRule};
pub use shared::SharedFirstLayer;
pub use smallest::{
    k_nodes, layer_nodes, node_curve, smallest_edges, smallest_k, smallest_per_layer, NodeCurve, PerLayerSmallest,
    SmallestFaithful, EDGE_GROWTH, NODE_GROWTH, PER_LAYER_GROWTH,
};
pub use sweep::{NeuronScores, PatchingSweep, TaskImages, DEAD_TOLERANCE};
