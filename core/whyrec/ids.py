"""Canonical string keys for id-like values (user and item ids, categorical levels).

Models that keep a vocabulary of ids (the torch network, the MLP student) must see 12, 12.0,
np.int64(12) and "12" as one id: history columns are floats (NaN pads them), ids typed on a
command line are strings, and JSON turns ints into floats in some writers. One definition
here so that every vocabulary agrees on what "the same id" means.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd


def value_key(x: Any) -> str | None:
    """The canonical key of one value; None for a missing one (None, NaN, NA, NaT, +-inf)."""
    if x is None:
        return None
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return None
        return str(int(x)) if float(x).is_integer() else repr(float(x))
    if isinstance(x, (bool, np.bool_)):
        return str(int(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if x is pd.NA or x is pd.NaT:
        return None
    return str(x)


def value_keys(values: Any) -> np.ndarray:
    """Canonical keys (object array, None for missing) of a column of values; vectorised for
    categorical, integer and float columns, which is what id columns are."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = value_keys(pd.Series(np.asarray(s.cat.categories, dtype=object)))
        codes = s.cat.codes.to_numpy()
        out = np.empty(len(s), dtype=object)
        ok = codes >= 0
        out[ok] = cats[codes[ok]]
        out[~ok] = None
        return out
    if pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
        return s.astype(int).astype(str).to_numpy(dtype=object)
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        # the column's own integers as text (uint64 above 2**63 included: no int64 wrap-around)
        return s.to_numpy().astype(str).astype(object)
    if pd.api.types.is_float_dtype(s.dtype) and not isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        out = np.empty(len(v), dtype=object)
        ok = np.isfinite(v)
        fast = ok & (v == np.round(v)) & (np.abs(v) < 2.0**53)  # exact in int64 and in float
        out[fast] = v[fast].astype(np.int64).astype(str)
        slow = ok & ~fast  # fractions and huge values: one by one, as value_key does
        out[slow] = [value_key(float(x)) for x in v[slow]]
        out[~ok] = None
        return out
    # nullable integers with NA, objects, strings: element by element (exact for any size)
    return np.array([value_key(x) for x in s.to_numpy(dtype=object)], dtype=object)


def sort_key(k: str) -> tuple:
    """Order of a vocabulary: numeric keys in numeric order, then the rest; stable across
    runs and platforms, so a saved vocabulary reloads to the same indices."""
    try:
        return (0, float(k), k)
    except ValueError:
        return (1, 0.0, k)


class CategoryLookup:
    """Vocabulary indices of a categorical column, mapping its categories once per categories
    index: featurizers reuse one index for every batch, and an id column has a category per
    user or item, so mapping them on every call would cost more than the batch itself."""

    def __init__(self) -> None:
        self._hit: tuple | None = None  # (categories index, their indices); replaced whole: thread-safe

    def __call__(self, s: pd.Series, lookup: Callable[[pd.Series], np.ndarray], missing: int) -> np.ndarray:
        cats = s.cat.categories
        hit = self._hit
        if hit is None or hit[0] is not cats:
            hit = (cats, lookup(pd.Series(np.asarray(cats, dtype=object))))
            self._hit = hit
        idx, codes = hit[1], s.cat.codes.to_numpy()
        if not len(idx):
            return np.full(len(codes), missing, dtype=np.int64)
        return np.where(codes >= 0, idx[np.maximum(codes, 0)], missing).astype(np.int64)
