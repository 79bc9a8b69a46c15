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


def masked_outputs(f: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, B: pd.DataFrame,
                   units: Sequence[Sequence[str]], masks: np.ndarray, max_rows: int = 200_000) -> np.ndarray:
    """(n_x, n_masks): for explained row i and mask m, the model output averaged over the
    background rows b of "x_i with the units kept by m, the rest from b". Evaluated in
    batches of at most ``max_rows`` model rows: several explained rows per call when they
    fit (one model call per batch, not per row), else the masks in chunks."""
    columns = list(X.columns)
    n_x, n_b = len(X), len(B)
    keep = np.asarray(masks, dtype=bool)
    unit_of = {c: u for u, cols in enumerate(units) for c in cols}
    pool = pd.concat([B[columns], X[columns]], ignore_index=True)  # rows n_b.. are the explained rows
    values = {c: (pool[c].array if isinstance(pool[c].dtype, pd.api.extensions.ExtensionDtype) else pool[c].to_numpy())
              for c in columns}

    def block(rows: np.ndarray, sub: np.ndarray) -> np.ndarray:
        m = len(sub)
        bg = np.broadcast_to(np.arange(n_b)[None, None, :], (len(rows), m, n_b))
        xi = np.broadcast_to((n_b + rows)[:, None, None], (len(rows), m, n_b))
        frame = {}
        for c in columns:
            u = unit_of.get(c)
            idx = xi if u is None else np.where(sub[None, :, u, None], xi, bg)
            frame[c] = values[c].take(idx.ravel())  # categoricals keep their dtype
        return np.asarray(f(pd.DataFrame(frame)), dtype=float).reshape(len(rows), m, n_b).mean(axis=2)

    out = np.empty((n_x, len(keep)))
    per_row = len(keep) * n_b
    if per_row <= max_rows:
        step = max(1, max_rows // per_row)
        for i0 in range(0, n_x, step):
            rows = np.arange(i0, min(n_x, i0 + step))
            out[rows] = block(rows, keep)
        return out
    step = max(1, max_rows // n_b)
    for i in range(n_x):
        for m0 in range(0, len(keep), step):
            out[i, m0:m0 + step] = block(np.array([i]), keep[m0:m0 + step])[0]
    return out
