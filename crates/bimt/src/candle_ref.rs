//! The same network in candle: for inference on any candle device and as the
//! autograd reference the fused CPU step is tested against.

use candle_core::{DType, Device, Tensor, Var};

use crate::{BimtError, ConnectionCost, Mlp};

/// An MLP whose parameters are candle [`Var`]s (so autograd reaches them).
pub struct CandleMlp {
    /// `[n_out, n_in]` per layer.
    pub weights: Vec<Var>,
    /// `[n_out]` per layer.
    pub biases: Vec<Var>,
    /// Output position `p` stands for class `out_perm[p]`.
    pub out_perm: Vec<usize>,
    /// What the hidden layers apply.
    pub activation: modcirc_mlp::Activation,
}

impl CandleMlp {
    /// The network's parameters as candle variables on `device`.
    pub fn from_mlp(m: &Mlp, device: &Device) -> Result<CandleMlp, BimtError> {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in &m.layers {
            weights.push(Var::from_tensor(&Tensor::from_slice(&l.weight, (l.n_out, l.n_in), device)?)?);
            biases.push(Var::from_tensor(&Tensor::from_slice(&l.bias, l.n_out, device)?)?);
        }
        Ok(CandleMlp { weights, biases, out_perm: m.out_perm.clone(), activation: m.activation })
    }

    /// Logits in output-position order for `x` of shape `[n, inputs]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, BimtError> {
        let mut h = x.clone();
        let last = self.weights.len() - 1;
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            h = h.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?;
            if l < last {
                h = self.activation.apply_tensor(&h)?;
            }
        }
        Ok(h)
    }

    /// `mse(logits, one-hot) + lambda·cc`, the training loss of STUDY §2.
    pub fn loss(
        &self,
        x: &Tensor,
        labels: &[u8],
        cost: Option<&ConnectionCost>,
        lambda: f64,
    ) -> Result<Tensor, BimtError> {
        let device = x.device();
        let y = self.forward(x)?;
        let classes = self.out_perm.len();
        let mut target = vec![0f32; labels.len() * classes];
        for (r, &lab) in labels.iter().enumerate() {
            for (p, &c) in self.out_perm.iter().enumerate() {
                target[r * classes + p] = (c == lab as usize) as u8 as f32;
            }
        }
        let target = Tensor::from_vec(target, (labels.len(), classes), device)?;
        let mut loss = (y - target)?.sqr()?.mean_all()?;
        if let Some(cost) = cost {
            for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
                let a = Tensor::from_slice(&cost.weight_factors[l], w.shape(), device)?;
                let term = (w.as_tensor().abs()? * a)?.sum_all()?;
                let bias = (b.as_tensor().abs()?.sum_all()? * cost.bias_factors[l] as f64)?;
                loss = (loss + ((term + bias)? * lambda)?)?;
            }
        }
        Ok(loss.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::gradients_for_test;
    use crate::{Layout, Regime, STUDY_SIZES};

    /// The fused step's loss and gradients against candle's autograd.
    fn check_gradients(model: &Mlp, x: &[f32], labels: &[u8], regimes: &[Regime]) {
        let (n, inputs) = (labels.len(), model.n_inputs());
        let layout = Layout::study(&model.sizes()).unwrap();
        for &regime in regimes {
            let lambda = 0.1;
            let (loss, gw, gb) = gradients_for_test(model, x, labels, regime, lambda);
            let cm = CandleMlp::from_mlp(model, &Device::Cpu).unwrap();
            let cost = regime.penalty_weight_factor().map(|wf| ConnectionCost::training(&layout, wf));
            let xt = Tensor::from_slice(x, (n, inputs), &Device::Cpu).unwrap();
            let l = cm.loss(&xt, labels, cost.as_ref(), lambda as f64).unwrap();
            let want_loss = l.to_scalar::<f32>().unwrap() as f64;
            let act = model.activation;
            assert!((loss - want_loss).abs() < 1e-5 * want_loss.abs(), "{regime} {act}: loss {loss} vs {want_loss}");
            let grads = l.backward().unwrap();
            for (layer, (w, b)) in cm.weights.iter().zip(&cm.biases).enumerate() {
                for (ours, var) in [(&gw[layer], w), (&gb[layer], b)] {
                    let theirs = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
                    for (a, b) in ours.iter().zip(&theirs) {
                        assert!((a - b).abs() <= 1e-5 * scale + 1e-9, "{regime} {act} layer {layer}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn fused_gradients_match_candle_autograd() {
        let mut model = crate::init_model(&STUDY_SIZES, crate::STUDY_ACTIVATION, 11).unwrap();
        model.out_perm = vec![3, 1, 2, 0, 4, 5, 9, 7, 8, 6];
        let n = 17;
        let x: Vec<f32> = (0..n * 784).map(|i| ((i * 2654435761usize) % 1000) as f32 / 1000.0).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i * 7 % 10) as u8).collect();
        check_gradients(&model, &x, &labels, &[Regime::Vanilla, Regime::Bimt]);
    }

    #[test]
    fn fused_gradients_match_candle_autograd_for_every_activation_and_shape() {
        let sizes = [12, 9, 5, 7, 4];
        let n = 11;
        let x: Vec<f32> = (0..n * 12).map(|i| ((i * 2654435761usize) % 1000) as f32 / 500.0 - 1.0).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i * 3 % 4) as u8).collect();
        for act in modcirc_mlp::Activation::ALL {
            let mut model = crate::init_model(&sizes, act, 5).unwrap();
            model.out_perm = vec![2, 0, 3, 1];
            check_gradients(&model, &x, &labels, &[Regime::Vanilla, Regime::L1, Regime::Bimt]);
        }
    }
}
