"""``exact-field-shapley``: exact Shapley values over feature fields (or finer groups), for
any model with ``score_features``.

The players are fields (user, item, context, history, cross) or the schema's finer groups.
The value of a coalition S is E_b f(x_S, b_~S) over a background sample b (columns of fields
outside S take the background row's values). All 2^F coalitions are evaluated, in batches,
and combined with the Shapley weights |S|! (F-|S|-1)! / F!: no sampling, so the result is
exact for that background (F <= 16; beyond that 2^F x background rows is too many).
"""
from __future__ import annotations

import time
from math import factorial
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from whyrec.data import RecData
from whyrec.errors import RegistryError, UnsupportedError
from whyrec.explanation import Explanation

from .base import ShapExplainer, base_pairs, is_model_agnostic_target
from .masking import expected_outputs
from .reasons import LazyReasons, unit_reasons

MAX_FIELDS = 16
LEVELS = ("field", "group")


def coalition_masks(n: int) -> np.ndarray:
    """bool (2^n, n): row m holds the players of coalition m (bit u of m = player u)."""
    m = np.arange(2**n)[:, None]
    return ((m >> np.arange(n)[None, :]) & 1).astype(bool)


def shapley_from_values(v: np.ndarray, n: int) -> np.ndarray:
    """Shapley values (rows, n) from coalition values v (rows, 2^n) indexed by bitmask."""
    masks = np.arange(2**n)
    size = np.array([bin(m).count("1") for m in masks])
    w = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) if s < n else 0.0 for s in range(n + 1)])
    phi = np.empty((v.shape[0], n))
    for u in range(n):
        without = masks[(masks >> u) & 1 == 0]
        phi[:, u] = (v[:, without | (1 << u)] - v[:, without]) @ w[size[without]]
    return phi


def exact_group_shapley(f: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, B: pd.DataFrame,
                        groups: Mapping[str, Sequence[str]], max_rows: int = 200_000) -> tuple[np.ndarray, float, np.ndarray]:
    """(phi (n_x, G), base = mean f(B), v_full = f(x)) for the groups' coalition game."""
    units = [list(c) for c in groups.values()]
    n = len(units)
    masks = coalition_masks(n)
    keep = np.broadcast_to(masks[None], (len(X), *masks.shape))
    v = expected_outputs(f, X, B, units, keep, columns=list(X.columns), max_rows=max_rows)
    return shapley_from_values(v, n), float(v[0, 0]), v[:, -1]


def model_groups(model: Any, data: RecData, level: str, groups: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """Players for the model: the schema's fields/groups restricted to the model's features."""
    names = list(model.feature_names)
    if groups:
        out = {g: [c for c in cols if c in names] for g, cols in groups.items()}
        unknown = sorted({c for cols in groups.values() for c in cols} - set(names))
        if unknown:
            raise RegistryError(f"explainer 'exact-field-shapley': groups name features {unknown} that model {model.name!r} does not use")
        uncovered = [c for c in names if not any(c in cols for cols in out.values())]
        if uncovered:
            out["other"] = uncovered
        return {g: c for g, c in out.items() if c}
    known = [n for n in names if n in data.schema]
    out = data.schema.select(known).groups(level)
    rest = [n for n in names if n not in data.schema]
    if rest:
        out["other"] = rest
    return out


class ExactFieldShapley(ShapExplainer):
    """Exact Shapley values over fields (``level = "field"``) or schema groups
    (``level = "group"``), or explicit ``groups`` {name: [features]}; any model."""

    name = "exact-field-shapley"
    requirement = "needs a model with score_features and feature_names"

    def __init__(
        self,
        level: str = "field",
        groups: dict | None = None,
        background_size: int = 50,
        seed: int = 0,
        max_rows: int = 200_000,
        n_reasons: int = 3,
        n_waterfall: int = 3,
        quality_pairs: int = 20,
        quality_sanity: bool = True,
    ) -> None:
        if level not in LEVELS:
            raise RegistryError(f"explainer 'exact-field-shapley': level {level!r} is not one of {list(LEVELS)}")
        super().__init__(level=level, groups=groups, background_size=background_size, seed=seed, max_rows=max_rows,
                         n_reasons=n_reasons, n_waterfall=n_waterfall, quality_pairs=quality_pairs, quality_sanity=quality_sanity)

    def supports(self, model: Any) -> bool:
        return is_model_agnostic_target(model)

    def groups_for(self, model: Any, data: RecData) -> dict[str, list[str]]:
        groups = model_groups(model, data, self.params["level"], self.params["groups"])
        if len(groups) > MAX_FIELDS:
            raise UnsupportedError(
                f"exact-field-shapley: model {model.name!r} has {len(groups)} fields/groups at level "
                f"{self.params['level']!r} ({', '.join(groups)}); exact Shapley evaluates 2^F coalitions and is "
                f"limited to {MAX_FIELDS}. Use level = \"field\", fewer groups, or the sampling explainer permutation-shap"
            )
        return groups

    def _explain(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame) -> Explanation:
        t0 = time.perf_counter()
        groups = self.groups_for(model, data)
        B = self.background(model, data)
        phi, base, fx = exact_group_shapley(model.score_features, X, B, groups, max_rows=self.params["max_rows"])
        attr = pd.DataFrame(phi, columns=list(groups))
        out = base_pairs(pairs, fx, base, data.context_names)
        n_reasons = int(self.params["n_reasons"])
        memo = self.background_memo()
        reasons = LazyReasons(lambda: unit_reasons(data, attr, X, groups, B, n=n_reasons, memo=memo), len(X))
        n_rows = len(X) * 2 ** len(groups) * len(B)
        return Explanation(
            method=self.name, model=model.name, pairs=out, schema=data.schema.select([c for c in X.columns if c in data.schema]),
            attributions=None, field_attributions=attr, feature_values=X,
            params={**self.params, "groups": groups, "output": "model score_features (raw)"}, additive=True, reasons=reasons,
            summary={"players": list(groups), "coalitions": 2 ** len(groups), "background_rows": len(B),
                     "model_rows": n_rows, "seconds": round(time.perf_counter() - t0, 4)},
        )
