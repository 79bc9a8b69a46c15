"""Discretisation of the causal variables into states with readable names ("price: high").

A Bayesian network needs discrete variables. Numeric variables with few distinct values keep
them as states; other numerics are cut by quantiles (CausalNex ``Discretiser``) or by the split
points of a decision tree that predicts the outcome (CausalNex
``DecisionTreeSupervisedDiscretiserMethod``); categoricals keep their levels. Every state has a
code (0..k-1, what the network stores), a short label ("low", "medium", "high" or the value)
and an interval ("[12.5, 20.1)").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import compat
from .variables import VariableTable

LEVEL_NAMES = {
    2: ["low", "high"],
    3: ["low", "medium", "high"],
    4: ["low", "medium-low", "medium-high", "high"],
    5: ["very low", "low", "medium", "high", "very high"],
}


def _fmt(v: float) -> str:
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


@dataclass
class VariableStates:
    """How one variable maps to states.

    kind: "bins" (numeric cut at ``edges``: state i holds edges[i-1] <= x < edges[i]),
    "values" (numeric with few distinct values, state i = values[i]) or "levels" (categorical).
    """

    name: str
    kind: str
    labels: list[str]
    edges: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    method: str = ""
    counts: list[int] = field(default_factory=list)

    @property
    def n_states(self) -> int:
        return len(self.labels)

    def interval(self, code: int) -> str:
        if self.kind == "bins":
            lo = "-inf" if code == 0 else _fmt(self.edges[code - 1])
            hi = "inf" if code == len(self.edges) else _fmt(self.edges[code])
            return f"[{lo}, {hi})"
        return str(self.labels[code])

    def describe(self, code: int) -> str:
        """"price: high" (the readable state name)."""
        return f"{self.name}: {self.labels[code]}"

    def transform(self, series: pd.Series) -> np.ndarray:
        """Integer state codes for raw values; unseen categorical levels and numeric values between
        known ones go to the nearest / most frequent state (see ``unseen``)."""
        if self.kind == "bins":
            x = series.to_numpy(dtype=float)
            return np.digitize(x, np.asarray(self.edges, dtype=float), right=False).astype(np.int64)
        if self.kind == "values":
            x = series.to_numpy(dtype=float)
            vals = np.asarray(self.values, dtype=float)
            return np.abs(x[:, None] - vals[None, :]).argmin(axis=1).astype(np.int64)
        lookup = {str(v): i for i, v in enumerate(self.values)}
        fallback = int(np.argmax(self.counts)) if self.counts else 0
        return np.array([lookup.get(str(v), fallback) for v in series.astype(str)], dtype=np.int64)

    def unseen(self, series: pd.Series) -> int:
        """How many values of ``series`` are not states of this variable (categoricals only)."""
        if self.kind != "levels":
            return 0
        known = {str(v) for v in self.values}
        return int((~series.astype(str).isin(known)).sum())

    def parse(self, text: Any) -> int:
        """The state code for a user's level: a label ("high", case-insensitive), an interval, the
        value itself (for value/level states) or the code. ValueError names the states."""
        s = str(text).strip()
        low = s.lower()
        for i, lab in enumerate(self.labels):
            if low == str(lab).lower() or low == self.interval(i).lower():
                return i
        if self.kind in ("values", "levels"):
            for i, v in enumerate(self.values):
                if s == str(v):
                    return i
                try:
                    if float(s) == float(v):
                        return i
                except (TypeError, ValueError):
                    pass
        if s.isdigit() and int(s) < self.n_states and self.kind == "bins":
            return int(s)
        raise ValueError(f"{self.name!r} has no state {s!r}; its states are "
                         + ", ".join(f"{lab!r} {self.interval(i)}" if self.kind == "bins" else repr(lab)
                                     for i, lab in enumerate(self.labels)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VariableStates":
        return cls(**d)


def _bin_labels(k: int) -> list[str]:
    return list(LEVEL_NAMES.get(k, [f"q{i + 1}" for i in range(k)]))


def _clean_edges(x: np.ndarray, edges: np.ndarray) -> list[float]:
    """Unique split points that leave no bin empty; at least one split when x is not constant."""
    uniq = np.unique(x)
    edges = np.unique(np.asarray(edges, dtype=float))
    # a split at or below the minimum leaves bin 0 empty; above the maximum leaves the last empty
    edges = edges[(edges > uniq[0]) & (edges <= uniq[-1])]
    if len(edges) == 0 and len(uniq) > 1:
        # heavy ties (e.g. mostly zeros): split between the most common value and the rest
        vals, counts = np.unique(x, return_counts=True)
        mode = vals[np.argmax(counts)]
        above = uniq[uniq > mode]
        edges = np.array([above[0]]) if len(above) else np.array([mode])
    # drop splits that would leave an empty bin in between
    keep: list[float] = []
    for e in edges:
        lo = keep[-1] if keep else -np.inf
        if np.any((x >= lo) & (x < e)):
            keep.append(float(e))
    return keep


def fit_states(
    table: VariableTable,
    method: str = "quantile",
    bins: int = 3,
    seed: int = 0,
    max_values: int | None = None,
) -> dict[str, VariableStates]:
    """Fit the states of every variable of ``table`` on its rows."""
    compat.apply()
    max_values = max_values if max_values is not None else max(bins, 2)
    frame = table.frame
    target = table.target
    out: dict[str, VariableStates] = {}
    supervised_edges: dict[str, list[float]] = {}
    numeric = [c for c in frame.columns if table.kinds[c] == "numeric" and frame[c].nunique() > max_values]
    if method == "supervised":
        supervised_edges = _supervised_edges([c for c in numeric if c != target], frame, target, bins, seed)
    for name in frame.columns:
        col = frame[name]
        if table.kinds[name] == "categorical":
            values = sorted(col.astype(str).unique())
            counts = [int((col.astype(str) == v).sum()) for v in values]
            out[name] = VariableStates(name, "levels", [str(v) for v in values], values=list(values),
                                       method="levels", counts=counts)
            continue
        x = col.to_numpy(dtype=float)
        uniq = np.unique(x)
        if len(uniq) <= max_values or name == target:
            values = [float(v) for v in uniq]
            codes = np.abs(x[:, None] - uniq[None, :]).argmin(axis=1)
            out[name] = VariableStates(name, "values", [_fmt(v) for v in values], values=values, method="values",
                                       counts=np.bincount(codes, minlength=len(values)).tolist())
            continue
        how = "quantile"
        if name in supervised_edges and supervised_edges[name]:
            edges, how = supervised_edges[name], "supervised"
        else:
            from causalnex.discretiser import Discretiser

            edges = Discretiser(method="quantile", num_buckets=bins).fit(x.copy()).numeric_split_points
            if method == "supervised":
                how = "quantile (no tree split)"
        edges = _clean_edges(x, np.asarray(edges, dtype=float))
        codes = np.digitize(x, edges, right=False)
        out[name] = VariableStates(name, "bins", _bin_labels(len(edges) + 1), edges=edges, method=how,
                                   counts=np.bincount(codes, minlength=len(edges) + 1).tolist())
    return out


def _supervised_edges(names: list[str], frame: pd.DataFrame, target: str, bins: int, seed: int) -> dict[str, list[float]]:
    """Split points of a decision tree predicting the outcome from each feature alone."""
    if not names:
        return {}
    from causalnex.discretiser.discretiser_strategy import DecisionTreeSupervisedDiscretiserMethod

    depth = max(1, math.ceil(math.log2(max(bins, 2))))
    leaf = max(20, int(0.05 * len(frame)))
    method = DecisionTreeSupervisedDiscretiserMethod(
        mode="single",
        tree_params={"max_depth": depth, "max_leaf_nodes": bins, "min_samples_leaf": leaf, "random_state": seed},
    )
    df = frame[names + [target]].copy()
    df[target] = df[target].astype(str)
    method.fit(feat_names=names, target=target, dataframe=df, target_continuous=False)
    return {n: sorted(float(v) for v in method.map_thresholds.get(n, [])) for n in names}


def discretise(table_frame: pd.DataFrame, states: dict[str, VariableStates]) -> pd.DataFrame:
    """Integer state codes for every column of ``table_frame`` that has states."""
    return pd.DataFrame({n: states[n].transform(table_frame[n]) for n in table_frame.columns if n in states},
                        index=table_frame.index)


def states_table(states: dict[str, VariableStates]) -> pd.DataFrame:
    rows = []
    for name, st in states.items():
        for i, lab in enumerate(st.labels):
            rows.append({"variable": name, "code": i, "state": lab, "description": st.describe(i),
                         "interval": st.interval(i), "method": st.method,
                         "train_count": st.counts[i] if i < len(st.counts) else None})
    return pd.DataFrame(rows)
