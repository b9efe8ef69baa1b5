//! Planted ground truth (STUDY §11): does each discovery method find the
//! circuit a model is known, by construction, to use?
//!
//! * MNIST-PVR models trained by interchange intervention
//!   ([`modcirc_bimt::iit`]): on the task of value quadrant `q`, the truth
//!   is `q`'s blocks ([`planted_truth`]); [`score_planted`] scores each of
//!   the settings' methods against it ([`crate::judge::judge_truth`]: AUROC,
//!   precision, recall, ROC).
//! * Small Boolean MLPs ([`boolean_model`]): every circuit enumerated
//!   ([`modcirc_acdc::boolean`]); each method's circuit judged valid and
//!   minimal.

use modcirc_acdc::boolean::{enumerate_circuits, BooleanProbe, TruthTable};
use modcirc_acdc::{
    edge_list, nodes_mask, touched_neurons, AcdcConfig, MaskConfig, Method, PatchingSweep, TaskImages, DEFAULT_K,
};
use modcirc_bimt::iit::{Alignment, PlantedConfig, PlantedQuality, DEFAULT_BLOCK, QUALITY_TRIALS};
use modcirc_bimt::{Regime, TrainConfig, Trainer};
use modcirc_dataset::pvr::{quadrant_pixels, PvrSource, PVR_NODES};
use modcirc_dataset::ImageSet;
use modcirc_metrics::Summary;
use modcirc_mlp::Mlp;
use serde::{Deserialize, Serialize};

use crate::judge::{flat, judge_truth, method_names, over_seeds};
use crate::rows::Verdict;
use crate::verdicts::NOT_EVALUATED;
use crate::StudyError;

/// Pairs per planted task.
pub const PLANTED_PAIRS: usize = 500;

/// Pairs ACDC runs on (its cost grows with them; the other methods use all).
pub const PLANTED_ACDC_PAIRS: usize = 100;

pub use crate::judge::{roc_grid, MethodScore, EAP_TARGET_FAITHFULNESS};

/// The truth of a planted task: which neurons and edges are its circuit's.
pub type PlantedTruth = crate::judge::Truth;

/// The methods scored against planted truth (STUDY §11 and §12), in the
/// order tables list them: each at its defaults, ACDC on the task's first
/// [`PLANTED_ACDC_PAIRS`] pairs, the masks with `mask`'s sweep on the
/// task's first [`modcirc_acdc::DEFAULT_MASK_PAIRS`].
pub fn planted_methods(mask: &MaskConfig) -> Vec<Method> {
    vec![
        Method::Patching,
        Method::Attribution,
        Method::Eap,
        Method::Acdc { config: AcdcConfig::default(), pairs: PLANTED_ACDC_PAIRS },
        "eap-ig".parse().expect("a method's name"),
        Method::Mask { config: mask.clone(), pairs: modcirc_acdc::DEFAULT_MASK_PAIRS },
    ]
}

/// Every method on one planted task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScores {
    /// The value quadrant (1, 2 or 3).
    pub quadrant: usize,
    /// Pairs.
    pub pairs: usize,
    /// True neurons and true edges.
    pub true_nodes: usize,
    /// True edges.
    pub true_edges: usize,
    /// One score per method, in the settings' order.
    pub methods: Vec<MethodScore>,
}

impl TaskScores {
    /// The score of `method`, if it ran.
    pub fn method(&self, method: &str) -> Option<&MethodScore> {
        self.methods.iter().find(|m| m.method == method)
    }
}

/// The truth of value quadrant `q`'s task on `model` aligned by `alignment`.
pub fn planted_truth(model: &Mlp, alignment: &Alignment, q: usize) -> Result<PlantedTruth, StudyError> {
    alignment.check(model).map_err(|e| StudyError::Invalid(e.to_string()))?;
    if !(1..PVR_NODES).contains(&q) || model.n_inputs() != 784 {
        return Err(StudyError::Invalid(format!(
            "no planted task of quadrant {q} on a model of {} inputs",
            model.n_inputs()
        )));
    }
    let hidden = model.layers.len() - 1;
    let nodes: Vec<Vec<bool>> = (0..hidden)
        .map(|h| {
            let mut v = vec![false; model.layers[h].n_out];
            alignment.positions(h, q).into_iter().for_each(|i| v[i] = true);
            v
        })
        .collect();
    let mut pixels = vec![false; 784];
    quadrant_pixels(q).into_iter().for_each(|i| pixels[i] = true);
    let edges = model
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let into = |o: usize| l == hidden || nodes[l][o];
            let from = |i: usize| if l == 0 { pixels[i] } else { nodes[l - 1][i] };
            (0..layer.n_out * layer.n_in).map(|k| into(k / layer.n_in) && from(k % layer.n_in)).collect()
        })
        .collect();
    Ok(PlantedTruth { nodes, edges })
}

/// The pairs of value quadrant `q`'s task as patching takes them.
pub fn planted_images(test: &PvrSource, q: usize, pairs: usize, seed: u64) -> Result<TaskImages, StudyError> {
    let pairs = test.planted_pairs(q, pairs, seed)?;
    let n = pairs.len();
    let (mut clean, mut corrupted) = (vec![0.0f32; n * 784], vec![0.0f32; n * 784]);
    for (b, (c, k)) in pairs.iter().enumerate() {
        test.compose(*c, &mut clean[b * 784..(b + 1) * 784]);
        test.compose(*k, &mut corrupted[b * 784..(b + 1) * 784]);
    }
    Ok(TaskImages {
        n,
        pixels: 784,
        clean,
        corrupted,
        clean_labels: pairs.iter().map(|(c, _)| test.label(c[q])).collect(),
        corrupted_labels: pairs.iter().map(|(_, k)| test.label(k[q])).collect(),
    })
}

/// Each of `methods` on value quadrant `q`'s planted task, judged against
/// its truth ([`judge_truth`]; patching and attribution select K = 15
/// neurons per layer).
pub fn score_task(
    model: &Mlp,
    alignment: &Alignment,
    test: &PvrSource,
    (q, pairs, seed): (usize, usize, u64),
    methods: &[Method],
) -> Result<TaskScores, StudyError> {
    let truth = planted_truth(model, alignment, q)?;
    let images = planted_images(test, q, pairs, seed)?;
    let sweep = PatchingSweep::new(model, &images)?;
    let widths: Vec<usize> = model.layers[..model.layers.len() - 1].iter().map(|l| l.n_out).collect();
    let k = DEFAULT_K.min(*widths.iter().min().expect("a hidden layer"));
    let methods = methods
        .iter()
        .map(|m| judge_truth(&sweep, &m.scores(&sweep)?, &truth, k))
        .collect::<Result<Vec<_>, StudyError>>()?;
    Ok(TaskScores {
        quadrant: q,
        pairs: images.n,
        true_nodes: truth.nodes.iter().flatten().filter(|t| **t).count(),
        true_edges: truth.edges.iter().flatten().filter(|t| **t).count(),
        methods,
    })
}

/// A planted model's quality and every method on each of its three tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedScores {
    /// The training regime.
    pub regime: Regime,
    /// The training seed.
    pub seed: u64,
    /// Task accuracy, IIA and strictness failure.
    pub quality: PlantedQuality,
    /// Quadrants 1, 2 and 3.
    pub tasks: Vec<TaskScores>,
}

/// Each of `methods` on the three planted tasks of a planted model.
pub fn score_planted(
    model: &Mlp,
    alignment: &Alignment,
    test: &PvrSource,
    pairs: usize,
    seed: u64,
    methods: &[Method],
) -> Result<Vec<TaskScores>, StudyError> {
    (1..PVR_NODES).map(|q| score_task(model, alignment, test, (q, pairs, seed), methods)).collect()
}

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
    for method in boolean_methods() {
        let scores = method.scores(&sweep)?;
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

/// What the suite runs: the planted models (each regime x seed), their
/// tasks and measures, and the Boolean networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedSettings {
    /// Regimes.
    pub regimes: Vec<Regime>,
    /// Seeds of the planted models.
    pub seeds: Vec<u64>,
    /// Optimizer steps per planted model.
    pub steps: usize,
    /// Neurons per node and hidden layer.
    pub block: usize,
    /// Pairs per planted task.
    pub pairs: usize,
    /// Trials per quality measure.
    pub trials: usize,
    /// Seeds of the Boolean networks.
    pub boolean_seeds: Vec<u64>,
    /// Optimizer steps per Boolean network.
    pub boolean_steps: usize,
    /// The methods scored on each planted task ([`planted_methods`], the
    /// masks' sweep the study's own at the profile's size).
    pub methods: Vec<Method>,
}

/// Optimizer steps of the full profile's planted models (STUDY §11 leaves
/// it open). Measured on seed 0 under Vanilla (block 16): 4 000 steps give
/// task accuracy 0.80 and IIA 0.69, 20 000 give 0.90 and 0.85, 40 000 give
/// 0.91 and 0.88; 20 000 keeps the suite's 15 models within half an hour
/// on two cores.
pub const PLANTED_STEPS: usize = 20_000;

impl PlantedSettings {
    /// The suite at `profile`'s size.
    pub fn of(profile: crate::profile::Profile) -> PlantedSettings {
        let (seeds, steps, pairs, trials, boolean_seeds, boolean_steps) = match profile {
            crate::profile::Profile::Full => (3, PLANTED_STEPS, PLANTED_PAIRS, QUALITY_TRIALS, 10, BOOLEAN_STEPS),
            crate::profile::Profile::Quick => (2, 4_000, 200, 2_000, 3, BOOLEAN_STEPS),
            crate::profile::Profile::Smoke => (1, 40, 40, 200, 1, 300),
        };
        PlantedSettings {
            regimes: Regime::ALL.to_vec(),
            seeds: (0..seeds).collect(),
            steps,
            block: DEFAULT_BLOCK,
            pairs,
            trials,
            boolean_seeds: (0..boolean_seeds).collect(),
            boolean_steps,
            methods: planted_methods(&crate::beyond::profile_mask(profile)),
        }
    }

    /// The training of the planted model of `regime` and `seed`.
    pub fn config(&self, regime: Regime, seed: u64) -> PlantedConfig {
        PlantedConfig { train: TrainConfig::new(regime).steps(self.steps).seed(seed), block: self.block }
    }

    /// Units: one per planted model and one per method on it, one Boolean
    /// suite per regime.
    pub fn units(&self) -> usize {
        self.regimes.len() * (self.seeds.len() * (1 + self.methods.len()) + 1)
    }
}

/// Every Boolean network of `settings` under `regime`: each function,
/// hidden widths and seed.
pub fn boolean_suite(settings: &PlantedSettings, regime: Regime) -> Result<Vec<BooleanModel>, StudyError> {
    let mut out = Vec::new();
    for f in BooleanFunction::ALL {
        for hidden in BOOLEAN_HIDDEN {
            for &seed in &settings.boolean_seeds {
                out.push(boolean_model(f, hidden, regime, seed, settings.boolean_steps)?);
            }
        }
    }
    Ok(out)
}

/// One method under one regime, over seeds: each seed's value the mean
/// over its three tasks; the interval a 95% t-interval over seeds (with one
/// seed, the value alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AurocRow {
    /// The method.
    pub method: String,
    /// The regime.
    pub regime: Regime,
    /// Node AUROC.
    pub node_auroc: Summary,
    /// Edge AUROC (edge methods).
    pub edge_auroc: Option<Summary>,
    /// Node precision of the selected circuit.
    pub node_precision: Summary,
    /// Node recall of the selected circuit.
    pub node_recall: Summary,
    /// Edge precision of the selected circuit (edge methods).
    #[serde(default)]
    pub edge_precision: Option<Summary>,
    /// Edge recall of the selected circuit (edge methods).
    #[serde(default)]
    pub edge_recall: Option<Summary>,
    /// The mean node ROC (true-positive rate at [`roc_grid`]) over seeds and tasks.
    pub node_roc: Vec<f64>,
}

/// A regime's planted models, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRow {
    /// The regime.
    pub regime: Regime,
    /// Task accuracy.
    pub task_accuracy: Summary,
    /// IIA.
    pub iia: Summary,
    /// Strictness failure.
    pub strictness_failure: Summary,
}

/// A regime's Boolean networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanRow {
    /// The regime.
    pub regime: Regime,
    /// Networks trained.
    pub networks: usize,
    /// Networks that reached zero error (the rest are not counted below).
    pub exact: usize,
    /// Valid circuits per exact network: mean and median.
    pub valid_mean: f64,
    /// Median of valid circuits.
    pub valid_median: f64,
    /// Minimal valid circuits per exact network, mean.
    pub minimal_mean: f64,
    /// Per method: the share of exact networks whose circuit is valid, and minimal.
    pub methods: Vec<(String, f64, f64)>,
}

/// The planted-truth suite's results: every model and network, the tables
/// across seeds, and the findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedResults {
    /// Each planted model (regime, seed): quality and scores.
    pub models: Vec<PlantedScores>,
    /// Each Boolean network.
    pub boolean: Vec<BooleanModel>,
    /// Methods x regimes.
    pub auroc: Vec<AurocRow>,
    /// Task accuracy, IIA, strictness per regime.
    pub quality: Vec<QualityRow>,
    /// The Boolean suite per regime.
    pub boolean_rows: Vec<BooleanRow>,
    /// Findings, each by its stated rule.
    pub findings: Vec<Verdict>,
    /// Wall time of the suite's units computed in this run.
    pub seconds: f64,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The tables and findings of the suite from its models and networks.
pub fn planted_results(models: Vec<PlantedScores>, boolean: Vec<BooleanModel>, seconds: f64) -> PlantedResults {
    let regimes: Vec<Regime> = Regime::ALL.into_iter().filter(|r| models.iter().any(|m| m.regime == *r)).collect();
    let mut auroc = Vec::new();
    let names = method_names(models.iter().flat_map(|m| &m.tasks).flat_map(|t| t.methods.iter().map(|m| &m.method)));
    for method in names.iter().map(String::as_str) {
        for &regime in &regimes {
            let of: Vec<&PlantedScores> = models.iter().filter(|m| m.regime == regime).collect();
            let per_seed = |f: &dyn Fn(&MethodScore) -> Option<f64>| -> Option<Summary> {
                let v: Option<Vec<f64>> = of
                    .iter()
                    .map(|m| {
                        let t: Option<Vec<f64>> = m.tasks.iter().map(|t| t.method(method).and_then(f)).collect();
                        t.map(|t| mean(&t))
                    })
                    .collect();
                v.and_then(|v| over_seeds(&v))
            };
            let (Some(node_auroc), Some(node_precision), Some(node_recall)) = (
                per_seed(&|s| Some(s.node_auroc)),
                per_seed(&|s| Some(s.node_precision)),
                per_seed(&|s| Some(s.node_recall)),
            ) else {
                continue;
            };
            let rocs: Vec<&Vec<f64>> =
                of.iter().flat_map(|m| m.tasks.iter().filter_map(|t| Some(&t.method(method)?.node_roc))).collect();
            let node_roc =
                (0..roc_grid().len()).map(|i| mean(&rocs.iter().map(|r| r[i]).collect::<Vec<_>>())).collect();
            auroc.push(AurocRow {
                method: method.to_string(),
                regime,
                node_auroc,
                edge_auroc: per_seed(&|s| s.edge_auroc),
                node_precision,
                node_recall,
                edge_precision: per_seed(&|s| s.edge_precision),
                edge_recall: per_seed(&|s| s.edge_recall),
                node_roc,
            });
        }
    }
    let quality = regimes
        .iter()
        .filter_map(|&regime| {
            let of: Vec<&PlantedQuality> = models.iter().filter(|m| m.regime == regime).map(|m| &m.quality).collect();
            let col = |f: fn(&PlantedQuality) -> f64| over_seeds(&of.iter().map(|q| f(q)).collect::<Vec<_>>());
            Some(QualityRow {
                regime,
                task_accuracy: col(|q| q.task_accuracy)?,
                iia: col(|q| q.iia)?,
                strictness_failure: col(|q| q.strictness_failure)?,
            })
        })
        .collect();
    let boolean_rows = Regime::ALL
        .into_iter()
        .filter(|r| boolean.iter().any(|b| b.regime == *r))
        .map(|regime| {
            let all: Vec<&BooleanModel> = boolean.iter().filter(|b| b.regime == regime).collect();
            let exact: Vec<&&BooleanModel> = all.iter().filter(|b| b.exact).collect();
            let mut valid: Vec<f64> = exact.iter().map(|b| b.valid as f64).collect();
            valid.sort_by(f64::total_cmp);
            let median = if valid.is_empty() {
                0.0
            } else if valid.len() % 2 == 1 {
                valid[valid.len() / 2]
            } else {
                (valid[valid.len() / 2 - 1] + valid[valid.len() / 2]) / 2.0
            };
            let share = |f: fn(&BooleanMethod) -> bool, m: &str| -> f64 {
                let hits = exact.iter().filter(|b| b.methods.iter().any(|x| x.method == m && f(x))).count();
                hits as f64 / exact.len().max(1) as f64
            };
            BooleanRow {
                regime,
                networks: all.len(),
                exact: exact.len(),
                valid_mean: mean(&valid),
                valid_median: median,
                minimal_mean: mean(&exact.iter().map(|b| b.minimal as f64).collect::<Vec<_>>()),
                methods: method_names(all.iter().flat_map(|b| b.methods.iter().map(|m| &m.method)))
                    .iter()
                    .map(|m| (m.to_string(), share(|x| x.valid, m), share(|x| x.minimal, m)))
                    .collect(),
            }
        })
        .collect::<Vec<_>>();
    let findings = planted_findings(&auroc, &boolean_rows);
    PlantedResults { models, boolean, auroc, quality, boolean_rows, findings, seconds }
}

fn fmt_summary(s: &Summary) -> String {
    format!("{:.3} [{:.3}, {:.3}]", s.mean, s.lo, s.hi)
}

/// The verdict on "BIMT has fewer": supported when `bimt` is below
/// `vanilla`, contradicted when above, not supported when equal.
fn fewer(bimt: f64, vanilla: f64) -> &'static str {
    match bimt.total_cmp(&vanilla) {
        std::cmp::Ordering::Less => "supported",
        std::cmp::Ordering::Greater => "contradicted",
        std::cmp::Ordering::Equal => "not supported",
    }
}

/// P1-P4, each by its stated rule.
fn planted_findings(auroc: &[AurocRow], boolean: &[BooleanRow]) -> Vec<Verdict> {
    let row = |m: &str, r: Regime| auroc.iter().find(|a| a.method == m && a.regime == r);
    let mut p1 = Verdict {
        id: "P1".into(),
        hypothesis: "BIMT's planted models let every method find the planted circuit better than Vanilla's (node AUROC).".into(),
        rule: "Supported if, for every method, BIMT's mean node AUROC over seeds is above Vanilla's and their 95% t-intervals do not overlap; contradicted if for every method it is below with no overlap; not supported otherwise; at least 2 seeds per regime.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let methods = method_names(auroc.iter().map(|a| &a.method));
    let pairs: Vec<(&str, &AurocRow, &AurocRow)> =
        methods.iter().filter_map(|m| Some((m.as_str(), row(m, Regime::Bimt)?, row(m, Regime::Vanilla)?))).collect();
    if pairs.len() == methods.len() && pairs.iter().all(|(_, b, v)| b.node_auroc.n >= 2 && v.node_auroc.n >= 2) {
        let above = pairs.iter().all(|(_, b, v)| b.node_auroc.lo > v.node_auroc.hi);
        let below = pairs.iter().all(|(_, b, v)| b.node_auroc.hi < v.node_auroc.lo);
        p1.verdict = if above {
            "supported"
        } else if below {
            "contradicted"
        } else {
            "not supported"
        }
        .into();
        p1.evidence = pairs
            .iter()
            .map(|(m, b, v)| {
                format!("{m}: BIMT {} vs Vanilla {}", fmt_summary(&b.node_auroc), fmt_summary(&v.node_auroc))
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let mut p2 = Verdict {
        id: "P2".into(),
        hypothesis: "BIMT's Boolean networks have fewer valid circuits than Vanilla's (modular training makes the circuit unique).".into(),
        rule: "Supported if BIMT's median number of valid circuits per exact network is below Vanilla's, contradicted if above, not supported if equal; each regime needs at least 5 exact networks.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let b_of = |r: Regime| boolean.iter().find(|b| b.regime == r && b.exact >= 5);
    if let (Some(b), Some(v)) = (b_of(Regime::Bimt), b_of(Regime::Vanilla)) {
        p2.verdict = fewer(b.valid_median, v.valid_median).into();
        p2.evidence = format!(
            "median valid circuits: BIMT {} ({} of {} networks exact), Vanilla {} ({} of {} exact)",
            b.valid_median, b.exact, b.networks, v.valid_median, v.exact, v.networks
        );
    }
    let mut p4 = Verdict {
        id: "P4".into(),
        hypothesis: "BIMT's Boolean networks have fewer minimal circuits than Vanilla's (one mechanism, however many supersets of it are valid).".into(),
        rule: "Supported if BIMT's mean number of minimal valid circuits per exact network is below Vanilla's, contradicted if above, not supported if equal; each regime needs at least 5 exact networks. (A dead neuron doubles the valid circuits, which P2 counts, but adds no minimal one.)".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    if let (Some(b), Some(v)) = (b_of(Regime::Bimt), b_of(Regime::Vanilla)) {
        p4.verdict = fewer(b.minimal_mean, v.minimal_mean).into();
        p4.evidence = format!(
            "mean minimal circuits: BIMT {:.2} ({} exact networks), Vanilla {:.2} ({} exact)",
            b.minimal_mean, b.exact, v.minimal_mean, v.exact
        );
    }
    let mut p3 = Verdict {
        id: "P3".into(),
        hypothesis: "Exact patching (the paper's method) ranks the planted circuit at least as well as every cheaper estimate.".into(),
        rule: "Over every regime's models, supported if exact patching's mean node AUROC is the highest of the methods (ties included); not supported otherwise.".into(),
        verdict: NOT_EVALUATED.into(),
        evidence: String::new(),
    };
    let overall: Vec<(&str, f64)> = methods
        .iter()
        .map(|m| {
            (m.as_str(), mean(&auroc.iter().filter(|a| a.method == *m).map(|a| a.node_auroc.mean).collect::<Vec<_>>()))
        })
        .collect();
    if !auroc.is_empty() {
        let best = overall.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
        let patching = overall.iter().find(|(m, _)| *m == Method::Patching.name()).map_or(f64::NAN, |(_, v)| *v);
        p3.verdict = if patching >= best { "supported" } else { "not supported" }.into();
        p3.evidence =
            overall.iter().map(|(m, v)| format!("{m} {v:.3}")).collect::<Vec<_>>().join(", ") + " (mean over regimes)";
    }
    vec![p1, p2, p3, p4]
}

#[cfg(test)]
mod tests {
    use super::*;
    use modcirc_dataset::{ChecksumPolicy, Mnist};
    use modcirc_metrics::auroc;
    use modcirc_mlp::{Activation, Linear};

    /// A network whose quadrant blocks share no weights: block `q` of the
    /// first hidden layer reads only quadrant `q`'s pixels, block `q` of
    /// the second only block `q` of the first, and each block writes the
    /// outputs; the free neurons and other blocks' cross weights are zero.
    fn hand_wired() -> (Mlp, Alignment) {
        let alignment = Alignment::blocks(&[100, 100], DEFAULT_BLOCK).unwrap();
        let mut state = 0x1234_5678u64;
        let mut u = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let node = |h: usize, i: usize| alignment.nodes[h][i];
        let quadrant: Vec<Option<u8>> = {
            let mut v = vec![None; 784];
            for q in 0..4 {
                quadrant_pixels(q).into_iter().for_each(|i| v[i] = Some(q as u8));
            }
            v
        };
        let mut w1 = vec![0.0; 100 * 784];
        for o in 0..100 {
            for i in 0..784 {
                if node(0, o).is_some() && node(0, o) == quadrant[i] {
                    w1[o * 784 + i] = u();
                }
            }
        }
        let mut w2 = vec![0.0; 100 * 100];
        for o in 0..100 {
            for i in 0..100 {
                if node(1, o).is_some() && node(1, o) == node(0, i) {
                    w2[o * 100 + i] = u() * 2.0;
                }
            }
        }
        let mut w3 = vec![0.0; 10 * 100];
        for o in 0..10 {
            for i in 0..100 {
                if node(1, i).is_some() {
                    w3[o * 100 + i] = u() * 2.0;
                }
            }
        }
        let layers = vec![
            Linear { n_in: 784, n_out: 100, weight: w1, bias: (0..100).map(|_| u() * 0.1).collect() },
            Linear { n_in: 100, n_out: 100, weight: w2, bias: (0..100).map(|_| u() * 0.1).collect() },
            Linear { n_in: 100, n_out: 10, weight: w3, bias: vec![0.0; 10] },
        ];
        (Mlp::new(layers, Activation::Silu).unwrap(), alignment)
    }

    #[test]
    fn a_network_whose_blocks_share_no_weights_gives_patching_node_auroc_one() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
        let mnist = Mnist::load(dir, ChecksumPolicy::Auto).unwrap();
        let test = PvrSource::new(&mnist.test).unwrap();
        let (model, alignment) = hand_wired();
        for q in 1..4 {
            let methods = [Method::Patching, Method::Attribution];
            let scores = score_task(&model, &alignment, &test, (q, 60, 0), &methods).unwrap();
            let patching = &scores.methods[0];
            assert_eq!(patching.method, "patching");
            assert_eq!(patching.node_auroc, 1.0, "quadrant {q}: {patching:?}");
            assert_eq!(scores.true_nodes, 2 * DEFAULT_BLOCK);
            assert_eq!(scores.true_edges, 196 * 16 + 16 * 16 + 16 * 10);
            // Nothing outside the quadrant's blocks moves, so attribution
            // and EAP rank the truth first too.
            assert_eq!(scores.methods[1].node_auroc, 1.0, "{:?}", scores.methods[1]);
            assert!(patching.node_roc.iter().skip(1).all(|&t| t == 1.0));
        }
    }

    #[test]
    fn a_wrong_truth_would_not_score_one() {
        // The same network judged against quadrant 2's truth on quadrant 1's
        // pairs: the true neurons never move, so AUROC falls to at most 0.5.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist");
        let mnist = Mnist::load(dir, ChecksumPolicy::Auto).unwrap();
        let test = PvrSource::new(&mnist.test).unwrap();
        let (model, alignment) = hand_wired();
        let images = planted_images(&test, 1, 40, 0).unwrap();
        let sweep = PatchingSweep::new(&model, &images).unwrap();
        let s = sweep.scores();
        let effects: Vec<f64> = s.layers.iter().flatten().map(|v| s.baseline - v).collect();
        let wrong = planted_truth(&model, &alignment, 2).unwrap();
        assert!(auroc(&effects, &flat(&wrong.nodes)).unwrap() <= 0.5);
    }

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
