"""Reasons in words: the top positive and negative attributions of a pair as sentences.

A reason reads "<what the dataset says about the feature value>: <signed contribution>",
e.g. "genre Comedy matches 7 of your last 10 films: +0.42"; the words come from the
dataset's describer (``data.describe_feature``), the number is the attribution in model
output units (the raw margin: log-odds for a click model).
"""
from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from whyrec.data import RecData

FIELD_WORDS = {
    "user": "who you are",
    "item": "the item itself",
    "context": "the context",
    "history": "what you interacted with before",
    "cross": "how the item matches your history",
}


class LazyReasons(SequenceABC):
    """The reasons of an explanation, put into words on first use.

    Wording calls the dataset's describer a few times per pair, which can cost as much as
    the attributions themselves (TreeSHAP is fast); callers that never read the reasons
    (batch attribution jobs, benchmarks of the attribution engine) then do not pay for
    them. Any read (indexing, iteration, ``tolist()``, saving the Explanation) builds all of
    them once. Behaves as a read-only list of lists of str.
    """

    def __init__(self, build: Callable[[], list[list[str]]], n: int) -> None:
        self._build: Callable[[], list[list[str]]] | None = build
        self._items: list[list[str]] | None = None
        self._n = n

    def _get(self) -> list[list[str]]:
        if self._items is None:
            self._items = self._build()
            self._build = None  # drop the references to the data and frames
        return self._items

    @property
    def built(self) -> bool:
        return self._items is not None

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        return self._get()[i]

    def __iter__(self):
        return iter(self._get())

    def tolist(self) -> list[list[str]]:
        """Plain lists (what JSON writers and Explanation.save use)."""
        return [list(r) for r in self._get()]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SequenceABC) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(self._get()) if self.built else f"<LazyReasons: {self._n} pairs, not yet worded>"


def unit_label(name: str) -> str:
    """Words for a field or "<field>:<group>" unit."""
    field, _, group = name.partition(":")
    base = FIELD_WORDS.get(field, field)
    return f"{base} ({group.replace('_', ' ')})" if group else base


def _fmt(v: float) -> str:
    return f"{v:+.2f}" if abs(v) >= 0.005 else f"{v:+.1e}"


def _rows(values: pd.DataFrame):
    """Each row as a pandas Series (the describer's ``row``), built from one object array:
    far cheaper than ``values.iloc[i]`` per row."""
    obj = values.to_numpy(dtype=object)
    index = values.columns
    return (pd.Series(obj[i], index=index, dtype=object, copy=False) for i in range(len(obj)))


def top_units(A: np.ndarray, n: int) -> list[list[int]]:
    """Per row: column indices of the n largest positive, then the n most negative values."""
    out = []
    k = min(n, A.shape[1])
    if k == 0:
        return [[] for _ in range(len(A))]
    hi = np.argsort(-A, axis=1, kind="stable")[:, :k]
    lo = np.argsort(A, axis=1, kind="stable")[:, :k]
    for i in range(len(A)):
        out.append([j for j in hi[i] if A[i, j] > 0] + [j for j in lo[i] if A[i, j] < 0])
    return out


def feature_reasons(data: RecData, attributions: pd.DataFrame, values: pd.DataFrame, n: int = 3) -> list[list[str]]:
    """Per row: up to ``n`` positive reasons (largest first), then up to ``n`` negative ones."""
    A = attributions.to_numpy(dtype=float)
    cols = list(attributions.columns)
    picks = top_units(A, n)
    vals = values[cols].to_numpy(dtype=object)
    describe = data.describe_feature
    out = []
    for i, row in enumerate(_rows(values)):
        out.append([f"{describe(cols[j], vals[i, j], row)}: {_fmt(A[i, j])}" for j in picks[i]])
    return out


class _Typicality:
    """How untypical a value is of the background, per column (z-score for numbers, rarity
    for categories); statistics computed once per explanation."""

    def __init__(self, background: pd.DataFrame) -> None:
        self.stats: dict[str, tuple] = {}
        for c in background.columns:
            bg = background[c]
            if pd.api.types.is_numeric_dtype(bg.dtype) and not isinstance(bg.dtype, pd.CategoricalDtype):
                sd = float(bg.std()) if bg.notna().sum() > 1 else 0.0
                self.stats[c] = ("num", float(bg.mean()) if bg.notna().any() else 0.0, sd if sd > 0 else 1.0, float(bg.isna().mean()))
            else:
                freq = bg.astype(object).value_counts(normalize=True, dropna=True).to_dict()
                self.stats[c] = ("cat", freq, float(bg.isna().mean()))

    def score(self, c: str, v) -> float:
        st = self.stats[c]
        if pd.isna(v):
            s = float(st[-1] < 0.5)
        elif st[0] == "num":
            s = abs(float(v) - st[1]) / st[2]
        else:
            s = 1.0 - st[1].get(v, 0.0)
        if c.endswith("_id"):  # an identifier is always "rare": name it only when nothing else stands out
            s *= 0.01
        return s

    def notable(self, row: pd.Series, cols: Sequence[str], n: int = 2) -> list[str]:
        """The ``n`` features of a unit least typical of the background: worth naming."""
        scores = np.array([self.score(c, row[c]) for c in cols])
        return [cols[j] for j in np.argsort(-scores, kind="stable")[:n]]


def unit_reasons(data: RecData, attributions: pd.DataFrame, values: pd.DataFrame, units: Mapping[str, Sequence[str]],
                 background: pd.DataFrame, n: int = 3, memo: dict | None = None) -> list[list[str]]:
    """Reasons for field/group attributions: the unit in words plus its most notable features."""
    A = attributions.to_numpy(dtype=float)
    names = list(attributions.columns)
    picks = top_units(A, n)
    typical = (memo or {}).get("typicality") or _Typicality(background)
    if memo is not None:
        memo["typicality"] = typical
    out = []
    for i, row in enumerate(_rows(values)):
        lines = []
        for j in picks[i]:
            cols = [c for c in units[names[j]] if c in values.columns]
            detail = "; ".join(data.describe_feature(c, row[c], row) for c in typical.notable(row, cols))
            lines.append(f"{unit_label(names[j])}" + (f" ({detail})" if detail else "") + f": {_fmt(A[i, j])}")
        out.append(lines)
    return out
