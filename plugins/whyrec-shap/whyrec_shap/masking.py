"""Masking feature units with background rows: the one primitive every model-agnostic method
here shares (exact Shapley over fields, deletion/insertion curves, counterfactual search).

A *unit* is a list of feature columns that move together (one feature, a field, a group).
"Keeping" a unit for explained row i means its columns hold row i's values; "removing" it
means they hold a background row's values. The value of a coalition is the model output
averaged over the background rows (the interventional / marginal expectation).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd


def _take(values, idx: np.ndarray):
    # numpy columns via np.take; extension arrays (categorical) via their own take, so the
    # frame handed to the model keeps the dtypes it was built with.
    if isinstance(values, np.ndarray):
        return values.take(idx)
    return values.take(idx)


def hybrid_frame(X: pd.DataFrame, B: pd.DataFrame, units: Sequence[Sequence[str]], keep: np.ndarray,
                 columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows (i, m, j) in C order: explained row i, mask m, background row j.

    keep: bool array (n_x, n_masks, n_units); columns of unit u come from X row i where
    keep[i, m, u] and from B row j otherwise. Columns in no unit always come from X.
    """
    columns = list(columns if columns is not None else X.columns)
    n_x, n_m, n_u = keep.shape
    n_b = len(B)
    pool = pd.concat([B[columns], X[columns]], ignore_index=True)
    unit_of = {c: u for u, cols in enumerate(units) for c in cols}
    bg_idx = np.broadcast_to(np.arange(n_b)[None, None, :], (n_x, n_m, n_b))
    x_idx = np.broadcast_to((n_b + np.arange(n_x))[:, None, None], (n_x, n_m, n_b))
    out = {}
    for c in columns:
        u = unit_of.get(c)
        if u is None:
            idx = x_idx
        else:
            idx = np.where(keep[:, :, u][:, :, None], x_idx, bg_idx)
        col = pool[c]
        values = col.to_numpy() if not isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col.array
        out[c] = _take(values, idx.ravel())
    return pd.DataFrame(out)


def expected_outputs(f: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, B: pd.DataFrame,
                     units: Sequence[Sequence[str]], keep: np.ndarray, columns: Sequence[str] | None = None,
                     max_rows: int = 200_000, weights: np.ndarray | None = None) -> np.ndarray:
    """E_j f(hybrid(i, m, j)) for every explained row i and mask m: array (n_x, n_masks).

    Evaluated in batches of at most ``max_rows`` model rows (whole masks, so memory stays
    bounded whatever the number of coalitions). ``weights`` weigh the background rows.
    """
    n_x, n_m, n_u = keep.shape
    n_b = len(B)
    w = np.full(n_b, 1.0 / n_b) if weights is None else np.asarray(weights, float) / np.sum(weights)
    out = np.empty((n_x, n_m))
    if n_m * n_b <= max_rows:  # several explained rows per model call
        step_i = max(1, max_rows // (n_m * n_b))
        for i0 in range(0, n_x, step_i):
            sub = keep[i0 : i0 + step_i]
            frame = hybrid_frame(X.iloc[i0 : i0 + step_i], B, units, sub, columns)
            y = np.asarray(f(frame), dtype=float).reshape(sub.shape[0], n_m, n_b)
            out[i0 : i0 + sub.shape[0]] = y @ w
        return out
    step_m = max(1, max_rows // n_b)  # one explained row, the masks in chunks
    for i in range(n_x):
        for m0 in range(0, n_m, step_m):
            sub = keep[i : i + 1, m0 : m0 + step_m]
            frame = hybrid_frame(X.iloc[i : i + 1], B, units, sub, columns)
            y = np.asarray(f(frame), dtype=float).reshape(sub.shape[1], n_b)
            out[i, m0 : m0 + sub.shape[1]] = y @ w
    return out
