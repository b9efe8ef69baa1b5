//! The training curves: a point every `history_every` steps.

use serde::{Deserialize, Serialize};

use crate::TrainConfig;

/// One point of the training curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// The 1-based step.
    pub step: usize,
    /// Mean total loss (`mse + lambda·cc`) over the steps since the last point.
    pub loss: f64,
    /// Mean MSE over the steps since the last point.
    pub mse: f64,
    /// The regime's own penalty `cc(wf)` (0 for Vanilla), at this step.
    pub penalty: f64,
    /// `lambda` at this step.
    pub lambda: f32,
    /// `cc(2.0)` for every regime, so that wiring can be compared across regimes.
    pub wiring_cost: f64,
    /// Running accuracy on the training batches since the last point.
    pub train_accuracy: f64,
    /// Test accuracy, where a test split was given.
    pub test_accuracy: Option<f64>,
}

/// The steps since the last history point, shared by both trainers: the
/// running loss, MSE and accuracy that a [`HistoryPoint`] reports.
#[derive(Debug, Default)]
pub(crate) struct HistoryWindow {
    loss: f64,
    mse: f64,
    correct: usize,
    steps: usize,
    images: usize,
}

impl HistoryWindow {
    pub(crate) fn add(&mut self, loss: f64, mse: f64, correct: usize, batch: usize) {
        self.loss += loss;
        self.mse += mse;
        self.correct += correct;
        self.steps += 1;
        self.images += batch;
    }

    pub(crate) fn running_accuracy(&self) -> f64 {
        self.correct as f64 / self.images.max(1) as f64
    }

    /// Whether 0-based step `s` ends with a history point.
    pub(crate) fn due(cfg: &TrainConfig, s: usize) -> bool {
        (s + 1).is_multiple_of(cfg.history_every) || s + 1 == cfg.steps
    }

    /// The point for 0-based step `s` of `model`; starts a new window.
    pub(crate) fn point(
        &mut self,
        cfg: &TrainConfig,
        s: usize,
        penalty: f64,
        wiring: f64,
        test_accuracy: Option<f64>,
    ) -> HistoryPoint {
        let p = HistoryPoint {
            step: s + 1,
            loss: self.loss / self.steps as f64,
            mse: self.mse / self.steps as f64,
            penalty,
            lambda: cfg.lambda_at(s),
            wiring_cost: wiring,
            train_accuracy: self.running_accuracy(),
            test_accuracy,
        };
        *self = HistoryWindow::default();
        p
    }
}
