#!/usr/bin/env python3
"""The inference benchmark beside PyTorch, in one run.

Times PyTorch's forward of each seed-0 checkpoint of a study (the same
safetensors files, loaded into an ``nn.Sequential``) on MNIST's first 500
test images at batch 1, 100 and 500, on one thread and on every thread;
then runs the project's criterion benchmark of the same checkpoints at the
same points (``cargo bench -p modcirc-mlp --bench forward``) and prints
both, per image, with PyTorch's time over ours.

    python3 benches/compare_pytorch.py [--models artifacts/full/models]

Needs numpy and torch (from pip: Debian's ``python3-torch`` is linked to the
reference BLAS, 30-45 times slower, no fair opponent); without
torch it says so and exits 1. Run it with nothing else running: a build
or a second benchmark beside it ruins both sets of numbers.
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (1, 100, 500)
IMAGES = 500


def read_images(path):
    """MNIST's first IMAGES test images as float32 in [0, 1] (byte / 255)."""
    import numpy as np

    raw = gzip.open(path, "rb").read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051 or count < IMAGES:
        sys.exit(f"{path}: not an IDX image file of at least {IMAGES} images")
    pixels = np.frombuffer(raw, dtype=np.uint8, count=IMAGES * rows * cols, offset=16)
    return (pixels.astype(np.float32) / 255.0).reshape(IMAGES, rows * cols)


def read_safetensors(path):
    """The tensors (float32 numpy arrays) and string metadata of a file."""
    import numpy as np

    raw = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    metadata = header.pop("__metadata__", {}) or {}
    dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16}
    tensors = {}
    for name, spec in header.items():
        if spec["dtype"] not in dtypes:
            sys.exit(f"{path}: tensor {name} is {spec['dtype']}; this script reads F32, F64 and F16")
        begin, end = spec["data_offsets"]
        data = np.frombuffer(raw, dtype=dtypes[spec["dtype"]], count=(end - begin) // np.dtype(dtypes[spec["dtype"]]).itemsize, offset=8 + length + begin)
        tensors[name] = data.astype(np.float32).reshape(spec["shape"])
    return tensors, metadata


def sequential(path):
    """The checkpoint as ``nn.Sequential(Linear, act, ..., Linear)``."""
    import torch
    from torch import nn

    tensors, metadata = read_safetensors(path)
    activations = {
        "silu": nn.SiLU,
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "gelu-tanh": lambda: nn.GELU(approximate="tanh"),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "identity": nn.Identity,
    }
    act = metadata.get("activation", "silu")
    if act not in activations:
        sys.exit(f"{path}: activation {act!r} is not one this script knows")
    layers = []
    k = 1
    while f"fc{k}.weight" in tensors:
        w, b = tensors[f"fc{k}.weight"], tensors[f"fc{k}.bias"]
        linear = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers += [linear, activations[act]()]
        k += 1
    if k < 3:
        sys.exit(f"{path}: no fc1.weight, fc2.weight, ... tensors")
    return nn.Sequential(*layers[:-1]).eval()


def time_torch(model, x, batch, seconds=1.0):
    """PyTorch's seconds per image at `batch`: the median over rounds of
    about 50 ms, after a warm-up."""
    import torch

    xs = torch.from_numpy(x[:batch].copy())
    with torch.inference_mode():
        for _ in range(20):
            model(xs)
        calls = 1
        while True:
            t = time.perf_counter()
            for _ in range(calls):
                model(xs)
            if time.perf_counter() - t > 0.05:
                break
            calls *= 2
        rounds = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(rounds) < 5:
            t = time.perf_counter()
            for _ in range(calls):
                model(xs)
            rounds.append((time.perf_counter() - t) / calls / batch)
    rounds.sort()
    return rounds[len(rounds) // 2]


def criterion_estimate(target, model, threads, batch):
    """Our seconds per image: criterion's median for one call over batch."""
    path = target / "criterion" / f"forward_{model}" / f"{threads}" / f"{batch}" / "new" / "estimates.json"
    estimates = json.loads(path.read_text())
    return estimates["median"]["point_estimate"] * 1e-9 / batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=ROOT / "artifacts/full/models", help="a study's models folder")
    parser.add_argument("--images", type=Path, default=ROOT / "fixtures/mnist/t10k-images-idx3-ubyte.gz")
    parser.add_argument("--seconds", type=float, default=1.0, help="PyTorch's measuring time per point")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("torch is not installed (Debian: apt-get install python3-torch): nothing to compare with")

    paths = sorted(args.models.glob("*-seed0-*.safetensors"))
    if not paths:
        sys.exit(f"{args.models}: no *-seed0-*.safetensors (run `cargo xtask reproduce` first, or pass --models)")
    names = [p.name.split("-seed0-")[0] for p in paths]
    x = read_images(args.images)
    cores = os.cpu_count() or 1

    # Per model, PyTorch's points then ours, back to back in this one run,
    # so that a drift in the machine's speed hits both alike.
    print(f"PyTorch {torch.__version__}, {cores} cores; {len(paths)} models: {', '.join(names)}", flush=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    env = dict(os.environ, MODCIRC_BENCH_MODELS=str(args.models.resolve()))
    bench = ["cargo", "bench", "-q", "-p", "modcirc-mlp", "--bench", "forward", "--"]
    subprocess.run(bench + ["--list"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    theirs = {}
    for name, path in zip(names, paths):
        model = sequential(path)
        for threads, count in (("one_thread", 1), ("all_threads", cores)):
            torch.set_num_threads(count)
            for batch in BATCHES:
                theirs[name, threads, batch] = time_torch(model, x, batch, args.seconds)
        subprocess.run(bench + ["--noplot", f"forward/{name}/"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"{name}: done", flush=True)
    print()
    print("| model | threads | batch | modcirc µs/image | PyTorch µs/image | PyTorch / modcirc |")
    print("|---|---|---:|---:|---:|---:|")
    for name in names:
        for threads in ("one_thread", "all_threads"):
            for batch in BATCHES:
                ours = criterion_estimate(target, name, threads, batch)
                torch_s = theirs[name, threads, batch]
                label = "1" if threads == "one_thread" else str(cores)
                print(f"| {name} | {label} | {batch} | {ours * 1e6:.2f} | {torch_s * 1e6:.2f} | {torch_s / ours:.2f}x |")


if __name__ == "__main__":
    main()
