//! A discovered circuit as a graph others can read: JSON whose field names
//! follow EAP-IG's graph JSON where the concepts match (`nodes` and `edges`
//! keyed by name, `in_graph`, `score`), and Graphviz DOT laid out by layer.
//! The schema is documented in `docs/circuit-graph.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use modcirc_acdc::{edge_attribution, Circuit, PatchingSweep, TaskImages};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_dataset::Mnist;
use modcirc_study::discovery::DISCOVER_SCHEMA;
use serde::{Deserialize, Serialize};

use crate::PresentError;
use modcirc_study::discovery::DiscoverOutput;

/// Version of the graph JSON.
pub const GRAPH_SCHEMA: &str = "modcirc.circuit-graph/1";

/// What the graph describes (EAP-IG keeps the model's configuration under `cfg`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphConfig {
    /// Neurons per layer, input first.
    pub sizes: Vec<usize>,
    /// The hidden layers' activation.
    pub activation: String,
    /// The checkpoint's path, as the discovery recorded it.
    pub model: String,
    /// Its SHA-256.
    pub model_sha256: String,
    /// The task.
    pub task: String,
    /// How the circuit's neurons were chosen.
    pub selection: String,
    /// The edge threshold, relative to each layer's largest |weight|.
    pub eps: f64,
    /// The unpatched logit difference: node scores are judged against it.
    pub baseline: f64,
}

/// A neuron.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// Whether the circuit holds it (inputs and outputs always).
    pub in_graph: bool,
    /// Its neuron layer: 0 the input, the last the outputs.
    pub layer: usize,
    /// Its index in the layer.
    pub index: usize,
    /// Its coordinates in the unit square (the model's layout).
    pub x: f32,
    /// See `x`.
    pub y: f32,
    /// A hidden neuron's patching score (lower: patching it moves the
    /// corrupted logits closer to the clean ones); `None` for inputs and outputs.
    pub score: Option<f64>,
    /// Baseline minus score (0 for a dead neuron).
    pub effect: Option<f64>,
    /// Whether patching it changes nothing.
    pub dead: bool,
}

/// A weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// Its edge-attribution (EAP) score on the answer metric, on all of the discovery's pairs.
    pub score: f32,
    /// Whether the circuit keeps it.
    pub in_graph: bool,
    /// The weight.
    pub weight: f32,
}

/// A circuit and the network around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitGraph {
    /// [`GRAPH_SCHEMA`].
    pub schema: String,
    /// What it describes.
    pub cfg: GraphConfig,
    /// Every neuron, by name: `input.i`, `h1.i`, …, `logits.i`.
    pub nodes: BTreeMap<String, GraphNode>,
    /// Every weight, by name: `source->target`.
    pub edges: BTreeMap<String, GraphEdge>,
}

/// The name of neuron `i` of neuron layer `l` among `n_layers`.
pub fn node_name(l: usize, i: usize, n_layers: usize) -> String {
    if l == 0 {
        format!("input.{i}")
    } else if l + 1 == n_layers {
        format!("logits.{i}")
    } else {
        format!("h{l}.{i}")
    }
}

/// The graph of `disc`'s circuit on `ck`: its pairs' images come from
/// `mnist` (the data the discovery recorded), the edge scores from EAP on them.
pub fn circuit_graph(mnist: &Mnist, ck: &Checkpoint, disc: &DiscoverOutput) -> Result<CircuitGraph, PresentError> {
    let model = &ck.model;
    let split = disc.inputs.flags.split.of(mnist);
    modcirc_study::discovery::check_fits(ck, split, disc.inputs.flags.split)?;
    validate(disc, &model.sizes(), split.len())?;
    let images = TaskImages::from_pairs(split, &disc.pairs);
    let sweep = PatchingSweep::new(model, &images)?;
    let eap = edge_attribution(&sweep)?;
    let report = &disc.report;
    let eps = disc.inputs.flags.config.eps;
    let circuit = Circuit::new(model, report.selection.nodes.clone(), eps)?;
    let sizes = model.sizes();
    let n_layers = sizes.len();
    let mut nodes = BTreeMap::new();
    for (l, &n) in sizes.iter().enumerate() {
        for i in 0..n {
            let hidden = (l > 0 && l + 1 < n_layers).then(|| l - 1);
            let c = ck.layout.layers[l][i];
            nodes.insert(
                node_name(l, i, n_layers),
                GraphNode {
                    in_graph: hidden.map_or(true, |h| circuit.nodes[h].binary_search(&i).is_ok()),
                    layer: l,
                    index: i,
                    x: c[0],
                    y: c[1],
                    score: hidden.map(|h| report.scores.layers[h][i]),
                    effect: hidden.map(|h| report.scores.effect(h, i)),
                    dead: hidden.is_some_and(|h| report.selection.dead[h].binary_search(&i).is_ok()),
                },
            );
        }
    }
    let mut edges = BTreeMap::new();
    for (l, layer) in model.layers.iter().enumerate() {
        for (k, &weight) in layer.weight.iter().enumerate() {
            let (o, i) = (k / layer.n_in, k % layer.n_in);
            let name = format!("{}->{}", node_name(l, i, n_layers), node_name(l + 1, o, n_layers));
            edges.insert(name, GraphEdge { score: eap.layers[l][k], in_graph: circuit.edge_mask()[l][k], weight });
        }
    }
    Ok(CircuitGraph {
        schema: GRAPH_SCHEMA.into(),
        cfg: GraphConfig {
            sizes,
            activation: model.activation.to_string(),
            model: disc.inputs.model.clone(),
            model_sha256: disc.inputs.model_sha256.clone(),
            task: disc.inputs.task.to_string(),
            selection: report.selection.rule.to_string(),
            eps,
            baseline: report.scores.baseline,
        },
        nodes,
        edges,
    })
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

/// `s` as the inside of a DOT double-quoted string: backslashes and quotes
/// escaped, line breaks as `\n`, other control characters dropped.
pub fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The circuit in Graphviz DOT, one rank per layer from the input up: its
/// hidden neurons (orange; dead ones white) and outputs, its edges blue
/// (positive) or red (negative), wider for larger |w|. The input layer is
/// one node: each kept neuron of hidden layer 1 gets one edge from it,
/// labelled with the number of pixels the circuit keeps into it and drawn
/// by their summed |w|, since a node per pixel would be hundreds of nodes
/// that Graphviz lays out slowly and no one reads.
pub fn to_dot(g: &CircuitGraph) -> String {
    let kept: Vec<(&str, &str, &GraphEdge)> = g
        .edges
        .iter()
        .filter(|(_, e)| e.in_graph)
        .filter_map(|(name, e)| name.split_once("->").map(|(a, b)| (a, b, e)))
        .collect();
    // Per layer-1 neuron: pixels read and their summed |w|.
    let mut from_input: BTreeMap<&str, (usize, f32)> = BTreeMap::new();
    for (_, b, e) in kept.iter().filter(|(a, _, _)| a.starts_with("input.")) {
        let entry = from_input.entry(b).or_default();
        entry.0 += 1;
        entry.1 += e.weight.abs();
    }
    let inner: Vec<&(&str, &str, &GraphEdge)> = kept.iter().filter(|(a, _, _)| !a.starts_with("input.")).collect();
    let used: std::collections::BTreeSet<&str> =
        inner.iter().flat_map(|(a, b, _)| [*a, *b]).chain(from_input.keys().copied()).collect();
    let max_w = inner.iter().fold(0f32, |m, (_, _, e)| m.max(e.weight.abs())).max(f32::MIN_POSITIVE);
    let max_in = from_input.values().fold(0f32, |m, v| m.max(v.1)).max(f32::MIN_POSITIVE);
    let mut s = String::new();
    let _ = writeln!(s, "digraph circuit {{");
    let (task, selection) = (dot_escape(&g.cfg.task), dot_escape(&g.cfg.selection));
    let _ = writeln!(s, "  label=\"{task} circuit: {selection}, eps = {}\";", g.cfg.eps);
    let _ = writeln!(s, "  rankdir=BT; ranksep=1.2; node [shape=ellipse, fontsize=10];");
    if !from_input.is_empty() {
        let _ = writeln!(s, "  \"input\" [shape=box, label=\"input ({} pixels)\"];", g.cfg.sizes[0]);
    }
    for l in 1..g.cfg.sizes.len() {
        let _ = writeln!(s, "  subgraph layer{l} {{ rank=same;");
        for (name, n) in g.nodes.iter().filter(|(name, n)| n.layer == l && used.contains(name.as_str())) {
            let colour = if n.dead {
                "white"
            } else if n.score.is_some() {
                "orange"
            } else {
                "lightgrey"
            };
            let _ = writeln!(s, "    \"{}\" [style=filled, fillcolor={colour}];", dot_escape(name));
        }
        let _ = writeln!(s, "  }}");
    }
    for (b, (pixels, sum)) in &from_input {
        let width = 0.3 + 2.7 * sum / max_in;
        let b = dot_escape(b);
        let _ = writeln!(s, "  \"input\" -> \"{b}\" [label=\"{pixels} px\", color=\"#777777\", penwidth={width:.2}];");
    }
    for (a, b, e) in inner {
        let colour = if e.weight > 0.0 { "#1f5ac8" } else { "#d22828" };
        let width = 0.3 + 2.7 * e.weight.abs() / max_w;
        let (a, b) = (dot_escape(a), dot_escape(b));
        let _ = writeln!(s, "  \"{a}\" -> \"{b}\" [color=\"{colour}\", penwidth={width:.2}];");
    }
    let _ = writeln!(s, "}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_strings_cannot_end_their_quotes() {
        let hostile = "line\", URL=\"javascript:alert(1)\nx\\";
        let e = dot_escape(hostile);
        assert_eq!(e, "line\\\", URL=\\\"javascript:alert(1)\\nx\\\\");
        // Every quote is escaped: the string stays one DOT string.
        let unescaped = e.char_indices().filter(|&(i, c)| c == '"' && !e[..i].ends_with('\\')).count();
        assert_eq!(unescaped, 0);
    }
}
