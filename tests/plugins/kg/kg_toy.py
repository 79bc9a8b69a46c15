"""A toy ``table`` dataset with a triples file whose best paths are known, and small real
models over its history features (no mocks: they score feature rows like any whyrec model).

User 1 liked, in time order, items 3, 2, 1 (so hist_0 = 1, hist_1 = 2, hist_2 = 3); the
recommended item is 5. The graph: 1 and 5 share director D1 and 1 -sequel-> 5; 2 and 5 share
genre G; 3 and 5 share actor A; 4 and 6 are linked to nothing of the history.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whyrec import BaseModel

TITLES = {1: "Alien", 2: "Heat", 3: "Ronin", 4: "Up", 5: "Aliens", 6: "Cars"}
TRIPLES = [
    ("1", "film.film.directed_by", "D1"), ("5", "film.film.directed_by", "D1"),
    ("1", "film.film.sequel", "5"),
    ("2", "film.film.genre", "G"), ("5", "film.film.genre", "G"),
    ("3", "film.film.actor", "A"), ("5", "film.film.actor", "A"),
    ("4", "film.film.genre", "G2"), ("6", "film.film.genre", "G2"),
]


def write_toy(folder: Path, triples: list[tuple[str, str, str]] = TRIPLES) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    inter = pd.DataFrame({
        "user": [1, 1, 1, 1, 2, 2, 2, 2],
        "item": [3, 2, 1, 6, 4, 6, 1, 2],
        "label": [1, 1, 1, 1, 1, 1, 0, 1],
        "ts": [1, 2, 3, 9, 1, 2, 3, 9],
    })
    items = pd.DataFrame({"item": list(TITLES), "title": list(TITLES.values()), "price": [1.0, 2, 3, 4, 5, 6]})
    paths = {"interactions": folder / "inter.csv", "items": folder / "items.csv", "kg": folder / "triples.csv"}
    inter.to_csv(paths["interactions"], index=False)
    items.to_csv(paths["items"], index=False)
    pd.DataFrame(triples, columns=["head", "relation", "tail"]).to_csv(paths["kg"], index=False)
    return paths


def toy_table(folder: Path, **kw: Any):
    from whyrec_datasets.table import Table

    p = write_toy(folder)
    args = dict(interactions=p["interactions"], items=p["items"], label_col="label", timestamp_col="ts",
                title_col="title", history_length=3, test_fraction=0.25, kg=p["kg"], name="toy-kg")
    args.update(kw)
    return Table(**args).load()


class HistoryWeights(BaseModel):
    """score = sum of a weight per history item + 0.25 * hist_len: additive over history items."""

    name = "history-weights"
    capabilities = frozenset()
    WEIGHTS = {1: 2.0, 2: 0.5, 3: -1.0}

    def fit(self, data, ctx=None) -> dict:
        self.bind(data, feature_names=["hist_len", "hist_0", "hist_1", "hist_2"])
        return {}

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        seq = X[["hist_0", "hist_1", "hist_2"]].to_numpy(dtype=float, na_value=np.nan)
        w = np.vectorize(lambda v: self.WEIGHTS.get(int(v), 0.0) if np.isfinite(v) else 0.0)(seq)
        return w.sum(axis=1) + 0.25 * X["hist_len"].to_numpy(float)


class BothOrNothing(HistoryWeights):
    """score = 1 when items 1 and 2 are both in the history, else 0: a pure interaction whose
    Shapley values are 0.5 each, while leaving either out costs the whole 1."""

    name = "both-or-nothing"
    capabilities = frozenset({"sequence"})

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        seq = X[["hist_0", "hist_1", "hist_2"]].to_numpy(dtype=float, na_value=np.nan)
        has = lambda i: (seq == i).any(axis=1)  # noqa: E731
        return (has(1) & has(2)).astype(float)


class MostRecentOnly(HistoryWeights):
    """score = 2 when the most recent liked item (hist_0) is item 1: reads one position only."""

    name = "most-recent-only"

    def fit(self, data, ctx=None) -> dict:
        self.bind(data, feature_names=["hist_len", "hist_0"])
        return {}

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        return np.where(X["hist_0"].to_numpy(float) == 1, 2.0, 0.0)


class LengthOnly(HistoryWeights):
    """score = 0.25 * hist_len: reads how many items the user liked, never which (as LightGBM
    does on a table whose only history feature it can use is hist_len)."""

    name = "length-only"

    def fit(self, data, ctx=None) -> dict:
        self.bind(data, feature_names=["hist_len"])
        return {}

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        return 0.25 * X["hist_len"].to_numpy(float)
