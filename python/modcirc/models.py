"""Models: checkpoints, state dicts, and training (the CLI's trainer)."""

from __future__ import annotations

import json
import os
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._common import PathLike, Progress, _optional_whole, _whole, _with_progress
from .data import Data, _data


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
