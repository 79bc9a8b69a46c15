"""Helpers for the whyrec-shap tests: the toy data (shared with the lightgbm tests), a real
linear model standing for "any model with score_features", and a brute-force Shapley reference."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whyrec import BaseModel

# tests/plugins/lightgbm/lgb_toy_data.py, loaded by path so this directory also runs alone
_spec = importlib.util.spec_from_file_location("lgb_toy_data", Path(__file__).parents[1] / "lightgbm" / "lgb_toy_data.py")
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)

SMALL = toy.SMALL


class LinearModel(BaseModel):
    """Logistic regression on every feature (categoricals as codes, NaN as 0). Its margin
    is w.x + b, so interventional Shapley values have the closed form w_j (x_j - E x_j)."""

    name = "linear"
    capabilities = frozenset({"additive"})

    def __init__(self, C: float = 1.0) -> None:
        super().__init__(C=C)

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.feature_names:
            col = X[c]
            if isinstance(col.dtype, pd.CategoricalDtype):
                v = col.cat.codes.to_numpy().astype(float)
                v[v < 0] = 0.0
            else:
                v = np.nan_to_num(col.to_numpy(dtype=float, na_value=np.nan), nan=0.0)
            cols.append(v)
        return np.column_stack(cols) / self.scale

    def fit(self, data, ctx=None) -> dict:
        from sklearn.linear_model import LogisticRegression

        self.bind(data)
        X = data.features(data.train[["user", "item"]])
        self.scale = 1.0
        raw = self.matrix(X)
        self.scale = np.maximum(np.abs(raw).max(axis=0), 1.0)
        self.clf = LogisticRegression(C=self.params["C"], max_iter=500).fit(self.matrix(X), data.train["label"] > 0)
        return {}

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        return self.clf.decision_function(self.matrix(X))

    @property
    def weights(self) -> np.ndarray:
        return self.clf.coef_[0] / self.scale


def brute_force_shapley(f: Any, x: pd.DataFrame, B: pd.DataFrame, groups: dict[str, list[str]]) -> np.ndarray:
    """Reference: the Shapley definition as an average over all orderings of the players,
    each coalition valued by explicit row-by-row substitution (no shared code with whyrec_shap)."""
    import itertools
    import math

    names = list(groups)
    n = len(names)
    cache: dict[frozenset, float] = {}

    def value(S: frozenset) -> float:
        if S not in cache:
            rows = []
            for j in range(len(B)):
                r = B.iloc[[j]].copy().reset_index(drop=True)
                for g in S:
                    for c in groups[g]:
                        r[c] = x[c].values  # Categorical stays categorical
                rows.append(r)
            cache[S] = float(np.mean(f(pd.concat(rows, ignore_index=True))))
        return cache[S]

    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        S: frozenset = frozenset()
        for p in order:
            phi[p] += value(S | {names[p]}) - value(S)
            S = S | {names[p]}
    return phi / math.factorial(n)
