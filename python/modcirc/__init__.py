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

from . import _native
from ._native import ACDC_PAIRS, ACTIVATIONS, DEFAULT_BOOTSTRAPS, DEFAULT_EPS, DEFAULT_K, DEFAULT_SAMPLE, DEFAULT_TAU
from .data import Data, from_arrays, mnist
from .discovery import (
    METHODS,
    Circuit,
    Comparison,
    Controls,
    Discovery,
    MethodScores,
    acdc,
    attribution,
    compare,
    discover,
    eap,
    evaluate,
    modularity,
    scores,
)
from .models import Model, from_state_dict, load, train
from .torch_adapters import from_module

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
    "evaluate",
    "from_arrays",
    "from_module",
    "from_state_dict",
    "load",
    "mnist",
    "scores",
    "modularity",
    "train",
]
