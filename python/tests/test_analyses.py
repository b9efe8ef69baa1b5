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
         "--bootstraps", "2", "--sample", "100", "--acdc-pairs", "10", "--out", str(out), "--quiet"],
        check=True,
    )
    want = json.loads((out / "compare.json").read_text())
    got = modcirc.compare([("bimt", trained), ("vanilla", other)], data, "3:8,8:3", bootstraps=2, sample=100,
                          acdc_pairs=10)
    assert _untimed(json.loads(got.json)) == _untimed(want)
    assert [c["condition"] for c in got.conditions] == ["bimt", "vanilla"]
    # The options' checks are the library's, as the CLI's are.
    with pytest.raises(ValueError, match="k: applies to select"):
        modcirc.compare({"bimt": trained}, data, "line", select="threshold", k=3)
    with pytest.raises(ValueError, match="same checkpoint"):
        modcirc.compare([("a", trained), ("b", trained)], data, "line", bootstraps=2, sample=50, acdc_pairs=5)
