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
from whyrec.ids import CategoryLookup, sort_key, value_keys

UNKNOWN = 0  # missing or unseen value


@dataclass
class Vocab:
    """Known values of one categorical feature; index = 1 + position (0 = unknown)."""

    keys: list[str]
    _index: pd.Index | None = field(default=None, repr=False)
    _by_category: CategoryLookup = field(default_factory=CategoryLookup, repr=False, compare=False)

    @classmethod
    def fit(cls, column: Any) -> "Vocab":
        seen = dict.fromkeys(k for k in value_keys(column) if k is not None)
        return cls(sorted(seen, key=sort_key))

    @property
    def size(self) -> int:
        return len(self.keys) + 1

    def lookup(self, values: Any) -> np.ndarray:
        if self._index is None:
            self._index = pd.Index(self.keys, dtype=object)
        s = values if isinstance(values, pd.Series) else pd.Series(values)
        if isinstance(s.dtype, pd.CategoricalDtype):
            return self._by_category(s, self.lookup, UNKNOWN)
        keys = value_keys(s)
        missing = np.array([k is None for k in keys], dtype=bool)
        idx = self._index.get_indexer(np.where(missing, "", keys).astype(object))
        out = np.where(idx >= 0, idx + 1, UNKNOWN).astype(np.int64)
        out[missing] = UNKNOWN
        return out


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
    def _mean_vec(self) -> np.ndarray:
        return np.array([self.mean[n] for n in self.numeric], dtype=np.float64)

    @property
    def _std_vec(self) -> np.ndarray:
        return np.array([self.std[n] for n in self.numeric], dtype=np.float64)

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
        if self.numeric and all(pd.api.types.is_numeric_dtype(X[n].dtype) and not isinstance(X[n].dtype, pd.CategoricalDtype)
                                for n in self.numeric):
            # one block conversion instead of a loop over columns: the student's speed is its encoding
            v = X[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan)
            z = (v - self._mean_vec) / self._std_vec
            return cat, np.where(np.isfinite(z), z, 0.0).astype(np.float32)
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
                "vocabs": {c: pack_keys(v.keys) for c, v in self.vocabs.items()}, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> "TabularEncoder":
        try:
            return cls(list(d["categorical"]), list(d["numeric"]), {c: Vocab(unpack_keys(k)) for c, k in d["vocabs"].items()},
                       {k: float(v) for k, v in d["mean"].items()}, {k: float(v) for k, v in d["std"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"encoder description is incomplete ({exc!r}); re-save the model") from exc


def pack_keys(keys: list[str]) -> list | dict:
    """A vocabulary for JSON: integer ids (the usual case: 1..943) as runs of consecutive
    numbers, {"int_runs": [[first, last], ...]}; anything else as the list of keys."""
    try:
        ints = [int(k) for k in keys]
    except ValueError:
        return list(keys)
    if [str(i) for i in ints] != list(keys) or ints != sorted(ints):
        return list(keys)
    runs: list[list[int]] = []
    for i in ints:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return {"int_runs": runs}


def unpack_keys(packed: list | dict) -> list[str]:
    if isinstance(packed, dict):
        try:
            return [str(i) for a, b in packed["int_runs"] for i in range(int(a), int(b) + 1)]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"vocabulary {str(packed)[:80]} is not a list of keys or int runs ({exc!r}); re-save the model") from exc
    return [str(k) for k in packed]
