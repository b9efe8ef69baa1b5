#!/usr/bin/env python3
"""The inference benchmark beside PyTorch and ONNX Runtime, in one run.

Times PyTorch's forward of each seed-0 checkpoint of a study (the same
safetensors files, loaded into an ``nn.Sequential``) and ONNX Runtime's
(the same weights as an ONNX graph of ``Gemm`` and activation nodes, built
with the ``onnx`` package's helpers, run by a CPU session with all graph
optimisations) on MNIST's first 500 test images at batch 1, 100 and 500,
on one thread and on every thread; then runs the project's criterion
benchmark of the same checkpoints at the same points (``cargo bench -p
modcirc-mlp --bench forward``) and prints all three, per image, with each
runtime's time over ours.

    python3 benches/compare_pytorch.py [--models artifacts/full/models]

Needs numpy and torch (from pip: Debian's ``python3-torch`` is linked to the
reference BLAS, 30-45 times slower, no fair opponent); without
torch it says so and exits 1. ONNX Runtime's column needs ``onnxruntime``
and ``onnx`` (pip); without them it is left out, and the script says so. Run it with nothing else running: a build
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


def onnx_model(path):
    """The checkpoint as ONNX bytes: per layer ``Gemm(x, W, b, transB=1)``,
    the activation between layers (SiLU as ``x * Sigmoid(x)``)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tensors, metadata = read_safetensors(path)
    act = metadata.get("activation", "silu")
    nodes, inits = [], []
    k, current = 1, "x"
    while f"fc{k}.weight" in tensors:
        w, b = tensors[f"fc{k}.weight"], tensors[f"fc{k}.bias"]
        inits += [numpy_helper.from_array(np.ascontiguousarray(w), f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes.append(helper.make_node("Gemm", [current, f"w{k}", f"b{k}"], [f"z{k}"], transB=1))
        current = f"z{k}"
        if f"fc{k + 1}.weight" in tensors:
            if act == "silu":
                nodes += [
                    helper.make_node("Sigmoid", [current], [f"s{k}"]),
                    helper.make_node("Mul", [current, f"s{k}"], [f"a{k}"]),
                ]
            elif act in ("relu", "tanh", "sigmoid"):
                nodes.append(helper.make_node(act.capitalize() if act != "relu" else "Relu", [current], [f"a{k}"]))
            elif act == "identity":
                nodes.append(helper.make_node("Identity", [current], [f"a{k}"]))
            else:
                sys.exit(f"{path}: activation {act!r} has no ONNX form in this script")
            current = f"a{k}"
        k += 1
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    n_in = tensors["fc1.weight"].shape[1]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", None])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(onnx_bytes, threads):
    """A CPU session of ONNX Runtime on `threads` threads, every graph
    optimisation on, operators run one after another."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def time_calls(call, batch, seconds=1.0):
    """Seconds per image of `call()` on a batch of `batch`: the median over
    rounds of about 50 ms, after a warm-up."""
    for _ in range(20):
        call()
    calls = 1
    while True:
        t = time.perf_counter()
        for _ in range(calls):
            call()
        if time.perf_counter() - t > 0.05:
            break
        calls *= 2
    rounds = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rounds) < 5:
        t = time.perf_counter()
        for _ in range(calls):
            call()
        rounds.append((time.perf_counter() - t) / calls / batch)
    rounds.sort()
    return rounds[len(rounds) // 2]


def time_torch(model, x, batch, seconds=1.0):
    """PyTorch's seconds per image at `batch`."""
    import torch

    xs = torch.from_numpy(x[:batch].copy())
    with torch.inference_mode():
        return time_calls(lambda: model(xs), batch, seconds)


def time_ort(session, x, batch, seconds=1.0):
    """ONNX Runtime's seconds per image at `batch`."""
    import numpy as np

    xs = np.ascontiguousarray(x[:batch])
    return time_calls(lambda: session.run(["y"], {"x": xs}), batch, seconds)


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
    try:
        import onnx  # noqa: F401
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
        print("onnxruntime or onnx is not installed (pip install onnxruntime onnx): ONNX Runtime is left out")

    paths = sorted(args.models.glob("*-seed0-*.safetensors"))
    if not paths:
        sys.exit(f"{args.models}: no *-seed0-*.safetensors (run `cargo xtask reproduce` first, or pass --models)")
    names = [p.name.split("-seed0-")[0] for p in paths]
    x = read_images(args.images)
    cores = os.cpu_count() or 1

    # Per model, PyTorch's points then ours, back to back in this one run,
    # so that a drift in the machine's speed hits both alike.
    ort_label = f", ONNX Runtime {ort_version}" if ort_version else ""
    print(f"PyTorch {torch.__version__}{ort_label}, {cores} cores; {len(paths)} models: {', '.join(names)}", flush=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    env = dict(os.environ, MODCIRC_BENCH_MODELS=str(args.models.resolve()))
    bench = ["cargo", "bench", "-q", "-p", "modcirc-mlp", "--bench", "forward", "--"]
    subprocess.run(bench + ["--list"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    theirs, ort_s = {}, {}
    for name, path in zip(names, paths):
        model = sequential(path)
        graph = onnx_model(path) if ort_version else None
        for threads, count in (("one_thread", 1), ("all_threads", cores)):
            torch.set_num_threads(count)
            session = ort_session(graph, count) if graph else None
            for batch in BATCHES:
                theirs[name, threads, batch] = time_torch(model, x, batch, args.seconds)
                if session is not None:
                    ort_s[name, threads, batch] = time_ort(session, x, batch, args.seconds)
        subprocess.run(bench + ["--noplot", f"forward/{name}/"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"{name}: done", flush=True)
    print()
    ort_head = (" ONNX Runtime µs/image | ONNX Runtime / modcirc |", "---:|---:|") if ort_s else ("", "")
    print(f"| model | threads | batch | modcirc µs/image | PyTorch µs/image | PyTorch / modcirc |{ort_head[0]}")
    print(f"|---|---|---:|---:|---:|---:|{ort_head[1]}")
    for name in names:
        for threads in ("one_thread", "all_threads"):
            for batch in BATCHES:
                ours = criterion_estimate(target, name, threads, batch)
                torch_s = theirs[name, threads, batch]
                label = "1" if threads == "one_thread" else str(cores)
                row = f"| {name} | {label} | {batch} | {ours * 1e6:.2f} | {torch_s * 1e6:.2f} | {torch_s / ours:.2f}x |"
                if ort_s:
                    o = ort_s[name, threads, batch]
                    row += f" {o * 1e6:.2f} | {o / ours:.2f}x |"
                print(row)


if __name__ == "__main__":
    main()
