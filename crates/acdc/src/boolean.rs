//! Every circuit of a small Boolean MLP (STUDY §11, after Méloux et al.
//! 2025): a circuit is a subset of hidden neurons with all their edges; it
//! is valid when, with every other hidden neuron replaced by its mean over
//! the truth table's inputs, the network reproduces the whole truth table.
//! [`enumerate_circuits`] checks every subset and finds the minimal valid
//! ones (no valid proper subset).

use modcirc_mlp::{argmax, Mlp};
use serde::{Deserialize, Serialize};

use crate::AcdcError;

/// The most hidden neurons [`enumerate_circuits`] takes (2^20 subsets).
pub const MAX_ENUMERATED_NEURONS: usize = 20;

/// A Boolean function's whole truth table: every input row (bits as 0.0 or
/// 1.0, bit `j` of the row index is input `j`) and its class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthTable {
    /// Inputs per row.
    pub inputs: usize,
    /// `[2^inputs, inputs]`, row-major.
    pub x: Vec<f32>,
    /// Each row's class (0 or 1).
    pub y: Vec<u8>,
}

impl TruthTable {
    /// The table of `f` on `inputs` bits (at most 16).
    pub fn of(inputs: usize, f: impl Fn(u32) -> bool) -> Result<TruthTable, AcdcError> {
        if !(1..=16).contains(&inputs) {
            return Err(AcdcError::BadOption(format!("a truth table of {inputs} inputs: expected 1 to 16")));
        }
        let rows = 1u32 << inputs;
        let x = (0..rows).flat_map(|r| (0..inputs).map(move |j| ((r >> j) & 1) as f32)).collect();
        let y = (0..rows).map(|r| f(r) as u8).collect();
        Ok(TruthTable { inputs, x, y })
    }

    /// Rows in the table.
    pub fn rows(&self) -> usize {
        self.y.len()
    }
}

/// Every valid circuit of a model, and the minimal ones. A circuit is a
/// bit mask over the hidden neurons, numbered layer by layer (bit `i` of
/// the first hidden layer is neuron `i`; the second layer's follow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitCensus {
    /// Hidden neurons in all.
    pub neurons: usize,
    /// Whether the whole model reproduces the table.
    pub model_correct: bool,
    /// Every valid circuit, ascending.
    pub valid: Vec<u64>,
    /// The valid circuits with no valid proper subset, ascending.
    pub minimal: Vec<u64>,
}

impl CircuitCensus {
    /// Whether `mask` is valid.
    pub fn is_valid(&self, mask: u64) -> bool {
        self.valid.binary_search(&mask).is_ok()
    }

    /// Whether `mask` is a minimal valid circuit.
    pub fn is_minimal(&self, mask: u64) -> bool {
        self.minimal.binary_search(&mask).is_ok()
    }

    /// The fewest neurons of a valid circuit (`None` when none is).
    pub fn smallest(&self) -> Option<u32> {
        self.minimal.iter().map(|m| m.count_ones()).min()
    }
}

/// A model's hidden activations on a truth table, for ablated forwards.
pub struct BooleanProbe<'m> {
    model: &'m Mlp,
    table: &'m TruthTable,
    /// Per hidden layer, each neuron's mean post-activation over the table.
    means: Vec<Vec<f32>>,
}

impl<'m> BooleanProbe<'m> {
    /// Checks the shapes and takes each hidden neuron's mean over the table.
    pub fn new(model: &'m Mlp, table: &'m TruthTable) -> Result<BooleanProbe<'m>, AcdcError> {
        if model.n_inputs() != table.inputs || model.n_classes() < 2 {
            return Err(AcdcError::Shape(format!(
                "a model of {} inputs and {} classes on a truth table of {} inputs and 2 classes",
                model.n_inputs(),
                model.n_classes(),
                table.inputs
            )));
        }
        let n = table.rows();
        let acts = model.activations(&table.x, n);
        let means = model.layers[..model.layers.len() - 1]
            .iter()
            .enumerate()
            .map(|(h, l)| {
                (0..l.n_out)
                    .map(|i| ((0..n).map(|r| acts.post[h][r * l.n_out + i] as f64).sum::<f64>() / n as f64) as f32)
                    .collect()
            })
            .collect();
        Ok(BooleanProbe { model, table, means })
    }

    /// Hidden neurons in all.
    pub fn neurons(&self) -> usize {
        self.means.iter().map(Vec::len).sum()
    }

    /// Whether the circuit `mask` reproduces the whole table, every other
    /// hidden neuron at its mean.
    pub fn is_valid(&self, mask: u64) -> bool {
        let (model, n) = (self.model, self.table.rows());
        let last = model.layers.len() - 1;
        let mut a = self.table.x.clone();
        let mut bit = 0;
        for (l, layer) in model.layers.iter().enumerate() {
            let mut z = vec![0.0; n * layer.n_out];
            model.layer_forward_into(l, &a, n, &mut z);
            if l != last {
                model.activation.apply_in_place(&mut z);
                for i in 0..layer.n_out {
                    if mask >> (bit + i) & 1 == 0 {
                        (0..n).for_each(|r| z[r * layer.n_out + i] = self.means[l][i]);
                    }
                }
                bit += layer.n_out;
            }
            a = z;
        }
        let classes = model.n_classes();
        (0..n).all(|r| model.out_perm[argmax(&a[r * classes..(r + 1) * classes])] == self.table.y[r] as usize)
    }
}

/// Checks every subset of hidden neurons of `model` on `table`.
pub fn enumerate_circuits(model: &Mlp, table: &TruthTable) -> Result<CircuitCensus, AcdcError> {
    let probe = BooleanProbe::new(model, table)?;
    let h = probe.neurons();
    if h > MAX_ENUMERATED_NEURONS {
        return Err(AcdcError::BadOption(format!(
            "{h} hidden neurons: enumerating circuits takes at most {MAX_ENUMERATED_NEURONS}"
        )));
    }
    let all = 1u64 << h;
    let valid: Vec<bool> = (0..all).map(|m| probe.is_valid(m)).collect();
    // below[m]: some proper subset of m is valid. Subsets come first in
    // numeric order, so one pass over the masks suffices.
    let mut below = vec![false; all as usize];
    for m in 1..all {
        let mut bits = m;
        while bits != 0 {
            let sub = m & !(1u64 << bits.trailing_zeros());
            if valid[sub as usize] || below[sub as usize] {
                below[m as usize] = true;
                break;
            }
            bits &= bits - 1;
        }
    }
    let valid_list: Vec<u64> = (0..all).filter(|&m| valid[m as usize]).collect();
    let minimal = valid_list.iter().copied().filter(|&m| !below[m as usize]).collect();
    Ok(CircuitCensus { neurons: h, model_correct: valid[(all - 1) as usize], valid: valid_list, minimal })
}

#[cfg(test)]
mod tests {
    use super::*;
    use modcirc_mlp::{Activation, Linear};

    fn layer(n_in: usize, n_out: usize, weight: Vec<f32>, bias: Vec<f32>) -> Linear {
        Linear { n_in, n_out, weight, bias }
    }

    /// XOR by hand: h0 = relu(a + b), h1 = relu(a + b − 1), h2 = h0's twin;
    /// class 1's logit 0.5·h0 + 0.5·h2 − 2·h1 against class 0's 0.6. With
    /// the others at their means (h0 = h2 = 1, h1 = 0.25), {h0, h1} and
    /// {h1, h2} each compute XOR, and nothing smaller does.
    fn xor_model() -> Mlp {
        let hidden = layer(2, 3, vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0], vec![0.0, -1.0, 0.0]);
        let out = layer(3, 2, vec![0.0, 0.0, 0.0, 0.5, -2.0, 0.5], vec![0.6, 0.0]);
        Mlp::new(vec![hidden, out], Activation::Relu).unwrap()
    }

    #[test]
    fn the_hand_built_xor_has_exactly_its_known_circuits() {
        let table = TruthTable::of(2, |r| (r & 1) ^ (r >> 1 & 1) == 1).unwrap();
        assert_eq!(table.y, vec![0, 1, 1, 0]);
        let census = enumerate_circuits(&xor_model(), &table).unwrap();
        assert!(census.model_correct);
        assert_eq!(census.valid, vec![0b011, 0b110, 0b111]);
        assert_eq!(census.minimal, vec![0b011, 0b110]);
        assert_eq!(census.smallest(), Some(2));
        assert!(census.is_minimal(0b110) && !census.is_minimal(0b111) && census.is_valid(0b111));
    }

    /// The minimal circuits are the valid ones with no valid proper
    /// subset, by brute force over pairs, on random networks whose valid
    /// sets are not closed under supersets.
    #[test]
    fn minimal_circuits_equal_the_brute_force_definition() {
        let mut seen_gap = false;
        for seed in 0..40u64 {
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut u = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64
            };
            let sizes: &[usize] = if seed % 2 == 0 { &[3, 5, 2] } else { &[2, 3, 4, 2] };
            let model = Mlp::init(sizes, Activation::Silu, &mut u).unwrap();
            let inputs = sizes[0];
            let logits = model.forward(&TruthTable::of(inputs, |_| false).unwrap().x, 1 << inputs);
            let table = TruthTable::of(inputs, |r| logits[2 * r as usize + 1] > logits[2 * r as usize]).unwrap();
            let census = enumerate_circuits(&model, &table).unwrap();
            assert!(census.model_correct, "the table is the model's own answers");
            let brute: Vec<u64> =
                census.valid.iter().copied().filter(|&m| !census.valid.iter().any(|&o| o != m && o & m == o)).collect();
            assert_eq!(census.minimal, brute, "seed {seed}");
            let probe = BooleanProbe::new(&model, &table).unwrap();
            assert_eq!(census.valid, (0..1u64 << census.neurons).filter(|&m| probe.is_valid(m)).collect::<Vec<_>>());
            // A valid circuit with an invalid subset above a valid one.
            seen_gap |= census
                .valid
                .iter()
                .any(|&m| census.valid.iter().any(|&o| o != m && o & m == o && m.count_ones() >= o.count_ones() + 2));
        }
        assert!(seen_gap, "no case where minimality must look below an invalid subset");
    }

    #[test]
    fn shapes_and_sizes_are_checked() {
        let table = TruthTable::of(3, |r| r.count_ones() >= 2).unwrap();
        assert!(enumerate_circuits(&xor_model(), &table).is_err());
        assert!(TruthTable::of(0, |_| true).is_err());
    }
}
