//! Which circuit of a results file to export, read and checked against the
//! model and data before any of it is indexed: a `discover` output's node
//! circuit, or the edges of one of a `beyond` output's methods.

use modcirc_acdc::NeuronScores;
use modcirc_dataset::{FileChecksum, Pair};
use modcirc_study::beyond::{BeyondResult, BEYOND_SCHEMA};
use modcirc_study::discovery::{DiscoverOutput, Split, DISCOVER_SCHEMA};

use crate::PresentError;

/// Which of a file's circuits to export.
#[derive(Debug, Clone, PartialEq)]
pub enum CircuitKind {
    /// A `discover` output's circuit: top-K nodes (or another selection rule), eps edges.
    Nodes,
    /// A `beyond` output's circuit of a method's edges: ACDC's own, or the
    /// top edges of another at the discovered circuit's size.
    Edges(modcirc_acdc::Method),
}

impl CircuitKind {
    /// Every kind's name: `nodes`, then every method's.
    pub fn names() -> Vec<&'static str> {
        std::iter::once("nodes").chain(modcirc_acdc::Method::NAMES).collect()
    }
}

impl std::str::FromStr for CircuitKind {
    type Err = PresentError;

    /// `nodes` or a method's name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "nodes" {
            return Ok(CircuitKind::Nodes);
        }
        s.parse().map(CircuitKind::Edges).map_err(|_| {
            PresentError::Invalid(format!(
                "unknown circuit {s:?} (expected one of {})",
                CircuitKind::names().join(", ")
            ))
        })
    }
}

impl std::fmt::Display for CircuitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CircuitKind::Nodes => f.write_str("nodes"),
            CircuitKind::Edges(m) => write!(f, "{m}"),
        }
    }
}

/// What a circuit keeps.
#[derive(Debug, Clone, PartialEq)]
pub enum Kept {
    /// Neurons per hidden layer, with the eps edges between them.
    Nodes {
        /// Kept neurons per hidden layer.
        nodes: Vec<Vec<usize>>,
        /// The edge threshold.
        eps: f64,
    },
    /// Edges `[layer, output, input]`.
    Edges(Vec<[usize; 3]>),
}

/// A circuit read from a `discover` or `beyond` output, with the model
/// and pairs it was found on.
#[derive(Debug, Clone)]
pub struct CircuitSource {
    /// The checkpoint's path, as recorded.
    pub model: String,
    /// Its SHA-256.
    pub model_sha256: String,
    /// The activation it was run with.
    pub activation: String,
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// The task.
    pub task: modcirc_dataset::Task,
    /// The split of the pairs.
    pub split: Split,
    /// The pairs.
    pub pairs: Vec<Pair>,
    /// The data directory and the SHA-256 of its files.
    pub data: (String, Vec<FileChecksum>),
    /// Node patching scores and dead neurons, where the file has them.
    pub scores: Option<(NeuronScores, Vec<Vec<usize>>)>,
    /// The circuit.
    pub kept: Kept,
    /// How it was found, in words.
    pub method: String,
}

/// What `export` accepts, in words (its errors say it).
pub const EXPORT_ACCEPTS: &str =
    "a `discover` output (its node circuit) or a `beyond` output (its ACDC or top-|EAP| circuit)";

/// The circuit `kind` (`None`: the file's own, nodes for `discover`, ACDC
/// for `beyond`) of a `discover` or `beyond` output.
pub fn read_source(bytes: &[u8], kind: Option<CircuitKind>) -> Result<CircuitSource, PresentError> {
    let bad = |m: String| PresentError::Invalid(m);
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON ({e}); expected {EXPORT_ACCEPTS}")))?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("").to_string();
    let family = schema.split('/').next().unwrap_or("");
    match (family, kind.clone()) {
        ("modcirc.discover", None | Some(CircuitKind::Nodes)) => {
            if schema != DISCOVER_SCHEMA {
                return Err(bad(format!(
                    "the discovery's schema is {schema:?}, not {DISCOVER_SCHEMA:?} (made by another version: run discover again)"
                )));
            }
            let d: DiscoverOutput =
                serde_json::from_value(value).map_err(|e| bad(format!("a `discover` output, but {e}")))?;
            validate(&d, &d.inputs.sizes, usize::MAX)?;
            let r = d.report;
            Ok(CircuitSource {
                model: d.inputs.model,
                model_sha256: d.inputs.model_sha256,
                activation: d.inputs.activation,
                sizes: d.inputs.sizes,
                task: d.inputs.task,
                split: d.inputs.flags.split,
                pairs: d.pairs,
                data: (d.inputs.data_dir, d.inputs.data_checksums),
                method: format!("{}, eps = {}, by activation patching", r.selection.rule, d.inputs.flags.config.eps),
                kept: Kept::Nodes { nodes: r.selection.nodes, eps: d.inputs.flags.config.eps },
                scores: Some((r.scores, r.selection.dead)),
            })
        }
        ("modcirc.beyond", None | Some(CircuitKind::Edges(_))) => {
            if schema != BEYOND_SCHEMA {
                return Err(bad(format!(
                    "the `beyond` output's schema is {schema:?}, not {BEYOND_SCHEMA:?} (made by another version: run beyond again)"
                )));
            }
            let b: BeyondResult =
                serde_json::from_value(value).map_err(|e| bad(format!("a `beyond` output, but {e}")))?;
            use modcirc_acdc::Method;
            let method = match kind {
                Some(CircuitKind::Edges(m)) => m,
                _ => Method::Acdc { config: b.acdc.config, pairs: b.acdc.pairs },
            };
            let (kept, method) = match &method {
                Method::Acdc { .. } => {
                    let c = &b.acdc.config;
                    let how = format!(
                        "edge-level ACDC (tau = {}, {} metric) on the first {} pairs",
                        c.tau, c.metric, b.acdc.pairs
                    );
                    (b.acdc.kept, how)
                }
                Method::Eap => {
                    (b.eap_edges, format!("the {} edges of largest |EAP| score on all pairs", b.circuit_edges))
                }
                m if !m.ranks_edges() => {
                    return Err(bad(format!("{m} ranks neurons: a `beyond` output holds edge circuits only")))
                }
                m => {
                    let name = m.name();
                    let ran = b.methods.iter().find(|r| r.method == name).ok_or_else(|| {
                        bad(format!("the `beyond` output did not run {name} (run beyond with that method)"))
                    })?;
                    let what = score_kind(m);
                    (ran.same_size_edges.clone(), format!("the {} edges of largest {what} ({name})", b.circuit_edges))
                }
            };
            let src = b.source;
            Ok(CircuitSource {
                model: src.model,
                model_sha256: src.model_sha256,
                activation: src.activation,
                sizes: src.sizes,
                task: src.task,
                split: src.split,
                pairs: src.pairs,
                data: (b.data_dir, b.data_checksums),
                scores: None,
                kept: Kept::Edges(kept),
                method,
            })
        }
        ("modcirc.discover", Some(k)) => Err(bad(format!(
            "a `discover` output holds the node circuit only, not {k}'s (run beyond for the edge methods' circuits)"
        ))),
        ("modcirc.beyond", Some(k)) => {
            let edges: Vec<String> = modcirc_acdc::Method::all()
                .into_iter()
                .filter(modcirc_acdc::Method::ranks_edges)
                .map(|m| m.to_string())
                .collect();
            Err(bad(format!("a `beyond` output holds the edge circuits ({}), not {k}", edges.join(", "))))
        }
        _ => Err(bad(format!("its schema is {schema:?}; expected {EXPORT_ACCEPTS}"))),
    }
}

/// Refuses a source whose circuit does not fit the model of `sizes`, or
/// whose pairs index past `images` images.
pub(crate) fn check_source(src: &CircuitSource, sizes: &[usize], images: usize) -> Result<(), PresentError> {
    let bad = |msg: String| Err(PresentError::Invalid(format!("the circuit does not fit the model: {msg}")));
    if src.sizes != sizes {
        return bad(format!("it was found on a {:?} model, this one is {sizes:?}", src.sizes));
    }
    let hidden = &sizes[1..sizes.len() - 1];
    match &src.kept {
        Kept::Nodes { nodes, .. } => {
            if nodes.len() != hidden.len() {
                return bad(format!("neurons for {} hidden layers, the model has {}", nodes.len(), hidden.len()));
            }
            for (h, (set, &w)) in nodes.iter().zip(hidden).enumerate() {
                if let Some(i) = set.iter().find(|&&i| i >= w) {
                    return bad(format!("neuron {i} of hidden layer {}, of {w} neurons", h + 1));
                }
            }
        }
        Kept::Edges(edges) => {
            // `l + 1` is not formed before `l` is known to be a layer: a
            // layer near `usize::MAX` would wrap.
            let layers = sizes.len().saturating_sub(1);
            if let Some(e) = edges.iter().find(|[l, o, i]| *l >= layers || *o >= sizes[l + 1] || *i >= sizes[*l]) {
                return bad(format!("edge {e:?} ([layer, output, input]) is outside the model"));
            }
        }
    }
    if let Some((scores, dead)) = &src.scores {
        if scores.layers.len() != hidden.len()
            || scores.layers.iter().zip(hidden).any(|(l, &w)| l.len() != w)
            || dead.iter().zip(hidden).any(|(d, &w)| d.iter().any(|&i| i >= w))
        {
            return bad("the node scores are for another shape".into());
        }
    }
    if let Some(p) = src.pairs.iter().find(|p| p.clean >= images || p.corrupted >= images) {
        return bad(format!("pair ({}, {}) indexes past the split's {images} images", p.clean, p.corrupted));
    }
    if src.pairs.is_empty() {
        return bad("no pairs".into());
    }
    Ok(())
}

/// Checks a discovery read from a file against the model and data it is
/// used with, before any of it is indexed: its schema, each hidden layer's
/// scores, kept and dead neurons, and every pair's images.
pub fn validate(disc: &DiscoverOutput, sizes: &[usize], images: usize) -> Result<(), PresentError> {
    let bad = |msg: String| Err(PresentError::Invalid(format!("the discovery does not fit the model: {msg}")));
    if disc.schema != DISCOVER_SCHEMA {
        return Err(PresentError::Invalid(format!(
            "the discovery's schema is {:?}, not {DISCOVER_SCHEMA:?} (made by another version: run discover again)",
            disc.schema
        )));
    }
    if sizes.len() < 2 {
        return bad(format!("{} layers of neurons", sizes.len()));
    }
    let hidden = &sizes[1..sizes.len() - 1];
    let r = &disc.report;
    let layers = [
        ("scores", r.scores.layers.len()),
        ("kept neurons", r.selection.nodes.len()),
        ("dead neurons", r.selection.dead.len()),
    ];
    for (what, n) in layers {
        if n != hidden.len() {
            return bad(format!("{what} for {n} hidden layers, the model has {}", hidden.len()));
        }
    }
    for (h, &width) in hidden.iter().enumerate() {
        if r.scores.layers[h].len() != width {
            return bad(format!("{} scores for hidden layer {}, of {width} neurons", r.scores.layers[h].len(), h + 1));
        }
        let outside = r.selection.nodes[h].iter().chain(&r.selection.dead[h]).find(|&&i| i >= width);
        if let Some(i) = outside {
            return bad(format!("neuron {i} of hidden layer {}, of {width} neurons", h + 1));
        }
        if !r.selection.nodes[h].windows(2).all(|w| w[0] < w[1]) || !r.selection.dead[h].windows(2).all(|w| w[0] < w[1])
        {
            return bad(format!("the neurons of hidden layer {} are not sorted and distinct", h + 1));
        }
    }
    if let Some(p) = disc.pairs.iter().find(|p| p.clean >= images || p.corrupted >= images) {
        return bad(format!("pair ({}, {}) indexes past the split's {images} images", p.clean, p.corrupted));
    }
    if disc.pairs.is_empty() {
        return bad("no pairs".into());
    }
    Ok(())
}

/// What an edge method ranks its edges by, in words.
fn score_kind(m: &modcirc_acdc::Method) -> &'static str {
    match m {
        modcirc_acdc::Method::Mask { .. } | modcirc_acdc::Method::MaskWarm { .. } => {
            "mask scores summed over the penalties"
        }
        modcirc_acdc::Method::Ensemble { .. } => "mean normalised ranks",
        _ => "|EAP-IG| scores",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_of_layers_past_the_model_are_refused_not_wrapped() {
        let sizes = vec![4, 3, 2];
        let source = |edges: Vec<[usize; 3]>| CircuitSource {
            model: "m.safetensors".into(),
            model_sha256: String::new(),
            activation: "relu".into(),
            sizes: sizes.clone(),
            task: modcirc_dataset::Task::parse("line").unwrap(),
            split: Split::Test,
            pairs: vec![Pair { clean: 0, corrupted: 1, clean_digit: 1, corrupted_digit: 7 }],
            data: (String::new(), Vec::new()),
            scores: None,
            kept: Kept::Edges(edges),
            method: "acdc".into(),
        };
        assert!(check_source(&source(vec![[1, 1, 2]]), &sizes, 10).is_ok());
        for bad in [[usize::MAX, 0, 0], [usize::MAX - 1, 0, 0], [2, 0, 0], [1, 2, 0], [0, 0, 4]] {
            let e = check_source(&source(vec![bad]), &sizes, 10).unwrap_err().to_string();
            assert!(e.contains("outside the model"), "{bad:?}: {e}");
        }
    }
}
