"""Do-interventions: P(outcome | do(feature = level)) for every level, with bootstrap intervals.

The point estimates come from CausalNex ``InferenceEngine.do_intervention`` on the fitted
network. The intervals are percentile intervals over ``n_boot`` bootstrap resamples of the
training data (users and items resampled, see structure.resample_weights), refitting the CPDs
on each resample with the *same* learned graph: they measure
how well the data pin down the probabilities, not the uncertainty of the graph itself (the edge
stability table shows that).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .discretise import VariableStates
from .network import FittedNetwork, IsolateError
from .structure import resample_weights


LEVEL_COLUMNS = ["feature", "level", "state", "description", "interval", "p_do", "p_do_low", "p_do_high",
                 "effect_vs_first", "effect_low", "effect_high", "estimate_in_interval", "p_observed", "path_to_outcome",
                 "train_count"]


def _level_effects(net: FittedNetwork, var: str) -> np.ndarray:
    """P(outcome = positive | do(var = level)) for each level of var."""
    pos = net.positive_state
    return np.array([net.do_outcome({var: lvl})[pos] for lvl in range(net.states[var].n_states)])


def do_effects(
    net: FittedNetwork | None,
    features: list[str],
    states: dict[str, VariableStates],
    train_codes: pd.DataFrame,
    *,
    baseline: float,
    n_boot: int = 0,
    ci: float = 0.95,
    seed: int = 0,
    progress: Any = None,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(levels, features).

    levels: one row per (feature, level): the interventional probability of the outcome, the
    observational one P(outcome | feature = level) for contrast, and the effect against the
    feature's first level, each with its bootstrap interval where there is a causal path.
    features: one row per feature: ``effect`` = max - min of P(outcome | do) over its levels."""
    rows: list[dict] = []
    if not features:
        return pd.DataFrame(columns=LEVEL_COLUMNS), pd.DataFrame(columns=["feature", "effect", "effect_low", "effect_high",
                                                                         "path_to_outcome"])
    with_path = [f for f in features if net is not None and f in net.variables and net.has_path(f)]
    # interventions only need the outcome's ancestors (same answer, smaller junction tree)
    anc = net.ancestral() if with_path else None
    point: dict[str, np.ndarray] = {f: _level_effects(anc, f) for f in with_path}
    observational: dict[str, np.ndarray] = {}
    if net is not None:
        pos = net.positive_state
        for f in features:
            if f in net.variables:
                observational[f] = np.array([net.query_outcome({f: lvl})[pos] for lvl in range(states[f].n_states)])
    boots: dict[str, list[np.ndarray]] = {f: [] for f in with_path}
    if n_boot and with_path:
        rng = np.random.default_rng(seed)
        n = len(train_codes)
        it = range(n_boot)
        if progress is not None:
            it = progress(it, desc="do-effect bootstrap", total=n_boot)
        for _ in it:
            w = resample_weights(n, rng, groups)
            sample = train_codes.iloc[np.repeat(np.arange(n), w.astype(int))]
            nb = anc.copy_structure().refit(sample)
            for f in with_path:
                boots[f].append(_level_effects(nb, f))
    alpha = (1 - ci) / 2
    for f in features:
        st = states[f]
        k = st.n_states
        path = f in point
        p = point[f] if path else np.full(k, baseline)
        b = np.array(boots[f]) if path and boots[f] else None
        obs = observational.get(f)
        for lvl in range(k):
            row = {
                "feature": f, "level": lvl, "state": st.labels[lvl], "description": st.describe(lvl),
                "interval": st.interval(lvl), "p_do": float(p[lvl]),
                "p_do_low": np.nan, "p_do_high": np.nan,
                "effect_vs_first": float(p[lvl] - p[0]), "effect_low": np.nan, "effect_high": np.nan,
                # None: no interval to check
                "estimate_in_interval": None,
                "p_observed": float(obs[lvl]) if obs is not None else np.nan,
                "path_to_outcome": path, "train_count": st.counts[lvl] if lvl < len(st.counts) else None,
            }
            if b is not None:
                row["p_do_low"], row["p_do_high"] = (float(x) for x in np.quantile(b[:, lvl], [alpha, 1 - alpha]))
                diff = b[:, lvl] - b[:, 0]
                row["effect_low"], row["effect_high"] = (float(x) for x in np.quantile(diff, [alpha, 1 - alpha]))
                # percentile intervals of the refitted CPDs need not contain the full-data estimate
                # (the Bayesian prior weighs more on a resample with fewer distinct rows): say so
                # rather than print a contradiction
                row["estimate_in_interval"] = bool(row["p_do_low"] - 1e-12 <= row["p_do"] <= row["p_do_high"] + 1e-12)
            elif not path:
                # no directed path to the outcome in the learned graph: the effect is exactly zero
                row["p_do_low"] = row["p_do_high"] = row["p_do"]
                row["effect_low"] = row["effect_high"] = 0.0
            rows.append(row)
    out = pd.DataFrame(rows, columns=LEVEL_COLUMNS)
    # the feature-level effect: the spread of P(outcome | do) over the feature's levels
    spans = []
    for f in features:
        sub = out[out["feature"] == f]
        span = float(sub["p_do"].max() - sub["p_do"].min())
        # no path: exactly 0, no uncertainty; a path but no bootstrap: interval unknown
        lo = hi = span if f not in point else np.nan
        if f in point and boots[f]:
            b = np.array(boots[f])
            sb = b.max(axis=1) - b.min(axis=1)
            lo, hi = (float(x) for x in np.quantile(sb, [alpha, 1 - alpha]))
        spans.append({"feature": f, "effect": span, "effect_low": lo, "effect_high": hi})
    span_df = pd.DataFrame(spans, columns=["feature", "effect", "effect_low", "effect_high"])
    span_df["path_to_outcome"] = [f in point for f in span_df["feature"]]
    return out, span_df


def intervention_result(net: FittedNetwork, do: dict[str, int], baseline_marginal: np.ndarray) -> pd.DataFrame:
    """The outcome distribution under ``do`` next to the observational one."""
    st = net.states[net.target]
    dist = net.do_outcome(do)
    return pd.DataFrame({
        "outcome": net.target,
        "state": st.labels,
        "p_do": dist,
        "p_observed": baseline_marginal,
        "change": dist - baseline_marginal,
    })


__all__ = ["do_effects", "intervention_result", "IsolateError"]
