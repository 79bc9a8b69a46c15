"""Figures of an Explanation with shap's own plots: a waterfall per recommendation (for the
first few), a global bar of mean |attribution| and a beeswarm over the explained sample."""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg", force=False)  # headless: figures are written to PNG files

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from whyrec.explanation import Explanation


def _numeric_view(values: pd.DataFrame | None, columns: list[str]) -> np.ndarray | None:
    """Feature values as floats for shap's colouring (categories as codes, NaN kept)."""
    if values is None or not set(columns) <= set(values.columns):
        return None
    out = np.empty((len(values), len(columns)))
    for j, c in enumerate(columns):
        col = values[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(float)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    return out


def to_shap(explanation: Explanation):
    """A shap.Explanation of the per-feature (else per-field) attributions."""
    import shap

    table = explanation.attributions if explanation.attributions is not None else explanation.field_attributions
    cols = list(table.columns)
    per_feature = explanation.attributions is not None and explanation.feature_values is not None
    data = _numeric_view(explanation.feature_values, cols) if per_feature else None
    # waterfalls label features with their real values (ids, not category codes)
    display = _display_view(explanation.feature_values, cols) if per_feature else None
    base = explanation.pairs["base_value"].to_numpy(float) if "base_value" in explanation.pairs else np.zeros(len(table))
    return shap.Explanation(values=table.to_numpy(float), base_values=base, data=data, display_data=display, feature_names=cols)


def _display_view(values: pd.DataFrame, columns: list[str]) -> np.ndarray | None:
    if not set(columns) <= set(values.columns):
        return None
    out = values[columns].to_numpy(dtype=object, copy=True)  # pandas 3 may hand back a read-only view
    for idx in np.ndindex(out.shape):  # round floats for the labels
        v = out[idx]
        if isinstance(v, float):
            out[idx] = float(f"{v:.4g}")
    return out


def _label(explanation: Explanation, i: int) -> str:
    p = {c: explanation.pairs[c].tolist()[i] for c in ("user", "item", "rank") if c in explanation.pairs.columns}
    rank = f", rank {int(p['rank'])}" if "rank" in p and pd.notna(p["rank"]) else ""
    return f"{explanation.method} on {explanation.model}: user {p['user']}, item {p['item']}{rank}"


def explanation_figures(explanation: Explanation, n_waterfall: int = 3, max_display: int = 12) -> dict[str, plt.Figure]:
    """name -> matplotlib Figure (the runner saves each as <name>.png)."""
    import shap

    sv = to_shap(explanation)
    figs: dict[str, plt.Figure] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(min(n_waterfall, len(sv.values))):
            plt.figure()
            shap.plots.waterfall(sv[i], max_display=max_display, show=False)
            fig = plt.gcf()
            fig.suptitle(_label(explanation, i), fontsize=9)
            figs[f"waterfall_{i}"] = fig
        plt.figure()
        shap.plots.bar(sv, max_display=max_display, show=False)
        fig = plt.gcf()
        fig.suptitle(f"mean |attribution| over {len(sv.values)} pairs: {explanation.method} on {explanation.model}", fontsize=9)
        figs["bar"] = fig
        if len(sv.values) > 1:
            plt.figure()
            shap.plots.beeswarm(sv, max_display=max_display, show=False, color_bar=sv.data is not None)
            fig = plt.gcf()
            fig.suptitle(f"attributions over {len(sv.values)} pairs: {explanation.method} on {explanation.model}", fontsize=9)
            figs["beeswarm"] = fig
    return figs
