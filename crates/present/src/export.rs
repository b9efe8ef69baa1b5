//! A discovered circuit as a graph others can read: JSON whose field names
//! follow EAP-IG's graph JSON where the concepts match (`nodes` and `edges`
//! keyed by name, `in_graph`, `score`), and Graphviz DOT laid out by layer.
//! The schema is documented in `docs/circuit-graph.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use modcirc_acdc::{edge_attribution, Circuit, PatchingSweep, TaskImages};
use modcirc_bimt::checkpoint::Checkpoint;
use modcirc_dataset::Mnist;
use serde::{Deserialize, Serialize};

use crate::circuit_source::check_source;
pub use crate::circuit_source::{read_source, validate, CircuitKind, CircuitSource, Kept, EXPORT_ACCEPTS};
use crate::PresentError;

/// Version of the graph JSON.
pub const GRAPH_SCHEMA: &str = "modcirc.circuit-graph/2";

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
    /// The task's digits: the logits the circuit answers with.
    pub digits: Vec<usize>,
    /// How the circuit was found.
    pub method: String,
    /// The edge threshold, relative to each layer's largest |weight| (0 for edge circuits).
    pub eps: f64,
    /// The unpatched logit difference: node scores are judged against it
    /// (`None` for a circuit found without node patching).
    pub baseline: Option<f64>,
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
    /// The digit an output position answers for (`None` for other neurons).
    pub digit: Option<usize>,
    /// Its coordinates in the unit square (the model's layout).
    pub x: f32,
    /// See `x`.
    pub y: f32,
    /// A hidden neuron's patching score (lower: patching it moves the
    /// corrupted logits closer to the clean ones); `None` for inputs,
    /// outputs, and circuits found without node patching.
    pub score: Option<f64>,
    /// Baseline minus score (0 for a dead neuron).
    pub effect: Option<f64>,
    /// The effect as a fraction of the baseline: comparable across models.
    pub effect_share: Option<f64>,
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

/// The layer and index of a neuron named as [`node_name`] names it
/// (`input.i`, `hK.i`, `logits.i`) among `n_layers`; `None` for another name.
///
/// ```
/// use modcirc_present::export::{node_name, parse_node_name};
/// for (l, i) in [(0, 5), (1, 3), (3, 9)] {
///     assert_eq!(parse_node_name(&node_name(l, i, 4), 4), Some((l, i)));
/// }
/// assert_eq!(parse_node_name("x.1", 4), None);
/// ```
pub fn parse_node_name(name: &str, n_layers: usize) -> Option<(usize, usize)> {
    let (layer, index) = name.split_once('.')?;
    let l = match layer {
        "input" => 0,
        "logits" => n_layers.checked_sub(1)?,
        h => h.strip_prefix('h')?.parse().ok()?,
    };
    Some((l, index.parse().ok()?))
}

/// [`circuit_graph`] after checking that `src` was made on this model (its
/// bytes' SHA-256 `sha256`), with its activation, on these data: a
/// discovery's indices and scores mean nothing on another model or data.
pub fn checked_graph(
    mnist: &Mnist,
    ck: &Checkpoint,
    sha256: &str,
    src: &CircuitSource,
) -> Result<CircuitGraph, PresentError> {
    let bad = |m: String| Err(PresentError::Invalid(m));
    if sha256 != src.model_sha256 {
        let (model, made) = (&src.model, &src.model_sha256);
        return bad(format!(
            "the discovery was made on {model} (SHA-256 {made}), not on this model (SHA-256 {sha256})"
        ));
    }
    let activation = ck.model.activation.to_string();
    if activation != src.activation {
        return bad(format!("the discovery ran {} with {} activations, not {activation}", src.model, src.activation));
    }
    let differ = modcirc_study::discovery::differing_files(&src.data.1, &mnist.checksums);
    if !differ.is_empty() {
        let (made, here) = (&src.data.0, mnist.dir.display());
        return bad(format!(
            "the discovery indexes pairs of {made}, but {here} here differ ({}): use the data it was made on, {made}",
            differ.join(", ")
        ));
    }
    circuit_graph(mnist, ck, src)
}

impl CircuitGraph {
    /// In one line: the task, the method, the edges and hidden neurons kept.
    pub fn summary(&self) -> String {
        let kept = self.edges.values().filter(|e| e.in_graph).count();
        let last = self.cfg.sizes.len() - 1;
        let hidden = self.nodes.values().filter(|n| n.layer > 0 && n.layer < last);
        let (hidden_kept, hidden_all) = (hidden.clone().filter(|n| n.in_graph).count(), hidden.count());
        format!(
            "{} circuit ({}): {kept} of {} edges; hidden neurons: {hidden_kept} kept of {hidden_all}",
            self.cfg.task,
            self.cfg.method,
            self.edges.len()
        )
    }
}

/// The graph of `src`'s circuit on `ck`: its pairs' images come from
/// `mnist` (the data the file recorded), the edge scores from EAP on them.
pub fn circuit_graph(mnist: &Mnist, ck: &Checkpoint, src: &CircuitSource) -> Result<CircuitGraph, PresentError> {
    let model = &ck.model;
    let split = src.split.of(mnist);
    modcirc_study::discovery::check_fits(ck, split, src.split)?;
    check_source(src, &model.sizes(), split.len())?;
    let images = TaskImages::from_pairs(split, &src.pairs);
    let sweep = PatchingSweep::new(model, &images)?;
    let eap = edge_attribution(&sweep)?;
    let (circuit, eps) = match &src.kept {
        Kept::Nodes { nodes, eps } => (Circuit::new(model, nodes.clone(), *eps)?, *eps),
        Kept::Edges(edges) => {
            let mut mask: Vec<Vec<bool>> = model.layers.iter().map(|l| vec![false; l.weight.len()]).collect();
            for &[l, o, i] in edges {
                mask[l][o * model.layers[l].n_in + i] = true;
            }
            (Circuit::from_edges(model, &mask)?, 0.0)
        }
    };
    let sizes = model.sizes();
    let n_layers = sizes.len();
    let mut nodes = BTreeMap::new();
    for (l, &n) in sizes.iter().enumerate() {
        for i in 0..n {
            let hidden = (l > 0 && l + 1 < n_layers).then(|| l - 1);
            let c = ck.layout.layers[l][i];
            let scores = src.scores.as_ref().and_then(|(s, dead)| hidden.map(|h| (s, dead, h)));
            nodes.insert(
                node_name(l, i, n_layers),
                GraphNode {
                    in_graph: hidden.is_none_or(|h| circuit.nodes[h].binary_search(&i).is_ok()),
                    layer: l,
                    index: i,
                    digit: (l + 1 == n_layers).then(|| model.out_perm[i]),
                    x: c[0],
                    y: c[1],
                    score: scores.map(|(s, _, h)| s.layers[h][i]),
                    effect: scores.map(|(s, _, h)| s.effect(h, i)),
                    effect_share: scores.map(|(s, _, h)| s.effect(h, i) / s.baseline),
                    dead: scores.is_some_and(|(_, dead, h)| dead[h].binary_search(&i).is_ok()),
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
    let mut digits: Vec<usize> = src.task.pairs.iter().flat_map(|p| [p.clean as usize, p.corrupted as usize]).collect();
    digits.sort_unstable();
    digits.dedup();
    Ok(CircuitGraph {
        schema: GRAPH_SCHEMA.into(),
        cfg: GraphConfig {
            sizes,
            activation: model.activation.to_string(),
            model: src.model.clone(),
            model_sha256: src.model_sha256.clone(),
            task: src.task.to_string(),
            digits,
            method: src.method.clone(),
            eps,
            baseline: src.scores.as_ref().map(|(s, _)| s.baseline),
        },
        nodes,
        edges,
    })
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
/// hidden neurons (orange; dead ones white) and the task's logits (the
/// other outputs and the edges into them are left out), its edges blue
/// (positive) or red (negative), wider for larger |w|. The input layer is
/// one node: each kept neuron of hidden layer 1 gets one edge from it,
/// labelled with the number of pixels the circuit keeps into it and drawn
/// by their summed |w|, since a node per pixel would be hundreds of nodes
/// that Graphviz lays out slowly and no one reads.
pub fn to_dot(g: &CircuitGraph) -> String {
    // Only the task's logits: edges into the other outputs are not the circuit's answer.
    let other_logit =
        |name: &str| g.nodes.get(name).is_some_and(|n| n.digit.is_some_and(|d| !g.cfg.digits.contains(&d)));
    let kept: Vec<(&str, &str, &GraphEdge)> = g
        .edges
        .iter()
        .filter(|(_, e)| e.in_graph)
        .filter_map(|(name, e)| name.split_once("->").map(|(a, b)| (a, b, e)))
        .filter(|(_, b, _)| !other_logit(b))
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
    let (task, method) = (dot_escape(&g.cfg.task), dot_escape(&g.cfg.method));
    let _ = writeln!(s, "  label=\"{task} circuit: {method}\";");
    let _ = writeln!(s, "  rankdir=BT; ranksep=1.2; node [shape=ellipse, fontsize=10];");
    if !from_input.is_empty() {
        let _ = writeln!(s, "  \"input\" [shape=box, label=\"input ({} pixels)\"];", g.cfg.sizes[0]);
    }
    for l in 1..g.cfg.sizes.len() {
        let _ = writeln!(s, "  subgraph layer{l} {{ rank=same;");
        for (name, n) in g.nodes.iter().filter(|(name, n)| n.layer == l && used.contains(name.as_str())) {
            let colour = if n.dead {
                "white"
            } else if n.digit.is_none() {
                "orange"
            } else {
                "lightgrey"
            };
            let label = match n.digit {
                Some(d) => format!(", label=\"digit {d}\""),
                None => String::new(),
            };
            let _ = writeln!(s, "    \"{}\" [style=filled, fillcolor={colour}{label}];", dot_escape(name));
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
