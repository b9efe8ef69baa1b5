"""Type stubs of the Rust core (``python/src/lib.rs``). The public API is
the ``modcirc`` package; these take and give bytes, strings and numbers."""

from os import PathLike
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

__version__: str
DEFAULT_K: int
DEFAULT_EPS: float
DEFAULT_BOOTSTRAPS: int
DEFAULT_SAMPLE: int
DEFAULT_TAU: float
ACDC_PAIRS: int
STUDY_STEPS: int
ACTIVATIONS: List[str]

_Path = Union[str, PathLike[str]]
_Pairs = Optional[Sequence[Tuple[int, int]]]
_Split = Tuple[bytes, bytes, int, int]

class Model:
    @staticmethod
    def load(path: _Path, activation: Optional[str] = None) -> Model: ...
    @staticmethod
    def from_safetensors(data: bytes, origin: str, activation: Optional[str] = None) -> Model: ...
    @property
    def sizes(self) -> List[int]: ...
    @property
    def activation(self) -> str: ...
    @property
    def regime(self) -> Optional[str]: ...
    @property
    def origin(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    def meta_json(self) -> Optional[str]: ...
    def layers(self) -> List[Tuple[bytes, bytes]]: ...
    def forward(self, x: bytes, n: int) -> bytes: ...
    def save(self, path: _Path) -> None: ...

class Data:
    @staticmethod
    def load(dir: _Path, verify: bool = True) -> Data: ...
    @staticmethod
    def from_arrays(test: _Split, train: Optional[_Split] = None, name: str = "arrays") -> Data: ...
    @property
    def lengths(self) -> Tuple[int, int]: ...
    @property
    def dir(self) -> str: ...
    def checksums_json(self) -> str: ...
    def split(self, split: str) -> _Split: ...

class Discovery:
    def json(self) -> str: ...
    def effects(self) -> List[List[float]]: ...
    def faithfulness(self, ablation: Optional[str] = None) -> Optional[float]: ...
    def stability(self, method: str, resamples: Optional[int] = None) -> str: ...
    def export(self, format: str = "json") -> str: ...
    def html(self, label: str = "model") -> str: ...
    def controls(
        self,
        random: Optional[int] = None,
        alternatives: Optional[int] = None,
        faithful: Optional[float] = None,
        seed: int = 0,
        optimal_pairs: Optional[int] = None,
    ) -> str: ...

class Options:
    def __init__(
        self,
        *,
        k: Optional[Sequence[int]] = None,
        select: str = "topk",
        min_effect: Optional[float] = None,
        min_share: Optional[float] = None,
        live_only: bool = False,
        eps: Optional[float] = None,
        ablation: str = "zero",
        bootstraps: Optional[int] = None,
        sample: Optional[int] = None,
        split: str = "test",
        seed: int = 0,
        target_faithfulness: Optional[float] = None,
        max_memory_gib: Optional[int] = None,
    ) -> None: ...

def discover(
    model: Model,
    data: Data,
    task: Optional[str],
    pairs: _Pairs,
    options: Options,
    progress: Optional[Callable[[int], Any]] = None,
) -> Discovery: ...
def compare(
    models: Sequence[Tuple[str, Model]],
    data: Data,
    task: str,
    options: Options,
    *,
    tau: Optional[float] = None,
    acdc_metric: str = "kl",
    acdc_zero: bool = False,
    acdc_pairs: Optional[int] = None,
    methods: Optional[Sequence[str]] = None,
    random: Optional[int] = None,
    baseline: Optional[str] = None,
    progress: Optional[Callable[[int], Any]] = None,
) -> str: ...
def evaluate(
    model: Model,
    data: Data,
    task: str,
    circuit: bytes,
    kind: Optional[str] = None,
    *,
    split: str = "test",
    seed: int = 0,
    bootstraps: Optional[int] = None,
    sample: Optional[int] = None,
    random: Optional[int] = None,
    optimal_pairs: Optional[int] = None,
) -> str: ...
def attribution(
    model: Model, data: Data, task: Optional[str] = None, pairs: _Pairs = None, *, split: str = "test", seed: int = 0
) -> str: ...
def eap(
    model: Model, data: Data, task: Optional[str] = None, pairs: _Pairs = None, *, split: str = "test", seed: int = 0
) -> List[bytes]: ...
METHODS: List[str]

def scores(
    model: Model,
    data: Data,
    method: str,
    task: Optional[str] = None,
    pairs: _Pairs = None,
    *,
    options: Optional[str] = None,
    split: str = "test",
    seed: int = 0,
) -> Tuple[str, Optional[List[bytes]]]: ...
def acdc(
    model: Model,
    data: Data,
    task: Optional[str] = None,
    pairs: _Pairs = None,
    *,
    tau: Optional[float] = None,
    metric: str = "kl",
    zero_ablation: bool = False,
    max_pairs: Optional[int] = None,
    split: str = "test",
    seed: int = 0,
    progress: Optional[Callable[[int], Any]] = None,
) -> str: ...
def modularity(model: Model, eps: Optional[float] = None, seed: int = 0, null: bool = False) -> str: ...
def train(
    regime: str,
    data: Data,
    *,
    steps: Optional[int] = None,
    seed: int = 0,
    sizes: Optional[Sequence[int]] = None,
    activation: Optional[str] = None,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[int], Any]] = None,
) -> Model: ...
