//! A circuit the user chose, read from what they have at hand (a plain
//! JSON of nodes or edges, an exported graph JSON, a `discover` or `beyond`
//! output), and its evaluation said in words.

use modcirc_acdc::Pool;
use modcirc_study::evaluate::{ChosenCircuit, Evaluation};

use crate::circuit_source::{read_source, CircuitKind, Kept};
use crate::export::{parse_node_name, CircuitGraph, GRAPH_SCHEMA};
use crate::PresentError;

/// What `evaluate` accepts as a circuit file, in words (its errors say it).
pub const CHOSEN_ACCEPTS: &str = "a JSON of nodes ({\"nodes\": [[0, 5], [3]], \"eps\": 0.01}) or edges ({\"edges\": [[layer, output, input], ...]}), an exported circuit graph JSON, or a `discover` or `beyond` output";

/// A chosen circuit and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadCircuit {
    /// The circuit.
    pub circuit: ChosenCircuit,
    /// What the file was, in words.
    pub from: String,
    /// The SHA-256 of the model the file says the circuit was found on,
    /// where it says (graph JSON, `discover` and `beyond` outputs).
    pub model_sha256: Option<String>,
}

impl ReadCircuit {
    /// Refuses a circuit found on another model than the one of SHA-256
    /// `sha256`: its indices would mean nothing there.
    pub fn check_model(&self, sha256: &str) -> Result<(), PresentError> {
        match self.model_sha256.as_deref() {
            Some(made) if made != sha256 => Err(PresentError::Invalid(format!(
                "the circuit ({}) was found on a model with SHA-256 {made}, not on this one ({sha256}): its indices mean nothing here",
                self.from
            ))),
            _ => Ok(()),
        }
    }
}

/// The circuit of a file of any form [`CHOSEN_ACCEPTS`] names; `kind`
/// picks one of a `discover` or `beyond` output's circuits.
pub fn read_chosen(bytes: &[u8], kind: Option<CircuitKind>) -> Result<ReadCircuit, PresentError> {
    let bad = |m: String| PresentError::Invalid(m);
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON ({e}); expected {CHOSEN_ACCEPTS}")))?;
    let schema = value.get("schema").and_then(|s| s.as_str()).map(str::to_string);
    match schema.as_deref() {
        None => {
            let circuit: ChosenCircuit = serde_json::from_value(value).map_err(|e| {
                bad(format!("no schema, so a plain circuit, but not one ({e}); expected {CHOSEN_ACCEPTS}"))
            })?;
            Ok(ReadCircuit { circuit, from: "a plain circuit JSON".into(), model_sha256: None })
        }
        Some(s) if s.split('/').next() == GRAPH_SCHEMA.split('/').next() => {
            if s != GRAPH_SCHEMA {
                return Err(bad(format!("the graph's schema is {s:?}, not {GRAPH_SCHEMA:?}: export it again")));
            }
            let g: CircuitGraph =
                serde_json::from_value(value).map_err(|e| bad(format!("a circuit graph, but {e}")))?;
            let edges = graph_edges(&g)?;
            let from = format!("an exported circuit graph ({})", g.cfg.method);
            Ok(ReadCircuit { circuit: ChosenCircuit::Edges { edges }, from, model_sha256: Some(g.cfg.model_sha256) })
        }
        Some(_) => {
            let src = read_source(bytes, kind).map_err(|e| bad(format!("{e} (a circuit file is {CHOSEN_ACCEPTS})")))?;
            let circuit = match src.kept {
                Kept::Nodes { nodes, eps } => ChosenCircuit::Nodes { nodes, eps },
                Kept::Edges(edges) => ChosenCircuit::Edges { edges },
            };
            Ok(ReadCircuit { circuit, from: src.method, model_sha256: Some(src.model_sha256) })
        }
    }
}

/// The edges `[layer, output, input]` a graph keeps, from their names
/// (`input.i->h1.j`, …, `hN.i->logits.j`).
fn graph_edges(g: &CircuitGraph) -> Result<Vec<[usize; 3]>, PresentError> {
    let node = |name: &str| parse_node_name(name, g.cfg.sizes.len());
    g.edges
        .iter()
        .filter(|(_, e)| e.in_graph)
        .map(|(name, _)| {
            let parsed = name.split_once("->").and_then(|(a, b)| Some((node(a)?, node(b)?)));
            match parsed {
                Some(((la, i), (lb, o))) if lb == la + 1 => Ok([la, o, i]),
                _ => Err(PresentError::Invalid(format!(
                    "graph edge {name:?} is not `source->target` between consecutive layers"
                ))),
            }
        })
        .collect()
}

/// The evaluation in a few lines: faithfulness first (the headline, then
/// over resamples), accuracy, each ablation, then the random circuits.
pub fn evaluation_summary(e: &Evaluation) -> String {
    let f = |v: Option<f64>| v.map_or("undefined".to_string(), |v| format!("{v:.3}"));
    let kept = e.kept.iter().map(usize::to_string).collect::<Vec<_>>().join(" / ");
    let mut s = format!(
        "{} on {} ({} pairs): {kept} hidden neurons, {} of {} weights (sparsity {:.4})\n",
        e.model, e.task, e.pairs, e.edges, e.weights, e.sparsity
    );
    s.push_str(&format!("  faithfulness (all pairs, removed edges carrying corrupted values): {}", f(e.faithfulness)));
    if let Some(r) = &e.faithfulness_resampled {
        s.push_str(&format!(
            "; bootstrap mean {:.3} [{:.3}, {:.3}] over {} resamples",
            r.mean, r.lo, r.hi, e.settings.bootstraps
        ));
    }
    s.push_str(&format!("\n  the model's accuracy on these images: {:.3}\n", e.model_accuracy));
    for a in &e.ablations {
        s.push_str(&format!(
            "  under {} ablation: accuracy {:.3}, faithfulness {}, logit difference {:.3}\n",
            a.ablation,
            a.accuracy,
            f(a.faithfulness_under),
            a.logit_difference
        ));
    }
    for r in &e.random {
        let pool = match r.pool {
            Pool::Live => "random circuits of its size from live neurons",
            Pool::All => "random circuits of its size from all neurons",
            Pool::Edges => "random circuits of as many weights per layer",
        };
        match &r.faithfulness {
            Some(a) => s.push_str(&format!(
                "  {pool}: faithfulness {:.3} [{:.3}, {:.3}], margin {:+.3}, {}\n",
                a.random.mean,
                a.random.lo,
                a.random.hi,
                a.circuit - a.random.mean,
                a.p_text()
            )),
            None => s.push_str(&format!("  {pool}: faithfulness undefined on these pairs\n")),
        }
    }
    s
}
