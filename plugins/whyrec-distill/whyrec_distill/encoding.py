"""Feature rows -> the MLP student's index and number arrays (numpy only).

Categorical values go through a vocabulary keyed by a canonical string (12, 12.0 and "12" are
the same id, so ids survive float columns and JSON); index 0 means missing or never seen in
training. Numeric features are standardised with training statistics, NaN -> 0 (the mean).
Scoring must accept any value: explainers mask features by swapping in other rows' values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from whyrec.errors import DataError

UNKNOWN = 0  # missing or unseen value


def _key(x: Any) -> str | None:
    if x is None or x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, (bool, np.bool_)):
        return str(int(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return None
        return str(int(x)) if float(x).is_integer() else repr(float(x))
    return str(x)


def value_keys(values: Any) -> np.ndarray:
    """Canonical string keys (object array; None = missing) of a column of values."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = value_keys(pd.Series(np.asarray(s.cat.categories, dtype=object)))
        codes = s.cat.codes.to_numpy()
        out = np.empty(len(s), dtype=object)
        ok = codes >= 0
        out[ok] = cats[codes[ok]]
        out[~ok] = None
        return out
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        return s.to_numpy().astype(np.int64).astype(str).astype(object)
    return np.array([_key(x) for x in s.to_numpy(dtype=object)], dtype=object)


@dataclass
class Vocab:
    """Known values of one categorical feature; index = 1 + position (0 = unknown)."""

    keys: list[str]
    _index: pd.Index | None = field(default=None, repr=False)

    @classmethod
    def fit(cls, column: Any) -> "Vocab":
        seen = dict.fromkeys(k for k in value_keys(column) if k is not None)
        return cls(sorted(seen, key=_sort_key))

    @property
    def size(self) -> int:
        return len(self.keys) + 1

    def lookup(self, values: Any) -> np.ndarray:
        if self._index is None:
            self._index = pd.Index(self.keys, dtype=object)
        s = values if isinstance(values, pd.Series) else pd.Series(values)
        if isinstance(s.dtype, pd.CategoricalDtype):
            # map the (few) categories once, then gather by code: fast on id columns
            cat_idx = self.lookup(pd.Series(np.asarray(s.cat.categories, dtype=object)))
            codes = s.cat.codes.to_numpy()
            return np.where(codes >= 0, cat_idx[np.maximum(codes, 0)], UNKNOWN).astype(np.int64)
        keys = value_keys(s)
        missing = np.array([k is None for k in keys], dtype=bool)
        idx = self._index.get_indexer(np.where(missing, "", keys).astype(object))
        out = np.where(idx >= 0, idx + 1, UNKNOWN).astype(np.int64)
        out[missing] = UNKNOWN
        return out


def _sort_key(k: str) -> tuple:
    try:
        return (0, float(k), k)
    except ValueError:
        return (1, 0.0, k)


@dataclass
class TabularEncoder:
    """Which columns are categorical (with vocabularies) and numeric (with mean and std)."""

    categorical: list[str]
    numeric: list[str]
    vocabs: dict[str, Vocab]
    mean: dict[str, float]
    std: dict[str, float]

    @classmethod
    def fit(cls, X: pd.DataFrame, categorical: list[str], numeric: list[str]) -> "TabularEncoder":
        mean, std = {}, {}
        for n in numeric:
            v = pd.to_numeric(X[n], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            finite = np.isfinite(v)
            m = float(v[finite].mean()) if finite.any() else 0.0
            s = float(v[finite].std()) if finite.any() else 1.0
            mean[n], std[n] = m, (s if s > 1e-12 else 1.0)
        return cls(list(categorical), list(numeric), {c: Vocab.fit(X[c]) for c in categorical}, mean, std)

    @property
    def features(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def encode(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(categorical indices [rows, C] int64, standardised numbers [rows, M] float32)."""
        missing = [c for c in self.features if c not in X.columns]
        if missing:
            raise DataError(f"feature rows lack columns {missing} that the mlp student was trained on")
        cat = np.zeros((len(X), len(self.categorical)), dtype=np.int64)
        for j, c in enumerate(self.categorical):
            cat[:, j] = self.vocabs[c].lookup(X[c])
        num = np.zeros((len(X), len(self.numeric)), dtype=np.float32)
        for j, n in enumerate(self.numeric):
            try:
                v = pd.to_numeric(X[n], errors="raise").to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise DataError(f"numeric feature {n!r} holds non-numeric values ({exc}); declare it categorical or fix the featurizer") from exc
            z = (v - self.mean[n]) / self.std[n]
            num[:, j] = np.where(np.isfinite(z), z, 0.0)
        return cat, num

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"categorical": self.categorical, "numeric": self.numeric,
                "vocabs": {c: v.keys for c, v in self.vocabs.items()}, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> "TabularEncoder":
        try:
            return cls(list(d["categorical"]), list(d["numeric"]), {c: Vocab(list(k)) for c, k in d["vocabs"].items()},
                       {k: float(v) for k, v in d["mean"].items()}, {k: float(v) for k, v in d["std"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"encoder description is incomplete ({exc!r}); re-save the model") from exc
