"""How much each history item of a pair contributes to the model's score, through the core API only.

A history item is removed by emptying its position in the pair's ``sequence`` features (NaN)
and, where the dataset can (``RecData.history_deriver``), rebuilding the features it derives
from the history (MovieLens: genre shares, history length, genre match), so "had you not liked
A" changes every feature A fed; the edited rows are scored with ``model.score_features``. This
works for every model that scores feature rows, so no plugin's model class is imported:

- ``leave-one-out``: f(history) - f(history without item j); one edited row per history item.
- ``shapley``: the exact Shapley value of each history item in the game v(S) = f(only the
  history items in S kept); 2^m edited rows for m history items (m <= ``MAX_SHAPLEY_ITEMS``).
  Sums to f(history) - f(empty history). Used for models that read the sequence itself
  (capability ``sequence``), where history items interact and one removal can mislead.
"""
from __future__ import annotations

from math import factorial
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import RecData
from whyrec.errors import UnsupportedError

MAX_SHAPLEY_ITEMS = 12  # 4,096 edited rows per pair
ROWS_PER_CALL = 50_000  # edited rows scored in one score_features call


def sequence_columns(data: RecData) -> list[str]:
    """The dataset's history sequence features (hist_0 = most recent), in schema order."""
    return [f.name for f in data.schema if f.kind == "sequence"]


def item_of_value(data: RecData, value: float) -> Any | None:
    """The item a sequence value stands for: the id itself for numeric ids, else the item's
    position in ``data.items`` (how first-party featurizers encode non-numeric ids); None for
    an empty position or an id the dataset does not know."""
    if value is None or not np.isfinite(value):
        return None
    idx = data.items.index
    if pd.api.types.is_numeric_dtype(idx.dtype) and not pd.api.types.is_bool_dtype(idx.dtype):
        v = int(value) if pd.api.types.is_integer_dtype(idx.dtype) and float(value).is_integer() else value
        return v if v in idx else None
    code = int(value)
    return idx[code] if 0 <= code < len(idx) and float(value).is_integer() else None


def sequence_values(data: RecData) -> np.ndarray:
    """Every value a sequence position can hold (the inverse of ``item_of_value``)."""
    idx = data.items.index
    if pd.api.types.is_numeric_dtype(idx.dtype) and not pd.api.types.is_bool_dtype(idx.dtype):
        return idx.to_numpy(dtype=float)
    return np.arange(len(idx), dtype=float)


def sees_history_items(model: Any, data: RecData, X: pd.DataFrame, full: np.ndarray) -> bool | None:
    """Whether the model's score depends on *which* items are in the history, not only on how
    many: every occupied position is replaced by another item (two different shifts through the
    item list, features derived from the history rebuilt) and the rows rescored. False when no
    score moves: then a history item's leave-one-out "contribution" is the effect of the
    history's length (a tree model over hist_len alone), true of any item, and naming the item
    as a reason would be wrong. None when it cannot be told (no history, a single item)."""
    seq = sequence_columns(data)
    S = X[seq].to_numpy(dtype=float, na_value=np.nan)
    values = sequence_values(data)
    occupied = np.isfinite(S)
    if len(values) < 2 or not occupied.any():
        return None
    pos = np.searchsorted(values, S[occupied]) if np.all(np.diff(values) > 0) else None
    if pos is None:  # unsorted numeric ids: look each one up
        where = {v: i for i, v in enumerate(values)}
        pos = np.array([where.get(v, 0) for v in S[occupied]])
    pos = np.clip(pos, 0, len(values) - 1)
    for shift in sorted({1, max(1, len(values) // 2)}):
        big = X.copy()
        block = S.copy()
        block[occupied] = values[(pos + shift) % len(values)]
        for c, col in zip(seq, block.T):
            big[c] = col
        if data.history_deriver is not None:
            big = data.rederive_history(big)
        other = np.asarray(model.score_features(big[model.feature_names]), dtype=float)
        if not np.allclose(other, full, rtol=1e-9, atol=1e-12):
            return True
    return False


def edited_scores(model: Any, data: RecData, X: pd.DataFrame, removals: list[tuple[int, list[int]]],
                  seq: list[str]) -> np.ndarray:
    """Model outputs of row ``X.iloc[p]`` with sequence positions ``r`` emptied, for each (p, r)."""
    out = np.empty(len(removals))
    for start in range(0, len(removals), ROWS_PER_CALL):
        part = removals[start:start + ROWS_PER_CALL]
        big = X.iloc[[p for p, _ in part]].reset_index(drop=True)
        block = big[seq].to_numpy(dtype=float, na_value=np.nan, copy=True)
        for k, (_, r) in enumerate(part):
            if r:
                block[k, r] = np.nan
        for c, col in zip(seq, block.T):
            big[c] = col
        if data.history_deriver is not None:
            big = data.rederive_history(big)
        out[start:start + len(part)] = np.asarray(model.score_features(big[model.feature_names]), dtype=float)
    return out


def contributions(model: Any, data: RecData, X: pd.DataFrame, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phi, full, base): per pair and sequence position the contribution of the item there (NaN
    where the position is empty), the pair's unedited output and, for ``shapley``, the output
    with the whole history removed (NaN for leave-one-out)."""
    seq = sequence_columns(data)
    S = X[seq].to_numpy(dtype=float, na_value=np.nan)
    occupied = [np.flatnonzero(np.isfinite(row)).tolist() for row in S]
    n, L = S.shape
    phi = np.full((n, L), np.nan)
    base = np.full(n, np.nan)
    if method == "leave-one-out":
        removals = [(p, []) for p in range(n)] + [(p, [j]) for p in range(n) for j in occupied[p]]
        v = edited_scores(model, data, X, removals, seq)
        full = v[:n]
        k = n
        for p in range(n):
            for j in occupied[p]:
                phi[p, j] = full[p] - v[k]
                k += 1
        return phi, full, base
    if method != "shapley":
        raise UnsupportedError(f"kg-paths: scoring {method!r} is not one of 'leave-one-out', 'shapley'")
    too_long = max((len(o) for o in occupied), default=0)
    if too_long > MAX_SHAPLEY_ITEMS:
        raise UnsupportedError(f"kg-paths: scoring='shapley' over {too_long} history items needs 2^{too_long} model "
                               f"calls per pair (at most 2^{MAX_SHAPLEY_ITEMS}); use scoring='leave-one-out'")
    removals, spans = [], []
    for p in range(n):
        m = len(occupied[p])
        spans.append((len(removals), m))
        for mask in range(2 ** m):  # bit u set: the u-th occupied position is kept
            removals.append((p, [occupied[p][u] for u in range(m) if not (mask >> u) & 1]))
    v = edited_scores(model, data, X, removals, seq)
    full = np.empty(n)
    for p, (start, m) in enumerate(spans):
        vals = v[start:start + 2 ** m]
        full[p], base[p] = vals[-1], vals[0]
        masks = np.arange(2 ** m)
        size = np.array([bin(s).count("1") for s in masks])
        w = np.array([factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)] + [0.0])
        for u, j in enumerate(occupied[p]):
            without = masks[(masks >> u) & 1 == 0]
            phi[p, j] = float((vals[without | (1 << u)] - vals[without]) @ w[size[without]])
    return phi, full, base
