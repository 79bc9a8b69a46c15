"""Do-interventions: P(outcome | do(feature = level)) for every level, with bootstrap intervals.

Two estimators answer (the learner's ``do_estimator``):

- "bn": CausalNex ``InferenceEngine.do_intervention`` on the fitted network, for the state. The
  intervals are percentile intervals over ``n_boot`` bootstrap resamples of the training data
  (users and items resampled, see structure.resample_weights), refitting the CPDs on each
  resample with the *same* learned graph: they measure how well the data pin down the
  probabilities, not the uncertainty of the graph (the edge stability table shows that).
- "gformula" (``DoModel``): the g-formula on the same graph (gformula.py) at the value each state
  stands for (the training median inside a bin). With the structure's bootstrap graphs, each
  resample of the interval also takes one of those graphs in turn, so the interval carries the
  uncertainty of the structure: an edge found in few resamples moves few of them, and a feature
  with no path in the learned graph gets a non-zero interval when some resamples find one.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .discretise import VariableStates
from .gformula import GFormula, representative_values
from .network import FittedNetwork, IsolateError
from .structure import resample_weights


class DoModel:
    """The g-formula answers of a learner: its model on the learned graph, and how to refit it
    on a bootstrap resample (with one of the structure's bootstrap graphs, when given)."""

    def __init__(self, frame: pd.DataFrame, kinds: dict[str, str], edges: list[tuple[str, str]], target: str,
                 positive: Any, states: dict[str, VariableStates], seed: int = 0,
                 boot_graphs: list[list[tuple[str, str]]] | None = None,
                 required: list[tuple[str, str]] | None = None) -> None:
        self.frame, self.kinds, self.edges, self.target, self.positive = frame, kinds, list(edges), target, positive
        self.states, self.seed = states, seed
        self.boot_graphs = [list(g) for g in (boot_graphs or [])]
        self.required = [tuple(e) for e in (required or [])]
        self.gf = GFormula(frame, kinds, self.edges, target, positive, seed=seed)
        self._values = {f: representative_values(states[f], frame) for f in states if f != target and f in frame}

    def values(self, var: str) -> list[Any]:
        return self._values[var]

    def training_values(self, var: str) -> np.ndarray | None:
        """The training values of a numeric ``var`` on a path to the outcome (None otherwise)."""
        f = self.gf.frame
        return f[var].to_numpy(float) if var in f and self.gf._design_info[var][0] == "numeric" else None

    def to_dict(self) -> dict:
        """The g-formula and each state's value (JSON; the intervals are not re-computed on load)."""
        return {"gformula": self.gf.to_dict(), "values": self._values}

    @classmethod
    def from_dict(cls, d: dict, states: dict[str, VariableStates]) -> "DoModel":
        self = cls.__new__(cls)
        self.gf = GFormula.from_dict(d["gformula"])
        self._values = {k: list(v) for k, v in d["values"].items()}
        self.states, self.boot_graphs, self.required, self.seed = states, [], [], self.gf.seed
        self.frame = None
        return self

    def has_path(self, var: str) -> bool:
        return self.gf.has_path(var)

    def levels(self, var: str, gf: GFormula | None = None) -> np.ndarray:
        """E[outcome | do(var = the value of each state)]."""
        g = gf or self.gf
        return np.array([g.mean_outcome({var: v}) for v in self._values[var]])

    def resample(self, b: int, weights: np.ndarray) -> GFormula:
        """The g-formula refitted on a resample; resample b takes bootstrap graph b (cyclic over
        them) plus the required edges, or the learned graph when there are none (or that graph
        with the required edges has a cycle)."""
        edges = self.edges
        if self.boot_graphs:
            required = set(self.required)
            graph_b = [tuple(e) for e in self.boot_graphs[b % len(self.boot_graphs)]]
            # the resamples' searches did not force the required edges: every graph holds them
            edges = [e for e in graph_b if e not in required and (e[1], e[0]) not in required] + list(self.required)
        try:
            return GFormula(self.frame, self.kinds, edges, self.target, self.positive, weights=weights,
                            seed=self.seed + b + 1)
        except ValueError:  # a cycle
            return GFormula(self.frame, self.kinds, self.edges, self.target, self.positive, weights=weights,
                            seed=self.seed + b + 1)


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
    model: DoModel | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(levels, features).

    levels: one row per (feature, level): the interventional probability of the outcome, the
    observational one P(outcome | feature = level) for contrast, and the effect against the
    feature's first level, each with its bootstrap interval where there is a causal path.
    features: one row per feature: ``effect`` = max - min of P(outcome | do) over its levels.
    With ``model`` (the g-formula) the answers are its own at each state's value (see DoModel)."""
    if model is not None and features:
        return _do_effects_gformula(net, model, features, states, train_codes, baseline=baseline, n_boot=n_boot,
                                    ci=ci, seed=seed, progress=progress, groups=groups)
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
            row = _level_row(f, st, lvl, p, obs, path)
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


def _do_effects_gformula(net, model: DoModel, features, states, train_codes, *, baseline, n_boot, ci, seed,
                         progress, groups) -> tuple[pd.DataFrame, pd.DataFrame]:
    with_path = [f for f in features if model.has_path(f)]
    point = {f: model.levels(f) for f in with_path}
    observational: dict[str, np.ndarray] = {}
    if net is not None:
        pos = net.positive_state
        for f in features:
            if f in net.variables:
                observational[f] = np.array([net.query_outcome({f: lvl})[pos] for lvl in range(states[f].n_states)])
    # with the structure's bootstrap graphs every feature gets an interval (a resample may find a
    # path the learned graph lacks); without them only those with a path
    boot_feats = list(features) if model.boot_graphs else with_path
    boots: dict[str, list[np.ndarray]] = {f: [] for f in boot_feats}
    if n_boot and boot_feats:
        rng = np.random.default_rng(seed)
        n = len(model.frame)
        it = range(n_boot)
        if progress is not None:
            it = progress(it, desc="do-effect bootstrap", total=n_boot)
        for b in it:
            gb = model.resample(b, resample_weights(n, rng, groups))
            for f in boot_feats:
                boots[f].append(model.levels(f, gb) if gb.has_path(f) else np.full(states[f].n_states, np.nan))
    alpha = (1 - ci) / 2
    rows: list[dict] = []
    spans = []
    for f in features:
        st = states[f]
        k = st.n_states
        path = f in point
        p = point[f] if path else np.full(k, baseline)
        b = np.array(boots[f]) if boots.get(f) else None
        if b is not None:
            # a resample whose graph has no path: every level at that resample's baseline, effect 0
            no_path = np.isnan(b).all(axis=1)
            b = np.where(no_path[:, None], 0.0, b)
            base_b = np.where(no_path, 0.0, b[:, 0])
        obs = observational.get(f)
        vals = model.values(f)
        for lvl in range(k):
            # do_value: a number's exact repr or a level, as text (one column type for the tables' parquet)
            row = {**_level_row(f, st, lvl, p, obs, path),
                   "do_value": repr(float(vals[lvl])) if st.kind != "levels" else str(vals[lvl])}
            if b is not None:
                diff = b[:, lvl] - base_b
                row["effect_low"], row["effect_high"] = (float(x) for x in np.quantile(diff, [alpha, 1 - alpha]))
                if path:
                    pl = b[~no_path, lvl]
                    if len(pl):
                        row["p_do_low"], row["p_do_high"] = (float(x) for x in np.quantile(pl, [alpha, 1 - alpha]))
                        row["estimate_in_interval"] = bool(row["p_do_low"] - 1e-12 <= row["p_do"] <= row["p_do_high"] + 1e-12)
            elif not path:
                row["p_do_low"] = row["p_do_high"] = row["p_do"]
                row["effect_low"] = row["effect_high"] = 0.0
            rows.append(row)
        span = float(p.max() - p.min())
        lo = hi = span if not path else np.nan
        if b is not None:
            sb = np.where(no_path, 0.0, b.max(axis=1) - b.min(axis=1))
            lo, hi = (float(x) for x in np.quantile(sb, [alpha, 1 - alpha]))
        spans.append({"feature": f, "effect": span, "effect_low": lo, "effect_high": hi, "path_to_outcome": path})
    out = pd.DataFrame(rows, columns=LEVEL_COLUMNS + ["do_value"])
    span_df = pd.DataFrame(spans, columns=["feature", "effect", "effect_low", "effect_high", "path_to_outcome"])
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


__all__ = ["do_effects", "intervention_result", "IsolateError", "DoModel"]


def _level_row(f: str, st: Any, lvl: int, p: Any, obs: Any, path: bool) -> dict:
    """One level's row of the do-effects table, before its interval is known (filled in by
    the callers from their bootstraps; None in ``estimate_in_interval``: no interval to check)."""
    return {
        "feature": f, "level": lvl, "state": st.labels[lvl], "description": st.describe(lvl),
        "interval": st.interval(lvl), "p_do": float(p[lvl]),
        "p_do_low": np.nan, "p_do_high": np.nan,
        "effect_vs_first": float(p[lvl] - p[0]), "effect_low": np.nan, "effect_high": np.nan,
        "estimate_in_interval": None,
        "p_observed": float(obs[lvl]) if obs is not None else np.nan,
        "path_to_outcome": path, "train_count": st.counts[lvl] if lvl < len(st.counts) else None,
    }
