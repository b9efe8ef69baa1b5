//! The crate's errors, each naming the option, layer or shape at fault.

/// What can go wrong finding or judging a circuit.
#[derive(Debug, thiserror::Error)]
pub enum AcdcError {
    /// A K outside a hidden layer's width.
    #[error("k = {k}: k must be in 1..={width} for hidden layer {layer}")]
    BadK {
        /// The K asked for.
        k: usize,
        /// The hidden layer, 1-based.
        layer: usize,
        /// Its width.
        width: usize,
    },
    /// A selection rule that does not fit the model: a K list of another
    /// length than the hidden layers, a threshold that is not a number.
    #[error("{0}")]
    BadSelection(String),
    /// No pairs to patch.
    #[error("the task has no pairs")]
    EmptyTask,
    /// An edge threshold outside [0, 1).
    #[error("eps = {0}: must be in [0, 1)")]
    BadEps(f64),
    /// Buffers, masks or node sets that do not fit the model.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A device that cannot be opened.
    #[error("{0}")]
    Device(String),
    /// A quantity that is undefined on these pairs (faithfulness where the
    /// model answers the same on clean and corrupted images).
    #[error("{0}")]
    Degenerate(String),
    /// An option out of its range.
    #[error("{0}")]
    BadOption(String),
    /// A candle operation failed on the device.
    #[cfg(feature = "candle")]
    #[error("on the device: {0}")]
    Candle(#[from] candle_core::Error),
    /// A forward pass that overflows f32: weights so large that an
    /// activation or logit is infinite or NaN, which would make every
    /// metric NaN and the circuit arbitrary.
    #[error("the model's {what} on pair {pair} ({image} image) is not finite: its weights overflow f32")]
    NonFinite {
        /// `logits` or `hidden layer N`.
        what: String,
        /// The pair's index in the task.
        pair: usize,
        /// `clean` or `corrupted`.
        image: &'static str,
    },
    /// An ablation that is not `zero`, `mean`, `resample` or `optimal`.
    #[error("unknown ablation {0:?} (expected zero, mean, resample or optimal)")]
    UnknownAblation(String),
}
