"""What every whyrec-shap explainer shares: support checks with a useful refusal, input
checks, building the Explanation (reasons included), figures and the quality report."""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import DataError, UnsupportedError
from whyrec.explanation import Explanation

# Explainers of this plugin, used when the plugin catalogue cannot be asked.
MODEL_AGNOSTIC = ("exact-field-shapley", "permutation-shap", "kernel-shap")


def is_model_agnostic_target(model: Any) -> bool:
    """Model-agnostic explainers need ``score_features`` over the model's ``feature_names``."""
    return callable(getattr(model, "score_features", None)) and bool(getattr(model, "feature_names", None))


def supporting_explainers(model: Any) -> list[str]:
    """Names of the registered explainers whose ``supports(model)`` is True."""
    names: list[str] = []
    try:
        import whyrec

        host = whyrec.get_host()
        for name in host.names("explainers"):
            try:
                if host.create("explainers", name).supports(model):
                    names.append(name)
            except Exception:  # noqa: BLE001  (an explainer needing params is skipped, not fatal)
                continue
    except Exception:  # noqa: BLE001
        names = []
    if not names and is_model_agnostic_target(model):
        names = list(MODEL_AGNOSTIC)
    return names


def check_pairs(data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
    """The explained pairs must name known users and items."""
    for col in (USER, ITEM):
        if col not in pairs.columns:
            raise DataError(f"pairs to explain have no {col!r} column (columns: {list(pairs.columns)})")
    if len(pairs) == 0:
        raise DataError("no pairs to explain: the pairs table is empty")
    bad_u = pairs.loc[~pairs[USER].isin(data.users.index), USER].unique().tolist()
    if len(bad_u):
        raise DataError(f"users {bad_u[:5]} are not in dataset {data.name!r} ({len(data.users)} users, e.g. {data.users.index[:3].tolist()})")
    bad_i = pairs.loc[~pairs[ITEM].isin(data.items.index), ITEM].unique().tolist()
    if len(bad_i):
        raise DataError(f"items {bad_i[:5]} are not in dataset {data.name!r} ({len(data.items)} items, e.g. {data.items.index[:3].tolist()})")
    return pairs.reset_index(drop=True)


class ShapExplainer:
    """Base class: subclasses set ``name`` and implement ``supports`` and ``_explain``."""

    name: ClassVar[str] = "shap"
    requirement: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.seed = int(params.get("seed", 0))
        self._bg_cache: tuple | None = None

    def background(self, model: Any, data: RecData, size: int | None = None) -> pd.DataFrame:
        """The seeded background sample, featurised once per (model, data, size): a service
        explaining request after request does not redraw it."""
        from .background import sample_background

        size = int(self.params["background_size"] if size is None else size)
        key = (id(model), id(data), tuple(model.feature_names), size, self.seed)
        if self._bg_cache is None or self._bg_cache[0] != key or self._bg_cache[1] is not model or self._bg_cache[2] is not data:
            B = sample_background(model, data, size, self.seed)
            self._bg_cache = (key, model, data, B, {})
        return self._bg_cache[3]

    def background_memo(self) -> dict:
        """A dict living as long as the cached background (for statistics derived from it)."""
        return self._bg_cache[4] if self._bg_cache is not None else {}

    # -- support --------------------------------------------------------------------------
    def supports(self, model: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def check_supported(self, model: Any) -> None:
        if self.supports(model):
            return
        others = [n for n in supporting_explainers(model) if n != self.name]
        mname = getattr(model, "name", type(model).__name__)
        raise UnsupportedError(
            f"explainer {self.name!r} does not support model {mname!r}: it {self.requirement}. "
            + (f"Explainers that support {mname!r}: {', '.join(others)}" if others
               else f"no registered explainer supports {mname!r} (it needs score_features and feature_names)")
        )

    # -- explain --------------------------------------------------------------------------
    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        """Attributions for every (user, item) row of ``pairs`` (extra columns such as
        ``rank``/``score`` are kept)."""
        self.check_supported(model)
        pairs = check_pairs(data, pairs)
        X = data.features(pairs)[list(model.feature_names)].reset_index(drop=True)  # whole rows: context included
        return self.explain_features(model, data, pairs, X)

    def explain_features(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame) -> Explanation:
        """As ``explain`` with the feature rows already built (benchmarks, rank search)."""
        self.check_supported(model)
        return self._explain(model, data, pairs.reset_index(drop=True), X.reset_index(drop=True))

    def _explain(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame) -> Explanation:  # pragma: no cover
        raise NotImplementedError

    def into_top_k(self, model: Any, data: RecData, user: Any, item: Any, k: int = 10, context: dict | None = None) -> dict:
        """The "top-k-counterfactual" capability (declared at registration): the fewest item-side
        feature changes that move ``item`` into ``user``'s top ``k`` (see rank.py)."""
        from .rank import smallest_change_into_top_k

        return smallest_change_into_top_k(model, data, user, item, k=k, context=context)

    def with_seed(self, seed: int) -> "ShapExplainer":
        """The same explainer with another seed (stability checks)."""
        return type(self)(**{**self.params, "seed": seed})

    # -- extras the runner calls ----------------------------------------------------------
    def figures(self, explanation: Explanation, data: RecData) -> dict:
        """Waterfalls for the first recommendations, global bar and beeswarm."""
        from .plots import explanation_figures

        return explanation_figures(explanation, n_waterfall=int(self.params.get("n_waterfall", 3)))

    def quality(self, model: Any, data: RecData, explanation: Explanation, ctx: Any = None):
        """Deletion/insertion on rank, comprehensiveness/sufficiency, stability, sanity."""
        from .quality import explanation_quality

        seed = getattr(ctx, "seed", self.seed) if ctx is not None else self.seed
        return explanation_quality(
            model, data, explanation,
            explainer_for_seed=self.with_seed,
            seed=seed,
            n_pairs=int(self.params.get("quality_pairs", 20)),
            sanity=bool(self.params.get("quality_sanity", True)),
            ctx=ctx,
        )


def base_pairs(pairs: pd.DataFrame, output: np.ndarray, base: np.ndarray | float, context: Any = ()) -> pd.DataFrame:
    """The Explanation's pairs table: user, item (rank, score when given), the ``context``
    columns the rows were explained in, output and base."""
    cols = {c: pairs[c].to_numpy() for c in (USER, ITEM, "rank", "score", *context) if c in pairs.columns}
    cols["output_value"] = np.asarray(output, dtype=float)
    cols["base_value"] = np.broadcast_to(np.asarray(base, dtype=float), (len(pairs),)).copy()
    return pd.DataFrame(cols)


def field_sums(phi: np.ndarray, names: list[str], schema) -> pd.DataFrame:
    """Per-field sums of per-feature attributions (what Explanation would compute, in numpy)."""
    groups = schema.select([n for n in names if n in schema]).groups()
    pos = {n: j for j, n in enumerate(names)}
    return pd.DataFrame({g: phi[:, [pos[c] for c in cols]].sum(axis=1) for g, cols in groups.items()})
