"""modcirc: circuit discovery by activation patching on any MLP, from Python.

The numbers are the command line's: every call below runs the same Rust
library function as ``cargo xtask discover`` (and ``beyond``, ``train``),
so a discovery from a notebook equals the CLI's on the same model and pairs.

>>> import modcirc                                       # doctest: +SKIP
>>> model = modcirc.from_module(net)                     # doctest: +SKIP
>>> data = modcirc.mnist("fixtures/mnist")               # doctest: +SKIP
>>> d = modcirc.discover(model, data, "circle", k=15)    # doctest: +SKIP
>>> d.nodes, d.faithfulness()                            # doctest: +SKIP

Only numpy is needed; torch (``from_module``, ``from_state_dict`` of
tensors), networkx (``Discovery.to_networkx``), matplotlib
(``Discovery.plot``) and tqdm (``progress=True``) are used when installed.
Long calls release the GIL and stop on Ctrl-C with ``KeyboardInterrupt``.
"""

from __future__ import annotations

import json
import numbers
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import (
    ACDC_PAIRS,
    ACTIVATIONS,
    DEFAULT_BOOTSTRAPS,
    DEFAULT_EPS,
    DEFAULT_K,
    DEFAULT_SAMPLE,
    DEFAULT_TAU,
)

__version__: str = _native.__version__

__all__ = [
    "ACDC_PAIRS",
    "ACTIVATIONS",
    "DEFAULT_BOOTSTRAPS",
    "DEFAULT_EPS",
    "DEFAULT_K",
    "DEFAULT_SAMPLE",
    "DEFAULT_TAU",
    "Circuit",
    "Comparison",
    "Controls",
    "Data",
    "Discovery",
    "METHODS",
    "MethodScores",
    "Model",
    "acdc",
    "attribution",
    "compare",
    "discover",
    "eap",
    "from_arrays",
    "from_module",
    "from_state_dict",
    "load",
    "mnist",
    "scores",
    "modularity",
    "train",
]

PathLike = Union[str, "os.PathLike[str]"]
Task = Union[str, Sequence[Tuple[int, int]], np.ndarray]
Progress = Union[bool, None, Callable[[int, int], Any]]


# ---------------------------------------------------------------- arguments

_U64_MAX = 2**64 - 1


def _whole(name: str, value: Any, lo: int = 0, hi: int = _U64_MAX) -> int:
    """``value`` as a whole number in ``[lo, hi]``, or a ``ValueError``
    naming the argument: not a float that happens to be whole (``1.5`` or
    ``2.0``), not a bool (``True`` is not 1 here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected a whole number, got {value!r} ({type(value).__name__})")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name}: {v} is outside {lo}..{hi}")
    return v


def _optional_whole(name: str, value: Any, lo: int = 0, hi: int = _U64_MAX) -> Optional[int]:
    return None if value is None else _whole(name, value, lo, hi)


# ---------------------------------------------------------------- models


class Model:
    """A network: linear layers with one activation between them.

    Build one with :func:`load`, :func:`from_state_dict`,
    :func:`from_module` or :func:`train`.
    """

    def __init__(self, native: "_native.Model") -> None:
        self._native = native

    @property
    def sizes(self) -> List[int]:
        """Neurons per layer, input first (``[784, 100, 100, 10]``)."""
        return list(self._native.sizes)

    @property
    def activation(self) -> str:
        """The hidden layers' activation (one of :data:`ACTIVATIONS`)."""
        return self._native.activation

    @property
    def regime(self) -> Optional[str]:
        """The training regime its sidecar records, if any."""
        return self._native.regime

    @property
    def origin(self) -> str:
        """The file it was read from, or where its weights came from."""
        return self._native.origin

    @property
    def sha256(self) -> str:
        """SHA-256 of its safetensors bytes."""
        return self._native.sha256

    @property
    def meta(self) -> Optional[Dict[str, Any]]:
        """What its sidecar records (training configuration, accuracy, timings), if any."""
        text = self._native.meta_json()
        return None if text is None else json.loads(text)

    def weights(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Each layer's ``(weight [n_out, n_in], bias [n_out])``, float32 (copies)."""
        sizes = self.sizes
        out = []
        for (w, b), n_in, n_out in zip(self._native.layers(), sizes[:-1], sizes[1:]):
            out.append(
                (
                    np.frombuffer(w, dtype="<f4").reshape(n_out, n_in).copy(),
                    np.frombuffer(b, dtype="<f4").copy(),
                )
            )
        return out

    def state_dict(self) -> Dict[str, np.ndarray]:
        """The weights under PyTorch's names for attributes ``fc1``, ``fc2``, ...

        ``nn.Sequential`` users rename ``fc{k}`` to ``{2(k-1)}``.
        """
        sd: Dict[str, np.ndarray] = {}
        for k, (w, b) in enumerate(self.weights(), start=1):
            sd[f"fc{k}.weight"] = w
            sd[f"fc{k}.bias"] = b
        return sd

    def forward(self, x: Any) -> np.ndarray:
        """The logits of inputs ``x`` (``[n, n_inputs]``, or ``[n, 28, 28]`` images)."""
        x = _float_rows(x, self.sizes[0], "x")
        y = self._native.forward(x.tobytes(), x.shape[0])
        return np.frombuffer(y, dtype="<f4").reshape(x.shape[0], self.sizes[-1]).copy()

    __call__ = forward

    def predict(self, x: Any) -> np.ndarray:
        """The predicted class of each input."""
        return self.forward(x).argmax(axis=1)

    def save(self, path: PathLike) -> None:
        """Writes the checkpoint as safetensors (``fc{k}.*`` names, the
        activation in its metadata), through a temporary file; a trained
        model's sidecar is written beside it, so the CLI accepts it. A
        ``.json`` path is refused: it is where a checkpoint's sidecar lives."""
        if os.fspath(path).lower().endswith(".json"):
            raise ValueError(
                f"path: {os.fspath(path)!r} ends in .json, the name of a checkpoint's sidecar; "
                "save the model as .safetensors"
            )
        self._native.save(os.fspath(path))

    def __repr__(self) -> str:
        regime = f", regime={self.regime!r}" if self.regime else ""
        return f"Model(sizes={self.sizes}, activation={self.activation!r}{regime})"


def load(path: PathLike, activation: Optional[str] = None) -> Model:
    """Reads a safetensors checkpoint.

    Layers may be named ``fc1.weight``, ``fc1.bias``, ... (module
    attributes) or ``0.weight``, ``2.weight``, ... (``nn.Sequential``),
    under any prefix; F32, F16, BF16 and F64 are read. The activation comes
    from the file's metadata, or from ``activation`` when the file does not
    say (a file that does not say, read without it, is an error).
    """
    return Model(_native.Model.load(os.fspath(path), activation))


_DTYPES = {"float32": "F32", "float16": "F16", "float64": "F64"}


def _as_array(name: str, value: Any) -> np.ndarray:
    """A tensor or array as a numpy array of a dtype safetensors names."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":  # numpy has no bfloat16; widening is exact
            t = t.float()
        value = t.contiguous().numpy()
    arr = np.asarray(value)
    if arr.dtype.name not in _DTYPES:
        raise ValueError(f"state dict: {name!r} is {arr.dtype}, not float16, bfloat16, float32 or float64")
    return arr


def _safetensors_bytes(tensors: Mapping[str, np.ndarray]) -> bytes:
    """The safetensors encoding of ``tensors``, as ``safetensors.numpy.save`` writes it."""
    header: Dict[str, Any] = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": _DTYPES[arr.dtype.name],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def from_state_dict(
    state_dict: Mapping[str, Any], activation: Optional[str] = None, *, name: str = "state dict"
) -> Model:
    """A network from a state dict of torch tensors or numpy arrays.

    The names follow the rules of a file (see :func:`load`): the state dict
    of a module with ``fc1``, ``fc2``, ... attributes, or of an
    ``nn.Sequential`` of ``nn.Linear`` layers and activations, optionally
    under a prefix. ``activation`` names the hidden layers' activation
    (``relu``, ``gelu``, ``silu``, ...).
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state dict: expected a mapping of names to tensors, got {type(state_dict).__name__}")
    arrays = {str(k): _as_array(str(k), v) for k, v in state_dict.items()}
    return Model(_native.Model.from_safetensors(_safetensors_bytes(arrays), name, activation))


def _module_activation(net: Any) -> Optional[str]:
    """The one activation module type among ``net``'s modules, by our name."""
    import torch.nn as nn

    found = set()
    for m in net.modules():
        if isinstance(m, nn.GELU):
            found.add("gelu-tanh" if getattr(m, "approximate", "none") == "tanh" else "gelu")
        elif isinstance(m, nn.ReLU):
            found.add("relu")
        elif isinstance(m, nn.SiLU):
            found.add("silu")
        elif isinstance(m, nn.Tanh):
            found.add("tanh")
        elif isinstance(m, nn.Sigmoid):
            found.add("sigmoid")
        elif isinstance(m, (nn.Linear, nn.Sequential, nn.Flatten, nn.Dropout, nn.Identity)) or m is net:
            continue
        elif not list(m.children()):
            raise ValueError(
                f"module: {type(m).__name__} is not a layer modcirc runs "
                "(Linear layers with one activation between them: ReLU, GELU, SiLU, Tanh or Sigmoid)"
            )
    if len(found) > 1:
        raise ValueError(f"module: more than one activation ({', '.join(sorted(found))}); modcirc runs one")
    return found.pop() if found else None


def _check_order(net: Any) -> None:
    """An ``nn.Sequential``'s layers in the order modcirc runs them: Linear,
    then an activation and a Linear as often as there are hidden layers
    (Flatten, Dropout and Identity anywhere); no activation first or last."""
    import torch.nn as nn

    def leaves(m: Any) -> List[Any]:
        if isinstance(m, nn.Sequential):
            return [x for c in m for x in leaves(c)]
        return [m]

    kinds = []
    for m in leaves(net):
        if isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity)):
            continue
        kinds.append("linear" if isinstance(m, nn.Linear) else "activation")
    expected = ["linear", "activation"] * (kinds.count("linear") - 1) + ["linear"]
    if kinds != expected:
        raise ValueError(
            "module: its layers run as " + " -> ".join(kinds) + "; modcirc runs Linear, then activation and Linear "
            "in turn, ending with a Linear (no activation before the first Linear or after the last)"
        )


def _check_forward(net: Any, model: "Model") -> None:
    """``net``'s own forward on a fixed batch gives the network read from
    it: a skip connection, a reordered call or a function applied in
    ``forward`` would make another network of the same weights."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((16, model.sizes[0]), dtype=np.float32)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            theirs = net(torch.from_numpy(x)).detach().cpu().double().numpy().reshape(16, -1)
    except Exception as e:  # its forward cannot take a batch of flat rows
        raise ValueError(f"module: its forward does not take a batch of {model.sizes[0]} inputs ({e})") from e
    finally:
        net.train(was_training)
    ours = model.forward(x).astype(np.float64)
    if theirs.shape != ours.shape:
        raise ValueError(f"module: its forward gives {theirs.shape[1]} outputs, the layers read give {ours.shape[1]}")
    gap = float(np.max(np.abs(theirs - ours)))
    scale = 1.0 + float(np.max(np.abs(ours)))
    if not gap <= 1e-4 * scale:
        raise ValueError(
            f"module: its forward differs from the layers read by up to {gap:.3g} on a test batch (a skip "
            "connection, reordered layers, or an activation applied where modcirc does not?); modcirc runs "
            "Linear and one activation in turn"
        )


def from_module(net: Any, activation: Optional[str] = None) -> Model:
    """A network from a PyTorch module: an ``nn.Sequential`` of ``nn.Linear``
    layers and activation modules (``nn.Flatten`` and ``nn.Dropout`` are
    allowed), or a module whose ``nn.Linear`` layers are attributes
    ``fc1``, ``fc2``, .... The activation is read from its modules; a module
    that applies it as a function in ``forward`` must name it with
    ``activation``. The module's own forward is run on a fixed batch and
    must give what the network read from it gives. Imports torch (only
    here)."""
    if not (hasattr(net, "modules") and hasattr(net, "state_dict") and callable(net)):
        raise ValueError(f"module: expected a torch.nn.Module, got {type(net).__name__}")
    import torch.nn as nn

    detected = _module_activation(net)
    if isinstance(net, nn.Sequential):
        _check_order(net)
    if activation is not None and detected is not None and activation != detected:
        raise ValueError(f"activation: {activation!r}, but the module's activation modules are {detected!r}")
    act = activation or detected
    if act is None:
        raise ValueError(
            "activation: the module has no activation module (applied as a function in forward?); "
            "pass activation='relu' (or gelu, silu, ...)"
        )
    model = from_state_dict(net.state_dict(), act, name=f"{type(net).__name__} (from_module)")
    _check_forward(net, model)
    return model


def _float_rows(x: Any, width: int, what: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255)
    x = np.ascontiguousarray(x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(1, -1), dtype="<f4")
    if x.shape[1] != width:
        raise ValueError(f"{what}: rows of {x.shape[1]} values, the model takes {width}")
    return x


# ---------------------------------------------------------------- data


class Data:
    """Images and labels, in a training and a test split.

    Build it with :func:`mnist` (IDX files) or :func:`from_arrays`.
    Pixels are floats in [0, 1] (``byte / 255`` for uint8 images).
    """

    def __init__(self, native: "_native.Data") -> None:
        self._native = native

    @property
    def dir(self) -> str:
        """Where the data came from."""
        return self._native.dir

    @property
    def checksums(self) -> List[Dict[str, Any]]:
        """Each file's (or array's) SHA-256."""
        return json.loads(self._native.checksums_json())

    def split(self, name: str = "test") -> Tuple[np.ndarray, np.ndarray]:
        """``(images [n, rows, cols] float32, labels [n] uint8)`` of ``train`` or ``test``."""
        images, labels, rows, cols = self._native.split(name)
        x = np.frombuffer(images, dtype="<f4").reshape(-1, rows, cols)
        return x, np.frombuffer(labels, dtype=np.uint8)

    def __repr__(self) -> str:
        train, test = self._native.lengths
        return f"Data(dir={self.dir!r}, train={train}, test={test})"


def mnist(dir: Optional[PathLike] = None, verify: bool = True) -> Data:
    """MNIST (or any data with its IDX file names, raw or gzip'd) from ``dir``.

    ``dir`` defaults to ``$MODCIRC_DATA_DIR``. Files listed in the
    directory's ``SHA256SUMS`` are checked unless ``verify`` is false.
    """
    if dir is None:
        dir = os.environ.get("MODCIRC_DATA_DIR")
        if not dir:
            raise ValueError("dir: give the data directory (the clone's fixtures/mnist) or set MODCIRC_DATA_DIR")
    return Data(_native.Data.load(os.fspath(dir), verify))


def _split_arrays(images: Any, labels: Any, what: str) -> Tuple[bytes, bytes, int, int]:
    x = np.asarray(images)
    y = np.asarray(labels)
    if x.ndim == 3:
        rows, cols = x.shape[1], x.shape[2]
    elif x.ndim == 2:
        side = int(round(x.shape[1] ** 0.5))
        rows, cols = (side, side) if side * side == x.shape[1] else (1, x.shape[1])
    else:
        raise ValueError(f"{what} images: shape {x.shape}; expected [n, rows, cols] or [n, pixels]")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{what} labels: shape {y.shape} for {x.shape[0]} images")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() > 255):
        raise ValueError(f"{what} labels: expected whole numbers 0-255, got {y.dtype}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255)
    elif not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} images: {x.dtype}; expected uint8 (0-255) or floats in [0, 1]")
    x = np.ascontiguousarray(x, dtype="<f4")
    return x.tobytes(), np.ascontiguousarray(y, dtype=np.uint8).tobytes(), rows, cols


def from_arrays(
    images: Any,
    labels: Any,
    train_images: Any = None,
    train_labels: Any = None,
    *,
    name: str = "arrays",
) -> Data:
    """Data from numpy arrays: ``images`` and ``labels`` are the test split
    (the one discovery uses by default), ``train_*`` the training split
    (needed by :func:`train`). uint8 images are scaled by 1/255; float
    images are taken as they are."""
    test = _split_arrays(images, labels, "test")
    train = None
    if (train_images is None) != (train_labels is None):
        raise ValueError("train_images: give train_images and train_labels together")
    if train_images is not None:
        train = _split_arrays(train_images, train_labels, "train")
    return Data(_native.Data.from_arrays(test, train, name))


# ---------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Circuit:
    """A node circuit: the neurons kept in each hidden layer, and the
    weights among them that the eps rule keeps (STUDY §5)."""

    nodes: List[np.ndarray]
    """Kept neurons per hidden layer, ascending."""
    eps: float
    """The edge threshold, relative to each layer's largest |weight|."""
    n_edges: int
    """Edges the circuit keeps."""

    def __repr__(self) -> str:
        kept = ", ".join(str(len(n)) for n in self.nodes)
        return f"Circuit(kept per hidden layer=[{kept}], edges={self.n_edges}, eps={self.eps})"


def _or_nan(values: Sequence[Optional[float]]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


class Discovery:
    """What :func:`discover` found: scores, the circuit, every resample.

    ``raw`` is the output exactly as ``cargo xtask discover`` writes it.
    """

    def __init__(self, native: "_native.Discovery") -> None:
        self._native = native
        self.raw: Dict[str, Any] = json.loads(native.json())
        report = self.raw["report"]
        self.task: str = self.raw["inputs"]["task"]["name"]
        self.notes: List[str] = self.raw["notes"]
        self.pairs: np.ndarray = np.array(
            [(p["clean"], p["corrupted"]) for p in self.raw["pairs"]], dtype=np.int64
        ).reshape(-1, 2)
        """``(clean, corrupted)`` image indices of every pair, in the split."""
        self.baseline: float = report["scores"]["baseline"]
        """The unpatched logit difference: scores are judged against it."""
        self.scores: List[np.ndarray] = [np.array(s, dtype=float) for s in report["scores"]["layers"]]
        """Each hidden neuron's patching score (lower: patching it moves the
        corrupted logits closer to the clean ones)."""
        self.effects: List[np.ndarray] = [np.array(e, dtype=float) for e in native.effects()]
        """Baseline minus score per neuron (0 for a dead neuron)."""
        sel = report["selection"]
        self.nodes: List[np.ndarray] = [np.array(n, dtype=np.int64) for n in sel["nodes"]]
        """The selected neurons per hidden layer."""
        self.dead: List[np.ndarray] = [np.array(n, dtype=np.int64) for n in sel["dead"]]
        """Neurons whose patch changes nothing, per hidden layer."""
        self.circuit = Circuit(self.nodes, float(self.raw["inputs"]["flags"]["eps"]), int(report["full_n_edges"]))
        self.summary: Dict[str, Any] = report["summary"]
        """Mean and 95% interval of each metric over the resamples."""
        boots = report["bootstraps"]
        self.resamples: Dict[str, np.ndarray] = {
            "logit_difference": np.array([b["logit_difference"] for b in boots], dtype=float),
            "accuracy": np.array([b["accuracy"] for b in boots], dtype=float),
            "model_accuracy": np.array([b["model_accuracy"] for b in boots], dtype=float),
            "sparsity": np.array([b["sparsity"] for b in boots], dtype=float),
            "faithfulness": _or_nan([b["faithfulness"] for b in boots]),
            "faithfulness_ablated": _or_nan([b["faithfulness_ablated"] for b in boots]),
            "n_edges": np.array([b["n_edges"] for b in boots], dtype=np.int64),
            "discovery_s": np.array([b["discovery_s"] for b in boots], dtype=float),
        }
        """Each resample's metrics, one array per metric (NaN where faithfulness is undefined)."""
        curve = report.get("node_curve")
        self.node_curve: Optional[Dict[str, np.ndarray]] = None if curve is None else {
            "k": np.array(curve["k"], dtype=np.int64),
            "edges": np.array(curve["edges"], dtype=np.int64),
            "faithfulness": np.array(curve["faithfulness"], dtype=float),
        }
        """Faithfulness of the K strongest neurons per layer, for every K, on all pairs."""
        self.edge_curve: Optional[Dict[str, Any]] = report.get("edge_curve")
        """Faithfulness of the top-|EAP| edge circuits over their size, with CPR and CMD."""
        self.smallest: Optional[Dict[str, Any]] = report.get("smallest")
        """The smallest circuits reaching ``target_faithfulness``, where it was given."""
        self.seconds: float = self.raw["total_s"]

    def faithfulness(self, ablation: Optional[str] = None) -> Optional[float]:
        """The circuit's faithfulness on all pairs (1: it keeps the model's
        answer margin). ``None``: the study's form, removed edges carrying
        the corrupted run's values; ``"zero"``, ``"mean"`` or ``"resample"``:
        under that ablation. ``None`` is returned where it is undefined (the
        model answers the same on clean and corrupted images)."""
        return self._native.faithfulness(ablation)

    def controls(
        self,
        *,
        random: Optional[int] = None,
        alternatives: Optional[int] = None,
        faithful: Optional[float] = None,
        seed: int = 0,
        optimal_pairs: Optional[int] = None,
    ) -> Controls:
        """STUDY §10 on this circuit, the CLI's ``controls``: ``random``
        circuits of its size per pool, up to ``alternatives`` disjoint
        alternatives (faithful from ``faithful``), the any-digit control
        (``seed`` draws it and the random circuits) and the other ablations
        (optimal's constants fitted on ``optimal_pairs`` training pairs)."""
        return Controls._of(
            self._native.controls(
                random=_optional_whole("random", random, 1),
                alternatives=_optional_whole("alternatives", alternatives),
                faithful=faithful,
                seed=_whole("seed", seed),
                optimal_pairs=_optional_whole("optimal_pairs", optimal_pairs, 1),
            )
        )

    def export(self, format: str = "json") -> str:
        """The circuit as ``cargo xtask export`` writes it: ``"json"`` (the
        circuit graph, docs/circuit-graph.md) or ``"dot"`` (Graphviz)."""
        return self._native.export(format)

    def html(self, label: str = "model") -> str:
        """The model's page (``discover --html``) as one HTML document."""
        return self._native.html(label)

    def to_json(self) -> str:
        """The output as the CLI writes it."""
        return self._native.json()

    def to_networkx(self) -> Any:
        """The circuit graph as a ``networkx.DiGraph``: every neuron a node,
        every weight an edge, with the export's attributes (``in_graph``,
        ``score``, ``weight``, ...). Needs networkx."""
        try:
            import networkx as nx
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_networkx needs networkx: pip install networkx") from e
        graph = json.loads(self.export("json"))
        g = nx.DiGraph(**graph["cfg"])
        for name, attrs in graph["nodes"].items():
            g.add_node(name, **attrs)
        for name, attrs in graph["edges"].items():
            source, target = name.split("->")
            g.add_edge(source, target, **attrs)
        return g

    def plot(self, ax: Any = None) -> Any:
        """Faithfulness against K (the K strongest neurons of each hidden
        layer) on all pairs, the selected K marked. Needs matplotlib;
        returns the axes."""
        import matplotlib.pyplot as plt

        if self.node_curve is None:
            raise ValueError("plot: faithfulness is undefined on these pairs (the model answers them alike)")
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.2))
        c = self.node_curve
        ax.plot(c["k"], c["faithfulness"], marker=".", label="top-K circuit")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        kept = max((len(n) for n in self.nodes), default=0)
        f = self.faithfulness()
        if f is not None:
            ax.scatter([kept], [f], color="C3", zorder=3, label=f"selected (faithfulness {f:.3f})")
        ax.set_xlabel("K, neurons kept per hidden layer")
        ax.set_ylabel("faithfulness (all pairs)")
        ax.set_title(f"task {self.task}")
        ax.legend(frameon=False)
        return ax

    def __repr__(self) -> str:
        kept = ", ".join(str(len(n)) for n in self.nodes)
        s = self.summary
        return (
            f"Discovery(task={self.task!r}, pairs={len(self.pairs)}, kept=[{kept}], edges={self.circuit.n_edges}, "
            f"logit_difference={s['logit_difference']['mean']:.4f}, accuracy={s['accuracy']['mean']:.4f})"
        )


def _model(model: Union[Model, PathLike]) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load(model)
    if hasattr(model, "state_dict") and hasattr(model, "modules"):
        return from_module(model)
    raise ValueError(f"model: expected a modcirc.Model, a path or a torch module, got {type(model).__name__}")


def _data(data: Union[Data, PathLike]) -> Data:
    if isinstance(data, Data):
        return data
    if isinstance(data, (str, os.PathLike)):
        return mnist(data)
    raise ValueError(f"data: expected a modcirc.Data or a directory, got {type(data).__name__}")


def _task(task: Task) -> Tuple[Optional[str], Optional[List[Tuple[int, int]]]]:
    if isinstance(task, str):
        return task, None
    arr = np.asarray(task)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer) or (arr.size and arr.min() < 0):
        raise ValueError(
            "task: expected 'circle', 'line', a spec like '8:3,6:5', or (clean, corrupted) index pairs [n, 2]"
        )
    pairs = [(int(a), int(b)) for a, b in arr]
    same = next(((a, b) for a, b in pairs if a == b), None)
    if same is not None:
        raise ValueError(f"task: the pair {same} patches an image with itself; a pair is two images of two digits")
    return None, pairs


class _Bar:
    """A progress bar for ``progress=True``: tqdm's where installed, else a line on stderr."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.bar, self.shown = total, desc, None, -1
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc)
        except ImportError:
            pass

    def __call__(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        elif done * 100 // max(self.total, 1) != self.shown:
            self.shown = done * 100 // max(self.total, 1)
            print(f"\r{self.desc}: {done}/{self.total}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            print(file=sys.stderr)


def _with_progress(progress: Progress, total: int, desc: str, call: Callable[[Any], Any]) -> Any:
    if not progress:
        return call(None)
    if progress is True:
        bar = _Bar(total, desc)
        try:
            return call(bar)
        finally:
            bar.close()
    if not callable(progress):
        raise ValueError("progress: expected True, False or a function of (done, total)")
    return call(lambda done: progress(done, total))


def discover(
    model: Union[Model, PathLike],
    data: Union[Data, PathLike],
    task: Task,
    k: Union[int, Sequence[int]] = DEFAULT_K,
    *,
    select: str = "topk",
    min_effect: Union[None, float, str] = None,
    live_only: bool = False,
    eps: float = DEFAULT_EPS,
    ablation: str = "zero",
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    sample: int = DEFAULT_SAMPLE,
    split: str = "test",
    seed: int = 0,
    target_faithfulness: Optional[float] = None,
    max_memory_gib: Optional[int] = None,
    progress: Progress = False,
) -> Discovery:
    """Finds a circuit by activation patching (STUDY §4-§5): the CLI's ``discover``.

    ``task``: ``"circle"``, ``"line"``, pairs of digits like ``"8:3,6:5"``
    (the CLI's pairing, shuffled by ``seed``), or explicit ``(clean,
    corrupted)`` image index pairs into ``split``. ``select="topk"`` keeps
    the ``k`` lowest scores per hidden layer (one K, or one per layer);
    ``select="threshold"`` keeps every live neuron whose effect is at least
    ``min_effect`` (logits, or a share of the baseline as ``"5%"``).
    ``ablation`` is what removed neurons carry (zero, mean, resample, optimal: the constant fitted on the task's training pairs).
    Metrics come with ``bootstraps`` resamples of ``sample`` pairs.
    ``target_faithfulness`` also finds the smallest circuits reaching it.
    ``progress``: True for a bar, or a function of ``(done, total)``.
    """
    m, d = _model(model), _data(data)
    spec, pairs = _task(task)
    options = _options(
        k,
        select=select,
        min_effect=min_effect,
        live_only=live_only,
        eps=eps,
        ablation=ablation,
        bootstraps=bootstraps,
        sample=sample,
        split=split,
        seed=seed,
        target_faithfulness=target_faithfulness,
        max_memory_gib=max_memory_gib,
    )
    native = _with_progress(
        progress,
        bootstraps,
        "resamples",
        lambda cb: _native.discover(m._native, d._native, spec, pairs, options, progress=cb),
    )
    return Discovery(native)


def _options(
    k: Union[int, Sequence[int]],
    *,
    select: str,
    min_effect: Union[None, float, str],
    live_only: bool,
    eps: float,
    ablation: str,
    bootstraps: int,
    sample: int,
    split: str,
    seed: int,
    target_faithfulness: Optional[float],
    max_memory_gib: Optional[int],
) -> "_native.Options":
    """A discovery's options, as :func:`discover` and :func:`compare` take
    them, checked by the library (its conflicts, bounds and messages)."""
    kwargs: Dict[str, Any] = dict(
        select=select,
        live_only=live_only,
        eps=eps,
        ablation=ablation,
        bootstraps=_whole("bootstraps", bootstraps, 1),
        sample=_whole("sample", sample, 1),
        split=split,
        seed=_whole("seed", seed),
        target_faithfulness=target_faithfulness,
        max_memory_gib=_optional_whole("max_memory_gib", max_memory_gib, 1, 4096),
    )
    if select == "topk":
        ks = [k] if np.isscalar(k) or isinstance(k, bool) else list(k)  # type: ignore[arg-type]
        kwargs["k"] = [_whole("k", v, 1, 2**32 - 1) for v in ks]
    elif k != DEFAULT_K:
        raise ValueError('k: applies to select="topk" only')
    if isinstance(min_effect, str):
        text = min_effect.strip()
        if not text.endswith("%"):
            raise ValueError(f"min_effect: {min_effect!r}; give logits (0.5) or a share of the baseline ('5%')")
        kwargs["min_share"] = float(text[:-1]) / 100.0
    elif min_effect is not None:
        kwargs["min_effect"] = float(min_effect)
    return _native.Options(**kwargs)


def _arrays(value: Any) -> Any:
    """JSON with every list of numbers as a float array."""
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        plain = value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        return np.array(value, dtype=float) if plain else [_arrays(v) for v in value]
    return value


@dataclass(frozen=True)
class Controls:
    """STUDY §10 on a discovered circuit (:meth:`Discovery.controls`): the
    CLI's ``controls`` JSON, its lists of numbers as arrays."""

    #: The circuit's metrics on all pairs.
    circuit: Dict[str, Any]
    #: Against random circuits of its size: from live neurons, then from all.
    random: List[Dict[str, Any]]
    #: The best circuits disjoint from it and from each other.
    alternatives: List[Dict[str, Any]]
    #: How many alternatives reach the faithful threshold.
    faithful_alternatives: int
    #: The any-digit control.
    any_digit: Dict[str, Any]
    #: The resamples under each other ablation.
    ablations: List[Dict[str, Any]]
    #: The whole result as the CLI writes it.
    json: str

    @staticmethod
    def _of(text: str) -> "Controls":
        r = json.loads(text)
        a = _arrays(r)
        return Controls(
            circuit=a["circuit"],
            random=a["random"],
            alternatives=a["alternatives"],
            faithful_alternatives=int(r["faithful_alternatives"]),
            any_digit=a["any_digit"],
            ablations=a["ablations"],
            json=text,
        )


@dataclass(frozen=True)
class Comparison:
    """Several models on one task (:func:`compare`): the CLI's
    ``compare.json``, its lists of numbers as arrays."""

    #: Each model, judged.
    models: List[Dict[str, Any]]
    #: Each condition, summarised over its models (seeds).
    conditions: List[Dict[str, Any]]
    #: The discovery and ACDC settings every model got.
    settings: Dict[str, Any]
    #: The whole result as the CLI writes it.
    json: str


def compare(
    models: Union[Mapping[str, Union[Model, PathLike]], Sequence[Tuple[str, Union[Model, PathLike]]]],
    data: Union[Data, PathLike],
    task: str,
    k: Union[int, Sequence[int]] = DEFAULT_K,
    *,
    select: str = "topk",
    min_effect: Union[None, float, str] = None,
    live_only: bool = False,
    eps: float = DEFAULT_EPS,
    ablation: str = "zero",
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    sample: int = DEFAULT_SAMPLE,
    split: str = "test",
    seed: int = 0,
    target_faithfulness: Optional[float] = None,
    max_memory_gib: Optional[int] = None,
    tau: Optional[float] = None,
    acdc_metric: str = "kl",
    acdc_zero: bool = False,
    acdc_pairs: Optional[int] = None,
    progress: Progress = False,
) -> Comparison:
    """Several models on one task, side by side: the CLI's ``compare``.

    ``models``: ``(condition, model)`` pairs (or a mapping of one model per
    condition); models sharing a condition are its seeds. Each gets the
    discovery :func:`discover` would give it (``target_faithfulness``
    defaults to 0.8 here), STUDY §8's curve, edge-level ACDC (``tau``,
    ``acdc_metric``, ``acdc_zero``, on ``acdc_pairs`` pairs) and Q.
    """
    pairs_of = list(models.items()) if isinstance(models, Mapping) else list(models)
    loaded = [(str(c), _model(m)._native) for c, m in pairs_of]
    d = _data(data)
    options = _options(
        k,
        select=select,
        min_effect=min_effect,
        live_only=live_only,
        eps=eps,
        ablation=ablation,
        bootstraps=bootstraps,
        sample=sample,
        split=split,
        seed=seed,
        target_faithfulness=target_faithfulness,
        max_memory_gib=max_memory_gib,
    )
    pairs_n = _optional_whole("acdc_pairs", acdc_pairs, 1, 100_000)
    text = _with_progress(
        progress,
        bootstraps * max(len(loaded), 1),
        "resamples",
        lambda cb: _native.compare(
            loaded, d._native, task, options, tau=tau, acdc_metric=acdc_metric, acdc_zero=acdc_zero,
            acdc_pairs=pairs_n, progress=cb,
        ),
    )
    r = _arrays(json.loads(text))
    return Comparison(models=r["models"], conditions=r["conditions"], settings=r["settings"], json=text)


def attribution(
    model: Union[Model, PathLike], data: Union[Data, PathLike], task: Task, *, split: str = "test", seed: int = 0
) -> Dict[str, List[np.ndarray]]:
    """Node attribution patching on every pair: ``{"attribution": [...],
    "exact": [...]}``, per hidden layer the first-order estimate of each
    neuron's patching effect and the exact effect it estimates."""
    m, d = _model(model), _data(data)
    spec, pairs = _task(task)
    out = json.loads(_native.attribution(m._native, d._native, spec, pairs, split=split, seed=_whole("seed", seed)))
    return {key: [np.array(layer, dtype=float) for layer in layers] for key, layers in out.items()}


def eap(
    model: Union[Model, PathLike], data: Union[Data, PathLike], task: Task, *, split: str = "test", seed: int = 0
) -> List[np.ndarray]:
    """Edge attribution patching on every pair: one score per weight, each
    layer's ``[n_out, n_in]`` as the weights are laid out."""
    m, d = _model(model), _data(data)
    spec, pairs = _task(task)
    layers = _native.eap(m._native, d._native, spec, pairs, split=split, seed=_whole("seed", seed))
    sizes = m.sizes
    return [
        np.frombuffer(b, dtype="<f4").reshape(n_out, n_in).copy() for b, n_in, n_out in zip(layers, sizes, sizes[1:])
    ]


#: Every discovery method's name (``modcirc_acdc::Method``), for :func:`scores`.
METHODS: List[str] = list(_native.METHODS)


@dataclass(frozen=True)
class MethodScores:
    """A discovery method's scores on a task (:func:`scores`)."""

    #: The method and its options, as the CLI records them (``{"method": "eap-ig", "steps": 32}``).
    method: Dict[str, Any]
    #: Per hidden layer, each neuron's importance (higher is more).
    nodes: List[np.ndarray]
    #: Per weight layer ``[n_out, n_in]``, each edge's signed score, for the methods that rank edges.
    edges: Optional[List[np.ndarray]]
    #: The edges ``[layer, output, input]`` the method keeps itself (ACDC's), else ``None``.
    kept_edges: Optional[List[Tuple[int, int, int]]]
    #: The pairs the scores came from.
    pairs: int
    #: Wall time of the scores.
    seconds: float


def scores(
    model: Union[Model, PathLike],
    data: Union[Data, PathLike],
    task: Task,
    method: str = "patching",
    *,
    split: str = "test",
    seed: int = 0,
    **options: Any,
) -> MethodScores:
    """Any discovery method's scores on every pair of ``task``: ``method``
    one of :data:`METHODS` (the CLI's names), ``options`` its options by
    name as the CLI records them (``steps=`` for EAP-IG, ``pairs=`` and
    ``config=`` for the masks and ACDC), checked as the CLI checks them."""
    m, d = _model(model), _data(data)
    spec, pairs = _task(task)
    meta, layers = _native.scores(
        m._native,
        d._native,
        method,
        spec,
        pairs,
        options=json.dumps(options) if options else None,
        split=split,
        seed=_whole("seed", seed),
    )
    out = json.loads(meta)
    sizes = m.sizes
    edges = None
    if layers is not None:
        edges = [
            np.frombuffer(b, dtype="<f4").reshape(n_out, n_in).copy() for b, n_in, n_out in zip(layers, sizes, sizes[1:])
        ]
    kept = out["kept_edges"]
    return MethodScores(
        method=out["method"],
        nodes=[np.array(layer, dtype=float) for layer in out["nodes"]],
        edges=edges,
        kept_edges=None if kept is None else [tuple(e) for e in kept],
        pairs=out["pairs"],
        seconds=out["seconds"],
    )


def acdc(
    model: Union[Model, PathLike],
    data: Union[Data, PathLike],
    task: Task,
    *,
    tau: float = DEFAULT_TAU,
    metric: str = "kl",
    zero_ablation: bool = False,
    max_pairs: int = ACDC_PAIRS,
    split: str = "test",
    seed: int = 0,
    progress: Progress = False,
) -> Dict[str, Any]:
    """Edge-level ACDC on the first ``max_pairs`` pairs: the kept edges
    (``edges``, rows ``[layer, output, input]``), their count, the metric of
    the model and of the circuit. ``progress`` counts the receiving neurons
    whose incoming edges are tested."""
    m, d = _model(model), _data(data)
    spec, pairs = _task(task)
    text = _with_progress(
        progress,
        sum(m.sizes[1:]),
        "ACDC receivers",
        lambda cb: _native.acdc(
            m._native,
            d._native,
            spec,
            pairs,
            tau=tau,
            metric=metric,
            zero_ablation=zero_ablation,
            max_pairs=_whole("max_pairs", max_pairs, 1),
            split=split,
            seed=_whole("seed", seed),
            progress=cb,
        ),
    )
    out = json.loads(text)
    out["edges"] = np.array(out["edges"], dtype=np.int64).reshape(-1, 3)
    return out


def modularity(model: Union[Model, PathLike], eps: Optional[float] = None, seed: int = 0) -> Dict[str, Any]:
    """Q (Louvain), communities and spectral n-cuts of the model's weight
    graph: every nonzero weight, or with ``eps`` the edges the eps rule keeps."""
    return json.loads(_native.modularity(_model(model)._native, eps, _whole("seed", seed)))


def train(
    regime: str,
    data: Union[Data, PathLike],
    *,
    steps: Optional[int] = None,
    seed: int = 0,
    sizes: Optional[Sequence[int]] = None,
    activation: Optional[str] = None,
    batch_size: Optional[int] = None,
    progress: Progress = False,
) -> Model:
    """Trains a model under ``regime`` (vanilla, l1, l1-local, l1-swap,
    bimt) with the study's trainer: the study's settings where an option is
    None. The same seed gives the same weights."""
    d = _data(data)
    steps = _optional_whole("steps", steps, 1)
    seed = _whole("seed", seed)
    batch_size = _optional_whole("batch_size", batch_size, 1)
    sizes = None if sizes is None else [_whole("sizes", s, 1) for s in sizes]
    total = steps if steps is not None else _native.STUDY_STEPS
    native = _with_progress(
        progress,
        total,
        f"training {regime}",
        lambda cb: _native.train(
            regime,
            d._native,
            steps=steps,
            seed=seed,
            sizes=sizes,
            activation=activation,
            batch_size=batch_size,
            progress=cb,
        ),
    )
    return Model(native)
