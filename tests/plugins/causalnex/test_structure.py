"""NOTEARS through CausalNex: recovery, the sufficient-statistic reduction, constraints, stability."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec_causalnex.structure import (
    Constraints, learn_structure, notears_weights, reduced_matrix, single_threaded_blas, threshold_edges,
)

NAMES = ["a", "b", "c", "d", "e"]
TRUE = {("a", "b"): 1.5, ("a", "c"): -1.0, ("b", "d"): 1.2, ("c", "d"): 0.8, ("d", "e"): 1.0}


def linear_sem(n: int, seed: int = 0) -> np.ndarray:
    """Linear Gaussian SEM with equal (unit) noise variances: identifiable, NOTEARS's home ground."""
    rng = np.random.default_rng(seed)
    idx = {v: i for i, v in enumerate(NAMES)}
    X = np.zeros((n, len(NAMES)))
    for v in NAMES:  # NAMES is a topological order
        X[:, idx[v]] = rng.normal(size=n)
        for (s, t), w in TRUE.items():
            if t == v:
                X[:, idx[v]] += w * X[:, idx[s]]
    return X


def test_recovers_the_true_dag_on_raw_equal_variance_data():
    X = linear_sem(3000)
    res = learn_structure(X, NAMES, Constraints(), w_threshold=0.3, standardise=False)
    assert set(res.edges) == set(TRUE)
    for e, w in TRUE.items():
        assert res.edges[e] == pytest.approx(w, abs=0.1)


def test_reduced_matrix_has_the_same_covariance():
    X = linear_sem(500) * np.array([1, 10, 0.1, 3, 1]) + 5
    for std in (False, True):
        R, mean, scale = reduced_matrix(X, std)
        Xs = (X - mean) / scale
        assert R.shape == (5, 5)
        np.testing.assert_allclose(R.T @ R / 5, Xs.T @ Xs / len(X), atol=1e-10)


def test_reduction_gives_causalnex_from_pandas_answer():
    """Same objective as CausalNex's own from_pandas on all rows (centred data)."""
    from causalnex.structure.notears import from_pandas

    X = linear_sem(400, seed=3)[:, :4]
    names = NAMES[:4]
    Xc = X - X.mean(axis=0)
    with single_threaded_blas():
        sm = from_pandas(pd.DataFrame(Xc, columns=names), w_threshold=0.0)
    W_cn = np.zeros((4, 4))
    for u, v, w in sm.edges(data="weight"):
        W_cn[names.index(u), names.index(v)] = w
    W = notears_weights(X, names, Constraints(), standardise=False)
    # the same objective; L-BFGS-B stops at its tolerance, so the two paths end ~1e-3 apart
    np.testing.assert_allclose(W, W_cn, atol=1e-2)
    assert set(zip(*np.nonzero(np.abs(W) > 0.3))) == set(zip(*np.nonzero(np.abs(W_cn) > 0.3)))


def test_tabu_and_forbidden_constraints_hold():
    X = linear_sem(1500)
    c = Constraints(tabu_parents=["d"], tabu_children=["b"], forbidden=[("a", "c")])
    W = notears_weights(X, NAMES, c, standardise=False)
    i = {v: k for k, v in enumerate(NAMES)}
    assert np.all(W[i["d"], :] == 0)  # d causes nothing
    assert np.all(W[:, i["b"]] == 0)  # nothing causes b
    assert W[i["a"], i["c"]] == 0
    res = learn_structure(X, NAMES, c, w_threshold=0.3, standardise=False)
    assert all(s != "d" and t != "b" and (s, t) != ("a", "c") for s, t in res.edges)


def test_required_edges_are_added_and_cycles_broken_at_the_weakest_learned_edge():
    names = ["x", "y", "z"]
    W = np.array([[0.0, 0.9, 0.0],
                  [0.0, 0.0, 0.5],
                  [0.0, 0.0, 0.0]])
    c = Constraints(required=[("z", "x")])
    edges = threshold_edges(W, names, 0.3, c)
    # z -> x closes x -> y -> z: the weakest learned edge of the cycle (y -> z, 0.5) goes
    assert set(edges) == {("x", "y"), ("z", "x")}
    assert edges[("x", "y")] == 0.9
    assert edges[("z", "x")] == 0.0  # NOTEARS gave it no weight; it is there because it is required


def test_bootstrap_stability():
    X = linear_sem(1500)
    res = learn_structure(X, NAMES, Constraints(), w_threshold=0.3, standardise=False, bootstrap=6, seed=1)
    assert res.bootstrap == 6
    for e in TRUE:
        assert res.stability[e] == 1.0  # strong edges come back in every resample
    for v in res.stability.values():
        assert 0 < v <= 1 and (v * 6) == pytest.approx(round(v * 6))


def test_standardised_symmetric_pairs_are_not_lost():
    """Standardised data are symmetric at NOTEARS's start: without the scale jitter both
    directions of a dependent pair collapse to ~0.01 and the edge vanishes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    y = 0.7 * x + rng.normal(scale=0.7, size=2000)
    X = np.column_stack([x, y])
    res = learn_structure(X, ["x", "y"], Constraints(), w_threshold=0.3, standardise=True, seed=0)
    assert len(res.edges) == 1
    (edge, w), = res.edges.items()
    assert set(edge) == {"x", "y"} and abs(w) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=0.02)


def test_nonlinear_variant_runs_and_respects_constraints():
    rng = np.random.default_rng(0)
    n = 600
    a = rng.normal(size=n)
    b = np.tanh(2 * a) + 0.2 * rng.normal(size=n)
    X = np.column_stack([a, b])
    c = Constraints(tabu_children=["a"])
    res = learn_structure(X[:300], ["a", "b"], c, w_threshold=0.3, standardise=True, method="nonlinear", max_iter=15,
                          hidden_units=4)
    assert set(res.edges) == {("a", "b")}
