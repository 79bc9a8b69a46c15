"""Background samples and the numeric view of feature frames that shap's own explainers need.

Every interventional method compares an explained row with "typical" rows: the background.
It is drawn from the training pairs (seeded) and, for kernel/permutation SHAP, summarised by
k-means. shap's explainers work on float matrices; :class:`FrameCodec` turns a feature frame
(categoricals, NaN in history sequences) into one and back without losing a category.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import DataError


def sample_background(model: Any, data: RecData, size: int, seed: int = 0, param: str = "background_size") -> pd.DataFrame:
    """``size`` training pairs, featurised with the model's features (seeded, no replacement)."""
    src = data.train if data.train is not None and len(data.train) else data.interactions
    if size < 1:
        raise DataError(f"{param}={size}: the background sample needs at least one row")
    if size > len(src):
        raise DataError(
            f"{param}={size} is larger than the data: dataset {data.name!r} has {len(src)} training rows "
            f"to draw the background from; use {param} <= {len(src)}"
        )
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(src), size, replace=False))
    pairs = src.iloc[idx].reset_index(drop=True)  # whole rows: their context is part of "typical"
    return data.features(pairs)[list(model.feature_names)].reset_index(drop=True)


@dataclass
class FrameCodec:
    """Float-matrix view of a feature frame: categorical (and object) columns become codes,
    NaN stays NaN; ``decode`` rebuilds the frame with the original dtypes."""

    columns: list[str]
    categories: dict[str, pd.Index]
    dtypes: dict[str, Any]

    @classmethod
    def fit(cls, *frames: pd.DataFrame) -> "FrameCodec":
        ref = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        cats: dict[str, pd.Index] = {}
        for c in ref.columns:
            col = ref[c]
            if isinstance(col.dtype, pd.CategoricalDtype):
                cats[c] = col.cat.categories
            elif not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
                cats[c] = pd.Index(pd.unique(col.dropna()))
        return cls(list(ref.columns), cats, {c: ref[c].dtype for c in ref.columns})

    @property
    def categorical_mask(self) -> np.ndarray:
        return np.array([c in self.categories for c in self.columns])

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        M = np.empty((len(X), len(self.columns)))
        for j, c in enumerate(self.columns):
            col = X[c]
            if c in self.categories:
                codes = self.categories[c].get_indexer(col.astype(object).where(col.notna(), None))
                M[:, j] = np.where(codes >= 0, codes, np.nan)
            else:
                M[:, j] = col.to_numpy(dtype=float, na_value=np.nan)
        return M

    def decode(self, M: np.ndarray) -> pd.DataFrame:
        M = np.asarray(M, dtype=float)
        out = {}
        for j, c in enumerate(self.columns):
            v = M[:, j]
            dt = self.dtypes[c]
            if c in self.categories:
                codes = np.where(np.isnan(v), -1, np.rint(np.nan_to_num(v, nan=-1))).astype(int)
                cat = pd.Categorical.from_codes(codes, categories=self.categories[c])
                # keep the frame's own dtype (pandas 3 would infer str for an object array)
                out[c] = cat if isinstance(dt, pd.CategoricalDtype) else pd.Series(np.asarray(cat.astype(object)), dtype=dt)
            elif pd.api.types.is_integer_dtype(dt) and not np.isnan(v).any():
                out[c] = v.astype(dt)
            else:
                out[c] = v
        return pd.DataFrame(out)


def kmeans_background(M: np.ndarray, k: int, categorical: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Summarise background rows by k-means: (centers, weights = cluster sizes).

    Like ``shap.kmeans`` (sklearn KMeans on the rows, numeric centers rounded to the nearest
    value the column really takes) except that categorical codes take the cluster's most
    common value, since the mean of two category codes is a third, unrelated category.
    NaN (a missing history position) is kept: it is imputed only for the clustering.
    """
    from sklearn.cluster import KMeans

    n = len(M)
    if k >= n:
        return M.copy(), np.ones(n)
    Z = M.copy()
    for j in range(Z.shape[1]):  # standardise, NaN -> column mean (or -1 for codes) for distance only
        col = Z[:, j]
        nan = np.isnan(col)
        fill = -1.0 if categorical[j] else (np.nanmean(col) if (~nan).any() else 0.0)
        col[nan] = fill
        sd = col.std()
        Z[:, j] = (col - col.mean()) / (sd if sd > 0 else 1.0)
    labels = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(Z).labels_
    centers = np.empty((k, M.shape[1]))
    weights = np.bincount(labels, minlength=k).astype(float)
    for c in range(k):
        rows = M[labels == c]
        for j in range(M.shape[1]):
            col = rows[:, j]
            if categorical[j]:
                vals, counts = np.unique(np.nan_to_num(col, nan=-1.0), return_counts=True)
                best = vals[np.argmax(counts)]
                centers[c, j] = np.nan if best == -1.0 else best
            elif np.isnan(col).all():
                centers[c, j] = np.nan
            else:
                mean = np.nanmean(col)
                seen = np.unique(M[~np.isnan(M[:, j]), j])
                centers[c, j] = seen[np.argmin(np.abs(seen - mean))]
    keep = weights > 0
    return centers[keep], weights[keep]
