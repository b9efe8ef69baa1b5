"""The controls and the comparison from Python: the CLI's numbers exactly,
through the same library calls and the same option checks."""

import json
import subprocess

import pytest

import modcirc

TIMES = {"seconds", "discovery_s", "total_s"}


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_controls_equal_the_clis(trained, data, cli, data_dir):
    flags = ["--task", "line", "--bootstraps", "3", "--sample", "100", "--random", "20", "--optimal-pairs", "40"]
    out = subprocess.run(
        [cli, "controls", "--model", str(trained), "--data-dir", str(data_dir), "--json", "--quiet", *flags],
        check=True, capture_output=True, text=True,
    )
    want = json.loads(out.stdout)
    d = modcirc.discover(trained, data, "line", bootstraps=3, sample=100)
    c = d.controls(random=20, optimal_pairs=40)
    assert _untimed(json.loads(c.json)) == _untimed(want)
    assert c.faithful_alternatives == want["faithful_alternatives"]
    assert [r["pool"] for r in c.random] == [r["pool"] for r in want["random"]]
    assert c.random[0]["drawn"] == 20
    with pytest.raises(ValueError, match="random"):
        d.controls(random=0)


def test_compare_equals_the_clis(trained, data, cli, data_dir, tmp_path):
    other = tmp_path / "vanilla.safetensors"
    modcirc.train("vanilla", data, steps=200, seed=1).save(other)
    out = tmp_path / "cmp"
    subprocess.run(
        [cli, "compare", f"bimt={trained}", f"vanilla={other}", "--task", "3:8,8:3", "--data-dir", str(data_dir),
         "--bootstraps", "2", "--sample", "100", "--acdc-pairs", "10", "--method", "eap-ig", "--random", "20",
         "--out", str(out), "--quiet"],
        check=True,
    )
    want = json.loads((out / "compare.json").read_text())
    got = modcirc.compare([("bimt", trained), ("vanilla", other)], data, "3:8,8:3", bootstraps=2, sample=100,
                          acdc_pairs=10, methods=["eap-ig"], random=20)
    assert _untimed(json.loads(got.json)) == _untimed(want)
    assert [c["condition"] for c in got.conditions] == ["bimt", "vanilla"]
    # Controls, every method, a test and an answer per metric.
    assert [m["method"] for m in got.models[0]["methods"]] == ["eap", "eap-ig"]
    assert got.models[0]["controls"]["random"] == 20
    assert any(t["metric"] == "faithfulness" for t in got.tests)
    assert got.answers[0].startswith("faithfulness (higher is better): ")
    # The options' checks are the library's, as the CLI's are.
    with pytest.raises(ValueError, match="k: applies to select"):
        modcirc.compare({"bimt": trained}, data, "line", select="threshold", k=3)
    with pytest.raises(ValueError, match="same checkpoint"):
        modcirc.compare([("a", trained), ("b", trained)], data, "line", bootstraps=2, sample=50, acdc_pairs=5)


def test_evaluate_a_chosen_circuit_as_nodes_edges_or_a_discovery(trained, data):
    model = modcirc.load(trained)
    d = modcirc.discover(model, data, "circle", bootstraps=3, sample=100)
    small = dict(bootstraps=3, sample=100, random=10, optimal_pairs=50)
    by_nodes = modcirc.evaluate(model, data, "circle", nodes=[n.tolist() for n in d.nodes], **small)
    # The headline is the discovery's own faithfulness on all pairs.
    assert abs(by_nodes["faithfulness"] - d.faithfulness()) < 1e-9
    assert [a["ablation"] for a in by_nodes["ablations"]] == ["zero", "mean", "resample", "optimal"]
    assert [r["pool"] for r in by_nodes["random"]] == ["live", "all"]
    by_discovery = modcirc.evaluate(model, data, "circle", circuit=d, **small)
    assert by_discovery["faithfulness"] == by_nodes["faithfulness"]
    # The same circuit given as its edges: every weight the eps rule keeps among its neurons.
    graph = json.loads(d.export("json"))
    layer = {"input": 0, "logits": len(model.sizes) - 1}
    def where(name):
        kind, i = name.split(".")
        return layer[kind] if kind in layer else int(kind[1:]), int(i)
    edges = []
    for name, e in graph["edges"].items():
        if e["in_graph"]:
            (la, i), (_, o) = (where(n) for n in name.split("->"))
            edges.append((la, o, i))
    by_edges = modcirc.evaluate(model, data, "circle", edges=edges, **small)
    assert abs(by_edges["faithfulness"] - by_nodes["faithfulness"]) < 1e-6
    assert by_edges["random"][0]["pool"] == "edges"
    with pytest.raises(ValueError, match="exactly one"):
        modcirc.evaluate(model, data, "circle", nodes=[[0]], edges=[(0, 0, 0)])
    with pytest.raises(ValueError, match="hidden layer 1"):
        modcirc.evaluate(model, data, "circle", nodes=[[10_000], []], **small)
    # Images flat, as an MLP takes them.
    x, y = data.split("test", flat=True)
    assert x.shape == (len(y), 784)
