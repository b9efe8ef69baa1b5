//! The network: [`Linear`] layers and the [`Mlp`] that chains them.

use serde::{Deserialize, Serialize};

use crate::dense::dense_into;
use crate::linalg::mm_nt;
use crate::sparse::{self, Transposed};
use crate::{Activation, MlpError};

/// A fully connected layer, stored as PyTorch's `nn.Linear` stores it:
/// `weight` row-major `[n_out, n_in]`, `bias` `[n_out]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Input width.
    pub n_in: usize,
    /// Output width.
    pub n_out: usize,
    /// `[n_out, n_in]`, row-major.
    pub weight: Vec<f32>,
    /// `[n_out]`.
    pub bias: Vec<f32>,
}

impl Linear {
    /// PyTorch's default initialisation: weight then bias, each uniform in
    /// ±1/sqrt(fan_in), drawn from `uniform` (values in `[0, 1)`).
    pub fn init(n_in: usize, n_out: usize, uniform: &mut dyn FnMut() -> f64) -> Linear {
        let bound = 1.0 / (n_in as f64).sqrt();
        let mut draw = |n| -> Vec<f32> { (0..n).map(|_| ((uniform() * 2.0 - 1.0) * bound) as f32).collect() };
        let weight = draw(n_in * n_out);
        let bias = draw(n_out);
        Linear { n_in, n_out, weight, bias }
    }

    /// `out[n, n_out] = x[n, n_in] · Wᵀ + b`, one dense product (`gemm`).
    pub fn forward_into(&self, x: &[f32], n: usize, out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.n_out) {
            row.copy_from_slice(&self.bias);
        }
        mm_nt(out, x, &self.weight, n, self.n_out, self.n_in, true);
    }

    /// [`Linear::forward_into`] for inputs with many exact zeros (images):
    /// rows with few nonzero inputs skip the zero ones (see
    /// [`SPARSE_DENSITY`](crate::SPARSE_DENSITY)), the same sums in another
    /// order, equal to the dense product's within f32 rounding. What every
    /// first layer of an [`Mlp`] computes.
    pub fn forward_sparse_into(&self, x: &[f32], n: usize, out: &mut [f32]) {
        sparse::forward_into(&Transposed::new(self, n), x, n, out)
    }

    /// [`Linear::forward_into`]'s bits, on register tiles where the CPU
    /// has AVX-512 and the tiles give them (a hidden layer of
    /// [`Mlp::forward`], a training step's hidden layers): at 100 × 100 the
    /// dense product packs its operands for as long as it multiplies.
    pub fn forward_tiles_into(&self, a: &[f32], n: usize, out: &mut [f32]) {
        dense_into(&Transposed::new(self, n), a, n, out)
    }
}

/// A multilayer perceptron: one or more hidden layers of any widths, one
/// [`Activation`] after every hidden layer, none after the last, and the
/// output permutation that neuron swaps maintain: output position `p`
/// stands for class `out_perm[p]`.
///
/// ```
/// use modcirc_mlp::{Activation, Linear, Mlp};
/// let layer = |n_in, n_out, w: f32| Linear { n_in, n_out, weight: vec![w; n_in * n_out], bias: vec![0.0; n_out] };
/// let mlp = Mlp::new(vec![layer(3, 2, 1.0), layer(2, 2, -1.0)], Activation::Relu)?;
/// assert_eq!(mlp.sizes(), [3, 2, 2]);
/// // ReLU(1 + 2 + 3) = 6 in both hidden neurons, then −12 in both outputs.
/// assert_eq!(mlp.forward(&[1.0, 2.0, 3.0], 1), [-12.0, -12.0]);
/// # Ok::<(), modcirc_mlp::MlpError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
    /// What every hidden layer applies.
    pub activation: Activation,
    /// Output position `p` is class `out_perm[p]`.
    pub out_perm: Vec<usize>,
}

/// Pre- and post-activations of every layer for a batch. `pre[l]` is layer
/// `l`'s output before the activation; `post[l]` after (for the last layer,
/// the raw logits in *position* order).
#[derive(Debug, Clone)]
pub struct Activations {
    /// Rows in the batch.
    pub n: usize,
    /// Per layer, `[n, width]`.
    pub pre: Vec<Vec<f32>>,
    /// Per layer, `[n, width]`.
    pub post: Vec<Vec<f32>>,
}

/// Rows per block of [`Mlp::forward`]: the unit of work a thread takes, and
/// what keeps the logits independent of the number of threads.
pub const ROW_BLOCK: usize = 64;

/// The fewest rows for which [`Mlp::forward`] wakes other threads: below
/// it, waking one costs more than its share of the work saves (on the
/// study's 784-100-100-10 models, a batch of 100 took longer on two threads
/// than on one).
#[cfg(feature = "parallel")]
const PARALLEL_ROWS: usize = 128;

impl Mlp {
    /// A network from its layers, checked: at least one hidden layer, no
    /// zero width, widths that chain, buffers of the stated sizes. The output
    /// permutation is the identity.
    pub fn new(layers: Vec<Linear>, activation: Activation) -> Result<Mlp, MlpError> {
        let bad = |m: String| Err(MlpError::Shape(m));
        if layers.len() < 2 {
            return bad(format!("{} layer(s): an MLP needs at least one hidden layer (two layers)", layers.len()));
        }
        for (l, layer) in layers.iter().enumerate() {
            if layer.n_in == 0 || layer.n_out == 0 {
                return bad(format!("layer {} is {} -> {}: a width of 0", l + 1, layer.n_in, layer.n_out));
            }
            if layer.weight.len() != layer.n_in * layer.n_out || layer.bias.len() != layer.n_out {
                return bad(format!(
                    "layer {} has {} weights and {} biases for {} -> {}",
                    l + 1,
                    layer.weight.len(),
                    layer.bias.len(),
                    layer.n_in,
                    layer.n_out
                ));
            }
            if l > 0 && layers[l - 1].n_out != layer.n_in {
                return bad(format!(
                    "layer {} takes {} inputs but layer {} gives {}",
                    l + 1,
                    layer.n_in,
                    l,
                    layers[l - 1].n_out
                ));
            }
        }
        let classes = layers.last().expect("checked").n_out;
        Ok(Mlp { layers, activation, out_perm: (0..classes).collect() })
    }

    /// A freshly initialised network with widths `sizes` (PyTorch's default
    /// initialisation, layer by layer, from `uniform`).
    pub fn init(sizes: &[usize], activation: Activation, uniform: &mut dyn FnMut() -> f64) -> Result<Mlp, MlpError> {
        if sizes.contains(&0) {
            return Err(MlpError::Shape(format!("sizes {sizes:?} contain a width of 0")));
        }
        Mlp::new(sizes.windows(2).map(|w| Linear::init(w[0], w[1], uniform)).collect(), activation)
    }

    /// Every layer's width, input first.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.layers[0].n_in];
        s.extend(self.layers.iter().map(|l| l.n_out));
        s
    }

    /// Input width.
    pub fn n_inputs(&self) -> usize {
        self.layers[0].n_in
    }
    /// Output width.
    pub fn n_classes(&self) -> usize {
        self.layers.last().expect("at least two layers").n_out
    }
    /// Number of hidden layers.
    pub fn n_hidden(&self) -> usize {
        self.layers.len() - 1
    }
    /// Number of weights (biases not counted).
    pub fn n_weights(&self) -> usize {
        self.layers.iter().map(|l| l.weight.len()).sum()
    }

    /// Every layer's activations on `n` row-major inputs, each layer's
    /// product as [`Mlp::layer_forward_into`] computes it.
    ///
    /// # Panics
    /// If `x` is not `n × n_inputs` long.
    pub fn activations(&self, x: &[f32], n: usize) -> Activations {
        assert_eq!(x.len(), n * self.n_inputs(), "input buffer");
        let last = self.layers.len() - 1;
        let mut pre = Vec::with_capacity(self.layers.len());
        let mut post: Vec<Vec<f32>> = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let mut z = vec![0.0; n * layer.n_out];
            self.layer_forward_into(l, if l == 0 { x } else { &post[l - 1] }, n, &mut z);
            let mut a = z.clone();
            if l != last {
                self.activation.apply_in_place(&mut a);
            }
            pre.push(z);
            post.push(a);
        }
        Activations { n, pre, post }
    }

    /// Logits in *class* order (the output permutation undone), `[n, classes]`.
    /// The batch is run in blocks of [`ROW_BLOCK`] rows, spread over the
    /// threads of the current rayon pool (with the `parallel` feature), so
    /// the logits are the same bits on any number of threads: each block is
    /// the same product whichever thread runs it.
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        #[cfg(feature = "parallel")]
        if n >= PARALLEL_ROWS && rayon::current_num_threads() > 1 {
            return self.forward_parallel(x, n);
        }
        self.forward_serial(x, n)
    }

    /// [`Mlp::forward`]'s blocks shared out as they come: the calling
    /// thread starts on them at once, and helpers from the rayon pool take
    /// the rest as they wake (a sleeping worker can take longer to wake
    /// than a block takes to run, on a virtual machine especially).
    #[cfg(feature = "parallel")]
    fn forward_parallel(&self, x: &[f32], n: usize) -> Vec<f32> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::OnceLock;
        let px = self.n_inputs();
        assert_eq!(x.len(), n * px, "input buffer");
        let transposed = self.transposed(n);
        let blocks: Vec<&[f32]> = x.chunks(ROW_BLOCK * px).collect();
        let logits: Vec<OnceLock<Vec<f32>>> = blocks.iter().map(|_| OnceLock::new()).collect();
        let next = AtomicUsize::new(0);
        let work = || {
            let mut b = next.fetch_add(1, Ordering::Relaxed);
            while let Some(rows) = blocks.get(b) {
                let _ = logits[b].set(self.forward_block(&transposed, rows, rows.len() / px));
                b = next.fetch_add(1, Ordering::Relaxed);
            }
        };
        let helpers = (rayon::current_num_threads() - 1).min(blocks.len() - 1);
        rayon::in_place_scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|_| work());
            }
            work();
        });
        let mut out = Vec::with_capacity(n * self.n_classes());
        for block in logits {
            out.extend(block.into_inner().expect("every block ran"));
        }
        out
    }

    /// [`Mlp::forward`] on the calling thread alone (the same bits): for a
    /// single-core timing.
    pub fn forward_serial(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(x.len(), n * self.n_inputs(), "input buffer");
        let transposed = self.transposed(n);
        if n <= ROW_BLOCK {
            return self.forward_block(&transposed, x, n);
        }
        let mut logits = Vec::with_capacity(n * self.n_classes());
        for rows in x.chunks(ROW_BLOCK * self.n_inputs()) {
            logits.extend(self.forward_block(&transposed, rows, rows.len() / self.n_inputs()));
        }
        logits
    }

    /// Layer `l`'s pre-activation `out[n, n_out]` from its input `a`: the
    /// first layer by [`Linear::forward_sparse_into`] (its inputs are the
    /// images, mostly zeros in MNIST), the others by the dense product (a
    /// hidden layer's activations are rarely exact zeros). Whatever
    /// recomputes a layer of the model computes it so, to agree with
    /// [`Mlp::activations`] to the bit.
    pub fn layer_forward_into(&self, l: usize, a: &[f32], n: usize, out: &mut [f32]) {
        if l == 0 {
            self.layers[0].forward_sparse_into(a, n, out)
        } else {
            self.layers[l].forward_into(a, n, out)
        }
    }

    /// Every layer's transposed weights, made if a block needs them and
    /// shared by the blocks of a forward of `n` rows.
    fn transposed(&self, n: usize) -> Vec<Transposed<'_>> {
        self.layers.iter().map(|layer| Transposed::new(layer, n)).collect()
    }

    /// One block's logits: what [`Mlp::activations`] computes for its last
    /// layer (the same bits: the hidden layers' tiles give the dense
    /// product's), without keeping the layers before it.
    fn forward_block(&self, transposed: &[Transposed], x: &[f32], n: usize) -> Vec<f32> {
        let mut a = vec![0.0; n * self.layers[0].n_out];
        sparse::forward_into(&transposed[0], x, n, &mut a);
        for (layer, t) in self.layers[1..].iter().zip(&transposed[1..]) {
            self.activation.apply_in_place(&mut a);
            let mut z = vec![0.0; n * layer.n_out];
            dense_into(t, &a, n, &mut z);
            a = z;
        }
        self.positions_to_classes(&a)
    }

    /// Reorders output-position logits `[n, classes]` into class order.
    pub fn positions_to_classes(&self, y: &[f32]) -> Vec<f32> {
        let c = self.n_classes();
        let mut out = vec![0.0; y.len()];
        for (src, dst) in y.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
            for (p, &class) in self.out_perm.iter().enumerate() {
                dst[class] = src[p];
            }
        }
        out
    }

    /// Folds the output permutation into the last layer, so that output `c`
    /// is class `c` and a plain sequential network computes the same function.
    pub fn with_identity_output(&self) -> Mlp {
        let mut m = self.clone();
        let last = m.layers.last_mut().expect("at least two layers");
        let src = self.layers.last().expect("at least two layers");
        for (p, &class) in self.out_perm.iter().enumerate() {
            last.weight[class * src.n_in..(class + 1) * src.n_in]
                .copy_from_slice(&src.weight[p * src.n_in..(p + 1) * src.n_in]);
            last.bias[class] = src.bias[p];
        }
        m.out_perm = (0..self.n_classes()).collect();
        m
    }

    /// Fraction of the `labels.len()` row-major `images` classified correctly
    /// (argmax of the logits, ties to the lower class), in batches of 1 000.
    pub fn accuracy(&self, images: &[f32], labels: &[u8]) -> f64 {
        let (px, c) = (self.n_inputs(), self.n_classes());
        let mut correct = 0usize;
        for start in (0..labels.len()).step_by(1000) {
            let end = (start + 1000).min(labels.len());
            let logits = self.forward(&images[start * px..end * px], end - start);
            for (i, row) in logits.chunks_exact(c).enumerate() {
                if argmax(row) == labels[start + i] as usize {
                    correct += 1;
                }
            }
        }
        correct as f64 / labels.len().max(1) as f64
    }
}

/// Fraction of the rows of `logits` (`classes` wide) whose argmax (ties to
/// the lower class) is the label: the one accuracy of every crate.
pub fn accuracy_of_logits(logits: &[f32], labels: &[u8], classes: usize) -> f64 {
    let hits = logits.chunks_exact(classes).zip(labels).filter(|(row, &label)| argmax(row) == label as usize).count();
    hits as f64 / labels.len().max(1) as f64
}

/// Index of the largest value; ties to the lower index, NaN never wins.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn init_is_bounded_like_pytorch() {
        let a = Mlp::init(&[784, 100, 100, 10], Activation::Silu, &mut uniform(3)).unwrap();
        let b1 = 1.0 / 28.0;
        assert!(a.layers[0].weight.iter().all(|w| w.abs() <= b1));
        assert!(a.layers[0].weight.iter().any(|w| w.abs() > 0.9 * b1));
        assert_eq!(a.n_weights(), 89_400);
        assert_eq!(a.n_hidden(), 2);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let e = |sizes: &[usize]| Mlp::init(sizes, Activation::Relu, &mut uniform(0)).unwrap_err().to_string();
        assert!(e(&[4, 3]).contains("at least one hidden layer"));
        assert!(e(&[4, 0, 3]).contains("width of 0"));
        let l = |i, o| Linear { n_in: i, n_out: o, weight: vec![0.0; i * o], bias: vec![0.0; o] };
        let err = Mlp::new(vec![l(4, 3), l(2, 1)], Activation::Relu).unwrap_err().to_string();
        assert!(err.contains("layer 2 takes 2 inputs but layer 1 gives 3"), "{err}");
        let mut short = l(4, 3);
        short.bias.pop();
        assert!(Mlp::new(vec![short, l(3, 1)], Activation::Relu).unwrap_err().to_string().contains("2 biases"));
    }

    #[test]
    fn the_forward_applies_the_activation_between_layers_only() {
        let mut m = Mlp::init(&[3, 5, 4, 2], Activation::Tanh, &mut uniform(1)).unwrap();
        let x = [0.3f32, -1.2, 0.7];
        let by_hand = |m: &Mlp| {
            let mut a = x.to_vec();
            for (l, layer) in m.layers.iter().enumerate() {
                a = (0..layer.n_out)
                    .map(|o| {
                        let z = layer.bias[o]
                            + (0..layer.n_in).map(|i| layer.weight[o * layer.n_in + i] * a[i]).sum::<f32>();
                        if l + 1 < m.layers.len() {
                            m.activation.apply(z)
                        } else {
                            z
                        }
                    })
                    .collect();
            }
            a
        };
        for act in Activation::ALL {
            m.activation = act;
            let (got, want) = (m.forward(&x, 1), by_hand(&m));
            assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-6), "{act}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn folding_the_output_permutation_keeps_the_function() {
        let mut m = Mlp::init(&[4, 9, 4, 3], Activation::Silu, &mut uniform(1)).unwrap();
        let x: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
        let before = m.forward(&x, 2);
        // Swap output positions 0 and 2 the way relocation does.
        let last = m.layers.last_mut().unwrap();
        let n = last.n_in;
        for i in 0..n {
            last.weight.swap(i, 2 * n + i);
        }
        last.bias.swap(0, 2);
        m.out_perm.swap(0, 2);
        assert_eq!(m.forward(&x, 2), before);
        let folded = m.with_identity_output();
        assert_eq!(folded.out_perm, vec![0, 1, 2]);
        assert_eq!(folded.forward(&x, 2), before);
    }

    #[test]
    fn accuracy_is_the_share_of_rows_whose_argmax_is_the_label() {
        assert_eq!(accuracy_of_logits(&[0.1, 0.9, 0.8, 0.2], &[1, 1], 2), 0.5);
        assert_eq!(accuracy_of_logits(&[0.5, 0.5], &[0], 2), 1.0, "ties to the lower class");
    }
}
