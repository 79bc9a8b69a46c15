"""Random structural causal models (SCMs) with known truth, for tests and benchmarks.

``random_scm(n_nodes, seed, ...)`` draws a random DAG over mixed variables and a structural
equation for each: the projects's causal learner is then scored on data it was never tuned on.

Variables live at one of three *levels*, as in a recommender log: drawn once per user, once per
item, or once per logged (user, item) interaction ("context"). What can cause what follows from
that: a user variable depends only on user variables, an item variable only on item variables, an
interaction variable on anything drawn before it, the outcome on anything. The schema field of
each observed variable says the same in whyrec's terms: "user" (a user variable with no observed
parent), "history" (a user variable with observed parents, e.g. purchases caused by income),
"item", "context" (an interaction variable with no user/item parent) and "cross" (an interaction
variable with a user or item parent).

Structural equations, on a standardised latent scale. The *signal* of a variable is
``sum_p w_pv * g(p)`` over its parents, where g is a continuous parent's latent z, a binary
parent's 2x - 1, and a categorical parent's level score (random, mean 0, sd 1 over levels):

- continuous: ``z = signal + N(0, 1)``, observed as ``offset + scale * z`` with a random unit
  (scale log-uniform over 0.1..100), so variance ordering carries no information about the graph;
- binary: ``x ~ Bernoulli(sigmoid(b + signal))``;
- categorical (3 or 4 levels "A", "B", ...): ``P(level k) ∝ exp(b_k + u_k * signal)``;
- outcome "logistic": ``label ~ Bernoulli(sigmoid(b + signal))``; "rating": an ordinal logit
  ``rating = 1 + #{c_j < signal + Logistic}`` on 1..5 and ``label = rating >= 4``.

|w| is drawn uniformly from ``effect_range`` (feature equations) and ``outcome_effect_range`` (the
outcome), with a random sign. Hidden confounders are continuous variables with two or more
observed children; they are sampled like the others but are not observed columns and not nodes
of the true graph (``true_edges`` is the DAG over observed variables).

``do_effects(var, values, n_mc)`` sets ``var`` to each value for every unit and propagates through
the equations, by Monte Carlo with the same noise for every value (common random numbers), and
returns E[label | do(var = v)] (the mean of the outcome probability, so the only MC error is the
population's). Registered as the dataset ``random-scm``: ``RecData.truth`` holds the true graph
over observed variables and ``label``, and ``interventions`` in the simulators' format
(``{var: {"values": [...], "expected_outcome": [...], "mc_se": [...]}}``) for every actionable
variable, which the causal learner's truth checks read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from whyrec.causal import CausalGraph, Edge
from whyrec.data import ITEM, LABEL, RATING, TIMESTAMP, USER, RecData
from whyrec.errors import DataError
from whyrec.schema import Feature, FeatureSchema

from .splits import time_split

DAY = 86400.0
T0 = 1_700_000_000.0
LEVELS = ("user", "item", "context")
KINDS = ("continuous", "binary", "categorical")
# which levels a variable at each level may have as parents
PARENT_LEVELS = {"user": ("user",), "item": ("item",), "context": ("user", "item", "context")}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


@dataclass
class Var:
    """One variable of the SCM and its structural equation.

    parents: {parent name: weight w}. For ``kind == "continuous"``: offset/scale (observed unit);
    binary: ``bias``; categorical: ``biases`` (b_k) and ``loadings`` (u_k) per level and
    ``scores`` (g of each level when it is a parent)."""

    name: str
    level: str
    kind: str
    parents: dict[str, float] = field(default_factory=dict)
    hidden: bool = False
    actionable: bool = False
    offset: float = 0.0
    scale: float = 1.0
    bias: float = 0.0
    levels: list[str] = field(default_factory=list)
    biases: list[float] = field(default_factory=list)
    loadings: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"variable {self.name!r}: level {self.level!r} is not one of {LEVELS}")
        if self.kind not in KINDS:
            raise ValueError(f"variable {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "categorical" and not (len(self.levels) == len(self.biases) == len(self.loadings)
                                               == len(self.scores) >= 2):
            raise ValueError(f"variable {self.name!r}: a categorical needs levels, biases, loadings and scores "
                             f"of the same length >= 2")

    def g(self, x: np.ndarray) -> np.ndarray:
        """The variable's value as its children's equations see it."""
        if self.kind == "continuous":
            return (x - self.offset) / self.scale
        if self.kind == "binary":
            return 2.0 * x - 1.0
        return np.asarray(self.scores, dtype=float)[x]  # x holds level codes


@dataclass
class Outcome:
    kind: str = "logistic"  # or "rating"
    parents: dict[str, float] = field(default_factory=dict)
    bias: float = 0.0
    cuts: list[float] = field(default_factory=lambda: [-2.0, -0.7, 0.4, 1.5])  # rating thresholds

    def prob(self, signal: np.ndarray) -> np.ndarray:
        """P(label = 1) given the parents' signal."""
        if self.kind == "logistic":
            return sigmoid(self.bias + signal)
        # label = rating >= 4 = latent above the third cut
        return sigmoid(self.bias + signal - self.cuts[2])


class SCM:
    """A structural causal model over user, item and interaction variables and a binary outcome.

    ``variables`` in a topological order (parents before children). See the module docstring."""

    def __init__(self, variables: list[Var], outcome: Outcome, seed: int = 0, name: str = "random-scm") -> None:
        self.variables = list(variables)
        self.outcome = outcome
        self.seed = int(seed)
        self.name = name
        self.by_name = {v.name: v for v in self.variables}
        if len(self.by_name) != len(self.variables):
            raise ValueError("variable names must be unique")
        if LABEL in self.by_name:
            raise ValueError(f"{LABEL!r} is the outcome's name; no variable may use it")
        seen: set[str] = set()
        for v in self.variables:
            for p in v.parents:
                if p not in seen:
                    raise ValueError(f"variables must be in topological order: {v.name!r} comes before its parent {p!r}")
                if self.by_name[p].level not in PARENT_LEVELS[v.level]:
                    raise ValueError(f"a {v.level} variable ({v.name!r}) cannot depend on a {self.by_name[p].level} "
                                     f"variable ({p!r})")
            seen.add(v.name)
        for p in outcome.parents:
            if p not in self.by_name:
                raise ValueError(f"outcome parent {p!r} is not a variable")

    # -- structure ---------------------------------------------------------------------------
    @property
    def observed(self) -> list[str]:
        return [v.name for v in self.variables if not v.hidden]

    @property
    def hidden(self) -> list[str]:
        return [v.name for v in self.variables if v.hidden]

    @property
    def actionable(self) -> list[str]:
        return [v.name for v in self.variables if v.actionable and not v.hidden]

    @property
    def all_edges(self) -> list[tuple[str, str, float]]:
        """Every edge, hidden variables included: (source, target, weight)."""
        out = [(p, v.name, float(w)) for v in self.variables for p, w in v.parents.items()]
        out += [(p, LABEL, float(w)) for p, w in self.outcome.parents.items()]
        return out

    @property
    def true_edges(self) -> list[tuple[str, str]]:
        """The true DAG over the observed variables and ``label``."""
        hid = set(self.hidden)
        return [(s, t) for s, t, _ in self.all_edges if s not in hid and t not in hid]

    def field_of(self, name: str) -> str:
        v = self.by_name[name]
        observed_parents = [p for p in v.parents if not self.by_name[p].hidden]
        if v.level == "user":
            return "history" if observed_parents else "user"
        if v.level == "item":
            return "item"
        return "cross" if any(self.by_name[p].level != "context" for p in observed_parents) else "context"

    def graph(self) -> CausalGraph:
        hid = set(self.hidden)
        edges = [Edge(s, t, w) for s, t, w in self.all_edges if s not in hid and t not in hid]
        return CausalGraph(nodes=self.observed + [LABEL], edges=edges,
                           method={"source": "random-scm", "seed": self.seed, "hidden": self.hidden,
                                   "hidden_edges": [[s, t] for s, t, _ in self.all_edges if s in hid]})

    def schema(self) -> FeatureSchema:
        """Observed variables, sorted by name (not in causal order)."""
        feats = []
        for n in sorted(self.observed, key=_natural):
            v = self.by_name[n]
            feats.append(Feature(n, self.field_of(n), "categorical" if v.kind == "categorical" else "numeric",
                                 description=f"{v.kind} {v.level} variable", actionable=v.actionable))
        return FeatureSchema(feats)

    # -- sampling ----------------------------------------------------------------------------
    def _simulate(self, rng: np.random.Generator, n_users: int, n_items: int, u: np.ndarray | None,
                  i: np.ndarray | None, n_rows: int | None, do: dict[str, Any]) -> tuple[dict, np.ndarray, np.ndarray]:
        """Values of every variable (arrays at their own level; categoricals as level codes), the
        outcome probability per row and the row-level uniform noise of the outcome.

        All noise is drawn before any equation is evaluated and whatever ``do`` says, so two calls
        from the same generator state share it (common random numbers)."""
        sizes = {"user": n_users, "item": n_items}
        if u is None:
            u = rng.integers(0, n_users, n_rows)
            i = rng.integers(0, n_items, n_rows)
        n = len(u)
        sizes["context"] = n
        noise = {}
        for v in self.variables:
            m = sizes[v.level]
            noise[v.name] = rng.standard_normal(m) if v.kind == "continuous" else rng.uniform(size=m)
        # Gumbel noise for categoricals (one column per level)
        gumbel = {v.name: rng.gumbel(size=(sizes[v.level], len(v.levels))) for v in self.variables
                  if v.kind == "categorical"}
        y_noise = rng.uniform(size=n)
        vals: dict[str, np.ndarray] = {}
        gs: dict[str, np.ndarray] = {}

        def lift(p: str, level: str) -> np.ndarray:
            """Parent p's g-values indexed for a child at ``level``."""
            pl = self.by_name[p].level
            if pl == level:
                return gs[p]
            return gs[p][u] if pl == "user" else gs[p][i]

        for v in self.variables:
            m = sizes[v.level]
            signal = np.zeros(m)
            for p, w in v.parents.items():
                signal = signal + w * lift(p, v.level)
            if v.name in do:
                x = self._do_value(v, do[v.name], m)
            elif v.kind == "continuous":
                x = v.offset + v.scale * (signal + noise[v.name])
            elif v.kind == "binary":
                x = (noise[v.name] < sigmoid(v.bias + signal)).astype(float)
            else:
                logits = np.asarray(v.biases)[None, :] + signal[:, None] * np.asarray(v.loadings)[None, :]
                x = np.argmax(logits + gumbel[v.name], axis=1)
            vals[v.name] = x
            gs[v.name] = v.g(x)
        signal = np.zeros(n)
        for p, w in self.outcome.parents.items():
            signal = signal + w * lift(p, "context")
        return {"values": vals, "u": u, "i": i}, self.outcome.prob(signal), y_noise

    def _do_value(self, v: Var, value: Any, m: int) -> np.ndarray:
        if v.kind == "categorical":
            if str(value) not in v.levels:
                raise DataError(f"{v.name!r} has no level {value!r}; its levels are {v.levels}")
            return np.full(m, v.levels.index(str(value)), dtype=np.int64)
        x = float(value)
        if v.kind == "binary" and x not in (0.0, 1.0):
            raise DataError(f"{v.name!r} is binary: do() takes 0 or 1, got {value!r}")
        return np.full(m, x)

    def _frame(self, vals: dict, level: str, idx: np.ndarray | None = None) -> pd.DataFrame:
        cols = {}
        for v in self.variables:
            if v.hidden or v.level != level:
                continue
            x = vals[v.name] if idx is None else vals[v.name][idx]
            cols[v.name] = np.asarray(v.levels, dtype=object)[x] if v.kind == "categorical" else np.asarray(x, float)
        return pd.DataFrame(cols)

    def sample(self, n_rows: int, n_users: int | None = None, n_items: int | None = None,
               seed: int | None = None, hidden: bool = False) -> pd.DataFrame:
        """``n_rows`` interactions: user, item, every observed variable and ``label`` (with
        ``hidden`` also the hidden variables). Users and items are drawn uniformly, with
        replacement (n_users, n_items default to n_rows // 5 and n_rows // 10)."""
        n_users = n_users or max(2, n_rows // 5)
        n_items = n_items or max(2, n_rows // 10)
        rng = np.random.default_rng(self.seed if seed is None else seed)
        st, p, yn = self._simulate(rng, n_users, n_items, None, None, n_rows, {})
        return self._rows(st, p, yn, hidden)

    def _rows(self, st: dict, p: np.ndarray, yn: np.ndarray, hidden: bool = False) -> pd.DataFrame:
        u, i, vals = st["u"], st["i"], st["values"]
        out = {USER: u, ITEM: i}
        for v in self.variables:
            if v.hidden and not hidden:
                continue
            x = vals[v.name]
            x = x[u] if v.level == "user" else x[i] if v.level == "item" else x
            out[v.name] = np.asarray(v.levels, dtype=object)[x] if v.kind == "categorical" else np.asarray(x, float)
        if self.outcome.kind == "rating":
            # latent = bias + signal + Logistic noise (logit(p) = bias + signal - cuts[2]);
            # rating = 1 + number of cuts below it, so rating >= 4 with probability p
            latent = _logit(p) + self.outcome.cuts[2] + _logit(yn)
            rating = 1 + (latent[:, None] > np.asarray(self.outcome.cuts)[None, :]).sum(axis=1)
            out[RATING] = rating.astype(float)
            out[LABEL] = (rating >= 4).astype(np.int8)
        else:
            out[LABEL] = (yn < p).astype(np.int8)
        return pd.DataFrame(out)

    def do_effects(self, var: str, values: list[Any], n_mc: int = 200_000) -> dict:
        """E[label | do(var = v)] for each value, by Monte Carlo over a fresh population of
        ``n_mc`` interactions (n_mc // 20 users, n_mc // 40 items) with the same noise for every
        value. Returns {"values", "expected_outcome", "mc_se", "mc_pairs"}; ``mc_se`` is the
        standard error of each mean (the effect between two values has a smaller one: common
        random numbers)."""
        if var not in self.by_name:
            raise DataError(f"{var!r} is not a variable of this SCM (variables: {list(self.by_name)})")
        n_u, n_i = max(200, n_mc // 20), max(100, n_mc // 40)
        means, ses = [], []
        for v in values:
            rng = np.random.default_rng([self.seed, 7919])
            _, p, _ = self._simulate(rng, n_u, n_i, None, None, n_mc, {var: v})
            means.append(float(p.mean()))
            ses.append(float(p.std(ddof=1) / np.sqrt(len(p))))
        return {"values": list(values), "expected_outcome": means, "mc_se": ses, "mc_pairs": int(n_mc)}

    def intervention_values(self, var: str, n_pilot: int = 50_000) -> list[Any]:
        """The values the truth reports for ``var``: both values of a binary, every level of a
        categorical, the 1/6, 1/2 and 5/6 quantiles of a continuous variable (the middles of
        its terciles), to 4 significant digits."""
        v = self.by_name[var]
        if v.kind == "binary":
            return [0.0, 1.0]
        if v.kind == "categorical":
            return list(v.levels)
        rng = np.random.default_rng([self.seed, 31])
        st, _, _ = self._simulate(rng, max(200, n_pilot // 20), max(100, n_pilot // 40), None, None, n_pilot, {})
        x = st["values"][var]
        return [float(f"{q:.4g}") for q in np.quantile(x, [1 / 6, 1 / 2, 5 / 6])]

    def truth_interventions(self, variables: list[str] | None = None, n_mc: int = 200_000) -> dict:
        out = {}
        for var in (self.actionable if variables is None else variables):
            out[var] = self.do_effects(var, self.intervention_values(var), n_mc)
        return out

    def describe(self) -> dict:
        return {"seed": self.seed, "outcome": self.outcome.kind, "variables": [
            {"name": v.name, "level": v.level, "kind": v.kind, "hidden": v.hidden, "actionable": v.actionable,
             "parents": dict(v.parents)} for v in self.variables],
            "outcome_parents": dict(self.outcome.parents)}


def _natural(name: str) -> tuple:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1, name)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def random_scm(
    n_nodes: int = 10,
    seed: int = 0,
    *,
    n_hidden: int = 0,
    outcome: str = "logistic",
    edges_per_node: float = 1.0,
    effect_range: tuple[float, float] = (0.5, 1.5),
    outcome_effect_range: tuple[float, float] = (0.3, 1.2),
    kinds: tuple[float, float, float] = (0.6, 0.2, 0.2),
    levels: tuple[float, float, float] = (0.3, 0.4, 0.3),
    n_actionable: int = 3,
    max_outcome_parents: int = 4,
) -> SCM:
    """A random SCM with ``n_nodes`` observed nodes (the outcome ``label`` included) and
    ``n_hidden`` hidden confounders.

    kinds: shares of continuous / binary / categorical variables; levels: shares of user / item /
    interaction variables. The DAG follows a random order (users, then items, then interaction
    variables) with an edge between two compatible variables with the probability that gives
    ``edges_per_node`` edges per feature on average; the outcome gets 2..``max_outcome_parents``
    parents. ``n_actionable`` item or interaction variables with a directed path to the outcome
    are marked actionable (fewer if there are fewer)."""
    if not 3 <= n_nodes <= 40:
        raise DataError(f"random-scm: n_nodes must be between 3 and 40, got {n_nodes}")
    if outcome not in ("logistic", "rating"):
        raise DataError(f"random-scm: outcome must be 'logistic' or 'rating', got {outcome!r}")
    if n_hidden < 0:
        raise DataError(f"random-scm: n_hidden must not be negative, got {n_hidden}")
    rng = np.random.default_rng([int(seed), 2024])
    d = n_nodes - 1  # features
    lv = rng.choice(3, size=d, p=np.asarray(levels) / np.sum(levels))
    # at least one item and one interaction variable (actionable candidates)
    if d >= 3:
        lv[0], lv[1] = 1, 2
    kd = rng.choice(3, size=d, p=np.asarray(kinds) / np.sum(kinds))
    order = sorted(range(d), key=lambda k: (lv[k], rng.uniform()))
    # names in a random order: column order (x0, x1, ...) says nothing about the causal order
    label = rng.permutation(d)
    specs = [(f"x{label[j]}", LEVELS[lv[k]], KINDS[kd[k]]) for j, k in enumerate(order)]
    # candidate edges (compatible pairs in order)
    cand = [(a, b) for b in range(d) for a in range(b) if specs[a][1] in PARENT_LEVELS[specs[b][1]]]
    p_edge = min(0.9, edges_per_node * d / max(1, len(cand)))

    def weight(lo_hi: tuple[float, float]) -> float:
        return float(rng.uniform(*lo_hi) * rng.choice([-1.0, 1.0]))

    parents: list[dict[str, float]] = [{} for _ in range(d)]
    for a, b in cand:
        if rng.uniform() < p_edge:
            parents[b][specs[a][0]] = weight(effect_range)
    variables: list[Var] = []
    for (name, level, kind), par in zip(specs, parents):
        variables.append(_make_var(rng, name, level, kind, par))
    # hidden confounders: a continuous variable with 2-3 observed children it may cause
    hidden_vars: list[Var] = []
    for h in range(n_hidden):
        hl = LEVELS[rng.choice(3, p=[0.3, 0.5, 0.2])]
        kids = [v for v in variables if hl in PARENT_LEVELS[v.level]]
        if len(kids) < 2:
            hl = "context"
            kids = list(variables)
        chosen = rng.choice(len(kids), size=min(len(kids), int(rng.integers(2, 4))), replace=False)
        hv = Var(f"h{h}", hl, "continuous", hidden=True)
        hidden_vars.append(hv)
        for c in chosen:
            kids[int(c)].parents[hv.name] = weight(effect_range)
    # outcome parents
    k = int(rng.integers(2, max(2, min(max_outcome_parents, d)) + 1))
    # favour item and interaction variables (what a business can act on) but allow any
    pw = np.array([1.0 if v.level == "user" else 2.0 for v in variables])
    out_par = rng.choice(d, size=min(k, d), replace=False, p=pw / pw.sum())
    outcome_parents = {variables[int(j)].name: weight(outcome_effect_range) for j in out_par}
    if n_hidden and rng.uniform() < 0.5:  # the first hidden variable may confound the outcome too
        outcome_parents[hidden_vars[0].name] = weight(outcome_effect_range)
    # actionable: item / interaction variables that are ancestors of the outcome
    anc = _ancestors([*hidden_vars, *variables], set(outcome_parents))
    cands = [v for v in variables if v.level != "user" and v.name in anc]
    for j in rng.permutation(len(cands))[:n_actionable]:
        cands[int(j)].actionable = True
    bias = float(rng.uniform(-1.0, 0.3))
    out = Outcome(outcome, outcome_parents, bias)
    # hidden variables first: they are roots
    return SCM([*hidden_vars, *variables], out, seed=seed)


def _make_var(rng: np.random.Generator, name: str, level: str, kind: str, parents: dict[str, float]) -> Var:
    if kind == "continuous":
        return Var(name, level, kind, parents, offset=float(rng.normal(0, 10)),
                   scale=float(10 ** rng.uniform(-1, 2)))
    if kind == "binary":
        return Var(name, level, kind, parents, bias=float(rng.uniform(-1, 1)))
    k = int(rng.integers(3, 5))
    scores = rng.standard_normal(k)
    scores = (scores - scores.mean()) / (scores.std() or 1.0)
    return Var(name, level, kind, parents, levels=[chr(ord("A") + j) for j in range(k)],
               biases=list(map(float, rng.uniform(-0.5, 0.5, k))), loadings=list(map(float, scores)),
               scores=list(map(float, scores)))


def _ancestors(variables: list[Var], start: set[str]) -> set[str]:
    by = {v.name: v for v in variables}
    out, todo = set(), list(start)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        out.add(n)
        todo.extend(by[n].parents if n in by else [])
    return out


# -- the registered dataset -------------------------------------------------------------------
class RandomSCMDataset:
    """``random-scm``: interactions sampled from ``random_scm(n_nodes, seed, ...)``, with the true
    DAG over observed variables and the true do-effects of the actionable variables in
    ``RecData.truth``."""

    name = "random-scm"

    def __init__(self, n_nodes: int = 10, seed: int = 0, n_rows: int = 10000, n_hidden: int = 0,
                 outcome: str = "logistic", n_users: int | None = None, n_items: int | None = None,
                 test_fraction: float = 0.2, mc_pairs: int = 200_000, edges_per_node: float = 1.0) -> None:
        if int(n_rows) < 50:
            raise DataError(f"random-scm: n_rows={n_rows} must be at least 50")
        self.n_rows = int(n_rows)
        self.n_users = int(n_users or max(10, self.n_rows // 5))
        self.n_items = int(n_items or max(10, self.n_rows // 10))
        if self.n_rows > self.n_users * self.n_items:
            raise DataError(f"random-scm: n_rows={n_rows} exceeds n_users * n_items distinct pairs")
        self.test_fraction, self.mc_pairs, self.seed = float(test_fraction), int(mc_pairs), int(seed)
        self.scm = random_scm(int(n_nodes), int(seed), n_hidden=int(n_hidden), outcome=outcome,
                              edges_per_node=float(edges_per_node))
        self.params = {"n_nodes": int(n_nodes), "seed": self.seed, "n_rows": self.n_rows, "n_hidden": int(n_hidden),
                       "outcome": outcome, "n_users": self.n_users, "n_items": self.n_items,
                       "test_fraction": self.test_fraction, "mc_pairs": self.mc_pairs,
                       "edges_per_node": float(edges_per_node)}

    def load(self) -> RecData:
        scm = self.scm
        rng = np.random.default_rng([self.seed, 11])
        keys = rng.choice(self.n_users * self.n_items, size=self.n_rows, replace=False)
        u, i = keys // self.n_items, keys % self.n_items
        ts = np.round(T0 + rng.uniform(0, 30 * DAY, self.n_rows))
        order = np.lexsort((ts, u))
        u, i, ts = u[order], i[order], ts[order]
        st, p, yn = scm._simulate(rng, self.n_users, self.n_items, u, i, None, {})
        rows = scm._rows(st, p, yn)
        ctx = [n for n in scm.observed if scm.by_name[n].level == "context"]
        cols = [USER, ITEM, LABEL] + ([RATING] if RATING in rows else []) + ctx
        interactions = rows[cols].copy()
        interactions.insert(3, TIMESTAMP, ts)
        is_test, keep, report = time_split(u, ts, self.test_fraction, "user", n_users=self.n_users, quiet=True)
        train = interactions[~is_test].reset_index(drop=True)
        test = interactions[is_test & keep].reset_index(drop=True)
        users = scm._frame(st["values"], "user")
        users.index = pd.RangeIndex(self.n_users, name=USER)
        items = scm._frame(st["values"], "item")
        items.index = pd.RangeIndex(self.n_items, name=ITEM)
        items["title"] = [f"item {k}" for k in items.index]
        schema = scm.schema()
        truth = {"graph": scm.graph(), "outcome": LABEL, "interventions": scm.truth_interventions(n_mc=self.mc_pairs),
                 "hidden": scm.hidden, "scm": scm.describe(), "observed_positive_rate": float(rows[LABEL].mean())}
        featurizer = SCMFeaturizer(schema, users, items, interactions, ctx)
        desc = (f"random SCM, {len(scm.observed) + 1} observed nodes, {len(scm.hidden)} hidden, "
                f"{self.n_rows} interactions, seed {self.seed}")
        return RecData(name=self.name, interactions=interactions, users=users, items=items, schema=schema,
                       train=train, test=test, featurizer=featurizer, truth=truth,
                       params=dict(self.params, split=report.to_dict()), description=desc)


class SCMFeaturizer:
    """Features of (user, item[, context]) rows. Context columns come from the row itself when it
    has them, else from the logged interaction of that (user, item) pair (pairs are distinct),
    else the training median / most frequent level."""

    def __init__(self, schema: FeatureSchema, users: pd.DataFrame, items: pd.DataFrame,
                 interactions: pd.DataFrame, context: list[str]) -> None:
        self.schema, self.users, self.items, self.context = schema, users, items, context
        self.logged = interactions.set_index([USER, ITEM])[context] if context else None
        self.default = {}
        for c in context:
            s = interactions[c]
            self.default[c] = float(s.median()) if pd.api.types.is_numeric_dtype(s) else s.mode().iloc[0]

    def __call__(self, data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
        u = self.users.reindex(pairs[USER].to_numpy())
        it = self.items.reindex(pairs[ITEM].to_numpy())
        out = {}
        for f in self.schema:
            if f.name in self.users.columns:
                out[f.name] = u[f.name].to_numpy()
            elif f.name in self.items.columns:
                out[f.name] = it[f.name].to_numpy()
        if self.context:
            have = [c for c in self.context if c in pairs.columns]
            missing = [c for c in self.context if c not in pairs.columns]
            for c in have:
                out[c] = pairs[c].to_numpy()
            if missing:
                idx = pd.MultiIndex.from_arrays([pairs[USER].to_numpy(), pairs[ITEM].to_numpy()])
                found = self.logged[missing].reindex(idx)
                for c in missing:
                    col = found[c]
                    out[c] = col.where(col.notna(), self.default[c]).to_numpy()
        return pd.DataFrame(out, index=pairs.index)[self.schema.names]


__all__ = ["Var", "Outcome", "SCM", "random_scm", "RandomSCMDataset"]
