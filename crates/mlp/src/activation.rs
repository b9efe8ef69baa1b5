//! Hidden-layer activations as values, each with its derivative.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MlpError;

/// The function every hidden layer applies to its pre-activation (the output
/// layer applies none). Names are as the command line and the checkpoint
/// metadata spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Activation {
    /// `z·σ(z)` (PyTorch's `nn.SiLU`); the study's activation (STUDY §2).
    Silu,
    /// `max(z, 0)` (`nn.ReLU`); its derivative at 0 is taken as 0, as PyTorch does.
    Relu,
    /// `z·Φ(z)` with the exact normal CDF (`nn.GELU()`, PyTorch's default).
    Gelu,
    /// `z/2·(1 + tanh(√(2/π)(z + 0.044715 z³)))` (`nn.GELU(approximate="tanh")`).
    GeluTanh,
    /// `tanh(z)` (`nn.Tanh`).
    Tanh,
    /// `1/(1 + e^(−z))` (`nn.Sigmoid`).
    Sigmoid,
    /// `z` (no activation: a deep linear network).
    Identity,
}

impl Activation {
    /// Every activation, in the order the docs list them.
    pub const ALL: [Activation; 7] = [
        Activation::Silu,
        Activation::Relu,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Identity,
    ];

    /// The name the command line and the metadata use (`gelu-tanh`, …).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu-tanh",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Identity => "identity",
        }
    }

    /// The activation of one pre-activation `z`.
    #[inline(always)]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Silu => silu(z),
            Activation::Relu => z.max(0.0),
            Activation::Gelu => 0.5 * z * (1.0 + libm::erff(z * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::GeluTanh => 0.5 * z * (1.0 + (GELU_TANH_C * (z + GELU_TANH_A * z * z * z)).tanh()),
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => sigmoid(z),
            Activation::Identity => z,
        }
    }

    /// `g[i] *= derivative(z[i])` for every element: a backward pass
    /// through the activation. The arithmetic of [`Activation::derivative`],
    /// one loop per activation, 16 or 8 lanes wide where the CPU has
    /// AVX-512 or AVX2: the same bits on every path.
    ///
    /// # Panics
    /// If `z` and `g` differ in length.
    pub fn scale_by_derivative(self, z: &[f32], g: &mut [f32]) {
        assert_eq!(z.len(), g.len(), "a gradient per pre-activation");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { scale_by_derivative_avx512(self, z, g) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { scale_by_derivative_avx2(self, z, g) };
        }
        scale_by_derivative_slice(self, z, g)
    }

    /// `d apply / dz` at `z`.
    #[inline(always)]
    pub fn derivative(self, z: f32) -> f32 {
        match self {
            Activation::Silu => silu_derivative(z, sigmoid(z)),
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + libm::erff(z * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = exp(-0.5 * z * z) * FRAC_1_SQRT_2PI;
                cdf + z * pdf
            }
            Activation::GeluTanh => {
                let u = GELU_TANH_C * (z + GELU_TANH_A * z * z * z);
                let t = u.tanh();
                0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_TANH_C * (1.0 + 3.0 * GELU_TANH_A * z * z)
            }
            Activation::Tanh => {
                let t = z.tanh();
                1.0 - t * t
            }
            Activation::Sigmoid => {
                let s = sigmoid(z);
                s * (1.0 - s)
            }
            Activation::Identity => 1.0,
        }
    }

    /// The activation of every element. On x86-64 CPUs with AVX2 the same
    /// code is compiled 8 lanes wide (the default target has only 4-lane
    /// SSE2), and SiLU 16 lanes wide where the CPU has AVX-512; the
    /// arithmetic, hence every result, is the same on every path.
    pub fn apply_in_place(self, xs: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self == Activation::Silu && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { silu_avx512(xs) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe {
                match self {
                    // The study's activation gets a function of its own, so
                    // that its loop is compiled alone, as it was before the
                    // other activations existed.
                    Activation::Silu => silu_avx2(xs),
                    Activation::Identity => {}
                    other => apply_avx2(other, xs),
                }
            };
        }
        apply_slice(self, xs)
    }
}

#[cfg(feature = "candle")]
impl Activation {
    /// The activation as candle tensor ops (differentiable, on any device),
    /// for the candle forms of the network.
    pub fn apply_tensor(self, z: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            Activation::Silu => z.silu(),
            Activation::Relu => z.relu(),
            Activation::Gelu => z.gelu_erf(),
            Activation::GeluTanh => z.gelu(),
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => (z.neg()?.exp()? + 1.0)?.recip(),
            Activation::Identity => Ok(z.clone()),
        }
    }
}

/// SiLU of every `z` into `out`, keeping `σ(z)` in `sigmoid` for the
/// derivative (a training step's hidden layers): the arithmetic of
/// [`silu`] and [`sigmoid`], 16 or 8 lanes wide where the CPU has AVX-512
/// or AVX2, the same bits on every path.
///
/// # Panics
/// If the three slices differ in length.
pub fn silu_keeping_sigmoid(z: &[f32], sigmoid_z: &mut [f32], out: &mut [f32]) {
    assert!(z.len() == sigmoid_z.len() && z.len() == out.len(), "three slices of one length");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { silu_keeping_avx512(z, sigmoid_z, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { silu_keeping_avx2(z, sigmoid_z, out) };
    }
    silu_keeping(z, sigmoid_z, out)
}

#[inline(always)]
fn silu_keeping(z: &[f32], sigmoid_z: &mut [f32], out: &mut [f32]) {
    for ((a, s), &z) in out.iter_mut().zip(sigmoid_z.iter_mut()).zip(z) {
        *s = sigmoid(z);
        *a = z * *s;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn silu_keeping_avx512(z: &[f32], sigmoid_z: &mut [f32], out: &mut [f32]) {
    silu_keeping(z, sigmoid_z, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn silu_keeping_avx2(z: &[f32], sigmoid_z: &mut [f32], out: &mut [f32]) {
    silu_keeping(z, sigmoid_z, out)
}

#[inline(always)]
fn scale_by_derivative_slice(act: Activation, z: &[f32], g: &mut [f32]) {
    // One loop per activation, so that each vectorises on its own.
    macro_rules! each {
        ($f:expr) => {
            for (g, &z) in g.iter_mut().zip(z) {
                *g *= $f(z);
            }
        };
    }
    match act {
        Activation::Identity => {}
        Activation::Silu => each!(|z| silu_derivative(z, sigmoid(z))),
        Activation::Relu => each!(|z: f32| if z > 0.0 { 1.0 } else { 0.0 }),
        Activation::Sigmoid => each!(|z| Activation::Sigmoid.derivative(z)),
        other => each!(|z| other.derivative(z)),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scale_by_derivative_avx512(act: Activation, z: &[f32], g: &mut [f32]) {
    scale_by_derivative_slice(act, z, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scale_by_derivative_avx2(act: Activation, z: &[f32], g: &mut [f32]) {
    scale_by_derivative_slice(act, z, g)
}

/// `√(2/π)`, of the tanh form of GELU.
const GELU_TANH_C: f32 = 0.797_884_6;
/// The cubic coefficient of the tanh form of GELU.
const GELU_TANH_A: f32 = 0.044_715;
/// `1/√(2π)`, the normal density at 0.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn apply_slice(act: Activation, xs: &mut [f32]) {
    // One loop per activation, so that each vectorises on its own.
    macro_rules! each {
        ($f:expr) => {
            for x in xs.iter_mut() {
                *x = $f(*x);
            }
        };
    }
    match act {
        Activation::Identity => {}
        Activation::Silu => each!(silu),
        Activation::Relu => each!(|z: f32| z.max(0.0)),
        Activation::Sigmoid => each!(sigmoid),
        other => each!(|z| other.apply(z)),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn apply_avx2(act: Activation, xs: &mut [f32]) {
    apply_slice(act, xs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn silu_avx2(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = silu(*x);
    }
}

/// SiLU 16 lanes wide: the forward's hidden layers spend a tenth of their
/// time in it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn silu_avx512(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = silu(*x);
    }
}

impl FromStr for Activation {
    type Err = MlpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| MlpError::UnknownActivation(s.into()))
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Activation> for String {
    fn from(a: Activation) -> String {
        a.name().into()
    }
}

impl TryFrom<String> for Activation {
    type Error = MlpError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// SiLU, `z·σ(z)`.
#[inline(always)]
pub fn silu(z: f32) -> f32 {
    z * sigmoid(z)
}

/// SiLU's derivative `σ(z)·(1 + z·(1 − σ(z)))`, given `σ(z)` (which a
/// forward pass has often computed already).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_by_derivative_gives_the_scalar_bits_for_every_activation() {
        let z: Vec<f32> = (0..1_037).map(|i| (i as f32 - 500.0) * 0.07).collect();
        let g0: Vec<f32> = (0..z.len()).map(|i| ((i % 17) as f32 - 8.0) * 0.3).collect();
        for act in Activation::ALL {
            let mut g = g0.clone();
            act.scale_by_derivative(&z, &mut g);
            for ((&z, &g0), &g) in z.iter().zip(&g0).zip(&g) {
                assert_eq!(g.to_bits(), (g0 * act.derivative(z)).to_bits(), "{act} at {z}");
            }
        }
    }

    #[test]
    fn silu_keeping_sigmoid_gives_the_scalar_bits() {
        let z: Vec<f32> = (0..1_037).map(|i| (i as f32 - 500.0) * 0.07).collect();
        let (mut s, mut a) = (vec![0.0; z.len()], vec![0.0; z.len()]);
        silu_keeping_sigmoid(&z, &mut s, &mut a);
        for ((&z, &s), &a) in z.iter().zip(&s).zip(&a) {
            assert_eq!((s.to_bits(), a.to_bits()), (sigmoid(z).to_bits(), silu(z).to_bits()), "at {z}");
        }
    }

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
    }

    /// The reference each activation is checked against, in f64 from std.
    fn reference(a: Activation, z: f64) -> f64 {
        let erf = |x: f64| libm::erf(x);
        match a {
            Activation::Silu => z / (1.0 + (-z).exp()),
            Activation::Relu => z.max(0.0),
            Activation::Gelu => 0.5 * z * (1.0 + erf(z / 2f64.sqrt())),
            Activation::GeluTanh => {
                0.5 * z * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z * z * z)).tanh())
            }
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
            Activation::Identity => z,
        }
    }

    #[test]
    fn every_activation_matches_its_f64_formula() {
        for a in Activation::ALL {
            for i in -400..=400 {
                let z = i as f32 * 0.02;
                let (got, want) = (a.apply(z) as f64, reference(a, z as f64));
                assert!((got - want).abs() <= 2e-6 * (1.0 + want.abs()), "{a} at {z}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn every_derivative_matches_central_differences() {
        for a in Activation::ALL {
            for i in -400..=400 {
                let z = i as f64 * 0.0199 + 0.003; // never exactly 0, where ReLU has a kink
                let h = 1e-5;
                let fd = (reference(a, z + h) - reference(a, z - h)) / (2.0 * h);
                let got = a.derivative(z as f32) as f64;
                assert!((got - fd).abs() < 1e-5, "{a}' at {z}: {got} vs {fd}");
            }
        }
        assert_eq!(Activation::Relu.derivative(0.0), 0.0);
    }

    #[test]
    fn the_slice_path_gives_exactly_the_scalar_results() {
        let xs: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.0173).collect();
        for a in Activation::ALL {
            let mut ys = xs.clone();
            a.apply_in_place(&mut ys);
            assert!(xs.iter().zip(&ys).all(|(x, y)| a.apply(*x).to_bits() == y.to_bits()), "{a}");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for a in Activation::ALL {
            assert_eq!(a.name().parse::<Activation>().unwrap(), a);
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
        }
        let e = "swish".parse::<Activation>().unwrap_err().to_string();
        assert!(e.contains("swish") && e.contains("gelu-tanh"), "{e}");
    }
}
