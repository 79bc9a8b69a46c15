"""Reasons in words: the top positive and negative attributions of a pair as sentences.

A reason reads "<what the dataset says about the feature value>: <signed contribution>",
e.g. "genre Comedy matches 7 of your last 10 films: +0.42"; the words come from the
dataset's describer (``data.describe_feature``), the number is the attribution in model
output units (the raw margin: log-odds for a click model).
"""
from __future__ import annotations

from typing import Mapping, Sequence

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


def unit_label(name: str) -> str:
    """Words for a field or "<field>:<group>" unit."""
    field, _, group = name.partition(":")
    base = FIELD_WORDS.get(field, field)
    return f"{base} ({group.replace('_', ' ')})" if group else base


def _fmt(v: float) -> str:
    return f"{v:+.2f}" if abs(v) >= 0.005 else f"{v:+.1e}"


def feature_reasons(data: RecData, attributions: pd.DataFrame, values: pd.DataFrame, n: int = 3) -> list[list[str]]:
    """Per row: up to ``n`` positive reasons (largest first), then up to ``n`` negative ones."""
    A = attributions.to_numpy(dtype=float)
    cols = list(attributions.columns)
    out = []
    for i in range(len(A)):
        row = values.iloc[i]
        order = np.argsort(-A[i], kind="stable")
        pos = [j for j in order if A[i, j] > 0][:n]
        neg = [j for j in order[::-1] if A[i, j] < 0][:n]
        out.append([f"{data.describe_feature(cols[j], row[cols[j]], row)}: {_fmt(A[i, j])}" for j in pos + neg])
    return out


def _notable(values: pd.Series, background: pd.DataFrame, cols: Sequence[str], n: int = 2) -> list[str]:
    """The features of a unit whose value is least typical of the background (z-score for
    numbers, rarity for categories): the ones worth naming in a field-level reason."""
    scores = []
    for c in cols:
        v, bg = values[c], background[c]
        if pd.isna(v):
            s = float(bg.isna().mean() < 0.5)
        elif pd.api.types.is_numeric_dtype(bg.dtype) and not isinstance(bg.dtype, pd.CategoricalDtype):
            sd = float(bg.std()) if bg.notna().sum() > 1 else 0.0
            s = abs(float(v) - float(bg.mean())) / (sd if sd > 0 else 1.0)
        else:
            s = 1.0 - float((bg.astype(object) == v).mean())
        if c.endswith("_id"):  # an identifier is always "rare": name it only when nothing else stands out
            s *= 0.01
        scores.append(s)
    order = np.argsort(-np.asarray(scores), kind="stable")[:n]
    return [cols[j] for j in order]


def unit_reasons(data: RecData, attributions: pd.DataFrame, values: pd.DataFrame, units: Mapping[str, Sequence[str]],
                 background: pd.DataFrame, n: int = 3) -> list[list[str]]:
    """Reasons for field/group attributions: the unit in words plus its most notable features."""
    A = attributions.to_numpy(dtype=float)
    names = list(attributions.columns)
    out = []
    for i in range(len(A)):
        row = values.iloc[i]
        order = np.argsort(-A[i], kind="stable")
        pos = [j for j in order if A[i, j] > 0][:n]
        neg = [j for j in order[::-1] if A[i, j] < 0][:n]
        lines = []
        for j in pos + neg:
            cols = [c for c in units[names[j]] if c in values.columns]
            detail = "; ".join(data.describe_feature(c, row[c], row) for c in _notable(row, background, cols))
            lines.append(f"{unit_label(names[j])}" + (f" ({detail})" if detail else "") + f": {_fmt(A[i, j])}")
        out.append(lines)
    return out
