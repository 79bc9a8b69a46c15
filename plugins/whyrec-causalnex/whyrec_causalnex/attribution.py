"""Causal effect next to attribution: does the model lean on what causes clicks?

For every feature: its causal effect (the spread of P(outcome | do(feature = level)) over its
levels, from the fitted network; exactly 0 without a directed path to the outcome) and, for
every explanation of the run with per-feature attributions (e.g. TreeSHAP on LightGBM), its
mean |attribution| and that value's share of the total. The two are in different units (a
probability against a model-margin contribution), so the flags compare each to a threshold:

* "model uses it, no causal effect": attribution share >= ``attribution_share`` while the
  causal effect is below ``min_effect`` (a correlate or proxy the model exploits);
* "causal effect, model ignores it": the reverse (a lever the model does not see);
* "both" / "neither".
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

USES_NO_CAUSE = "model uses it, no causal effect"
CAUSE_NOT_USED = "causal effect, model ignores it"


def mean_abs_attributions(explanations: Iterable[Any]) -> pd.DataFrame:
    """feature, model, method, mean_abs_attribution, attribution_share, rank (1 = largest)."""
    rows = []
    for e in explanations:
        attr = getattr(e, "attributions", None)
        if attr is None or attr.empty:
            continue
        m = attr.abs().mean(axis=0)
        total = float(m.sum())
        ranks = m.rank(ascending=False, method="min")
        for feat, v in m.items():
            rows.append({"feature": feat, "model": e.model, "method": e.method, "mean_abs_attribution": float(v),
                         "attribution_share": float(v) / total if total > 0 else 0.0, "attribution_rank": int(ranks[feat])})
    return pd.DataFrame(rows, columns=["feature", "model", "method", "mean_abs_attribution", "attribution_share",
                                       "attribution_rank"])


def _flag(uses: bool, causes: bool) -> str:
    if uses and causes:
        return "both"
    if uses:
        return USES_NO_CAUSE
    if causes:
        return CAUSE_NOT_USED
    return "neither"


def causal_vs_attribution(
    feature_effects: pd.DataFrame,
    explanations: Iterable[Any],
    *,
    min_effect: float = 0.01,
    attribution_share: float = 0.05,
) -> pd.DataFrame:
    """Long table: one row per (feature, model, method), or one row per feature (model and
    method empty) when the run has no per-feature attributions."""
    attr = mean_abs_attributions(explanations)
    eff = feature_effects.set_index("feature") if len(feature_effects) else pd.DataFrame(
        columns=["effect", "effect_low", "effect_high", "path_to_outcome"])
    causal_features = list(eff.index)
    cols = ["feature", "model", "method", "causal_effect", "causal_effect_low", "causal_effect_high", "path_to_outcome",
            "causal_variable", "mean_abs_attribution", "attribution_share", "attribution_rank", "flag"]
    rows = []

    def causal(feat: str) -> dict:
        if feat in eff.index:
            r = eff.loc[feat]
            return {"causal_effect": float(r["effect"]), "causal_effect_low": float(r["effect_low"]),
                    "causal_effect_high": float(r["effect_high"]), "path_to_outcome": bool(r["path_to_outcome"]),
                    "causal_variable": True}
        return {"causal_effect": np.nan, "causal_effect_low": np.nan, "causal_effect_high": np.nan,
                "path_to_outcome": False, "causal_variable": False}

    def causes(c: dict) -> bool:
        # a cause needs a directed path and an effect whose interval (where known) clears min_effect
        return bool(c["causal_variable"] and c["path_to_outcome"] and c["causal_effect"] >= min_effect
                    and not (np.isfinite(c["causal_effect_low"]) and c["causal_effect_low"] < min_effect / 2))

    if attr.empty:
        for feat in causal_features:
            c = causal(feat)
            rows.append({"feature": feat, "model": "", "method": "", **c, "mean_abs_attribution": np.nan,
                         "attribution_share": np.nan, "attribution_rank": np.nan,
                         "flag": "causal effect" if causes(c) else "no causal effect"})
        return pd.DataFrame(rows, columns=cols)
    for (model, method), grp in attr.groupby(["model", "method"], sort=False):
        seen = set()
        for _, a in grp.iterrows():
            feat = a["feature"]
            seen.add(feat)
            c = causal(feat)
            uses = a["attribution_share"] >= attribution_share
            flag = _flag(uses, causes(c)) if c["causal_variable"] else "not a causal variable"
            rows.append({"feature": feat, "model": model, "method": method, **c,
                         "mean_abs_attribution": a["mean_abs_attribution"], "attribution_share": a["attribution_share"],
                         "attribution_rank": a["attribution_rank"], "flag": flag})
        for feat in causal_features:  # causal variables the model does not take as input
            if feat not in seen:
                c = causal(feat)
                rows.append({"feature": feat, "model": model, "method": method, **c, "mean_abs_attribution": 0.0,
                             "attribution_share": 0.0, "attribution_rank": np.nan,
                             "flag": _flag(False, causes(c)) + " (not a model input)"})
    out = pd.DataFrame(rows, columns=cols)
    order = {f: i for i, f in enumerate(causal_features)}
    out["_o"] = [order.get(f, len(order)) for f in out["feature"]]
    out = out.sort_values(["model", "method", "_o", "attribution_rank"], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)
