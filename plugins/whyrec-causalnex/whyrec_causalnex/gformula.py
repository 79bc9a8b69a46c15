"""do() in the data's units: the parametric g-formula on the learned graph.

The Bayesian network answers do() for a *state*: P(outcome | do(x in bin)) averages over the
training values inside the bin and adjusts for discretised parents. Asked "what if price = 4.5",
that answer is biased in two ways that no amount of data removes: the bin's mean is not 4.5
(with 3 quantile bins of a normal variable, the outer bins' means lie 12 % further apart than
their middles, so every effect between them is 12 % too large), and a parent cut into 3 bins
leaves confounding inside each bin. docs/benchmarks.md measures both on random SCMs.

The g-formula keeps the graph and answers for the value itself. Each variable on a path to the
outcome gets a model of its parents (the families the BIC structure search scores:
linear-Gaussian for a numeric variable, logistic for a binary one, multinomial logistic for a
categorical one and for the outcome's positive state; numeric parents enter linearly, binary as
0/1, categorical one-hot). ``do(x = v)`` sets x to v in every training row, recomputes x's
descendants in topological order (a numeric one from its model plus the row's own residual, a
binary or categorical one by sampling with noise fixed per row, so every value sees the same
draws), keeps every other variable as observed, and averages the outcome model's probability
over the rows. With the graph right and the models right this is E[outcome | do(x = v)] exactly,
up to estimation error; the models are the parametric ones the structure search already
assumes, which the report states.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# regularisation of the logistic fits (on standardised inputs): almost none, but finite so a
# separable family still has a solution
LOGIT_C = 100.0


@dataclass
class _Node:
    name: str
    kind: str  # "numeric", "binary" or "categorical"
    parents: list[str]
    # numeric: least-squares coefficients (intercept first); binary / categorical: ("shares", p)
    # for a node without parents, or ("logit", coef (classes x inputs), intercept, classes)
    model: Any = None
    levels: list[Any] = field(default_factory=list)  # binary: [low, high]; categorical: its levels
    residuals: np.ndarray | None = None


class GFormula:
    """Node models on a DAG and interventional means by the g-formula (see the module docstring).

    frame: raw values (one row per training pair, every variable of ``edges`` a column);
    kinds: "numeric" or "categorical" per column; target: the outcome column; positive: its
    positive value; weights: row weights (bootstrap counts; None = 1)."""

    def __init__(self, frame: pd.DataFrame, kinds: dict[str, str], edges: list[tuple[str, str]], target: str,
                 positive: Any, weights: np.ndarray | None = None, seed: int = 0,
                 outcome_terms: str = "additive") -> None:
        self.target = target
        self.outcome_terms = outcome_terms
        self.positive = positive
        parents: dict[str, list[str]] = {}
        for s, t in edges:
            parents.setdefault(t, []).append(s)
        # only the outcome's ancestors matter for its interventional mean
        anc = self._ancestors(target, parents)
        self.order = self._topological([n for n in frame.columns if n in anc], parents)
        keep = np.ones(len(frame), bool) if weights is None else np.asarray(weights) > 0
        self.frame = frame.loc[keep, self.order].reset_index(drop=True)
        self.weights = (np.ones(int(keep.sum())) if weights is None else np.asarray(weights, float)[keep])
        self.parents = {n: [p for p in self.order if p in parents.get(n, [])] for n in self.order}
        self._design_info: dict[str, tuple] = {}
        for n in self.order:
            col = self.frame[n]
            if kinds.get(n) == "categorical":
                lv = sorted(col.astype(str).unique())
                self._design_info[n] = ("categorical", lv)
            else:
                x = col.to_numpy(float)
                sd = float(x.std()) or 1.0
                self._design_info[n] = ("numeric", float(x.mean()), sd)
        self.nodes: dict[str, _Node] = {}
        for n in self.order:
            self.nodes[n] = self._fit(n, kinds)
        self.seed = seed
        self._draw_noise()

    def _draw_noise(self) -> None:
        rng = np.random.default_rng(self.seed)
        # the noise of binary / categorical descendants, fixed per row (common random numbers)
        self._uniform = {n: rng.uniform(size=len(self.frame)) for n in self.order}
        self._gumbel = {n: rng.gumbel(size=(len(self.frame), len(nd.levels))) for n, nd in self.nodes.items()
                        if nd.kind == "categorical"}

    # -- persistence (JSON: no pickle) -------------------------------------------------------
    def to_dict(self) -> dict:
        def model(m: Any) -> Any:
            if isinstance(m, np.ndarray):
                return {"ols": m.tolist()}
            if m[0] == "shares":
                return {"shares": m[1].tolist()}
            return {"coef": m[1].tolist(), "intercept": m[2].tolist(), "classes": m[3].tolist()}

        return {
            "target": self.target, "positive": self.positive, "order": self.order, "seed": self.seed,
            "outcome_terms": self.outcome_terms,
            "parents": self.parents, "design": {k: list(v) for k, v in self._design_info.items()},
            "nodes": {n: {"kind": nd.kind, "levels": list(nd.levels), "model": model(nd.model),
                          "residuals": None if nd.residuals is None else nd.residuals.tolist()}
                      for n, nd in self.nodes.items()},
            "rows": {c: self.frame[c].tolist() for c in self.order},
            "weights": self.weights.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GFormula":
        self = cls.__new__(cls)
        self.target, self.positive, self.order, self.seed = d["target"], d["positive"], list(d["order"]), int(d["seed"])
        self.outcome_terms = d.get("outcome_terms", "additive")
        self.parents = {k: list(v) for k, v in d["parents"].items()}
        self._design_info = {k: (v[0], list(v[1])) if v[0] == "categorical" else (v[0], float(v[1]), float(v[2]))
                             for k, v in d["design"].items()}
        self.frame = pd.DataFrame({c: d["rows"][c] for c in self.order})
        self.weights = np.asarray(d["weights"], float)
        self.nodes = {}
        for n, nd in d["nodes"].items():
            m = nd["model"]
            if "ols" in m:
                model: Any = np.asarray(m["ols"], float)
            elif "shares" in m:
                model = ("shares", np.asarray(m["shares"], float))
            else:
                model = ("logit", np.asarray(m["coef"], float), np.asarray(m["intercept"], float),
                         np.asarray(m["classes"], int))
            self.nodes[n] = _Node(n, nd["kind"], self.parents[n], model, list(nd["levels"]),
                                  None if nd["residuals"] is None else np.asarray(nd["residuals"], float))
        self._draw_noise()
        return self

    # -- graph helpers ------------------------------------------------------------------------
    @staticmethod
    def _ancestors(target: str, parents: dict[str, list[str]]) -> set[str]:
        out, todo = set(), [target]
        while todo:
            n = todo.pop()
            if n not in out:
                out.add(n)
                todo.extend(parents.get(n, []))
        return out

    @staticmethod
    def _topological(nodes: list[str], parents: dict[str, list[str]]) -> list[str]:
        done: list[str] = []
        left = list(nodes)
        while left:
            ready = [n for n in left if all(p in done or p not in nodes for p in parents.get(n, []))]
            if not ready:
                raise ValueError("the graph has a cycle; the g-formula needs a DAG")
            done.extend(ready)
            left = [n for n in left if n not in ready]
        return done

    def descendants(self, var: str) -> list[str]:
        """Variables on a directed path from ``var`` (within the outcome's ancestors), in order."""
        out = {var}
        for n in self.order:
            if any(p in out for p in self.parents[n]):
                out.add(n)
        return [n for n in self.order if n in out and n != var]

    def has_path(self, var: str) -> bool:
        return var in self.nodes and var != self.target and self.target in self.descendants(var)

    # -- fitting ------------------------------------------------------------------------------
    def _design(self, cols: dict[str, np.ndarray], parents: list[str], n: int, node: str | None = None) -> np.ndarray:
        """The inputs of a node's model: its parents' columns, and for the outcome with
        ``outcome_terms = "pairwise"`` the products of every two parents' columns."""
        parts = [np.zeros((n, 0))]
        groups = []
        for p in parents:
            info = self._design_info[p]
            x = cols[p]
            if info[0] == "categorical":
                lv = info[1]
                xs = np.asarray(x).astype(str)
                parts.append(np.column_stack([(xs == v).astype(float) for v in lv[1:]]) if len(lv) > 1
                             else np.zeros((n, 0)))
            else:
                parts.append(((np.asarray(x, float) - info[1]) / info[2])[:, None])
            groups.append(parts[-1])
        if node == self.target and self.outcome_terms == "pairwise":
            for a in range(len(groups)):
                for b in range(a + 1, len(groups)):
                    for i in range(groups[a].shape[1]):
                        parts.append(groups[a][:, [i]] * groups[b])
        return np.hstack(parts)

    def _fit(self, name: str, kinds: dict[str, str]) -> _Node:
        from sklearn.linear_model import LogisticRegression

        pa = self.parents[name]
        cols = {p: self.frame[p].to_numpy() for p in pa}
        n = len(self.frame)
        X = self._design(cols, pa, n, name)
        y_raw = self.frame[name]
        w = self.weights
        if name == self.target:
            y = (y_raw.astype(str).to_numpy() == str(self.positive)).astype(int)
            kind, levels = "binary", [0, 1]
        elif kinds.get(name) == "categorical":
            levels = sorted(y_raw.astype(str).unique())
            y = np.searchsorted(np.asarray(levels), y_raw.astype(str).to_numpy())
            kind = "categorical" if len(levels) > 2 else "binary"
        else:
            uniq = np.unique(y_raw.to_numpy(float))
            if len(uniq) == 2:
                kind, levels = "binary", [float(uniq[0]), float(uniq[1])]
                y = (y_raw.to_numpy(float) == uniq[1]).astype(int)
            else:
                kind, levels, y = "numeric", [], y_raw.to_numpy(float)
        node = _Node(name, kind, pa, levels=levels)
        if kind == "numeric":
            A = np.hstack([np.ones((n, 1)), X])
            sw = np.sqrt(w)[:, None]
            beta, *_ = np.linalg.lstsq(A * sw, y * sw[:, 0], rcond=None)
            node.model = beta
            node.residuals = y - A @ beta
            return node
        if len(np.unique(y)) < 2 or X.shape[1] == 0:
            # no parents (or one class): the weighted class shares
            shares = np.array([np.sum(w * (y == k)) for k in range(len(levels))], float)
            node.model = ("shares", shares / shares.sum())
            return node
        lr = LogisticRegression(C=LOGIT_C, max_iter=1000)
        lr.fit(X, y, sample_weight=w)
        node.model = ("logit", np.asarray(lr.coef_, float), np.asarray(lr.intercept_, float),
                      np.asarray(lr.classes_, int))
        return node

    # -- answering ----------------------------------------------------------------------------
    def _proba(self, node: _Node, cols: dict[str, np.ndarray], n: int) -> np.ndarray:
        """n x levels class probabilities of a binary / categorical node given its parents."""
        if node.model[0] == "shares":
            return np.tile(node.model[1], (n, 1))
        _, coef, intercept, classes = node.model
        z = self._design(cols, node.parents, n, node.name) @ coef.T + intercept
        P = np.zeros((n, len(node.levels)))
        if len(classes) == 2:  # sklearn's binary model: one row of coefficients for the second class
            p1 = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
            P[:, classes[0]], P[:, classes[1]] = 1 - p1, p1
        else:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            P[:, classes] = e / e.sum(axis=1, keepdims=True)
        return P

    def mean_outcome(self, do: dict[str, Any]) -> float:
        """E[P(outcome = positive) | do(var = value, ...)] over the training rows. A variable the
        outcome does not descend from (or that is not in the graph) changes nothing."""
        n = len(self.frame)
        cols = {c: self.frame[c].to_numpy() for c in self.order}
        changed: set[str] = set()
        for var, val in do.items():
            if var in cols:
                cols[var] = np.full(n, val, dtype=object if self._design_info[var][0] == "categorical" else float)
                changed.add(var)
        p = None
        for name in self.order:
            node = self.nodes[name]
            if name in do or not any(q in changed for q in node.parents):
                if name == self.target:
                    p = self._proba(node, cols, n)[:, 1]
                continue
            changed.add(name)
            if name == self.target:
                p = self._proba(node, cols, n)[:, 1]
            elif node.kind == "numeric":
                A = np.hstack([np.ones((n, 1)), self._design(cols, node.parents, n)])
                cols[name] = A @ node.model + node.residuals
            elif node.kind == "binary":
                P = self._proba(node, cols, n)
                hit = self._uniform[name] < P[:, 1]
                cols[name] = np.where(hit, node.levels[1], node.levels[0])
            else:
                P = self._proba(node, cols, n)
                k = np.argmax(np.log(np.clip(P, 1e-300, None)) + self._gumbel[name], axis=1)
                cols[name] = np.asarray(node.levels, dtype=object)[k]
        if p is None:
            raise ValueError(f"the outcome {self.target!r} is not in the graph")
        return float(np.sum(self.weights * p) / np.sum(self.weights))


def representative_values(states: Any, frame: pd.DataFrame) -> list[Any]:
    """The value each state of ``states`` stands for in the g-formula: the training median inside a
    bin, the value itself for a value state, the level for a categorical."""
    if states.kind == "levels":
        return list(states.values)
    if states.kind == "values":
        return [float(v) for v in states.values]
    x = frame[states.name].to_numpy(float)
    codes = states.transform(frame[states.name])
    out = []
    for k in range(states.n_states):
        inside = x[codes == k]
        out.append(float(np.median(inside)) if len(inside) else float("nan"))
    return out


__all__ = ["GFormula", "representative_values"]
