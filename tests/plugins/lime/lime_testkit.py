"""Helpers for the whyrec-lime tests: the toy data (shared with the lightgbm and shap tests)
and real models that score feature rows, one of them linear so LIME's answer is known."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from whyrec import BaseModel

# tests/plugins/lightgbm/lgb_toy_data.py, loaded by path so this directory also runs alone
_spec = importlib.util.spec_from_file_location("lgb_toy_data", Path(__file__).parents[1] / "lightgbm" / "lgb_toy_data.py")
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)

SMALL = toy.SMALL


def matrix(X: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Numeric view: categoricals as their codes, NaN (empty history position) as 0."""
    cols = []
    for c in names:
        col = X[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            v = col.cat.codes.to_numpy().astype(float)
        else:
            v = np.nan_to_num(col.to_numpy(dtype=float, na_value=np.nan), nan=0.0)
        cols.append(v)
    return np.column_stack(cols)


class FixedLinear(BaseModel):
    """f(x) = b + sum_j w_j x_j with fixed weights: linear in every feature, so LIME's
    interpretable features (a unit switched between the row and a background row) enter the
    background-averaged output exactly linearly, with coefficient sum_{j in unit} w_j (x_j - mean_B x_j)."""

    name = "fixed-linear"
    capabilities = frozenset({"additive"})

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)

    def fit(self, data, ctx=None) -> dict:
        self.bind(data)
        rng = np.random.default_rng(self.params["seed"])
        X = matrix(data.features(data.train), self.feature_names)
        scale = np.maximum(np.abs(X).max(axis=0), 1.0)
        self.w = rng.normal(size=len(self.feature_names)) / scale
        self.b = 0.3
        return {}

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        return self.b + matrix(X, self.feature_names) @ self.w


class Interacting(FixedLinear):
    """A product of two features: far from linear, so a linear surrogate fits it poorly."""

    name = "interacting"

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        M = matrix(X, self.feature_names)
        a, b = self.feature_names.index("price"), self.feature_names.index("age")
        return 40.0 * np.sin(M[:, a] * 3.0) * np.cos(M[:, b] / 3.0) * (M[:, self.feature_names.index("genre_A")] - 0.5)


class RowsOnly(BaseModel):
    """A model that scores whole (user, item) rows but not feature rows: no score_features."""

    name = "rows-only"

    def fit(self, data, ctx=None) -> dict:
        self.bind(data)
        return {}

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(rows))
