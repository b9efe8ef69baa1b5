#[derive(Debug, thiserror::Error)]
pub enum AcdcError {
    #[error("k = {k}: k must be in 1..={width} for hidden layer {layer}")]
    BadK { k: usize, layer: usize, width: usize },
    #[error("the task has no pairs")]
    EmptyTask,
    #[error("eps = {0}: must be in [0, 1)")]
    BadEps(f64),
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    Degenerate(String),
    /// An option out of its range.
    #[error("{0}")]
    BadOption(String),
    #[error("on the device: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("unknown ablation {0:?} (expected zero, mean or resample)")]
    UnknownAblation(String),
}
