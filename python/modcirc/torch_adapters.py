"""PyTorch modules in: an ``nn.Sequential`` of ``Linear`` layers and
activations, checked against the module's own forward."""

from __future__ import annotations

import os
from typing import Any, List, Optional, Union

import numpy as np

from ._common import PathLike
from .models import Model, from_state_dict, load


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


def _model(model: Union[Model, PathLike]) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load(model)
    if hasattr(model, "state_dict") and hasattr(model, "modules"):
        return from_module(model)
    raise ValueError(f"model: expected a modcirc.Model, a path or a torch module, got {type(model).__name__}")
