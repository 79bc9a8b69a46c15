"""Component contracts: what each registered component must provide.

Plugins register classes (or factories); the runner builds one instance per registry entry,
passing the entry's parameters as keyword arguments, and then calls the methods below.
``BaseModel`` implements the parts of the model contract that follow from ``score_features``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator, Protocol, runtime_checkable

from .atomic import write_json
from .data import ITEM, USER, RecData
from .errors import DataError, UnsupportedError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .causal import CausalGraph
    from .context import PipelineContext
    from .explanation import Explanation
    from .results import CausalReport, CompressionReport, FeedbackReport


@runtime_checkable
class Dataset(Protocol):
    """``Dataset(**params).load() -> RecData``."""

    def load(self) -> RecData: ...


@runtime_checkable
class Model(Protocol):
    """A recommender. ``score_features`` returns the raw model output (margin/logit) that
    explainers explain; ``capabilities`` tells explainers what the model offers
    (e.g. "tree", "differentiable", "attention", "sequence")."""

    name: str
    capabilities: frozenset[str]
    feature_names: list[str]

    def fit(self, data: RecData, ctx: "PipelineContext | None" = None) -> dict: ...
    def score_features(self, X: "pd.DataFrame") -> "np.ndarray": ...
    def score(self, rows: "pd.DataFrame") -> "np.ndarray": ...
    def recommend(self, user: Any, k: int, context: "dict[str, Any] | None" = None) -> "pd.DataFrame": ...
    def save(self, directory: Path) -> None: ...


TORCH_NETWORK = "torch-network"
TORCH_NETWORK_WEIGHTS = "weights.safetensors"


@runtime_checkable
class TorchNetwork(Protocol):
    """The ``torch-network`` capability: the model scores feature rows with one torch module.

    A model that declares it (``provides=["torch-network"]`` and the same in ``capabilities``)
    lets other plugins (pruning, quantisation, fine-tuning) work on its network without
    importing its class:

    - ``torch_module()``: the ``nn.Module`` that scores;
    - ``torch_inputs(X)``: the module's input tensors for feature rows ``X`` (columns
      ``feature_names``), on the module's device: ``torch_module()(*torch_inputs(X))`` is the
      logit per row, what ``score_features(X)`` returns;
    - ``with_module(module)``: a copy of the model (same class, parameters, data binding and
      encoder) that scores with ``module`` on the device ``module`` lives on; the original is
      untouched;
    - ``save(dir)`` writes the module's ``state_dict()`` to ``dir/weights.safetensors``
      (``TORCH_NETWORK_WEIGHTS``) next to the model's own files, and the registered class's
      ``load(dir, data)`` reads it back: so a compressor can store the weights its own way and
      rebuild the model through the registry (never a pickle).
    """

    capabilities: frozenset[str]

    def torch_module(self) -> Any: ...
    def torch_inputs(self, X: "pd.DataFrame") -> tuple: ...
    def with_module(self, module: Any) -> "TorchNetwork": ...
    def save(self, directory: Path) -> None: ...


STRUCTURED_NETWORK = "structured-network"


@runtime_checkable
class StructuredNetwork(Protocol):
    """The optional ``structured-network`` capability, on top of ``torch-network``: whole parts
    of the network can be removed or shrunk (structured pruning and same-family students), so a
    compressed copy is physically smaller and faster, not just sparser.

    - ``torch_module().structured_units()``: ``{"layers": n, "heads": [heads of block 0, ...]}``;
    - ``torch_module().without_units(layers=[...], heads={block: [head, ...]})``: a new module of
      the same class without those blocks and heads (numbered as in this module), the other
      weights copied; ``with_module`` turns it into a model, and the model's own ``save`` /
      ``load`` keep the smaller shape (its config records it). Asking for more than exists, or
      for no block or no head of a block left, is an error naming what exists;
    - ``clone_architecture(**shape)``: a new, untrained model of the same class on the same
      data and encoder with some constructor parameters changed (e.g. ``embedding_dim``,
      ``layers``, ``heads``, ``hidden``): the student a compressor distils into.
    """

    capabilities: frozenset[str]

    def torch_module(self) -> Any: ...
    def clone_architecture(self, **shape: Any) -> "StructuredNetwork": ...


@runtime_checkable
class Explainer(Protocol):
    def supports(self, model: Model) -> bool: ...
    def explain(self, model: Model, data: RecData, pairs: "pd.DataFrame") -> "Explanation": ...


@runtime_checkable
class CausalLearner(Protocol):
    def learn(self, data: RecData) -> "CausalGraph": ...
    def fit(self, data: RecData, graph: "CausalGraph") -> None: ...
    def intervene(self, do: dict[str, Any]) -> "pd.DataFrame": ...
    def run(self, ctx: "PipelineContext") -> "CausalReport": ...


@runtime_checkable
class Compressor(Protocol):
    def compress(self, model: Model, data: RecData, ctx: "PipelineContext | None" = None) -> "tuple[Model, CompressionReport]": ...


@runtime_checkable
class FeedbackAnalyzer(Protocol):
    def analyze(self, events: "pd.DataFrame", ctx: "PipelineContext | None" = None) -> "FeedbackReport": ...


@runtime_checkable
class Executor(Protocol):
    def map_batches(self, fn: Callable[[Any], Any], batches: Iterable[Any]) -> Iterator[Any]: ...


KINDS = {
    "datasets": Dataset,
    "models": Model,
    "explainers": Explainer,
    "causal_learners": CausalLearner,
    "compressors": Compressor,
    "feedback_analyzers": FeedbackAnalyzer,
    "executors": Executor,
}


def check_k(user: Any, k: int, n: int) -> None:
    """``recommend``'s refusal of a k outside 1 .. the user's ``n`` candidates (one line)."""
    if k < 1 or k > n:
        raise DataError(f"k={k} but user {getattr(user, 'item', lambda: user)()!r} has {n} candidate items; use 1 <= k <= {n}")


class BaseModel:
    """Shared model plumbing: binding to data, scoring pairs, top-k, metrics, metadata.

    Subclasses set ``name``/``capabilities``, implement ``fit`` (call ``self.bind(data)``
    first), ``score_features``, ``_save_weights(dir)`` and ``_load_weights(dir)``.
    """

    name: ClassVar[str] = "model"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.data: RecData | None = None
        self.feature_names: list[str] = []

    def bind(self, data: RecData, feature_names: list[str] | None = None) -> None:
        self.data = data
        self.feature_names = list(feature_names if feature_names is not None else data.schema.names)

    def _require_data(self) -> RecData:
        if self.data is None:
            raise UnsupportedError(f"model {self.name!r} is not fitted or loaded; call fit(data) or load(dir, data) first")
        return self.data

    def score(self, rows: "pd.DataFrame") -> "np.ndarray":
        """Model outputs of whole (user, item, context) rows (``RecData.features`` builds them)."""
        data = self._require_data()
        return self.score_features(data.features(rows)[self.feature_names])

    def recommend(self, user: Any, k: int, context: "dict[str, Any] | None" = None) -> "pd.DataFrame":
        """Top-k unseen items for ``user``: columns user, item, score, rank (1 = best), and the
        dataset's context columns: the ``context`` given, else the user's latest logged context
        (``RecData.with_context``; ``out.attrs["context"]`` says which)."""
        import numpy as np
        import pandas as pd

        data = self._require_data()
        user = data.check_user(user)
        cands = data.candidates(user)
        check_k(user, k, len(cands))
        pairs = data.user_pairs(user, cands, context)
        scores = self.score(pairs)
        top = np.argsort(-scores, kind="stable")[:k]
        out = pd.DataFrame({USER: user, ITEM: cands[top], "score": scores[top], "rank": np.arange(1, k + 1)})
        for c in data.context_names:
            out[c] = pairs[c].to_numpy()[top]
        out.attrs["context"] = pairs.attrs.get("context", {})
        return out

    def evaluate(self, data: RecData | None = None, **kw: Any) -> dict:
        from .metrics import evaluate_model

        return evaluate_model(self, data or self._require_data(), **kw)

    # -- persistence: JSON metadata next to the plugin's own safe weight format ---------
    def save(self, directory: str | Path) -> None:
        data = self._require_data()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self._save_weights(d)
        write_json(d / "model.json", {
            "model": self.name, "params": self.params, "feature_names": self.feature_names,
            "schema": data.schema.select(self.feature_names).to_dict(), "data_hash": data.data_hash(),
        })

    @classmethod
    def load(cls, directory: str | Path, data: RecData) -> "BaseModel":
        d = Path(directory)
        meta_path = d / "model.json"
        if not meta_path.exists():
            raise DataError(f"{d}: no model.json; this is not a saved whyrec model")
        meta = read_json(meta_path, "model description")
        from .schema import FeatureSchema

        if not isinstance(meta, dict) or not {"schema", "model", "params", "feature_names"} <= set(meta):
            raise DataError(f"{meta_path}: not a whyrec model description (keys schema, model, params, feature_names); "
                            "re-save the model or rerun the pipeline")
        saved = FeatureSchema.from_dict(meta["schema"])
        missing = [f.name for f in saved if f.name not in data.schema]
        changed = [f.name for f in saved if f.name in data.schema and data.schema[f.name].kind != f.kind]
        if missing or changed:
            raise DataError(
                f"{d}: saved model {meta['model']!r} does not match dataset {data.name!r}: "
                f"missing features {missing}, features of another kind {changed}; retrain on this data"
            )
        model = cls(**meta["params"])
        model.bind(data, meta["feature_names"])
        model._load_weights(d)
        return model

    def _save_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def n_parameters(self) -> int | None:
        return None


def read_json(path: Path, what: str) -> Any:
    """A JSON file of a saved model or run, or one clear error: such files are only ever parsed
    as text (a pickle or other binary put in their place is refused, never loaded)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a JSON {what} ({type(exc).__name__}; a binary or pickled file is never loaded); "
                        "re-save the model or rerun the pipeline") from exc
