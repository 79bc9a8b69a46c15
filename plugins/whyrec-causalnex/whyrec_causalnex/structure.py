"""Structure learning: NOTEARS (CausalNex) under domain constraints, and bootstrap edge stability.

Linear NOTEARS minimises ``0.5/n ||X - XW||_F^2`` subject to acyclicity. That loss depends on the
data only through the covariance ``S = X'X/n``; CausalNex recomputes ``X'X`` from all ``n`` rows
at every gradient step (minutes at 10,000 rows). We hand ``causalnex.structure.notears.from_numpy``
a d x d matrix ``R`` with ``R'R/d = S`` instead (``R = sqrt(d) * diag(sqrt(eigvals)) V'``): the
objective, its gradient and therefore the optimum are the same, to floating-point rounding, and a
run costs the same at 1,000 or 1,000,000 rows. bench/bench_notears.py measures both.

Columns are always centred (the NOTEARS model has no intercept: uncentred data makes it explain
means with spurious edges); ``standardise`` additionally scales them to unit variance. Which of the
two was used is recorded in the graph's ``method`` and the report, because it changes the answer:
NOTEARS exploits variance ordering, which standardising removes.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import compat


@dataclass
class Constraints:
    """Domain knowledge for structure learning, by variable name.

    tabu_parents: variables that cause nothing (no outgoing edge), e.g. the outcome.
    tabu_children: variables nothing causes (no incoming edge), e.g. user demographics.
    forbidden: edges that must not appear. required: edges that must appear.
    """

    tabu_parents: list[str] = field(default_factory=list)
    tabu_children: list[str] = field(default_factory=list)
    forbidden: list[tuple[str, str]] = field(default_factory=list)
    required: list[tuple[str, str]] = field(default_factory=list)
    field_forbidden: list[tuple[str, str]] = field(default_factory=list)  # from the field rules
    field_rules: dict[str, list[str]] | None = None  # child field -> fields its parents may come from

    def to_dict(self) -> dict:
        return {"tabu_parents": list(self.tabu_parents), "tabu_children": list(self.tabu_children),
                "forbidden_edges": [list(e) for e in self.forbidden], "required_edges": [list(e) for e in self.required],
                "field_rules": self.field_rules, "edges_forbidden_by_field_rules": len(self.field_forbidden)}

    def allowed(self, s: str, t: str) -> bool:
        banned = set(map(tuple, self.forbidden)) | set(map(tuple, self.field_forbidden))
        return s != t and s not in self.tabu_parents and t not in self.tabu_children and (s, t) not in banned


def single_threaded_blas() -> Any:
    """Limit BLAS to one thread: NOTEARS multiplies and exponentiates d x d matrices thousands of
    times, and OpenBLAS threads on such small matrices cost far more than they save (scipy's
    ``expm`` of a 6 x 6 matrix measured 40 us single-threaded vs 1-6 ms threaded on 2 busy cores)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


JITTER = 1e-3


def reduced_matrix(X: np.ndarray, standardise: bool, seed: int | None = None,
                   weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, mean, scale): R is d x d with R'R/d equal to the covariance of the centred (and, if
    ``standardise``, scaled) columns of X, rows weighted by ``weights`` (bootstrap counts).

    Standardised data make the NOTEARS problem symmetric in w_ij <-> w_ji at its starting point
    W = 0 (the initial gradient is the correlation matrix). CausalNex's optimiser then converges
    to the saddle where both directions of a strongly dependent pair shrink to ~0.01 (that
    satisfies the acyclicity tolerance) and the edge is lost. With ``seed`` set, each scale is
    multiplied by 1 + 0.001 * N(0, 1): weights move by ~0.1 %, the symmetry breaks, and the
    direction NOTEARS picks for such a pair (which observational data cannot identify anyway)
    varies across bootstrap resamples, so the stability table shows it as uncertain.
    """
    X = np.asarray(X, dtype=float)
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=float)
    mean = np.average(X, axis=0, weights=w)
    Xc = X - mean
    scale = np.sqrt(np.average(Xc ** 2, axis=0, weights=w)) if standardise else np.ones(X.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    if standardise and seed is not None:
        scale = scale * (1 + JITTER * np.random.default_rng([int(seed), 1234]).standard_normal(len(scale)))
    Xs = Xc / scale
    d = Xs.shape[1]
    S = (Xs * w[:, None]).T @ Xs / w.sum()
    lam, V = np.linalg.eigh((S + S.T) / 2)
    R = np.sqrt(d) * (np.sqrt(np.clip(lam, 0.0, None))[:, None] * V.T)
    return R, mean, scale


def _indices(names: list[str], c: Constraints) -> dict[str, Any]:
    idx = {n: i for i, n in enumerate(names)}
    tabu_edges = [(idx[s], idx[t]) for s, t in [*c.forbidden, *c.field_forbidden] if s in idx and t in idx]
    # a required edge s -> t rules out t -> s (it would be a 2-cycle)
    tabu_edges += [(idx[t], idx[s]) for s, t in c.required if s in idx and t in idx]
    return {
        "tabu_edges": tabu_edges or None,
        "tabu_parent_nodes": [idx[n] for n in c.tabu_parents if n in idx] or None,
        "tabu_child_nodes": [idx[n] for n in c.tabu_children if n in idx] or None,
    }


def notears_weights(
    X: np.ndarray,
    names: list[str],
    constraints: Constraints,
    *,
    standardise: bool = True,
    method: str = "linear",
    max_iter: int = 100,
    h_tol: float = 1e-8,
    hidden_units: int = 8,
    seed: int = 0,
    dist_types: dict[str, str] | None = None,
    lasso: float = 0.0,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """The weighted adjacency matrix W (W[i, j] = weight of names[i] -> names[j]), unthresholded.

    ``lasso`` > 0 adds ``lasso * sum |W|`` (CausalNex ``from_numpy_lasso``): it keeps collinear
    variables from spreading small spurious weights over each other."""
    compat.apply()
    d = len(names)
    tabu = _indices(names, constraints)
    if method == "linear":
        from causalnex.structure.notears import from_numpy, from_numpy_lasso

        R, _, _ = reduced_matrix(X, standardise, seed=seed, weights=weights)
        with warnings.catch_warnings(), single_threaded_blas(), compat.quiet_causalnex_logs():
            warnings.simplefilter("ignore")
            if lasso > 0:
                sm = from_numpy_lasso(R, lasso, max_iter=max_iter, h_tol=h_tol, w_threshold=0.0, **tabu)
            else:
                sm = from_numpy(R, max_iter=max_iter, h_tol=h_tol, w_threshold=0.0, **tabu)
        W = np.zeros((d, d))
        for u, v, w in sm.edges(data="weight"):
            W[int(u), int(v)] = w
        return W
    if method == "nonlinear":
        import torch
        from causalnex.structure.pytorch import from_pandas

        torch.manual_seed(seed)
        threads = torch.get_num_threads()
        Xf = np.asarray(X, dtype=float)
        if weights is not None:  # the MLP has no sufficient statistic: repeat rows by their counts
            Xf = np.repeat(Xf, np.asarray(weights, dtype=int), axis=0)
        Xc = Xf - Xf.mean(axis=0)
        if standardise:
            sd = Xc.std(axis=0)
            sd = np.where(sd > 0, sd, 1.0) * (1 + JITTER * np.random.default_rng([int(seed), 1234]).standard_normal(d))
            Xc = Xc / sd
        cols = [f"v{i}" for i in range(d)]
        df = pd.DataFrame(Xc, columns=cols)
        idx_name = dict(enumerate(cols))
        kw = {k: ([(idx_name[a], idx_name[b]) for a, b in v] if k == "tabu_edges" else [idx_name[a] for a in v])
              for k, v in tabu.items() if v}
        schema = {f"v{i}": (dist_types or {}).get(n, "cont") for i, n in enumerate(names)}
        try:  # small networks: torch threads on 2 busy cores cost more than they save
            torch.set_num_threads(1)
            with warnings.catch_warnings(), compat.quiet_causalnex_logs():
                warnings.simplefilter("ignore")
                sm = from_pandas(df, dist_type_schema=schema, hidden_layer_units=[hidden_units], max_iter=max_iter,
                                 w_threshold=0.0, use_gpu=False, lasso_beta=lasso, **kw)
        finally:
            torch.set_num_threads(threads)
        W = np.zeros((d, d))
        pos = {c: i for i, c in enumerate(cols)}
        for u, v, w in sm.edges(data="weight"):
            if u in pos and v in pos:
                W[pos[u], pos[v]] = w
        return W
    raise ValueError(f"unknown NOTEARS method {method!r}; use 'linear' or 'nonlinear'")


def threshold_edges(W: np.ndarray, names: list[str], w_threshold: float, constraints: Constraints) -> dict[tuple[str, str], float]:
    """Edges with |weight| > threshold, plus the required ones, made acyclic.

    A learned edge that closes a cycle with stronger or required edges is dropped (the weakest
    learned edge of each cycle goes first)."""
    d = len(names)
    edges: dict[tuple[str, str], float] = {}
    for i in range(d):
        for j in range(d):
            if i != j and abs(W[i, j]) > w_threshold:
                edges[(names[i], names[j])] = float(W[i, j])
    idx = {n: i for i, n in enumerate(names)}
    required = {(s, t) for s, t in constraints.required}
    for s, t in required:
        edges[(s, t)] = float(W[idx[s], idx[t]]) if s in idx and t in idx else 0.0
    return break_cycles(edges, required, strength=lambda e: abs(edges[e]))


def unstable_to_drop(edges: Any, stability: dict[tuple[str, str], float], threshold: float, required: set,
                     rule: str = "presence") -> list[tuple[str, str]]:
    """The learned edges ``drop_unstable`` removes. "presence": the pair is joined (either way)
    in fewer than ``threshold`` of the bootstrap resamples, so whether there is an edge at all
    is in doubt; an edge always present but oriented both ways stays, in its majority
    direction (dropping it would assert "no effect", which the resamples contradict; the
    effect intervals refit on the bootstrap graphs carry both orientations). "direction": the
    edge in this orientation is found in fewer than ``threshold`` of the resamples."""
    out = []
    for a, b in edges:
        if (a, b) in required:
            continue
        f = stability.get((a, b), 0.0) + (stability.get((b, a), 0.0) if rule == "presence" else 0.0)
        if f < threshold:
            out.append((a, b))
    return out


def break_cycles(edges: dict, required: set, strength: Any) -> dict:
    """``edges`` (a dict keyed by (source, target)) made acyclic in place: in each cycle the
    weakest learned edge by ``strength(edge)`` goes; required edges always stay."""
    import networkx as nx

    g = nx.DiGraph(list(edges))
    while True:
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            return edges
        learned = [(u, v) for u, v, *_ in cycle if (u, v) not in required]
        weakest = min(learned, key=strength)
        g.remove_edge(*weakest)
        edges.pop(weakest)


def resample_weights(n: int, rng: np.random.Generator, groups: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Bootstrap counts of ``n`` rows: rows drawn with replacement, or with ``groups`` (user and
    item codes 0..k-1 of each row) the users x items pigeonhole bootstrap (see learn_structure)."""
    if groups is None:
        return np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
    counts = []
    for g in groups:
        k = int(g.max()) + 1 if len(g) else 0
        counts.append(np.bincount(rng.integers(0, k, k), minlength=k)[g])
    w = counts[0] * counts[1]
    if w.sum() == 0:  # pathological tiny data: fall back to rows
        return resample_weights(n, rng, None)
    return w.astype(float)


@dataclass
class StructureResult:
    names: list[str]
    weights: np.ndarray
    edges: dict[tuple[str, str], float]
    stability: dict[tuple[str, str], float]
    bootstrap: int
    seconds: float
    boot_seconds: float
    # the edges of each bootstrap resample's graph (the effect intervals re-use them to carry the
    # uncertainty of the structure, see effects.do_effects)
    boot_edges: list[list[tuple[str, str]]] = field(default_factory=list)


def learn_structure(
    X: np.ndarray,
    names: list[str],
    constraints: Constraints,
    *,
    w_threshold: float,
    standardise: bool,
    method: str = "linear",
    max_iter: int = 100,
    hidden_units: int = 8,
    bootstrap: int = 0,
    seed: int = 0,
    dist_types: dict[str, str] | None = None,
    progress: Any = None,
    lasso: float = 0.0,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
    categorical: list[str] | None = None,
    penalty: float = 1.0,
) -> StructureResult:
    """NOTEARS on all rows, then on ``bootstrap`` resamples: ``stability[edge]`` is the fraction of
    resamples whose thresholded graph has the edge.

    With ``groups = (user codes, item codes)`` of the rows, a resample draws users and items
    (not rows) with replacement and weights each row by (times its user was drawn) x (times its
    item was drawn): Owen's pigeonhole bootstrap for crossed data. Rows of one item share its
    features, so resampling rows would treat 4,000 rows of 400 items as 4,000 independent draws
    and call item-level accidents "stable".

    ``method = "bic"``: greedy search over DAGs under the same constraints with a BIC score
    (structure_select.learn_structure_bic; ``categorical``: columns holding category codes,
    ``penalty``: the BIC penalty multiplier); ``w_threshold`` and the NOTEARS settings are unused.
    """
    if method == "bic":
        from .structure_select import learn_structure_bic

        return learn_structure_bic(X, names, constraints, bootstrap=bootstrap, seed=seed, progress=progress,
                                   groups=groups, categorical=categorical, penalty=penalty)
    t0 = time.perf_counter()
    kw = dict(standardise=standardise, method=method, max_iter=max_iter, hidden_units=hidden_units,
              dist_types=dist_types, lasso=lasso)
    W = notears_weights(X, names, constraints, seed=seed, **kw)
    edges = threshold_edges(W, names, w_threshold, constraints)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    counts: dict[tuple[str, str], int] = {}
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    it = range(bootstrap)
    if progress is not None and bootstrap:
        it = progress(it, desc="NOTEARS bootstrap", total=bootstrap)
    no_required = Constraints(constraints.tabu_parents, constraints.tabu_children, constraints.forbidden, [],
                              constraints.field_forbidden, constraints.field_rules)
    boot_edges: list[list[tuple[str, str]]] = []
    for b in it:
        w = resample_weights(n, rng, groups)
        keep = w > 0
        Xb, wb = X[keep], w[keep]
        if np.any(Xb.std(axis=0) == 0):  # a resample can make a rare column constant; keep it as is
            Xb = Xb + rng.normal(0, 1e-9, Xb.shape)
        Wb = notears_weights(Xb, names, constraints, seed=seed + b + 1, weights=wb, **kw)
        # stability of what the data says: required edges are not forced in the resamples
        kept = list(threshold_edges(Wb, names, w_threshold, no_required))
        boot_edges.append(kept)
        for e in kept:
            counts[e] = counts.get(e, 0) + 1
    stability = {e: c / bootstrap for e, c in counts.items()} if bootstrap else {}
    return StructureResult(names, W, edges, stability, bootstrap, seconds, time.perf_counter() - t1, boot_edges)
