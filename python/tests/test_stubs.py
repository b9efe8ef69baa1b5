"""The type stubs (``_native.pyi``) cannot drift from the native module:
every function, class and method they declare exists, with the same
parameters in the same order, kinds and defaults, and every native
function is declared."""

import ast
import inspect
from pathlib import Path

import pytest

from modcirc import _native

STUBS = Path(__file__).resolve().parents[1] / "modcirc" / "_native.pyi"


def _stub_params(fn: ast.FunctionDef):
    a = fn.args
    out = []
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for arg, d in zip(positional, defaults):
        out.append((arg.arg, "positional", None if d is None else ast.literal_eval(d)))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, "keyword", None if d is None else ast.literal_eval(d)))
    return [p for p in out if p[0] != "self"]


def _native_params(obj):
    sig = inspect.signature(obj)
    out = []
    for p in sig.parameters.values():
        if p.name in ("self", "cls", "$self", "$cls"):
            continue
        kind = "keyword" if p.kind is p.KEYWORD_ONLY else "positional"
        default = None if p.default is p.empty else p.default
        out.append((p.name, kind, default))
    return out


def _declared():
    tree = ast.parse(STUBS.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, getattr(_native, node.name, None), node
        elif isinstance(node, ast.ClassDef):
            cls = getattr(_native, node.name, None)
            assert cls is not None, f"class {node.name} is in the stubs, not in the module"
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and not any(
                    isinstance(d, ast.Name) and d.id == "property" for d in f.decorator_list
                ):
                    target = cls if f.name == "__init__" else getattr(cls, f.name, None)
                    yield f"{node.name}.{f.name}", target, f


@pytest.mark.parametrize("name,obj,fn", list(_declared()), ids=lambda x: x if isinstance(x, str) else "")
def test_each_stub_matches_its_native_signature(name, obj, fn):
    assert obj is not None, f"{name} is in the stubs, not in the module"
    assert _stub_params(fn) == _native_params(obj), name


def test_every_native_function_has_a_stub():
    declared = {n for n, _, _ in _declared()}
    native = {n for n, v in vars(_native).items() if callable(v) and not isinstance(v, type) and not n.startswith("_")}
    assert native <= declared, native - declared
