"""What every module of the package shares: argument checks, progress, JSON
as arrays."""

from __future__ import annotations

import numbers
import os
import sys
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np


PathLike = Union[str, "os.PathLike[str]"]


Task = Union[str, Sequence[Tuple[int, int]], np.ndarray]


Progress = Union[bool, None, Callable[[int, int], Any]]


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


def _arrays(value: Any) -> Any:
    """JSON with every list of numbers as a float array."""
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        plain = value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        return np.array(value, dtype=float) if plain else [_arrays(v) for v in value]
    return value
