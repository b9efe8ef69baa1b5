"""Shared fixtures: the clone's MNIST, a small trained model, the CLI."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import modcirc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("MODCIRC_DATA_DIR", ROOT / "fixtures" / "mnist"))
    if not (d / "SHA256SUMS").exists():
        pytest.skip(f"no MNIST at {d} (run from the clone, or set MODCIRC_DATA_DIR)")
    return d


@pytest.fixture(scope="session")
def data(data_dir):
    return modcirc.mnist(data_dir)


@pytest.fixture(scope="session")
def trained(data, tmp_path_factory):
    """A BIMT model of 300 steps, saved (with its sidecar) as the CLI's models are."""
    model = modcirc.train("bimt", data, steps=300, seed=3)
    path = tmp_path_factory.mktemp("models") / "bimt.safetensors"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def cli() -> str:
    """The `xtask` binary: $MODCIRC_CLI, else the clone's debug or release build."""
    candidates = [os.environ.get("MODCIRC_CLI")]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    candidates += [str(target / p / "xtask") for p in ("debug", "release")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    if os.environ.get("MODCIRC_REQUIRE_CLI"):
        pytest.fail("MODCIRC_REQUIRE_CLI is set but no xtask binary was found (set MODCIRC_CLI)")
    pytest.skip("no xtask binary: build it with `cargo build --bins` or set MODCIRC_CLI")
    return shutil.which("xtask") or ""


# Times differ between two runs of the same computation; nothing else may.
TIMES = {"discovery_s", "total_s"}


def _strip_times(value):
    if isinstance(value, dict):
        return {k: _strip_times(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    return value


@pytest.fixture(scope="session")
def without_times():
    """A discovery's JSON without its wall times, to compare two runs exactly."""
    return _strip_times


@pytest.fixture(scope="session")
def cli_discover(cli, data_dir):
    """`xtask discover --json` on a model file with extra flags: its output, parsed."""

    def run(model_path, *flags):
        out = subprocess.run(
            [cli, "discover", "--model", str(model_path), "--data-dir", str(data_dir), "--json", "--quiet", *flags],
            check=True, capture_output=True, text=True,
        )
        return json.loads(out.stdout)

    return run
