"""Data sets: MNIST from its IDX files, or any images and labels as arrays."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _native
from ._common import PathLike


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

    def split(self, name: str = "test", *, flat: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """``(images, labels [n] uint8)`` of ``train`` or ``test``: images
        ``[n, rows, cols]`` float32, or with ``flat=True`` ``[n, rows * cols]``,
        what an MLP takes (``torch.from_numpy(x)`` feeds it directly)."""
        images, labels, rows, cols = self._native.split(name)
        shape = (-1, rows * cols) if flat else (-1, rows, cols)
        x = np.frombuffer(images, dtype="<f4").reshape(shape)
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


def _data(data: Union[Data, PathLike]) -> Data:
    if isinstance(data, Data):
        return data
    if isinstance(data, (str, os.PathLike)):
        return mnist(data)
    raise ValueError(f"data: expected a modcirc.Data or a directory, got {type(data).__name__}")
