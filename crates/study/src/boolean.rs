//! The Boolean suite of STUDY §11: small MLPs trained on Boolean
//! functions, every circuit of their hidden neurons enumerated
//! ([`modcirc_acdc::boolean`]), and each method's circuit judged valid and
//! minimal.

use modcirc_acdc::boolean::{enumerate_circuits, BooleanProbe, TruthTable};
use modcirc_acdc::{edge_list, nodes_mask, touched_neurons, AcdcConfig, MaskConfig, Method, PatchingSweep, TaskImages};
use modcirc_bimt::{Regime, TrainConfig, Trainer};
use modcirc_dataset::ImageSet;
use serde::{Deserialize, Serialize};

use crate::judge::flat;
use crate::StudyError;

/// A Boolean function of the suite (STUDY §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BooleanFunction {
    /// `a XOR b`.
    Xor,
    /// The parity of three bits.
    Parity3,
    /// The majority of three bits.
    Majority3,
    /// `(a XOR b) AND (c OR d)`.
    XorAndOr,
}

impl BooleanFunction {
    /// Every function of the suite.
    pub const ALL: [BooleanFunction; 4] =
        [BooleanFunction::Xor, BooleanFunction::Parity3, BooleanFunction::Majority3, BooleanFunction::XorAndOr];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            BooleanFunction::Xor => "xor",
            BooleanFunction::Parity3 => "parity3",
            BooleanFunction::Majority3 => "majority3",
            BooleanFunction::XorAndOr => "xor-and-or",
        }
    }

    /// Its truth table.
    pub fn table(self) -> TruthTable {
        let bit = |r: u32, j: u32| (r >> j) & 1 == 1;
        let t = match self {
            BooleanFunction::Xor => TruthTable::of(2, |r| bit(r, 0) ^ bit(r, 1)),
            BooleanFunction::Parity3 => TruthTable::of(3, |r| r.count_ones() % 2 == 1),
            BooleanFunction::Majority3 => TruthTable::of(3, |r| r.count_ones() >= 2),
            BooleanFunction::XorAndOr => TruthTable::of(4, |r| (bit(r, 0) ^ bit(r, 1)) && (bit(r, 2) || bit(r, 3))),
        };
        t.expect("2 to 4 inputs")
    }
}

/// The hidden widths of the suite's networks (one or two hidden layers of
/// 3 to 8 neurons).
pub const BOOLEAN_HIDDEN: [&[usize]; 3] = [&[4], &[8], &[5, 5]];

/// Optimizer steps per Boolean network (each step the whole table).
pub const BOOLEAN_STEPS: usize = 3_000;

/// The learning rate of the Boolean networks (tables of 4 to 16 rows learn
/// slowly at the study's 1e-3).
pub const BOOLEAN_LR: f32 = 1e-2;

/// A method's circuit on a Boolean network: the shortest prefix of its
/// ranking (all hidden neurons, highest score first) that is valid, or,
/// for ACDC, the neurons its edges touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanMethod {
    /// The method's name.
    pub method: String,
    /// Neurons in its circuit.
    pub size: usize,
    /// Whether its circuit is valid.
    pub valid: bool,
    /// Whether its circuit is a minimal valid one.
    pub minimal: bool,
}

/// One Boolean network: its training and its circuits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanModel {
    /// The function.
    pub function: BooleanFunction,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// The regime.
    pub regime: Regime,
    /// The seed.
    pub seed: u64,
    /// Whether training reached zero error (the rest is empty otherwise).
    pub exact: bool,
    /// Valid circuits.
    pub valid: usize,
    /// Minimal valid circuits.
    pub minimal: usize,
    /// Neurons of the smallest valid circuit.
    pub smallest: Option<u32>,
    /// Hidden neurons in all.
    pub neurons: usize,
    /// Each method's circuit.
    pub methods: Vec<BooleanMethod>,
}

/// The methods run on each Boolean network, in the order tables list
/// them: each at its defaults, on all of the network's pairs.
pub fn boolean_methods() -> Vec<Method> {
    vec![
        Method::Patching,
        Method::Attribution,
        Method::Eap,
        "eap-ig".parse().expect("a method's name"),
        Method::Mask { config: MaskConfig::default(), pairs: usize::MAX },
        Method::MaskWarm { config: MaskConfig::default(), pairs: usize::MAX, steps: modcirc_acdc::DEFAULT_IG_STEPS },
        Method::Ensemble {
            members: vec![
                "eap-ig".parse().expect("a method's name"),
                "eap-ig-activations".parse().expect("a method's name"),
                Method::Mask { config: MaskConfig::default(), pairs: usize::MAX },
            ],
        },
        Method::Acdc { config: AcdcConfig::default(), pairs: usize::MAX },
    ]
}

/// Trains one Boolean network under `regime` and checks every circuit.
pub fn boolean_model(
    function: BooleanFunction,
    hidden: &[usize],
    regime: Regime,
    seed: u64,
    steps: usize,
) -> Result<BooleanModel, StudyError> {
    let table = function.table();
    let rows = table.rows();
    let sizes: Vec<usize> = std::iter::once(table.inputs).chain(hidden.iter().copied()).chain([2]).collect();
    let config = TrainConfig::new(regime)
        .sizes(&sizes)
        .steps(steps)
        .batch_size(rows)
        .seed(seed)
        .lr(BOOLEAN_LR)
        .history_every(steps);
    let set = ImageSet { images: table.x.clone(), labels: table.y.clone(), rows: 1, cols: table.inputs };
    let model = Trainer::new(config)?.run(&set, None, &mut |_| {})?.model;
    let census = enumerate_circuits(&model, &table)?;
    let mut out = BooleanModel {
        function,
        hidden: hidden.to_vec(),
        regime,
        seed,
        exact: census.model_correct,
        valid: census.valid.len(),
        minimal: census.minimal.len(),
        smallest: census.smallest(),
        neurons: census.neurons,
        methods: Vec::new(),
    };
    if !census.model_correct {
        return Ok(out);
    }
    // Every ordered pair of rows with different answers.
    let (mut clean_idx, mut corrupt_idx) = (Vec::new(), Vec::new());
    for a in 0..rows {
        for b in 0..rows {
            if table.y[a] != table.y[b] {
                clean_idx.push(a);
                corrupt_idx.push(b);
            }
        }
    }
    let gather = |idx: &[usize]| -> Vec<f32> {
        idx.iter().flat_map(|&r| table.x[r * table.inputs..(r + 1) * table.inputs].to_vec()).collect()
    };
    let images = TaskImages {
        n: clean_idx.len(),
        pixels: table.inputs,
        clean: gather(&clean_idx),
        corrupted: gather(&corrupt_idx),
        clean_labels: clean_idx.iter().map(|&r| table.y[r]).collect(),
        corrupted_labels: corrupt_idx.iter().map(|&r| table.y[r]).collect(),
    };
    let sweep = PatchingSweep::new(&model, &images)?;
    let probe = BooleanProbe::new(&model, &table)?;
    let widths: Vec<usize> = hidden.to_vec();
    let bits = |layers: &[Vec<bool>]| -> u64 {
        flat(layers).iter().enumerate().filter(|(_, k)| **k).fold(0u64, |m, (i, _)| m | 1 << i)
    };
    // The shortest valid prefix of a method's ranking of the neurons, or
    // the neurons its own circuit's edges touch (ACDC's).
    let methods = boolean_methods();
    for (method, scores) in methods.iter().zip(modcirc_acdc::score_methods(&methods, &sweep)?) {
        let name = method.name().to_string();
        if let Some(kept) = &scores.kept_edges {
            let mask = bits(&nodes_mask(&widths, &touched_neurons(&widths, edge_list(&model, kept))));
            let (valid, minimal) = (census.is_valid(mask), census.is_minimal(mask));
            out.methods.push(BooleanMethod { method: name, size: mask.count_ones() as usize, valid, minimal });
            continue;
        }
        let ranked = flat(&scores.nodes);
        let mut order: Vec<usize> = (0..ranked.len()).collect();
        order.sort_by(|&a, &b| ranked[b].total_cmp(&ranked[a]).then(a.cmp(&b)));
        let mut mask = 0u64;
        let mut size = order.len();
        for (n, &i) in order.iter().enumerate() {
            if probe.is_valid(mask) {
                size = n;
                break;
            }
            mask |= 1 << i;
        }
        out.methods.push(BooleanMethod { method: name, size, valid: true, minimal: census.is_minimal(mask) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean_networks_train_and_every_method_gets_a_verdict() {
        let m = boolean_model(BooleanFunction::Xor, &[4], Regime::Vanilla, 0, BOOLEAN_STEPS).unwrap();
        assert!(m.exact, "{m:?}");
        assert!(m.valid >= 1 && m.minimal >= 1 && m.minimal <= m.valid);
        let names: Vec<&str> = m.methods.iter().map(|x| x.method.as_str()).collect();
        assert_eq!(names, boolean_methods().iter().map(Method::name).collect::<Vec<_>>());
        for f in BooleanFunction::ALL {
            let t = f.table();
            assert_eq!(t.rows(), 1 << t.inputs);
        }
    }
}
