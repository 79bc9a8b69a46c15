"""Causal effect next to attribution: does the model lean on what causes the outcome?

For every feature, two things are compared, each with its interval:

* the **causal effect**: the spread of P(outcome | do(feature = level)) over its levels, with
  its bootstrap interval, and for ordered (numeric) features its *direction*: P(outcome |
  do(highest state)) - P(outcome | do(lowest state)) with the bootstrap interval of that
  difference (exactly 0 without a directed path to the outcome);
* the **attribution**, for every explanation of the run with per-feature attributions (e.g.
  TreeSHAP on LightGBM): the share of the mean |attribution| and its *direction*: the
  correlation between the feature's value and its attribution over the explained rows (positive:
  the model scores higher when the value is higher), with a Fisher-z interval; and the mean
  signed attribution in the feature's highest state minus that in its lowest.

The units differ (a probability against a model-score contribution), so magnitudes are compared
to thresholds, and directions by sign. The flags, in this order:

* "sign of attribution and causal effect disagree": the model uses it (share >=
  ``attribution_share``), and both direction intervals exclude 0 with opposite signs;
* "model leans on it more than its shown causal effect supports (a proxy or confounded, or an
  effect the learned graph misses)": the model uses it while the causal effect is not shown to
  reach ``min_effect`` (no directed path, or the effect's interval reaches below ``min_effect /
  2``). Never stated as fact: no path in a learned graph is not proof of no effect (a search can
  miss a cause), so the reason says which of the two it is, and the bootstrap graphs' interval
  where the effect model carries them;
* "causal effect but the model ignores it": the reverse (a lever the model does not see;
  "(not a model input)" only when the model does not take the feature at all: its inputs come
  from ``model_inputs`` or, failing that, from every explanation of that model together);
* a model input that this explainer does not cover (e.g. attention maps attribute only to
  history positions) gets no row for that method: the method says nothing about it, and an
  explainer's coverage is never presented as the model's inputs;
* "both agree" / "neither"; "not a causal variable" for ids and sequences.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Iterable

import numpy as np
import pandas as pd

SIGN_DISAGREES = "sign of attribution and causal effect disagree"
LEANS_ON_PROXY = ("model leans on it more than its shown causal effect supports (a proxy or confounded, or an effect "
                  "the learned graph misses)")
# the no-attribution table: what the graph shows, not what is true
NO_PATH_FOUND = "no path found in the learned graph"
NO_EFFECT_SHOWN = "no causal effect shown"
CAUSE_NOT_USED = "causal effect but the model ignores it"
AGREE = "both agree"
NEITHER = "neither"
NOT_CAUSAL = "not a causal variable"
NOT_INPUT = " (not a model input)"
# the flags that call for a look (report and CLI list them first)
WARNINGS = (SIGN_DISAGREES, LEANS_ON_PROXY, CAUSE_NOT_USED)
# former names, kept for callers of earlier versions
USES_NO_CAUSE = LEANS_ON_PROXY

COLUMNS = ["feature", "model", "method", "causal_effect", "causal_effect_low", "causal_effect_high", "path_to_outcome",
           "causal_variable", "causal_direction", "causal_direction_low", "causal_direction_high", "causal_sign",
           "mean_abs_attribution", "attribution_share", "attribution_rank", "attribution_direction",
           "attribution_direction_low", "attribution_direction_high", "attribution_sign", "attribution_high_vs_low",
           "explained_rows", "flag", "reason"]


def attributed_features(explanations: Iterable[Any]) -> set[str]:
    """Features that some explanation attributes to."""
    out: set[str] = set()
    for e in explanations:
        attr = getattr(e, "attributions", None)
        if attr is not None and not attr.empty:
            out.update(map(str, attr.columns))
    return out


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


def correlation_interval(x: np.ndarray, y: np.ndarray, ci: float = 0.95) -> tuple[float, float, float]:
    """(r, low, high): Pearson correlation with its Fisher-z interval; NaNs when undefined."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 4 or np.std(x) == 0 or np.std(y) == 0:
        return (np.nan, np.nan, np.nan)
    r = float(np.corrcoef(x, y)[0, 1])
    rc = min(max(r, -1 + 1e-12), 1 - 1e-12)
    z, se = math.atanh(rc), 1 / math.sqrt(n - 3)
    q = NormalDist().inv_cdf(0.5 + ci / 2)
    return (r, math.tanh(z - q * se), math.tanh(z + q * se))


def _sign(low: float, high: float) -> int:
    """+1 / -1 when the interval excludes 0 on that side, 0 otherwise (or unknown)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return 0
    return 1 if low > 0 else -1 if high < 0 else 0


def attribution_directions(explanation: Any, states: dict | None = None, ci: float = 0.95) -> dict[str, dict]:
    """Per numeric feature of one explanation: the correlation between its value and its
    attribution (with interval and sign) and the mean signed attribution of its highest state
    minus its lowest (with ``states``, the causal learner's discretisation)."""
    out: dict[str, dict] = {}
    attr = getattr(explanation, "attributions", None)
    vals = getattr(explanation, "feature_values", None)
    if attr is None or vals is None:
        return out
    for f in attr.columns:
        if f not in vals.columns:
            continue
        x = pd.to_numeric(vals[f], errors="coerce").to_numpy(dtype=float)
        if np.isnan(x).all():
            continue  # categorical: no direction
        a = attr[f].to_numpy(dtype=float)
        r, lo, hi = correlation_interval(x, a, ci)
        hl = np.nan
        st = (states or {}).get(f)
        if st is not None and st.kind in ("bins", "values") and st.n_states >= 2:
            ok = np.isfinite(x)
            codes = st.transform(pd.Series(x[ok]))
            aa = a[ok]
            top, bottom = aa[codes == st.n_states - 1], aa[codes == 0]
            if len(top) and len(bottom):
                hl = float(top.mean() - bottom.mean())
        out[f] = {"attribution_direction": r, "attribution_direction_low": lo, "attribution_direction_high": hi,
                  "attribution_sign": _sign(lo, hi), "attribution_high_vs_low": hl, "explained_rows": int(np.isfinite(x).sum())}
    return out


def causal_directions(levels: pd.DataFrame | None, states: dict | None, min_effect: float) -> dict[str, dict]:
    """Per ordered feature: P(do(highest state)) - P(do(lowest state)) with its interval and sign."""
    out: dict[str, dict] = {}
    if levels is None or not len(levels):
        return out
    for f, sub in levels.groupby("feature", sort=False):
        st = (states or {}).get(f)
        if st is None or st.kind not in ("bins", "values") or len(sub) < 2:
            continue
        sub = sub.sort_values("level")
        last = sub.iloc[-1]
        d = float(last["p_do"] - sub.iloc[0]["p_do"])
        lo, hi = float(last["effect_low"]), float(last["effect_high"])
        if np.isfinite(lo) and np.isfinite(hi):
            sign = _sign(lo, hi)
        else:  # no interval (no bootstrap): the point estimate, when it clears min_effect
            sign = int(np.sign(d)) if abs(d) >= min_effect else 0
        out[str(f)] = {"causal_direction": d, "causal_direction_low": lo, "causal_direction_high": hi, "causal_sign": sign}
    return out


def _fmt_iv(v: float, lo: float, hi: float, pct: bool = False) -> str:
    f = (lambda x: f"{x:+.3f}")
    if not np.isfinite(v):
        return "n/a"
    if np.isfinite(lo) and np.isfinite(hi):
        return f"{f(v)} [{f(lo)}, {f(hi)}]"
    return f"{f(v)} (no interval)"


def no_path_text(row: dict) -> str:
    """What "no directed path" does and does not say, with the bootstrap graphs' interval when known."""
    lo, hi = row.get("causal_effect_low", np.nan), row.get("causal_effect_high", np.nan)
    boot = (f"; the bootstrap graphs put its effect at [{lo:.3f}, {hi:.3f}]"
            if np.isfinite(lo) and np.isfinite(hi) and hi > 0 else "")
    return ("no directed path to the outcome in the learned graph, so the effect is not estimated (a cause the "
            "structure search missed is not ruled out" + boot + ")")


def _reason(flag: str, row: dict, min_effect: float, attribution_share: float) -> str:
    """One sentence grounding ``flag`` in the numbers of ``row``."""
    eff = row["causal_effect"]
    eff_iv = (no_path_text(row) if not row["path_to_outcome"] else
              f"causal effect {eff:.3f}" + (f" [{row['causal_effect_low']:.3f}, {row['causal_effect_high']:.3f}]"
                                             if np.isfinite(row["causal_effect_low"]) else " (no interval)"))
    share = f"{100 * row['attribution_share']:.1f}% of the attribution"
    att_dir = ("" if not np.isfinite(row.get("attribution_direction", np.nan)) else
               f"attribution vs value correlation {_fmt_iv(row['attribution_direction'], row['attribution_direction_low'], row['attribution_direction_high'])}")
    cau_dir = ("" if not np.isfinite(row.get("causal_direction", np.nan)) else
               f"P(do(high)) - P(do(low)) {_fmt_iv(row['causal_direction'], row['causal_direction_low'], row['causal_direction_high'])}")
    if flag == SIGN_DISAGREES:
        return (f"the model scores higher when it is {'higher' if row['attribution_sign'] > 0 else 'lower'} ({att_dir}), "
                f"but raising it {'raises' if row['causal_sign'] > 0 else 'lowers'} the outcome ({cau_dir})")
    if flag == LEANS_ON_PROXY and not row["path_to_outcome"]:
        return f"{share} (>= {100 * attribution_share:g}%), but {eff_iv}" + (f"; {att_dir}" if att_dir else "")
    if flag == LEANS_ON_PROXY:
        return (f"{share} (>= {100 * attribution_share:g}%), while {eff_iv} is not shown to reach {min_effect:g}"
                + (f"; {att_dir}" if att_dir else ""))
    if flag.startswith(CAUSE_NOT_USED):
        return f"{eff_iv} (>= {min_effect:g}) but only {share}" + (f"; {cau_dir}" if cau_dir else "")
    if flag == AGREE:
        parts = [share, eff_iv] + [x for x in (att_dir, cau_dir) if x]
        return "; ".join(parts)
    if flag == NOT_CAUSAL:
        return "ids and history sequences are not causal variables"
    return f"{share}; {eff_iv}"


def causal_vs_attribution(
    feature_effects: pd.DataFrame,
    explanations: Iterable[Any],
    *,
    levels: pd.DataFrame | None = None,
    states: dict | None = None,
    min_effect: float = 0.01,
    attribution_share: float = 0.05,
    ci: float = 0.95,
    model_inputs: dict[str, Iterable[str]] | None = None,
) -> pd.DataFrame:
    """Long table: one row per (feature, model, method), or one row per feature (model and
    method empty) when the run has no per-feature attributions. ``levels`` (the do-effects per
    level, with intervals) and ``states`` give the causal direction of ordered features.
    ``model_inputs`` (model name -> its input features) tells a feature the model does not take
    from one the explainer does not cover; without it, a model's inputs are the features any of
    its explanations attributes to."""
    explanations = list(explanations)
    inputs: dict[str, set[str]] = {}
    for e in explanations:
        a = getattr(e, "attributions", None)
        if a is not None and not a.empty:
            inputs.setdefault(str(e.model), set()).update(map(str, a.columns))
    for m, feats in (model_inputs or {}).items():
        if feats:
            inputs[str(m)] = set(map(str, feats))
    attr = mean_abs_attributions(explanations)
    eff = feature_effects.set_index("feature") if len(feature_effects) else pd.DataFrame(
        columns=["effect", "effect_low", "effect_high", "path_to_outcome"])
    causal_features = list(eff.index)
    cdir = causal_directions(levels, states, min_effect)
    rows = []
    nan_dir = {"causal_direction": np.nan, "causal_direction_low": np.nan, "causal_direction_high": np.nan, "causal_sign": 0}
    nan_att = {"attribution_direction": np.nan, "attribution_direction_low": np.nan, "attribution_direction_high": np.nan,
               "attribution_sign": 0, "attribution_high_vs_low": np.nan, "explained_rows": 0}

    def causal(feat: str) -> dict:
        if feat in eff.index:
            r = eff.loc[feat]
            return {"causal_effect": float(r["effect"]), "causal_effect_low": float(r["effect_low"]),
                    "causal_effect_high": float(r["effect_high"]), "path_to_outcome": bool(r["path_to_outcome"]),
                    "causal_variable": True, **cdir.get(feat, nan_dir)}
        return {"causal_effect": np.nan, "causal_effect_low": np.nan, "causal_effect_high": np.nan,
                "path_to_outcome": False, "causal_variable": False, **nan_dir}

    def causes(c: dict) -> bool:
        # a cause needs a directed path and an effect whose interval (where known) clears min_effect
        return bool(c["causal_variable"] and c["path_to_outcome"] and c["causal_effect"] >= min_effect
                    and not (np.isfinite(c["causal_effect_low"]) and c["causal_effect_low"] < min_effect / 2))

    def flag_of(uses: bool, c: dict, a: dict) -> str:
        if not c["causal_variable"]:
            return NOT_CAUSAL
        if uses and c["causal_sign"] and a["attribution_sign"] and c["causal_sign"] != a["attribution_sign"]:
            return SIGN_DISAGREES
        if uses:
            return AGREE if causes(c) else LEANS_ON_PROXY
        return CAUSE_NOT_USED if causes(c) else NEITHER

    if attr.empty:
        for feat in causal_features:
            c = causal(feat)
            row = {"feature": feat, "model": "", "method": "", **c, "mean_abs_attribution": np.nan,
                   "attribution_share": np.nan, "attribution_rank": np.nan, **nan_att,
                   "flag": "causal effect" if causes(c) else NO_EFFECT_SHOWN if c["path_to_outcome"] else NO_PATH_FOUND}
            row["reason"] = (f"causal effect {c['causal_effect']:.3f}; the run has no per-feature attributions to compare"
                             if c["path_to_outcome"] else no_path_text(c) + "; no attributions to compare")
            rows.append(row)
        return pd.DataFrame(rows, columns=COLUMNS)
    dirs: dict[tuple[str, str], dict[str, dict]] = {}
    for e in explanations:
        if getattr(e, "attributions", None) is not None and not e.attributions.empty:
            dirs.setdefault((e.model, e.method), attribution_directions(e, states, ci))
    for (model, method), grp in attr.groupby(["model", "method"], sort=False):
        seen = set()
        d = dirs.get((model, method), {})
        for _, a in grp.iterrows():
            feat = a["feature"]
            seen.add(feat)
            c = causal(feat)
            ad = d.get(feat, nan_att)
            uses = a["attribution_share"] >= attribution_share
            row = {"feature": feat, "model": model, "method": method, **c,
                   "mean_abs_attribution": a["mean_abs_attribution"], "attribution_share": a["attribution_share"],
                   "attribution_rank": a["attribution_rank"], **ad}
            row["flag"] = flag_of(uses, c, ad)
            row["reason"] = _reason(row["flag"], row, min_effect, attribution_share)
            rows.append(row)
        for feat in causal_features:  # causal variables the model does not take as input
            if feat in seen or feat in inputs.get(str(model), ()):
                continue  # a model input this method does not cover: the method says nothing about it
            c = causal(feat)
            row = {"feature": feat, "model": model, "method": method, **c, "mean_abs_attribution": 0.0,
                   "attribution_share": 0.0, "attribution_rank": np.nan, **nan_att}
            row["flag"] = (CAUSE_NOT_USED if causes(c) else NEITHER) + NOT_INPUT
            row["reason"] = _reason(row["flag"], row, min_effect, attribution_share)
            rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS)
    order = {f: i for i, f in enumerate(causal_features)}
    out["_o"] = [order.get(f, len(order)) for f in out["feature"]]
    out = out.sort_values(["model", "method", "_o", "attribution_rank"], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)
