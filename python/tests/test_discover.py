"""Discovery and the other methods through Python: the CLI's numbers,
arrays, exports, progress, interruption and errors."""

import json
import subprocess
import threading
import time
import _thread

import numpy as np
import pytest

import modcirc


def test_discover_equals_the_cli_exactly(cli_discover, trained, data, without_times):
    flags = ["--task", "3:8,8:3", "--bootstraps", "4", "--sample", "150", "--seed", "5",
             "--target-faithfulness", "0.8", "--ablation", "mean"]
    want = cli_discover(trained, *flags)
    got = modcirc.discover(modcirc.load(trained), data, "3:8,8:3", bootstraps=4, sample=150, seed=5,
                           target_faithfulness=0.8, ablation="mean")
    assert without_times(got.raw["report"]) == without_times(want["report"])
    assert got.raw["pairs"] == want["pairs"] and got.raw["notes"] == want["notes"]
    assert got.raw["inputs"]["model_sha256"] == want["inputs"]["model_sha256"]
    assert got.raw["inputs"]["flags"] == want["inputs"]["flags"]
    # The arrays are the report's numbers.
    report = want["report"]
    for mine, theirs in zip(got.scores, report["scores"]["layers"]):
        np.testing.assert_array_equal(mine, np.array(theirs))
    assert [list(n) for n in got.nodes] == report["selection"]["nodes"]
    np.testing.assert_array_equal(got.resamples["logit_difference"],
                                  [b["logit_difference"] for b in report["bootstraps"]])
    assert got.baseline == report["scores"]["baseline"]


def test_explicit_pairs_and_array_data_give_the_same_discovery(trained, data, without_times):
    model = modcirc.load(trained)
    drawn = modcirc.discover(model, data, "6:5", k=[10, 5], bootstraps=2, sample=50)
    images, labels = data.split("test")
    arrays = modcirc.from_arrays(images, labels)
    given = modcirc.discover(model, arrays, drawn.pairs, k=[10, 5], bootstraps=2, sample=50)
    assert without_times(given.raw["report"]) == without_times(drawn.raw["report"])
    assert given.task == "6:5"
    # uint8 images scale as the IDX reader does (byte / 255).
    as_bytes = modcirc.from_arrays(np.rint(images * 255).astype(np.uint8), labels)
    again = modcirc.discover(model, as_bytes, drawn.pairs, k=[10, 5], bootstraps=2, sample=50)
    assert without_times(again.raw["report"]) == without_times(drawn.raw["report"])


def test_discovery_arrays_circuit_and_faithfulness(trained, data):
    d = modcirc.discover(trained, data, "circle", k=15, bootstraps=3, sample=100, ablation="resample")
    assert [len(n) for n in d.nodes] == [15, 15]
    assert [len(s) for s in d.scores] == [100, 100] and d.pairs.shape[1] == 2
    for s, e in zip(d.scores, d.effects):
        live = e != 0
        np.testing.assert_allclose(e[live], d.baseline - s[live])
    assert set(d.resamples) >= {"logit_difference", "accuracy", "sparsity", "faithfulness"}
    assert len(d.resamples["accuracy"]) == 3
    # Under resample ablation the two forms of faithfulness agree (STUDY §8).
    f, f_res, f_zero = d.faithfulness(), d.faithfulness("resample"), d.faithfulness("zero")
    assert f is not None and abs(f - f_res) < 1e-9 and f_zero is not None
    assert d.circuit.n_edges == d.raw["report"]["full_n_edges"]
    graph = json.loads(d.export("json"))
    assert graph["schema"].startswith("modcirc.circuit-graph/")
    kept = {n for n, v in graph["nodes"].items() if v["in_graph"] and n.startswith("h1.")}
    assert kept == {f"h1.{i}" for i in d.nodes[0]}
    assert d.export("dot").startswith("digraph")
    assert "<html" in d.html().lower()
    with pytest.raises(ValueError, match="format"):
        d.export("svg")


def test_threshold_rules_and_the_smallest_circuit(trained, data):
    d = modcirc.discover(trained, data, "circle", select="threshold", min_effect="5%", bootstraps=2, sample=50,
                         target_faithfulness=0.5)
    share = d.raw["report"]["selection"]["rule"]
    assert "share" in json.dumps(share).lower()
    assert d.smallest is not None and d.smallest["target"] == 0.5


def test_progress_is_called_with_the_resamples_done(trained, data):
    seen = []
    modcirc.discover(trained, data, "circle", bootstraps=6, sample=50, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (6, 6)
    assert all(b >= a for a, b in zip(seen, seen[1:]))


def test_a_failing_progress_callback_stops_the_work(trained, data):
    def boom(done, total):
        raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        modcirc.discover(trained, data, "circle", bootstraps=50, sample=50, progress=boom)


def test_ctrl_c_interrupts_a_discovery(trained, data):
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            modcirc.discover(trained, data, "circle", bootstraps=100_000, sample=500)
    finally:
        timer.cancel()


@pytest.mark.parametrize("call", ["acdc", "train"])
def test_ctrl_c_interrupts_acdc_and_training(call, trained, data):
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            if call == "acdc":
                modcirc.acdc(trained, data, "circle", max_pairs=1866)
            else:
                modcirc.train("bimt", data, steps=1_000_000)
    finally:
        timer.cancel()


def test_discovery_releases_the_gil(trained, data):
    ticks = []
    done = threading.Event()

    def run():
        modcirc.discover(trained, data, "circle", bootstraps=20, sample=200)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    while not done.is_set():
        ticks.append(1)
        time.sleep(0.005)
    worker.join()
    # Python code ran on this thread while the discovery ran on the other.
    assert len(ticks) > 5


def test_attribution_eap_acdc_and_modularity(trained, data):
    model = modcirc.load(trained)
    a = modcirc.attribution(model, data, "circle")
    assert [x.shape for x in a["exact"]] == [(100,), (100,)] and len(a["attribution"]) == 2
    # First-order estimates track the exact effects on a trained model.
    assert np.corrcoef(a["exact"][1], a["attribution"][1])[0, 1] > 0.5
    e = modcirc.eap(model, data, "circle")
    assert [x.shape for x in e] == [(100, 784), (100, 100), (10, 100)]
    seen = []
    c = modcirc.acdc(model, data, "circle", max_pairs=20, progress=lambda done, total: seen.append((done, total)))
    assert c["pairs"] == 20 and c["edges"].shape == (c["n_edges"], 3)
    assert seen[-1] == (210, 210)
    q = modcirc.modularity(model)
    assert -0.5 <= q["q"] <= 1.0 and q["communities"] >= 1
    # How sure Q is (STUDY §9): the runs' spread and NMI; the null on request.
    assert q["spread"]["min"] <= q["spread"]["max"] == q["q"] and 0 <= q["spread"]["nmi"] <= 1
    assert q["null"] is None
    sure = modcirc.modularity(model, eps=0.01, null=True)
    assert sure["null"]["rewirings"] == 20 and sure["null"]["sd"] >= 0
    with pytest.raises(ValueError, match="null"):
        modcirc.modularity(model, null=1)


def test_bad_arguments_name_what_is_wrong(trained, data):
    with pytest.raises(ValueError, match="task"):
        modcirc.discover(trained, data, "8-3")
    with pytest.raises(ValueError, match="indexes past"):
        modcirc.discover(trained, data, [(0, 10_000)])
    with pytest.raises(ValueError, match="k = 101"):
        modcirc.discover(trained, data, "circle", k=101)
    with pytest.raises(ValueError, match="ablation"):
        modcirc.discover(trained, data, "circle", ablation="half")
    with pytest.raises(ValueError, match="bootstraps"):
        modcirc.discover(trained, data, "circle", bootstraps=0)
    with pytest.raises(ValueError, match="max_memory_gib"):
        modcirc.discover(trained, data, "circle", sample=1_000_000, max_memory_gib=1)
    with pytest.raises(ValueError, match="regime"):
        modcirc.train("bimt2", data, steps=1)
    with pytest.raises(FileNotFoundError):
        modcirc.mnist("/nonexistent/mnist")


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda m, d: modcirc.discover(m, d, "circle", k=1.5), "k"),
        (lambda m, d: modcirc.discover(m, d, "circle", k=True), "k"),
        (lambda m, d: modcirc.discover(m, d, "circle", k=[3, 2.0]), "k"),
        (lambda m, d: modcirc.discover(m, d, "circle", seed=-1), "seed"),
        (lambda m, d: modcirc.discover(m, d, "circle", seed=2**64), "seed"),
        (lambda m, d: modcirc.discover(m, d, "circle", bootstraps=2**70), "bootstraps"),
        (lambda m, d: modcirc.discover(m, d, "circle", sample=-5), "sample"),
        (lambda m, d: modcirc.eap(m, d, "circle", seed=-3), "seed"),
        (lambda m, d: modcirc.acdc(m, d, "circle", max_pairs=-1), "max_pairs"),
        (lambda m, d: modcirc.modularity(m, seed=1.0), "seed"),
        (lambda m, d: modcirc.train("l1", d, steps=-1), "steps"),
        (lambda m, d: modcirc.train("l1", d, steps=1, sizes=[784, True, 10]), "sizes"),
    ],
)
def test_whole_number_arguments_are_whole_and_in_range_or_named(trained, data, call, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        call(trained, data)


def test_pairs_the_task_syntax_refuses_are_refused_as_index_pairs(trained, data):
    _, labels = data.split("test")
    with pytest.raises(ValueError, match="with itself"):
        modcirc.discover(trained, data, [(5, 5)])
    a = int(np.flatnonzero(labels == 3)[0])
    b = int(np.flatnonzero(labels == 3)[1])
    with pytest.raises(ValueError, match="of one digit"):
        modcirc.discover(trained, data, [(a, b)])


def test_a_model_is_not_saved_where_a_sidecar_goes(trained, tmp_path):
    side = tmp_path / "x.json"
    side.write_text("{}")
    with pytest.raises(ValueError, match="sidecar"):
        modcirc.load(trained).save(side)
    assert side.read_text() == "{}"


def test_training_is_deterministic(data):
    a = modcirc.train("l1", data, steps=20, seed=7)
    b = modcirc.train("l1", data, steps=20, seed=7)
    assert a.sha256 == b.sha256 and a.regime == "l1"
    assert a.meta["config"]["steps"] == 20


def test_networkx_and_plot_when_installed(trained, data):
    d = modcirc.discover(trained, data, "circle", bootstraps=2, sample=50)
    nx = pytest.importorskip("networkx")
    g = d.to_networkx()
    assert isinstance(g, nx.DiGraph) and g.number_of_nodes() == 784 + 100 + 100 + 10


def test_plot_when_matplotlib_is_installed(trained, data, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    d = modcirc.discover(trained, data, "circle", bootstraps=2, sample=50)
    ax = d.plot()
    ax.figure.savefig(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def _top_edges(edges, k):
    """The k edges of largest |score|, ties to the lower layer then index: `EdgeScores::top_edges`."""
    flat = [(-float(v), l, i) for l, layer in enumerate(edges) for i, v in enumerate(np.abs(layer).ravel())]
    flat.sort()
    out = []
    for _, l, i in flat[:k]:
        n_in = edges[l].shape[1]
        out.append([l, i // n_in, i % n_in])
    return sorted(out)


def test_every_method_by_name_and_the_clis_numbers(trained, data, cli, data_dir, tmp_path):
    model = modcirc.load(trained)
    assert modcirc.METHODS == ["patching", "attribution", "eap", "acdc", "eap-ig", "eap-ig-activations", "mask", "mask-warm", "ensemble"]
    small_mask = {"unit": "edges", "lambdas": [1e-4, 1e-2], "steps": 10, "lr": 0.05}
    members = [{"method": "eap-ig", "steps": 3}, {"method": "mask", "pairs": 20, "config": small_mask}]
    options = {"acdc": {"pairs": 10}, "mask": {"pairs": 20, "config": small_mask}, "eap-ig": {"steps": 3},
               "ensemble": {"members": members}}
    for name in modcirc.METHODS:
        s = modcirc.scores(model, data, "3:8,8:3", name, **options.get(name, {}))
        assert s.method["method"] == name
        assert [n.shape for n in s.nodes] == [(100,), (100,)]
        assert (s.edges is not None) == (name not in ("patching", "attribution")), name
        assert (s.kept_edges is not None) == (name == "acdc"), name
    # The same numbers as the functions of one method each.
    e = modcirc.eap(model, data, "3:8,8:3")
    assert all(np.array_equal(a, b) for a, b in zip(modcirc.scores(model, data, "3:8,8:3", "eap").edges, e))
    # The CLI's `beyond` judges EAP-IG on the same pairs: its circuit at the
    # node circuit's size is the top of these scores.
    out = tmp_path / "b.json"
    subprocess.run(
        [cli, "beyond", "--model", str(trained), "--data-dir", str(data_dir), "--task", "3:8,8:3", "--method", "eap-ig",
         "--ig-steps", "3", "--acdc-pairs", "10", "--bootstraps", "2", "--sample", "100", "--stability-resamples", "3",
         "--out", str(out), "--quiet"],
        check=True,
    )
    b = json.loads(out.read_text())
    pairs = [(p["clean"], p["corrupted"]) for p in b["source"]["pairs"]]
    ig = modcirc.scores(model, data, np.array(pairs), "eap-ig", steps=3)
    ran = next(m for m in b["methods"] if m["method"] == "eap-ig")
    assert ig.pairs == len(pairs) == ran["pairs"]
    assert _top_edges(ig.edges, b["circuit_edges"]) == sorted(ran["same_size_edges"])
    # Its stability and agreement with exact patching (STUDY §12): the same
    # numbers from the discovery in Python, on the same resamples.
    d = modcirc.discover(model, data, "3:8,8:3", bootstraps=2, sample=100)
    mine = d.stability("eap", resamples=3)
    theirs = b["methods"][0]
    assert theirs["method"] == "eap" and mine["edges"] == b["circuit_edges"]
    assert mine["stability"]["resamples"] == theirs["stability"]["resamples"] == 3
    assert mine["stability"]["mean"] == theirs["stability"]["mean"]
    assert 0 <= mine["stability"]["min"] <= mine["stability"]["mean"] <= 1
    assert mine["agreement"]["rho"] == theirs["agreement"]["rho"]
    with pytest.raises(ValueError, match="resamples"):
        d.stability("eap", resamples=1)
    with pytest.raises(ValueError, match="patching"):
        d.stability("patching")
    # Bad names and options are refused, naming them.
    with pytest.raises(ValueError, match="eap-gi.*eap-ig-activations"):
        modcirc.scores(model, data, "circle", "eap-gi")
    with pytest.raises(ValueError, match="steps"):
        modcirc.scores(model, data, "circle", "eap-ig", steps=0)
    with pytest.raises(ValueError, match="stpes"):
        modcirc.scores(model, data, "circle", "eap-ig", stpes=3)
