"""Discovery and every analysis of a circuit: ``discover`` and its
``Discovery``, every method's ``scores``, the controls, ``compare``,
attribution, EAP, ACDC, modularity."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import ACDC_PAIRS, DEFAULT_BOOTSTRAPS, DEFAULT_EPS, DEFAULT_K, DEFAULT_SAMPLE, DEFAULT_TAU
from ._common import PathLike, Progress, Task, _arrays, _optional_whole, _whole, _with_progress
from .data import Data, _data
from .models import Model
from .torch_adapters import _model


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
        answer margin). ``None``: the headline, the study's form, removed
        edges carrying the corrupted run's values (``raw["report"]
        ["full_faithfulness"]``, what ``compare`` and ``evaluate`` report
        first); ``"zero"``, ``"mean"``, ``"resample"`` or ``"optimal"``
        (constants fitted jointly for the circuit on training pairs of every
        digit pair, STUDY §12): under that ablation, from its empty circuit. ``None`` is returned where it is undefined (the
        model answers the same on clean and corrupted images)."""
        return self._native.faithfulness(ablation)

    def stability(self, method: str, resamples: Optional[int] = None) -> Dict[str, Any]:
        """STUDY §12 for ``method`` (``"eap-ig"``, ``"mask"``, …) on this
        discovery's pairs: its circuit of as many edges as the discovered
        one, found again on each of the discovery's first ``resamples``
        bootstrap resamples (the study's count where ``None``: 10, or 3 for
        the methods that train masks). ``stability``: ``mean`` and ``min``
        pairwise Jaccard overlap of their neurons (1: the same circuit every
        time), ``neurons``, ``seconds``; ``agreement``: Spearman's ``rho`` of
        its node scores against exact patching's effects, ``top_k_overlap``."""
        return json.loads(self._native.stability(method, _optional_whole("resamples", resamples, 2, 1000)))

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
        f = self.raw["report"].get("full_faithfulness")
        faithful = "undefined" if f is None else f"{f:.4f}"
        return (
            f"Discovery(task={self.task!r}, pairs={len(self.pairs)}, kept=[{kept}], edges={self.circuit.n_edges}, "
            f"faithfulness={faithful}, accuracy={s['accuracy']['mean']:.4f}, "
            f"logit_difference={s['logit_difference']['mean']:.4f})"
        )


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
    ``ablation`` is what removed neurons carry (zero, mean, resample, optimal: constants fitted jointly for the circuit on training pairs of every digit pair, STUDY §12).
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
    #: Each condition, summarised over its models (seeds): every metric's mean and interval.
    conditions: List[Dict[str, Any]]
    #: Every metric tested between conditions: exact permutation p, Holm-corrected within the metric.
    tests: List[Dict[str, Any]]
    #: One line per metric: what the tests say.
    answers: List[str]
    #: What could mislead (edge rules keeping very different shares of the weights).
    warnings: List[str]
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
    methods: Optional[Sequence[str]] = None,
    random: Optional[int] = None,
    baseline: Optional[str] = None,
    progress: Progress = False,
) -> Comparison:
    """Several models on one task, side by side, and the question they
    answer together: the CLI's ``compare``.

    ``models``: ``(condition, model)`` pairs (or a mapping of one model per
    condition); models sharing a condition are its seeds. Each gets the
    discovery :func:`discover` would give it (``target_faithfulness``
    defaults to 0.8 here; the smallest circuits uniform and per layer),
    STUDY §10's controls (``random`` random circuits per pool, 0: none),
    STUDY §8 and §12's methods (``methods``: names, default the study's
    edge methods) with their stability, edge-level ACDC (``tau``,
    ``acdc_metric``, ``acdc_zero``, on ``acdc_pairs`` pairs), its edges by
    the eps and the activation-aware rule, and Q. Then every metric is
    tested between conditions (each against ``baseline``, or every pair):
    ``tests`` (exact permutation p over checkpoints, Holm-corrected within
    the metric) and ``answers`` (one line per metric).
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
            acdc_pairs=pairs_n, methods=None if methods is None else [str(m) for m in methods],
            random=_optional_whole("random", random, 0, 100_000), baseline=baseline, progress=cb,
        ),
    )
    r = _arrays(json.loads(text))
    return Comparison(
        models=r["models"],
        conditions=r["conditions"],
        tests=r["tests"],
        answers=[a["line"] for a in r["answers"]],
        warnings=r["warnings"],
        settings=r["settings"],
        json=text,
    )


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


def modularity(
    model: Union[Model, PathLike], eps: Optional[float] = DEFAULT_EPS, seed: int = 0, null: bool = False
) -> Dict[str, Any]:
    """Q (Louvain), communities and spectral n-cuts of the model's weight
    graph: by default the edges the eps rule keeps (``eps`` = the study's
    0.01, the graph ``compare`` and the study's F1 judge), or with
    ``eps=None`` every nonzero weight. ``graph`` says which.
    ``spread``: the least and largest Q of the Louvain runs and the mean
    pairwise NMI of their partitions; with ``null=True``, ``null``: Q against
    20 rewirings that keep every neuron's edges per layer and every edge's
    weight (``mean``, ``sd``, ``z``), as the study judges F1 (STUDY §9)."""
    if not isinstance(null, bool):
        raise ValueError(f"null: expected True or False, got {null!r}")
    q = json.loads(_native.modularity(_model(model)._native, eps, _whole("seed", seed), null))
    q["graph"] = "every nonzero weight" if eps is None else f"the eps edges (eps = {eps})"
    return q


def evaluate(
    model: Union[Model, PathLike],
    data: Union[Data, PathLike],
    task: str,
    *,
    nodes: Optional[Sequence[Sequence[int]]] = None,
    edges: Optional[Sequence[Sequence[int]]] = None,
    circuit: Union[None, PathLike, Mapping[str, Any], "Discovery"] = None,
    kind: Optional[str] = None,
    eps: float = DEFAULT_EPS,
    split: str = "test",
    seed: int = 0,
    bootstraps: Optional[int] = None,
    sample: Optional[int] = None,
    random: Optional[int] = None,
    optimal_pairs: Optional[int] = None,
) -> Dict[str, Any]:
    """A circuit you choose, scored like a discovered one (the CLI's ``evaluate``).

    Give exactly one of ``nodes`` (kept neurons per hidden layer, with the
    ``eps`` edges between them), ``edges`` (``(layer, output, input)``
    weights, layer 0 the first Linear) or ``circuit`` (a file or dict: an
    exported circuit graph, a ``discover`` or ``beyond`` output, whose
    circuit ``kind`` picks, or ``{"nodes": ...}`` / ``{"edges": ...}``; or a
    :class:`Discovery`). Returns ``faithfulness`` (the headline: all pairs,
    removed edges carrying corrupted values), ``faithfulness_resampled``
    (its bootstrap mean and interval), ``ablations`` (logit difference,
    accuracy and faithfulness under zero, mean, resample and optimal
    ablation) and ``random`` (against ``random`` random circuits of its
    size: ``faithfulness.p_value``, ``faithfulness.random``)."""
    given = [x is not None for x in (nodes, edges, circuit)]
    if sum(given) != 1:
        raise ValueError("circuit: give exactly one of nodes, edges or circuit")
    if nodes is not None:
        text = json.dumps({"nodes": [[_whole("nodes", i) for i in layer] for layer in nodes], "eps": float(eps)})
    elif edges is not None:
        text = json.dumps({"edges": [[_whole("edges", v) for v in e] for e in edges]})
    elif isinstance(circuit, Discovery):
        text = circuit.to_json()
    elif isinstance(circuit, Mapping):
        text = json.dumps(circuit)
    else:
        path = os.fspath(circuit)
        if not os.path.isfile(path):
            # Not a FIFO or a device, whose read would never end.
            raise ValueError(f"circuit: {path!r} is not a regular file")
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    m, d = _model(model), _data(data)
    out = _native.evaluate(
        m._native,
        d._native,
        task,
        text.encode("utf-8"),
        kind,
        split=split,
        seed=_whole("seed", seed),
        bootstraps=_optional_whole("bootstraps", bootstraps, 1),
        sample=_optional_whole("sample", sample, 1),
        random=_optional_whole("random", random, 1),
        optimal_pairs=_optional_whole("optimal_pairs", optimal_pairs, 1),
    )
    return json.loads(out)
