"""Score-based structure learning: greedy search over DAGs with a BIC score, under the same
domain constraints as NOTEARS, with bootstrap edge stability.

Why: on random structural causal models with mixed variables in arbitrary units
(bench/bench_causal_random.py), NOTEARS on standardised data loses or reverses edges that a
plain likelihood score finds (NOTEARS' least-squares loss exploits the variance ordering that
standardising removes). A search that scores each variable given its parents needs no weight
threshold: an edge is in the graph when it pays for its parameters in BIC.

Score. Every variable becomes one or more columns: a numeric variable one, a categorical with
k levels k - 1 indicator columns. The local score of a variable j with parents P is the Gaussian
log-likelihood of j's columns regressed on P's columns, computed from the (bootstrap-weighted)
covariance of all columns, minus ``penalty * (#parameters / 2) * log(n_eff)``. It is the BIC of a
linear(-probability) model: for a binary outcome it detects dependence like a logistic model
does on the data this project sees, at a fraction of the cost.

Effective sample size. Rows of one item share its item variables, so a relation among item
variables is supported by the number of items, not of rows (4,000 rows of 400 items are 400
observations of an item-level relation). With ``groups`` (user and item codes of each row), a
variable constant within every item is an item variable (the same for users), and a family
(a variable and its parents) made of item variables only is scored with n_eff = number of items;
users likewise; any other family with the number of rows. Without this, BIC counts repeated
copies of one item as evidence and keeps spurious item-item edges.

Search. Start from the required edges; repeatedly apply the best single edge addition, deletion
or reversal that keeps the graph acyclic and within the constraints; stop when no move improves
the score. Equal-score moves (Markov-equivalent directions no v-structure or constraint
settles) are broken by a seeded random order, so bootstrap resamples show such a direction as
uncertain instead of always picking the first column.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .structure import Constraints, StructureResult, break_cycles, resample_weights

RIDGE = 1e-8
# Newton's method for the logistic score (newton_logistic): at most NEWTON_MAX_ITER steps, stop
# once no coefficient moves by NEWTON_STEP_TOL; a NEWTON_PENALTY ridge on the coefficients keeps
# separable data finite; the start is the intercept-only maximum, its mean held in
# [PROB_FLOOR, 1 - PROB_FLOOR] so that all-0 or all-1 data start finite.
NEWTON_MAX_ITER = 15
NEWTON_STEP_TOL = 1e-6
NEWTON_PENALTY = 1e-6
PROB_FLOOR = 1e-9
# hill_climb: every move's score change gets a seeded uniform [0, TIEBREAK) draw, which orders
# moves whose scores differ by less (Markov-equivalent directions) and no others
TIEBREAK = 1e-9


def infer_categorical(X: np.ndarray, names: list[str], max_levels: int = 6) -> list[str]:
    """Columns that look like category codes: integers 0..k-1 with 3 <= k <= max_levels."""
    out = []
    for j, n in enumerate(names):
        x = X[:, j]
        u = np.unique(x)
        if 3 <= len(u) <= max_levels and np.array_equal(u, np.arange(len(u))):
            out.append(n)
    return out


def variable_levels(X: np.ndarray, groups: tuple[np.ndarray, np.ndarray] | None) -> list[str]:
    """"user", "item" or "row" per column: constant within every user / item (and with fewer
    users / items than rows)."""
    d = X.shape[1]
    if groups is None:
        return ["row"] * d
    out = []
    for j in range(d):
        level = "row"
        for name, g in (("item", groups[1]), ("user", groups[0])):
            k = int(g.max()) + 1 if len(g) else 0
            if k >= len(g):
                continue
            # the codes that have rows, renumbered 0..m-1 (a code without rows has no spread)
            present, unit = np.unique(g, return_inverse=True)
            lo = np.full(len(present), np.inf)
            hi = np.full(len(present), -np.inf)
            np.minimum.at(lo, unit, X[:, j])
            np.maximum.at(hi, unit, X[:, j])
            if np.all(hi - lo <= 1e-12 * (1 + np.abs(lo))):
                level = name
                break
        out.append(level)
    return out


def newton_logistic(A: np.ndarray, y: np.ndarray, w: np.ndarray, max_iter: int = NEWTON_MAX_ITER,
                    penalty: float = NEWTON_PENALTY) -> tuple[np.ndarray, int]:
    """(beta, steps taken): the maximum of the weighted Bernoulli log-likelihood of y given the
    design A (first column the intercept) minus ``penalty / 2 * |beta|^2``, by Newton's method
    from the intercept-only maximum; it stops after a step below NEWTON_STEP_TOL."""
    beta = np.zeros(A.shape[1])
    ybar = float(np.average(y, weights=w))
    beta[0] = np.log(max(ybar, PROB_FLOOR) / max(1 - ybar, PROB_FLOOR))
    ridge = penalty * np.eye(A.shape[1])
    steps = 0
    while steps < max_iter:
        eta = np.clip(A @ beta, -30, 30)
        p = 1 / (1 + np.exp(-eta))
        g = A.T @ (w * (y - p)) - penalty * beta
        sw = np.sqrt(w * p * (1 - p))
        As = A * sw[:, None]
        step = np.linalg.solve(As.T @ As + ridge, g)
        beta += step
        steps += 1
        if np.max(np.abs(step)) < NEWTON_STEP_TOL:
            break
    return beta, steps


class BICScore:
    """Local BIC scores of variables given parent sets, from one covariance matrix."""

    def __init__(self, X: np.ndarray, names: list[str], categorical: list[str], levels: list[str],
                 groups: tuple[np.ndarray, np.ndarray] | None, weights: np.ndarray | None = None,
                 penalty: float = 1.0) -> None:
        n, d = X.shape
        cols, blocks = [], []
        for j, name in enumerate(names):
            x = X[:, j]
            if name in categorical:
                k = int(x.max()) + 1
                start = len(cols)
                for lvl in range(1, k):
                    cols.append((x == lvl).astype(float))
                blocks.append(list(range(start, len(cols))))
            else:
                blocks.append([len(cols)])
                cols.append(x.astype(float))
        Z = np.column_stack(cols)
        w = np.ones(n) if weights is None else np.asarray(weights, float)
        self.binary = {j for j, name in enumerate(names)
                       if name not in categorical and len(np.unique(X[:, j])) == 2}
        mu = np.average(Z, axis=0, weights=w)
        Zc = Z - mu
        sd = np.sqrt(np.average(Zc ** 2, axis=0, weights=w))
        Zc = Zc / np.where(sd > 0, sd, 1.0)
        self.C = (Zc * w[:, None]).T @ Zc / w.sum()
        self.blocks = blocks
        self.levels = levels
        n_users, n_items = (n, n) if groups is None else (int(g.max()) + 1 if len(g) else n for g in groups)
        self.n_eff = {"user": min(n, n_users), "item": min(n, n_items), "row": n}
        self.penalty = penalty
        self.cache: dict[tuple[int, frozenset], float] = {}
        self.Z = Zc
        # one row per unit (user / item) for families of one level, with the unit's total weight
        self.units: dict[str, tuple[np.ndarray, np.ndarray]] = {"row": (np.arange(n), w)}
        for lvl, g in (("user", None if groups is None else groups[0]), ("item", None if groups is None else groups[1])):
            if g is None:
                continue
            codes, first = np.unique(g, return_index=True)
            tot = np.bincount(g, weights=w, minlength=int(g.max()) + 1)[codes]
            self.units[lvl] = (first, tot)
        self.y = {j: (X[:, j] == X[:, j].max()).astype(float) for j in self.binary}

    def logistic_loglik(self, j: int, b: list[int], level: str) -> float:
        """Bernoulli log-likelihood of binary variable j given columns b (logistic regression by
        Newton's method, weights = the units' weights scaled to sum to n_eff)."""
        rows, w = self.units.get(level, self.units["row"])
        w = w * (self.n_eff[level] / w.sum())
        full = level == "row" or level not in self.units
        y = self.y[j] if full else self.y[j][rows]
        Zb = self.Z[:, b] if full else self.Z[np.ix_(rows, b)]
        A = np.empty((len(y), len(b) + 1))
        A[:, 0] = 1.0
        A[:, 1:] = Zb
        beta, _ = newton_logistic(A, y, w)
        eta = np.clip(A @ beta, -30, 30)
        return float(np.sum(w * (y * eta - np.logaddexp(0, eta))))

    def local(self, j: int, parents: frozenset) -> float:
        key = (j, parents)
        if key in self.cache:
            return self.cache[key]
        a = self.blocks[j]
        b = [c for p in sorted(parents) for c in self.blocks[p]]
        fam = {self.levels[j], *(self.levels[p] for p in parents)}
        level = fam.pop() if len(fam) == 1 else "row"
        n = self.n_eff[level]
        if j in self.binary:
            s = self.logistic_loglik(j, b, level) - self.penalty * 0.5 * (len(b) + 1) * np.log(n)
            self.cache[key] = s
            return s
        Caa = self.C[np.ix_(a, a)]
        if b:
            Cab = self.C[np.ix_(a, b)]
            Cbb = self.C[np.ix_(b, b)] + RIDGE * np.eye(len(b))
            resid = Caa - Cab @ np.linalg.solve(Cbb, Cab.T)
        else:
            resid = Caa
        sign, logdet = np.linalg.slogdet(resid + RIDGE * np.eye(len(a)))
        k = len(a) * (len(b) + 1)
        s = -0.5 * n * logdet - self.penalty * 0.5 * k * np.log(n)
        self.cache[key] = float(s)
        return float(s)


def _reaches(adj: np.ndarray, src: int, dst: int) -> bool:
    """A directed path src -> ... -> dst in the boolean adjacency matrix."""
    stack, seen = [src], {src}
    while stack:
        u = stack.pop()
        if u == dst:
            return True
        for v in np.flatnonzero(adj[u]):
            if v not in seen:
                seen.add(int(v))
                stack.append(int(v))
    return False


def hill_climb(score: BICScore, d: int, allowed: np.ndarray, required: np.ndarray, seed: int = 0,
               max_moves: int = 1000, patience: int | None = None) -> np.ndarray:
    """Greedy add / delete / reverse search with a tabu phase; the boolean adjacency matrix of the
    best-scoring graph seen.

    Single-edge moves get stuck: from the triangle a - c, b - c, a - b (what a greedy search
    reaches on a collider a -> c <- b when it first adds c -> a), the way out is a reversal that
    does not change the score (all complete DAGs are Markov equivalent) followed by a deletion
    that improves it. So when no move improves the score, the best move that does not undo a
    recent one is taken anyway, up to ``patience`` (default 2 d) times in a row."""
    rng = np.random.default_rng([int(seed), 77])
    patience = 2 * d if patience is None else patience
    adj = required.copy()
    parents = [frozenset(np.flatnonzero(adj[:, j]).tolist()) for j in range(d)]
    cur = [score.local(j, parents[j]) for j in range(d)]
    tiebreak = rng.uniform(0, TIEBREAK, size=(3, d, d))  # seeded order among equal-score moves
    best_total, best_adj = sum(cur), adj.copy()
    tabu: list[frozenset] = []
    stale = 0
    for _ in range(max_moves):
        # candidate moves: (score change, i, j, new adj[i, j], new adj[j, i])
        moves: list[tuple[float, int, int, bool, bool]] = []
        for i in range(d):
            for j in range(d):
                if i == j:
                    continue
                if frozenset((i, j)) in tabu:
                    continue
                if adj[i, j]:
                    if not required[i, j]:  # delete
                        delta = score.local(j, parents[j] - {i}) - cur[j] + tiebreak[1, i, j]
                        moves.append((delta, i, j, False, False))
                    if allowed[j, i] and not required[i, j]:  # reverse
                        adj[i, j] = False
                        ok = not _reaches(adj, i, j)
                        adj[i, j] = True
                        if ok:
                            delta = (score.local(j, parents[j] - {i}) - cur[j]
                                     + score.local(i, parents[i] | {j}) - cur[i] + tiebreak[2, i, j])
                            moves.append((delta, i, j, False, True))
                elif allowed[i, j] and not adj[j, i] and not _reaches(adj, j, i):  # add
                    delta = score.local(j, parents[j] | {i}) - cur[j] + tiebreak[0, i, j]
                    moves.append((delta, i, j, True, False))
        if not moves:
            break
        _, i, j, adj[i, j], adj[j, i] = max(moves, key=lambda m: m[0])  # the first of equal bests
        for k in (i, j):
            parents[k] = frozenset(np.flatnonzero(adj[:, k]).tolist())
            cur[k] = score.local(k, parents[k])
        total = sum(cur)
        if total > best_total + 1e-9:
            best_total, best_adj, stale = total, adj.copy(), 0
            tabu = []
        else:
            stale += 1
            tabu = (tabu + [frozenset((i, j))])[-d:]
            if stale > patience:
                break
    return best_adj


def _allowed(names: list[str], c: Constraints) -> tuple[np.ndarray, np.ndarray]:
    d = len(names)
    allowed = np.array([[c.allowed(names[i], names[j]) for j in range(d)] for i in range(d)], dtype=bool)
    idx = {n: i for i, n in enumerate(names)}
    required = np.zeros((d, d), dtype=bool)
    for s, t in c.required:
        if s in idx and t in idx:
            required[idx[s], idx[t]] = True
    return allowed & ~required.T, required


def edge_weights(score: BICScore, adj: np.ndarray) -> np.ndarray:
    """Standardised regression coefficient of each edge (first column of a categorical block):
    a readable strength and sign, not used to select edges."""
    d = adj.shape[0]
    W = np.zeros((d, d))
    for j in range(d):
        ps = np.flatnonzero(adj[:, j])
        if not len(ps):
            continue
        a = score.blocks[j][0]
        b = [c for p in ps for c in score.blocks[p]]
        coef = np.linalg.solve(score.C[np.ix_(b, b)] + RIDGE * np.eye(len(b)), score.C[b, a])
        pos = 0
        for p in ps:
            W[p, j] = coef[pos] if len(score.blocks[p]) == 1 else coef[pos:pos + len(score.blocks[p])][
                np.argmax(np.abs(coef[pos:pos + len(score.blocks[p])]))]
            pos += len(score.blocks[p])
    return W


def learn_structure_bic(
    X: np.ndarray,
    names: list[str],
    constraints: Constraints,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    progress: Any = None,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
    categorical: list[str] | None = None,
    penalty: float = 1.0,
    select: str = "majority",
    min_frequency: float = 0.5,
) -> StructureResult:
    """BIC hill climbing on all rows, then on ``bootstrap`` resamples (users x items with
    ``groups``, as learn_structure): ``stability[edge]`` is the share of resamples with the edge.

    select: "majority" (with bootstrap): the graph is the bagged one (majority_graph: pairs joined
    in at least ``min_frequency`` of the resamples, oriented by the majority); "full": the search
    on all rows. Edge weights (standardised regression coefficients) come from the full-data fit."""
    t0 = time.perf_counter()
    X = np.asarray(X, float)
    d = len(names)
    cat = infer_categorical(X, names) if categorical is None else list(categorical)
    levels = variable_levels(X, groups)
    allowed, required = _allowed(names, constraints)
    sc = BICScore(X, names, cat, levels, groups, penalty=penalty)
    adj = hill_climb(sc, d, allowed, required, seed=seed)
    W = edge_weights(sc, adj)
    edges = {(names[i], names[j]): float(W[i, j]) for i, j in zip(*np.nonzero(adj))}
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    counts: dict[tuple[str, str], int] = {}
    rng = np.random.default_rng(seed)
    it = range(bootstrap)
    if progress is not None and bootstrap:
        it = progress(it, desc="BIC search bootstrap", total=bootstrap)
    no_required = np.zeros_like(required)
    boot_edges: list[list[tuple[str, str]]] = []
    for b in it:
        w = resample_weights(len(X), rng, groups)
        keep = w > 0
        sb = BICScore(X[keep], names, cat, levels, _subgroups(groups, keep), weights=w[keep], penalty=penalty)
        # the effective sizes of the resample are those of the data (a resample of k units has k draws)
        sb.n_eff = dict(sc.n_eff)
        adj_b = hill_climb(sb, d, allowed, no_required, seed=seed + b + 1)
        boot_edges.append([(names[i], names[j]) for i, j in zip(*np.nonzero(adj_b))])
        for e in boot_edges[-1]:
            counts[e] = counts.get(e, 0) + 1
    stability = {e: c / bootstrap for e, c in counts.items()} if bootstrap else {}
    if bootstrap and select == "majority":
        chosen = majority_graph(names, stability, constraints, min_frequency)
        adj = np.zeros((d, d), dtype=bool)
        idx = {n: i for i, n in enumerate(names)}
        for s_, t_ in chosen:
            adj[idx[s_], idx[t_]] = True
        W = edge_weights(sc, adj)
        edges = {(names[i], names[j]): float(W[i, j]) for i, j in zip(*np.nonzero(adj))}
    return StructureResult(names, W, edges, stability, bootstrap, seconds, time.perf_counter() - t1, boot_edges)


def majority_graph(names: list[str], stability: dict[tuple[str, str], float], constraints: Constraints,
                   min_frequency: float) -> dict[tuple[str, str], float]:
    """Bagged graph: a pair of variables is adjacent when the resamples join them (either way) at
    least ``min_frequency`` of the time, oriented the way most resamples orient it; required edges
    always; a cycle loses its least frequent edge."""
    required = set(map(tuple, constraints.required))
    pairs: dict[frozenset, tuple[str, str]] = {}
    for (s, t), f in stability.items():
        key = frozenset((s, t))
        both = f + stability.get((t, s), 0.0)
        if both >= min_frequency and (key not in pairs or f > stability[pairs[key]]):
            pairs[key] = (s, t)
    chosen = {e: stability.get(e, 0.0) for e in pairs.values()}
    for e in required:
        chosen.pop((e[1], e[0]), None)
        chosen[e] = 1.0
    return break_cycles(chosen, set(map(tuple, required)), strength=lambda e: chosen[e])


def _subgroups(groups, keep):
    if groups is None:
        return None
    return tuple(np.unique(g[keep], return_inverse=True)[1] for g in groups)


__all__ = ["learn_structure_bic", "hill_climb", "BICScore", "infer_categorical", "variable_levels"]
