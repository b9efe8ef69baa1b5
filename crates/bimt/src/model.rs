use modcirc_dataset::{ImageSet, Rng};
use serde::{Deserialize, Serialize};

use crate::linalg::mm_nt;
use crate::{BimtError, Layout};

/// The study's layer widths (STUDY §2).
pub const STUDY_SIZES: [usize; 4] = [784, 100, 100, 10];

/// A fully connected layer, stored as PyTorch's `nn.Linear` stores it:
/// `weight` row-major `[n_out, n_in]`, `bias` `[n_out]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub n_in: usize,
    pub n_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Linear {
    /// PyTorch's default initialisation: weight and bias uniform in ±1/sqrt(fan_in).
    pub fn init(n_in: usize, n_out: usize, rng: &mut Rng) -> Linear {
        let bound = 1.0 / (n_in as f64).sqrt();
        let mut draw = |n| -> Vec<f32> { (0..n).map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32).collect() };
        let weight = draw(n_in * n_out);
        let bias = draw(n_out);
        Linear { n_in, n_out, weight, bias }
    }

    /// `out[n, n_out] = x[n, n_in] · Wᵀ + b`
    pub fn forward_into(&self, x: &[f32], n: usize, out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.n_out) {
            row.copy_from_slice(&self.bias);
        }
        mm_nt(out, x, &self.weight, n, self.n_out, self.n_in, true);
    }
}

/// SiLU, the hidden activation: `z·σ(z)`.
#[inline(always)]
pub fn silu(z: f32) -> f32 {
    z * sigmoid(z)
}

/// SiLU's derivative `σ(z)·(1 + z·(1 − σ(z)))`, given `σ(z)` (which the
/// forward pass has already computed).
#[inline(always)]
pub fn silu_derivative(z: f32, sigmoid_z: f32) -> f32 {
    sigmoid_z * (1.0 + z * (1.0 - sigmoid_z))
}

/// The logistic function `1 / (1 + e^(−z))`, on [`exp`].
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// `e^x` in f32, branch-free so that loops over it vectorise (libm's `expf`
/// is a call per element and was a fifth of a patching sweep). Cody-Waite
/// reduction `x = k·ln2 + r`, `|r| ≤ ln2/2`, and a degree-7 Taylor polynomial
/// (truncation below 1e-8 relative); inputs are clamped to [−87, 88], where
/// f32 neither overflows nor goes subnormal.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // The low mantissa bits of `shifted` hold k: build 2^k from them with
    // integer ops only (a float-to-int cast would stop vectorisation).
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

/// SiLU on every element. On x86-64 CPUs with AVX2 the same code is
/// compiled 8 lanes wide (the default target has only 4-lane SSE2); the
/// arithmetic, hence every result, is the same on both paths.
pub fn silu_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { silu_in_place_avx2(xs) };
    }
    silu_slice(xs)
}

#[inline(always)]
fn silu_slice(xs: &mut [f32]) {
    for x in xs {
        *x = silu(*x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn silu_in_place_avx2(xs: &mut [f32]) {
    silu_slice(xs)
}

/// The MLP of STUDY §2 with the output permutation swaps maintain:
/// output position `p` stands for class `out_perm[p]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    pub out_perm: Vec<usize>,
}

/// Pre- and post-activations of every layer for a batch. `pre[l]` is layer
/// `l`'s output before SiLU; `post[l]` after (for the last layer, the raw
/// logits in *position* order).
#[derive(Debug, Clone)]
pub struct Activations {
    pub n: usize,
    pub pre: Vec<Vec<f32>>,
    pub post: Vec<Vec<f32>>,
}

impl Mlp {
    /// A freshly initialised network with widths `sizes`.
    pub fn init(sizes: &[usize], seed: u64) -> Mlp {
        let mut rng = Rng::derive(seed, 0x1417);
        let layers = sizes.windows(2).map(|w| Linear::init(w[0], w[1], &mut rng)).collect();
        Mlp { layers, out_perm: (0..*sizes.last().unwrap()).collect() }
    }

    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.layers[0].n_in];
        s.extend(self.layers.iter().map(|l| l.n_out));
        s
    }

    pub fn n_inputs(&self) -> usize {
        self.layers[0].n_in
    }
    pub fn n_classes(&self) -> usize {
        self.layers.last().unwrap().n_out
    }
    pub fn n_weights(&self) -> usize {
        self.layers.iter().map(|l| l.weight.len()).sum()
    }

    /// Checks that `sizes` and `layout` fit together.
    pub fn check_layout(&self, layout: &Layout) -> Result<(), BimtError> {
        let sizes = self.sizes();
        let got: Vec<usize> = layout.layers.iter().map(|l| l.len()).collect();
        if got != sizes {
            return Err(BimtError::Config(format!("layout has layers of {got:?} neurons, the model {sizes:?}")));
        }
        Ok(())
    }

    /// Every layer's activations on `n` row-major inputs.
    pub fn activations(&self, x: &[f32], n: usize) -> Activations {
        assert_eq!(x.len(), n * self.n_inputs(), "input buffer");
        let last = self.layers.len() - 1;
        let mut pre = Vec::with_capacity(self.layers.len());
        let mut post: Vec<Vec<f32>> = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let input = if l == 0 { x } else { &post[l - 1] };
            let mut z = vec![0.0; n * layer.n_out];
            layer.forward_into(input, n, &mut z);
            let mut a = z.clone();
            if l != last {
                silu_in_place(&mut a);
            }
            pre.push(z);
            post.push(a);
        }
        Activations { n, pre, post }
    }

    /// Logits in *class* order (the output permutation undone), `[n, classes]`.
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let acts = self.activations(x, n);
        self.positions_to_classes(acts.post.last().unwrap())
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
        let last = m.layers.last_mut().unwrap();
        let src = self.layers.last().unwrap();
        for (p, &class) in self.out_perm.iter().enumerate() {
            last.weight[class * src.n_in..(class + 1) * src.n_in]
                .copy_from_slice(&src.weight[p * src.n_in..(p + 1) * src.n_in]);
            last.bias[class] = src.bias[p];
        }
        m.out_perm = (0..self.n_classes()).collect();
        m
    }

    /// Fraction of `set` classified correctly (argmax of the logits, ties to
    /// the lower class), evaluated in batches of 1 000.
    pub fn accuracy(&self, set: &ImageSet) -> f64 {
        let mut correct = 0usize;
        let c = self.n_classes();
        for start in (0..set.len()).step_by(1000) {
            let end = (start + 1000).min(set.len());
            let x = &set.images[start * set.pixels()..end * set.pixels()];
            let logits = self.forward(x, end - start);
            for (i, row) in logits.chunks_exact(c).enumerate() {
                if argmax(row) == set.labels[start + i] as usize {
                    correct += 1;
                }
            }
        }
        correct as f64 / set.len().max(1) as f64
    }
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

    #[test]
    fn exp_is_accurate_over_the_whole_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
            x += 0.01;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        // Clamped, not overflowed: e^88 is the largest factor used.
        let tail = 1.0 / (1.0 + (88.0f64).exp());
        assert!(((sigmoid(-200.0) as f64 - tail) / tail).abs() < 1e-5);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!((silu(3.0) - 3.0 / (1.0 + (-3.0f32).exp())).abs() < 1e-6);
        // The vectorised slice path gives exactly the scalar results.
        let xs: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.173).collect();
        let mut ys = xs.clone();
        silu_in_place(&mut ys);
        assert!(xs.iter().zip(&ys).all(|(x, y)| silu(*x).to_bits() == y.to_bits()));
    }

    #[test]
    fn init_is_seeded_and_bounded_like_pytorch() {
        let a = Mlp::init(&STUDY_SIZES, 3);
        assert_eq!(a, Mlp::init(&STUDY_SIZES, 3));
        assert_ne!(a, Mlp::init(&STUDY_SIZES, 4));
        let b1 = 1.0 / 28.0;
        assert!(a.layers[0].weight.iter().all(|w| w.abs() <= b1));
        assert!(a.layers[0].weight.iter().any(|w| w.abs() > 0.9 * b1));
        assert_eq!(a.n_weights(), 89_400);
    }

    #[test]
    fn folding_the_output_permutation_keeps_the_function() {
        let mut m = Mlp::init(&[4, 9, 4, 3], 1);
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
}
