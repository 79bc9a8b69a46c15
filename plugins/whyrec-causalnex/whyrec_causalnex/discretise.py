"""Discretisation of the causal variables into states with readable names ("price: high").

A Bayesian network needs discrete variables. Numeric variables with few distinct values (at most
``max_values``, e.g. a discount of 0, 5, 10 or 20 %) keep each value as its own state; other numerics are cut by quantiles (CausalNex ``Discretiser``) or by the split
points of a decision tree that predicts the outcome (CausalNex
``DecisionTreeSupervisedDiscretiserMethod``); categoricals keep their levels. Every state has a
code (0..k-1, what the network stores), a short label ("low", "medium", "high" or the value)
and an interval ("[12.5, 20.1)").
"""
from __future__ import annotations

import math
import re
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
    support: list[float] | None = None  # [min, max] of the training values (numerics)

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
        """The one state code a user's level names (see ``select``); ValueError for a range
        that covers several states, an unknown level or a value outside the data."""
        sel = self.select(text)
        if len(sel.codes) != 1:
            raise ValueError(f"{self.name!r}: {sel.asked!r} covers several states ({sel.used}); name one state or value")
        return sel.codes[0]

    def _states_text(self) -> str:
        return ", ".join(f"{lab!r} {self.interval(i)}" if self.kind == "bins" else repr(lab)
                         for i, lab in enumerate(self.labels))

    def _range(self) -> tuple[float, float] | None:
        if self.support is not None:
            return float(self.support[0]), float(self.support[1])
        if self.kind == "values" and self.values:
            vals = [float(v) for v in self.values]
            return min(vals), max(vals)
        return None

    def _outside(self, v: float, asked: str) -> ValueError:
        lo, hi = self._range()
        return ValueError(f"{self.name} = {asked} is outside the data: {self.name} ranges over [{_fmt(lo)}, {_fmt(hi)}] "
                          f"in the training rows, and the network cannot say what a value it never saw would do; "
                          f"ask for a value in that range")

    def select(self, text: Any) -> "Selection":
        """What a user's level means, in the data's own units.

        A number is always a value of the variable (never a state code): the state that holds
        it ("price = 4.5" -> the bin [3.9, 5.2)); a value outside the training data's range is
        an error. ``lo..hi`` is a range: the states it overlaps, weighted by their training
        counts. A state label ("high", case-insensitive), an interval as printed, or a
        categorical level names its state. ValueError (one line) names the states."""
        asked = str(text).strip()
        rng = RANGE.match(asked)
        if rng:
            return self._select_range(asked, float(rng.group(1)), float(rng.group(2)))
        num = _number(asked)
        low = asked.lower()
        if self.kind == "levels":
            for i, v in enumerate(self.values):
                if asked == str(v) or (num is not None and _number(str(v)) == num):
                    return Selection(self.name, asked, "level", [i], [1.0], self._state_text(i), str(self.labels[i]))
        elif num is not None:
            return self._select_value(asked, num)
        for i, lab in enumerate(self.labels):
            if low == str(lab).lower() or low == self.interval(i).lower():
                return Selection(self.name, asked, "state", [i], [1.0], self._state_text(i),
                                 f"{self.labels[i]} {self.interval(i)}" if self.kind == "bins" else str(self.labels[i]))
        raise ValueError(f"{self.name!r} has no state {asked!r}; its states are {self._states_text()}"
                         + ("" if self.kind == "levels" else
                            "; or give a value in the data's units (e.g. "
                            f"{self.name}={_fmt(self._range()[0]) if self._range() else 1}) or a range lo..hi"))

    def _state_text(self, code: int) -> str:
        if self.kind == "bins":
            return f"state {self.labels[code]!r} {self.interval(code)}"
        return f"state {self.labels[code]!r}"

    def _select_value(self, asked: str, v: float) -> "Selection":
        if not math.isfinite(v):
            raise ValueError(f"{self.name} = {asked}: not a finite number")
        lim = self._range()
        tol = 1e-9 * max(1.0, abs(v))
        if lim is not None and not (lim[0] - tol <= v <= lim[1] + tol):
            raise self._outside(v, asked)
        if self.kind == "values":
            vals = np.asarray(self.values, dtype=float)
            hit = np.flatnonzero(np.abs(vals - v) <= tol)
            if not len(hit):
                raise ValueError(f"{self.name} takes the values {', '.join(_fmt(x) for x in vals)} in the training rows; "
                                 f"{asked} is not one of them (the network has no state for it): ask for one of these, "
                                 f"or a range like {_fmt(vals[0])}..{_fmt(vals[-1])}")
            return Selection(self.name, asked, "value", [int(hit[0])], [1.0], self._state_text(int(hit[0])))
        code = int(np.digitize([v], np.asarray(self.edges, dtype=float), right=False)[0])
        return Selection(self.name, asked, "value", [code], [1.0], self._state_text(code))

    def _select_range(self, asked: str, lo: float, hi: float) -> "Selection":
        if self.kind == "levels":
            raise ValueError(f"{self.name!r} is categorical: a range {asked!r} means nothing for it; its states are "
                             f"{self._states_text()}")
        if lo > hi:
            raise ValueError(f"{self.name} = {asked}: the range is empty (its start is above its end); write it low..high")
        lim = self._range()
        if lim is not None:
            tol = 1e-9 * max(1.0, abs(lo), abs(hi))
            for v in (lo, hi):
                if not (lim[0] - tol <= v <= lim[1] + tol):
                    raise self._outside(v, asked)
        if self.kind == "values":
            vals = np.asarray(self.values, dtype=float)
            codes = [i for i, x in enumerate(vals) if lo <= x <= hi]
            if not codes:
                raise ValueError(f"{self.name} = {asked}: no value of the training rows lies in it (values: "
                                 f"{', '.join(_fmt(x) for x in vals)})")
        else:
            edges = np.asarray(self.edges, dtype=float)
            first = int(np.digitize([lo], edges, right=False)[0])
            last = int(np.digitize([hi], edges, right=False)[0])
            # a range ending exactly on a bin's lower edge does not reach into that bin
            if last > first and hi == edges[last - 1]:
                last -= 1
            codes = list(range(first, last + 1))
        counts = np.asarray([self.counts[c] if c < len(self.counts) else 1 for c in codes], dtype=float)
        w = counts / counts.sum() if counts.sum() > 0 else np.full(len(codes), 1 / len(codes))
        if len(codes) == 1:
            used = self._state_text(codes[0])
        else:
            used = "a mix, by training counts, of " + ", ".join(f"{self._state_text(c)} {100 * x:.0f}%"
                                                              for c, x in zip(codes, w))
        return Selection(self.name, asked, "range", codes, [float(x) for x in w], used)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VariableStates":
        return cls(**d)


RANGE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\.\.\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


@dataclass
class Selection:
    """What one variable of an intervention was set to: the states (codes) and their weights
    (one state with weight 1, or the mix a range covers), and ``used`` in words."""

    variable: str
    asked: str
    how: str  # "value", "range", "state" or "level"
    codes: list[int]
    weights: list[float]
    used: str
    display: str = ""  # a named state as printed in do(...): "low [-inf, 9.01)", "red"

    def text(self) -> str:
        """"price = 4.5 (state 'medium' [3.9, 5.2))": what was asked and the state(s) used."""
        if self.how == "range":
            return f"{self.variable} in [{self.asked.replace('..', ', ')}] ({self.used})"
        if self.how == "value":
            return f"{self.variable} = {self.asked}" + (f" ({self.used})" if "[" in self.used else "")
        return f"{self.variable} = {self.display or self.used}"

    def to_dict(self, labels: list[str], intervals: list[str]) -> dict:
        return {"variable": self.variable, "asked": self.asked, "how": self.how,
                "states": [{"code": c, "state": labels[c], "interval": intervals[c], "weight": w}
                           for c, w in zip(self.codes, self.weights)], "used": self.used}


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
    """Fit the states of every variable of ``table`` on its rows. A numeric with at most
    ``max_values`` distinct values (default: ``bins``) keeps them as its states."""
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
                                       counts=np.bincount(codes, minlength=len(values)).tolist(),
                                       support=[float(uniq[0]), float(uniq[-1])])
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
                                   counts=np.bincount(codes, minlength=len(edges) + 1).tolist(),
                                   support=[float(uniq[0]), float(uniq[-1])])
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
