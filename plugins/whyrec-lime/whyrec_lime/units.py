"""The interpretable representation: units (fields or single features) switched on or off.

A sample is a binary vector z over the units. z_u = 1 keeps the explained row's values in
the columns of unit u; z_u = 0 takes them from a background row. The label of z is the model
output averaged over the background rows (the interventional expectation, as in
exact-field-shapley), so for a model that is additive over the units the labels are exactly
linear in z and the surrogate's weights are the units' exact contributions.

Samples are drawn as lime's own text explainer draws them (first row all ones; then the
number of units switched off uniform in 1..U, which ones uniform). Distinct masks are
evaluated once per explained row: over a few fields most of the samples repeat.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from whyrec.data import RecData
from whyrec.errors import DataError


def model_units(model: Any, data: RecData, units: str) -> dict[str, list[str]]:
    """Unit name -> feature columns: the schema's fields restricted to the model's features
    (the players exact-field-shapley uses at level "field"), or one unit per feature.
    Model features the schema does not know form the unit "other" (fields) or stay single."""
    names = list(model.feature_names)
    if units == "features":
        return {n: [n] for n in names}
    known = [n for n in names if n in data.schema]
    out = data.schema.select(known).groups("field")
    rest = [n for n in names if n not in data.schema]
    if rest:
        out["other"] = rest
    return out


def sample_background(model: Any, data: RecData, size: int, seed: int) -> pd.DataFrame:
    """``size`` training pairs (seeded, without replacement), featurised with the model's features."""
    src = data.train if data.train is not None and len(data.train) else data.interactions
    if size > len(src):
        raise DataError(f"explainer 'lime': background_size={size} is larger than the data: dataset {data.name!r} has "
                        f"{len(src)} training rows to draw the background from; use background_size <= {len(src)}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(src), size, replace=False))
    pairs = src.iloc[idx].reset_index(drop=True)  # whole rows: their context is part of "typical"
    return data.features(pairs)[list(model.feature_names)].reset_index(drop=True)


def sample_masks(n_units: int, num_samples: int, random_state: np.random.RandomState) -> np.ndarray:
    """(num_samples, n_units) 0/1 floats; row 0 is the explained row itself (all ones).
    The draw of lime.lime_text.LimeTextExplainer.__data_labels_distances."""
    Z = np.ones((num_samples, n_units))
    off = random_state.randint(1, n_units + 1, num_samples - 1)
    for i, k in enumerate(off, start=1):
        Z[i, random_state.choice(n_units, k, replace=False)] = 0.0
    return Z


def distances(Z: np.ndarray) -> np.ndarray:
    """Euclidean distance of each mask to the all-ones row: sqrt(number of units switched off)."""
    return np.sqrt((1.0 - Z).sum(axis=1))


class MaskedOutputs:
    """E_b f(x with the units of z kept, the rest from background row b) for one explained
    row x, memoised per distinct mask (reruns with other seeds reuse it)."""

    def __init__(self, f: Callable[[pd.DataFrame], np.ndarray], x: pd.DataFrame, B: pd.DataFrame,
                 units: Sequence[Sequence[str]], max_rows: int = 200_000) -> None:
        self.f, self.units, self.max_rows = f, [list(u) for u in units], max_rows
        self.columns = list(x.columns)
        self.n_b = len(B)
        self.pool = pd.concat([B[self.columns], x[self.columns]], ignore_index=True)  # row n_b = x
        unit_of = {c: u for u, cols in enumerate(self.units) for c in cols}
        self.unit_of = [unit_of.get(c) for c in self.columns]
        self.cache: dict[bytes, float] = {}
        self.row: int | None = None  # which explained row the memo belongs to (set by the caller)
        self.model_rows = 0

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        packed = np.packbits(Z.astype(bool), axis=1)
        uniq, first, inv = np.unique(packed, axis=0, return_index=True, return_inverse=True)
        keys = [u.tobytes() for u in uniq]
        todo = [j for j, k in enumerate(keys) if k not in self.cache]
        if todo:
            new = Z[first[todo]].astype(bool)
            step = max(1, self.max_rows // self.n_b)
            vals = np.concatenate([self._evaluate(new[s:s + step]) for s in range(0, len(new), step)])
            self.cache.update(zip((keys[j] for j in todo), vals.tolist()))
        return np.array([self.cache[k] for k in keys])[inv.ravel()]

    def _evaluate(self, keep: np.ndarray) -> np.ndarray:
        """Model outputs averaged over the background, for masks ``keep`` (m, U) of bools."""
        m, n_b = len(keep), self.n_b
        bg = np.broadcast_to(np.arange(n_b)[None, :], (m, n_b))
        out = {}
        for c, u in zip(self.columns, self.unit_of):
            idx = np.full((m, n_b), n_b) if u is None else np.where(keep[:, u][:, None], n_b, bg)
            col = self.pool[c]
            values = col.array if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col.to_numpy()
            out[c] = values.take(idx.ravel())  # categoricals keep their dtype
        y = np.asarray(self.f(pd.DataFrame(out)), dtype=float).reshape(m, n_b)
        self.model_rows += m * n_b
        return y.mean(axis=1)
