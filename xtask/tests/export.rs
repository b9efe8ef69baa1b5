//! `cargo xtask export`: a discovered circuit as graph JSON and as DOT that
//! Graphviz renders.

mod common;

use common::{write_dead_relu_model, xtask};

use std::collections::BTreeSet;
use std::process::Command;

use modcirc_present::export::CircuitGraph;
use modcirc_study::discovery::DiscoverOutput;

#[test]
fn a_circuit_exports_as_json_that_names_its_edges_and_as_dot_that_graphviz_renders() {
    let dir = std::env::temp_dir().join(format!("modcirc-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = write_dead_relu_model(&dir);
    let (m, disc) = (model.to_str().unwrap(), dir.join("d.json"));
    let d = disc.to_str().unwrap();
    let o = xtask(
        &["discover", "--model", m, "--activation", "relu", "--task", "line", "--k", "6,4"]
            .into_iter()
            .chain(["--bootstraps", "2", "--sample", "50", "--out", d])
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let json = dir.join("g.json");
    let o = xtask(&["export", "--model", m, "--activation", "relu", "--discovery", d, "--out", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&json).unwrap();
    let graph: CircuitGraph = serde_json::from_str(&text).unwrap();
    // Round trip: the same graph written again gives the same text.
    assert_eq!(serde_json::to_string(&graph).unwrap(), text);
    assert_eq!(graph.edges.len(), 784 * 20 + 20 * 16 + 16 * 10);
    assert_eq!(graph.nodes.len(), 784 + 20 + 16 + 10);
    // Every edge of the circuit (kept neurons, eps rule) is named and in the graph; no other is.
    let found: DiscoverOutput = serde_json::from_slice(&std::fs::read(&disc).unwrap()).unwrap();
    let ck = modcirc_bimt::checkpoint::load(&model, Some(modcirc_mlp::Activation::Relu)).unwrap();
    let circuit = modcirc_acdc::Circuit::new(&ck.model, found.report.selection.nodes.clone(), 0.01).unwrap();
    let want: BTreeSet<String> = modcirc_study::beyond::edge_list(&ck.model, circuit.edge_mask())
        .iter()
        .map(|&[l, o, i]| {
            let name = |l: usize, i: usize| modcirc_present::export::node_name(l, i, 4);
            format!("{}->{}", name(l, i), name(l + 1, o))
        })
        .collect();
    let got: BTreeSet<String> = graph.edges.iter().filter(|(_, e)| e.in_graph).map(|(n, _)| n.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), circuit.n_edges());
    for (h, set) in found.report.selection.nodes.iter().enumerate() {
        for &i in set {
            assert!(graph.nodes[&format!("h{}.{i}", h + 1)].in_graph);
        }
    }
    assert!(graph.nodes["h1.0"].dead && graph.nodes["h1.0"].effect == Some(0.0));

    // DOT, rendered by Graphviz where it is installed (CI installs it: MODCIRC_REQUIRE_TOOLS=1).
    let dot = dir.join("g.dot");
    let o = xtask(&[
        "export",
        "--model",
        m,
        "--activation",
        "relu",
        "--discovery",
        d,
        "--format",
        "dot",
        "--out",
        dot.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&dot).unwrap();
    // Every edge between neurons, and one from the input per layer-1 neuron that reads pixels.
    let readers: BTreeSet<&str> =
        want.iter().filter(|n| n.starts_with("input.")).filter_map(|n| n.split_once("->")).map(|(_, b)| b).collect();
    // Only the line task's logits (digits 1, 3, 4, 7, 9) are drawn.
    let other_logit = |n: &str| n.split_once("->logits.").is_some_and(|(_, d)| !["1", "3", "4", "7", "9"].contains(&d));
    let inner = want.iter().filter(|n| !n.starts_with("input.") && !other_logit(n)).count();
    assert_eq!(text.matches(" -> ").count(), inner + readers.len());
    match Command::new("dot").arg("-Tsvg").arg(&dot).output() {
        Ok(out) => {
            assert!(out.status.success(), "dot -Tsvg: {}", String::from_utf8_lossy(&out.stderr));
            let svg = String::from_utf8_lossy(&out.stdout);
            assert!(svg.contains("<svg") && svg.contains("h2."), "{}", &svg[..svg.len().min(300)]);
        }
        Err(e) => {
            assert!(std::env::var_os("MODCIRC_REQUIRE_TOOLS").is_none(), "Graphviz's dot is required: {e}");
            eprintln!("dot not found ({e}): the DOT file was not rendered");
        }
    }

    // A discovery of another model is refused, naming both.
    let copy = dir.join("other.safetensors");
    let mut m2 = modcirc_mlp::file::load(&model, Some(modcirc_mlp::Activation::Relu)).unwrap().model;
    m2.layers[2].bias[0] += 1.0;
    modcirc_mlp::file::save(&copy, &m2).unwrap();
    let o = xtask(&[
        "export",
        "--model",
        copy.to_str().unwrap(),
        "--activation",
        "relu",
        "--discovery",
        d,
        "--out",
        dir.join("x.json").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("was made on") && err.contains("not on this model") && err.contains("--discovery"), "{err}");
    // Hostile discoveries: a layer's scores cut short, a dead neuron outside
    // its layer, another schema, a task name that would end a DOT string.
    let original: serde_json::Value = serde_json::from_slice(&std::fs::read(&disc).unwrap()).unwrap();
    type Spoil = fn(&mut serde_json::Value);
    let cases: [(&str, Spoil); 3] = [
        ("10 scores for hidden layer 1, of 20 neurons", |v| {
            let layer = v["report"]["scores"]["layers"][0].as_array_mut().unwrap();
            layer.truncate(10);
        }),
        ("neuron 99 of hidden layer 2", |v| v["report"]["selection"]["dead"][1] = serde_json::json!([99])),
        ("schema is \"modcirc.discover/99\"", |v| v["schema"] = "modcirc.discover/99".into()),
    ];
    for (says, spoil) in cases {
        let mut v = original.clone();
        spoil(&mut v);
        let bad = dir.join("bad.json");
        std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
        let out = dir.join("bad-out.dot");
        let o = xtask(
            &["export", "--model", m, "--activation", "relu", "--discovery", bad.to_str().unwrap()]
                .into_iter()
                .chain(["--format", "dot", "--out", out.to_str().unwrap()])
                .collect::<Vec<_>>(),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{says}: {err}");
        assert!(err.contains(says), "{says}: {err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
