"""Turning a feature DataFrame into the network's index and number tensors.

Every id-like value (user id, item id, categorical level, history item) goes through a
vocabulary: index 0 means missing (NaN, or a padded history position), index 1 means
"not seen in training" (OOV), known values start at 2. Scoring must accept *any* value
because SHAP-style explainers mask fields by swapping in other rows' values, and
counterfactuals edit histories; nothing may raise or silently collide on an unseen id.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from whyrec.errors import DataError
from whyrec.ids import CategoryLookup, sort_key, value_keys

MISSING, OOV = 0, 1
N_RESERVED = 2


@dataclass
class Vocab:
    """Known values of one id-like feature, in a stable order (index = 2 + position)."""

    keys: list[str]
    _map: dict | None = field(default=None, repr=False)
    _ints: tuple | None = field(default=None, repr=False)
    _by_category: CategoryLookup = field(default_factory=CategoryLookup, repr=False, compare=False)

    @classmethod
    def fit(cls, *columns: Any) -> "Vocab":
        seen: dict[str, None] = {}
        for col in columns:
            for k in value_keys(col):
                if k is not None:
                    seen.setdefault(k, None)
        return cls(sorted(seen, key=sort_key))

    @property
    def size(self) -> int:
        return len(self.keys) + N_RESERVED

    def _prepare(self) -> None:
        self._map = {k: i + N_RESERVED for i, k in enumerate(self.keys)}
        try:  # all-integer vocabularies (the usual ids) get a vectorised searchsorted path
            ints = np.array([int(k) for k in self.keys], dtype=np.int64)
            if all(str(i) == k for i, k in zip(ints.tolist(), self.keys)):
                order = np.argsort(ints, kind="stable")
                self._ints = (ints[order], order.astype(np.int64) + N_RESERVED)
        except (ValueError, OverflowError):
            self._ints = None

    def lookup(self, values: Any) -> np.ndarray:
        """int64 indices: 0 for missing, 1 for unseen, 2.. for known values."""
        if self._map is None:
            self._prepare()
        s = values if isinstance(values, pd.Series) else pd.Series(values)
        if isinstance(s.dtype, pd.CategoricalDtype):
            return self._by_category(s, self.lookup, MISSING)
        numeric = (pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_float_dtype(s.dtype)) and not pd.api.types.is_bool_dtype(s.dtype)
        if numeric and self._ints is not None:
            v = s.to_numpy(dtype=float, na_value=np.nan)
            out = np.full(len(v), OOV, dtype=np.int64)
            finite = np.isfinite(v)
            out[~finite] = MISSING
            integral = finite & (v == np.round(v))
            iv = v[integral].astype(np.int64)
            sorted_ints, index = self._ints
            pos = np.clip(np.searchsorted(sorted_ints, iv), 0, max(len(sorted_ints) - 1, 0))
            hit = (sorted_ints[pos] == iv) if len(sorted_ints) else np.zeros(len(iv), bool)
            out[integral] = np.where(hit, index[pos] if len(index) else OOV, OOV)
            return out
        m = self._map
        return np.array([MISSING if k is None else m.get(k, OOV) for k in value_keys(s)], dtype=np.int64)


@dataclass
class NumericStats:
    """Per-feature mean and standard deviation from the training rows (saved with the model)."""

    mean: dict[str, float]
    std: dict[str, float]

    @classmethod
    def fit(cls, X: pd.DataFrame, names: list[str]) -> "NumericStats":
        mean, std = {}, {}
        for n in names:
            v = pd.to_numeric(X[n], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            m = float(np.nanmean(v)) if np.isfinite(v).any() else 0.0
            s = float(np.nanstd(v)) if np.isfinite(v).any() else 1.0
            mean[n], std[n] = m, (s if s > 1e-12 else 1.0)
        return cls(mean, std)

    def transform(self, X: pd.DataFrame, names: list[str]) -> np.ndarray:
        if names and all(pd.api.types.is_numeric_dtype(X[n].dtype) and not isinstance(X[n].dtype, pd.CategoricalDtype)
                         for n in names):
            # one block conversion instead of a loop over columns: encoding is most of the cost
            # of scoring many small batches (history edits, permutation explainers)
            v = X[names].to_numpy(dtype=np.float64, na_value=np.nan)
            z = (v - np.array([self.mean[n] for n in names])) / np.array([self.std[n] for n in names])
            return np.where(np.isfinite(z), z, 0.0).astype(np.float32)
        out = np.zeros((len(X), len(names)), dtype=np.float32)
        for j, n in enumerate(names):
            try:
                v = pd.to_numeric(X[n], errors="raise").to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise DataError(f"numeric feature {n!r} holds non-numeric values ({exc}); fix the featurizer or declare it categorical") from exc
            z = (v - self.mean[n]) / self.std[n]
            # NaN -> 0 = the training mean: the same value the integrated-gradients baseline uses
            out[:, j] = np.where(np.isfinite(z), z, 0.0)
        return out


@dataclass
class Encoded:
    """Network inputs for a batch of feature rows (numpy; the model moves them to its device)."""

    items: np.ndarray  # [B, 1 + N] int64: candidate item, then history positions
    cat: np.ndarray  # [B, C] int64, already offset into the shared categorical table
    num: np.ndarray  # [B, M] float32, standardised
    mask: np.ndarray  # [B, N] bool: history position holds an item

    def __len__(self) -> int:
        return len(self.items)

    def take(self, idx: Any) -> "Encoded":
        return Encoded(self.items[idx], self.cat[idx], self.num[idx], self.mask[idx])


@dataclass
class FeatureEncoder:
    """Which columns feed which input, with their vocabularies and numeric statistics."""

    item_feature: str
    categorical: list[str]
    numeric: list[str]
    sequence: list[str]
    item_vocab: Vocab
    cat_vocabs: dict[str, Vocab]
    stats: NumericStats

    @property
    def cat_offsets(self) -> list[int]:
        off, out = 0, []
        for n in self.categorical:
            out.append(off)
            off += self.cat_vocabs[n].size
        return out

    @property
    def cat_total(self) -> int:
        return sum(self.cat_vocabs[n].size for n in self.categorical)

    def encode(self, X: pd.DataFrame) -> Encoded:
        missing = [c for c in [self.item_feature, *self.categorical, *self.numeric, *self.sequence] if c not in X.columns]
        if missing:
            raise DataError(f"feature rows lack columns {missing} that the torch-attention model was trained on")
        n = len(X)
        items = np.zeros((n, 1 + len(self.sequence)), dtype=np.int64)
        items[:, 0] = self.item_vocab.lookup(X[self.item_feature])
        for j, c in enumerate(self.sequence):
            items[:, 1 + j] = self.item_vocab.lookup(X[c])
        cat = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, (c, off) in enumerate(zip(self.categorical, self.cat_offsets)):
            cat[:, j] = self.cat_vocabs[c].lookup(X[c]) + off
        num = self.stats.transform(X, self.numeric)
        mask = items[:, 1:] != MISSING
        return Encoded(items, cat, num, mask)

    # -- JSON ------------------------------------------------------------------------
    def config(self) -> dict:
        """The structural part (saved in config.json and compared on load)."""
        return {
            "item_feature": self.item_feature,
            "categorical": list(self.categorical),
            "numeric": list(self.numeric),
            "sequence": list(self.sequence),
            "item_vocab_size": self.item_vocab.size,
            "cat_vocab_sizes": {n: self.cat_vocabs[n].size for n in self.categorical},
        }

    def vocab_json(self) -> dict:
        return {"item": self.item_vocab.keys, "categorical": {n: v.keys for n, v in self.cat_vocabs.items()}}

    def stats_json(self) -> dict:
        return {"mean": self.stats.mean, "std": self.stats.std}

    @classmethod
    def from_json(cls, config: dict, vocab: dict, stats: dict) -> "FeatureEncoder":
        return cls(
            item_feature=config["item_feature"],
            categorical=list(config["categorical"]),
            numeric=list(config["numeric"]),
            sequence=list(config["sequence"]),
            item_vocab=Vocab(list(vocab["item"])),
            cat_vocabs={n: Vocab(list(k)) for n, k in vocab["categorical"].items()},
            stats=NumericStats(dict(stats["mean"]), dict(stats["std"])),
        )
