"""The BIC structure learner's building blocks against independent references: which columns
count as category codes (at the documented bounds), which variables are constant within items
(at the documented tolerance), the covariance it scores from (numpy's correlation matrix), and
the logistic score of a binary item-level variable (scikit-learn's unpenalised fit, one row per
item, BIC penalty with the number of items)."""
from __future__ import annotations

import numpy as np
import pytest

from whyrec_causalnex.structure_select import BICScore, infer_categorical, variable_levels


def test_category_codes_are_integers_0_to_k_minus_1_with_3_to_6_levels():
    rng = np.random.default_rng(0)
    cols = {
        "k2": rng.integers(0, 2, 300),  # binary: not a category block
        "k3": rng.integers(0, 3, 300),
        "k6": rng.integers(0, 6, 300),  # max_levels: still categorical
        "k7": rng.integers(0, 7, 300),  # one more: numeric
        "k10": np.arange(300) % 10,
        "from1": rng.integers(1, 4, 300),  # 1..3: not codes from 0
        "frac": rng.integers(0, 3, 300) + 0.5,
    }
    X = np.column_stack(list(cols.values())).astype(float)
    assert infer_categorical(X, list(cols)) == ["k3", "k6"]
    assert infer_categorical(X, list(cols), max_levels=7) == ["k3", "k6", "k7"]


def _grouped(values_per_row: np.ndarray, items: np.ndarray) -> list[str]:
    users = np.arange(len(items))  # one row per user: no column is constant within users
    return variable_levels(values_per_row[:, None], (users, items))


def test_item_level_tolerance_is_1e_12_relative_and_inclusive():
    items = np.repeat(np.arange(50), 4)
    base = np.repeat(np.arange(50, dtype=float), 4) * 0  # 0 in every row: |lo| = 0, tolerance 1e-12
    within = base.copy()
    within[1::4] = 1e-12  # exactly the tolerance: still the same value
    assert _grouped(within, items) == ["item"]
    beyond = base.copy()
    beyond[1::4] = 2e-12  # twice the tolerance: differs within the item
    assert _grouped(beyond, items) == ["row"]
    big = np.repeat(np.arange(50, dtype=float), 4) + 1e6
    big[1::4] += 5e-7  # relative: the tolerance at |lo| = 1e6 is about 1e-6
    assert _grouped(big, items) == ["item"]
    assert variable_levels(base[:, None], None) == ["row"]


def test_scores_come_from_the_correlation_matrix():
    """Columns of any scale (sd 0.01 to 100) are standardised: C is numpy's correlation matrix."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=500) * 0.01
    b = 30 * a + rng.normal(size=500) * 0.2
    c = rng.normal(size=500) * 100
    X = np.column_stack([a, b, c])
    sc = BICScore(X, ["a", "b", "c"], [], ["row"] * 3, None)
    np.testing.assert_allclose(sc.C, np.corrcoef(X.T), atol=1e-12)
    # a Gaussian local score: -n/2 log(residual variance) - (k/2) log n, in correlation units
    n, r = 500, np.corrcoef(a, b)[0, 1]
    want = -0.5 * n * np.log(1 - r ** 2 + 1e-8) - 0.5 * 2 * np.log(n)
    assert sc.local(1, frozenset({0})) == pytest.approx(want, rel=1e-6)
    assert sc.local(2, frozenset()) == pytest.approx(-0.5 * n * np.log(1 + 1e-8) - 0.5 * np.log(n), abs=1e-9)


def test_binary_item_variable_is_scored_by_a_logistic_fit_over_items():
    """A binary item-level variable with an item-level parent: the family is scored on one row
    per item (n_eff = number of items), as an unpenalised logistic regression."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    n_items, per_item = 120, 5
    a = rng.normal(size=n_items) * 3 + 7
    y = (rng.uniform(size=n_items) < 1 / (1 + np.exp(-(a - 7)))).astype(float)
    items = np.repeat(np.arange(n_items), per_item)
    users = rng.integers(0, 400, len(items))
    X = np.column_stack([a[items], y[items]])
    groups = (np.unique(users, return_inverse=True)[1], items)
    levels = variable_levels(X, groups)
    assert levels == ["item", "item"]
    sc = BICScore(X, ["a", "y"], [], levels, groups)
    assert sc.binary == {1} and sc.n_eff["item"] == n_items
    fit = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(a[:, None], y)
    p = fit.predict_proba(a[:, None])[:, 1]
    loglik = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert sc.local(1, frozenset({0})) == pytest.approx(loglik - 0.5 * 2 * np.log(n_items), rel=1e-6)
    ybar = y.mean()
    no_parent = n_items * (ybar * np.log(ybar) + (1 - ybar) * np.log(1 - ybar)) - 0.5 * np.log(n_items)
    assert sc.local(1, frozenset()) == pytest.approx(no_parent, rel=1e-6)


def _pair_with_correlation(r: float, n: int = 1000, seed: int = 3) -> np.ndarray:
    """Two columns whose sample correlation is exactly r."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    e = rng.normal(size=n)
    a = (a - a.mean()) / a.std()
    e = e - e.mean()
    e = e - (e @ a) / (a @ a) * a
    e = e / e.std()
    return np.column_stack([a * 4 + 2, r * a + np.sqrt(1 - r ** 2) * e])


def test_edge_weight_is_the_standardised_coefficient():
    from whyrec_causalnex.structure_select import edge_weights

    X = _pair_with_correlation(0.6)
    sc = BICScore(X, ["a", "b"], [], ["row", "row"], None)
    W = edge_weights(sc, np.array([[False, True], [False, False]]))
    assert W[0, 1] == pytest.approx(0.6, abs=1e-6) and W[1, 0] == 0.0 and W[0, 0] == 0.0


def test_default_penalty_is_bic():
    """An edge whose likelihood gain is 1.5 times BIC's price (log n / 2 for one coefficient) is
    kept with the default penalty and dropped at twice the price."""
    from whyrec_causalnex.structure import Constraints
    from whyrec_causalnex.structure_select import learn_structure_bic

    n = 1000
    gain = 1.5 * 0.5 * np.log(n)  # = -n/2 log(1 - r^2)
    r = float(np.sqrt(1 - np.exp(-2 * gain / n)))
    X = _pair_with_correlation(r, n)
    calls = []

    def progress(it, desc, total):
        calls.append((desc, total))
        return it

    res = learn_structure_bic(X, ["a", "b"], Constraints(), bootstrap=2, select="full", progress=progress)
    assert len(res.edges) == 1 and set(next(iter(res.edges))) == {"a", "b"}
    assert learn_structure_bic(X, ["a", "b"], Constraints(), penalty=2.0).edges == {}
    assert calls == [("BIC search bootstrap", 2)]  # the label of the progress bar users see
    assert isinstance(res.seconds, float) and res.seconds > 0 and res.boot_seconds > 0


def test_item_level_needs_fewer_items_than_rows():
    """4 items over 5 rows: a column constant within items is an item variable; with as many items
    as rows every column would be (so none is)."""
    users = np.arange(5)
    items = np.array([0, 0, 1, 2, 3])
    x = np.array([7.0, 7.0, 1.0, 2.0, 3.0])
    assert variable_levels(x[:, None], (users, items)) == ["item"]
    assert variable_levels(x[:, None], (users, np.arange(5))) == ["row"]


def test_path_search_guards_acyclicity():
    from whyrec_causalnex.structure_select import _reaches

    adj = np.zeros((4, 4), dtype=bool)
    adj[0, 1] = adj[1, 2] = adj[3, 2] = True  # 0 -> 1 -> 2 <- 3
    assert _reaches(adj, 0, 2) and _reaches(adj, 0, 1) and _reaches(adj, 3, 2)
    assert not _reaches(adj, 2, 0) and not _reaches(adj, 0, 3) and not _reaches(adj, 1, 0)


def test_required_edges_are_fixed_and_their_reverse_forbidden():
    from whyrec_causalnex.structure import Constraints
    from whyrec_causalnex.structure_select import _allowed

    c = Constraints(required=[("a", "c"), ("x", "a")], tabu_parents=["c"])
    allowed, required = _allowed(["a", "b", "c"], c)
    assert required.tolist() == [[False, False, True], [False, False, False], [False, False, False]]
    assert not allowed[2, 0]  # c -> a would reverse a required edge
    assert allowed[0, 1] and allowed[1, 0] and not allowed[2, 1]  # c causes nothing (tabu parent)


# Newton's method of the logistic score, at its documented settings: start at the intercept-only
# maximum (mean held in [1e-9, 1 - 1e-9]), ridge 1e-6, stop after a step below 1e-6, at most 15 steps.

def _logit_data(seed: int, n: int = 40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * x))).astype(float)
    w = rng.integers(1, 4, n).astype(float)
    return np.column_stack([np.ones(n), x]), y, w


def test_newton_starts_at_the_intercept_only_maximum_with_the_mean_floored_at_1e9():
    from whyrec_causalnex.structure_select import newton_logistic

    A, y, w = _logit_data(1)
    beta, steps = newton_logistic(A, y, w, max_iter=0)
    ybar = np.sum(w * y) / np.sum(w)
    assert steps == 0 and 0.2 < ybar < 0.8
    np.testing.assert_allclose(beta, [np.log(ybar / (1 - ybar)), 0.0], rtol=1e-12)
    ones, _ = newton_logistic(A, np.ones(len(y)), w, max_iter=0)
    zeros, _ = newton_logistic(A, np.zeros(len(y)), w, max_iter=0)
    assert ones[0] == pytest.approx(np.log(1e9), rel=1e-12) and zeros[0] == pytest.approx(-np.log(1e9), rel=1e-12)


def test_one_newton_step_of_the_ridge_penalised_loglik_by_hand():
    """beta_1 = beta_0 + (A'WA + 1e-6 I)^-1 (A'w(y - p) - 1e-6 beta_0), W = w p (1 - p)."""
    from whyrec_causalnex.structure_select import newton_logistic

    A, y, w = _logit_data(1)
    b0, _ = newton_logistic(A, y, w, max_iter=0)
    p = 1 / (1 + np.exp(-(A @ b0)))
    H = A.T @ (A * (w * p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
    want = b0 + np.linalg.solve(H, A.T @ (w * (y - p)) - 1e-6 * b0)
    b1, steps = newton_logistic(A, y, w, max_iter=1)
    assert steps == 1
    np.testing.assert_allclose(b1, want, rtol=1e-12)


def test_newton_stops_after_the_first_step_below_1e6():
    """Seed 28's steps are 1.3, 0.74, 0.39, 0.075, 2.2e-3, 1.9e-6, 1.3e-12: the sixth is above
    1e-6 (below 2e-6), so the method takes the seventh and stops there."""
    from whyrec_causalnex.structure_select import newton_logistic

    A, y, w = _logit_data(28)
    prev, _ = newton_logistic(A, y, w, max_iter=0)
    sizes = []
    for m in range(1, 9):
        b, _ = newton_logistic(A, y, w, max_iter=m)
        sizes.append(float(np.max(np.abs(b - prev))))
        prev = b
    first_small = next(i for i, s in enumerate(sizes) if s < 1e-6) + 1
    assert first_small == 7 and 1e-6 <= sizes[5] < 2e-6
    beta, steps = newton_logistic(A, y, w)
    assert steps == 7
    # the maximum: the penalised score is zero there
    p = 1 / (1 + np.exp(-(A @ beta)))
    np.testing.assert_allclose(A.T @ (w * (y - p)) - 1e-6 * beta, 0.0, atol=1e-9)


def test_newton_takes_at_most_15_steps():
    """Separable data: the ridge-penalised maximum is far out and no step gets below 1e-6."""
    from whyrec_causalnex.structure_select import newton_logistic

    x = np.linspace(-1, 1, 20)
    A = np.column_stack([np.ones(20), x])
    y = (x > 0).astype(float)
    _, steps = newton_logistic(A, y, np.ones(20))
    assert steps == 15
    assert newton_logistic(A, y, np.ones(20), max_iter=16)[1] == 16  # the limit, not convergence, stopped it


class _TableScore:
    """A local score read from a table: {(variable, parents): score}, 0 when absent."""

    def __init__(self, table):
        self.table = table

    def local(self, j, parents):
        return self.table.get((j, frozenset(parents)), 0.0)


def test_tiebreak_orders_equal_moves_by_the_seeded_draws_and_never_beats_a_real_difference():
    from whyrec_causalnex.structure_select import hill_climb

    allowed = np.array([[False, True], [True, False]])
    none = np.zeros((2, 2), dtype=bool)
    # equal gains: the direction whose seeded draw is larger (uniform [0, 1e-9), rng([seed, 77]))
    equal = _TableScore({(1, frozenset({0})): 1.0, (0, frozenset({1})): 1.0})
    directions = set()
    for seed in range(20):
        t = np.random.default_rng([seed, 77]).uniform(0, 1e-9, size=(3, 2, 2))
        want = (0, 1) if t[0, 0, 1] > t[0, 1, 0] else (1, 0)
        adj = hill_climb(equal, 2, allowed, none, seed=seed, max_moves=1)
        assert list(zip(*np.nonzero(adj))) == [want]
        directions.add(want)
    assert directions == {(0, 1), (1, 0)}
    # a gain larger by 1.05e-9 (above the draws' range) wins whatever the draws
    unequal = _TableScore({(1, frozenset({0})): 1.0 + 1.05e-9, (0, frozenset({1})): 1.0})
    for seed in range(100):
        adj = hill_climb(unequal, 2, allowed, none, seed=seed, max_moves=1)
        assert list(zip(*np.nonzero(adj))) == [(0, 1)], seed


def test_effective_sizes_count_users_and_items_separately():
    rng = np.random.default_rng(4)
    users = np.array([0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8])  # 9 users
    items = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])  # 4 items
    X = rng.normal(size=(12, 2))
    sc = BICScore(X, ["a", "b"], [], ["row", "row"], (users, items))
    assert sc.n_eff == {"user": 9, "item": 4, "row": 12}
    assert BICScore(X, ["a", "b"], [], ["row", "row"], None).n_eff == {"user": 12, "item": 12, "row": 12}


def test_item_codes_without_rows_do_not_hide_an_item_variable():
    """Item codes 0..5 with codes 1 and 4 unused (e.g. items filtered out): a column constant within
    each item that has rows is still an item variable; one that varies within an item is not."""
    items = np.array([0, 0, 2, 2, 3, 3, 5, 5])
    users = np.arange(8)
    x = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0])
    assert variable_levels(x[:, None], (users, items)) == ["item"]
    x[7] = 4.5
    assert variable_levels(x[:, None], (users, items)) == ["row"]


def test_majority_graph_orients_by_the_majority_and_keeps_the_first_on_a_tie():
    from whyrec_causalnex.structure import Constraints
    from whyrec_causalnex.structure_select import majority_graph

    none = Constraints()
    # joined in 0.3 + 0.4 = 0.7 of the resamples: kept, oriented as most resamples (b -> a)
    assert majority_graph(["a", "b"], {("a", "b"): 0.3, ("b", "a"): 0.4}, none, 0.5) == {("b", "a"): 0.4}
    assert majority_graph(["a", "b"], {("b", "a"): 0.4, ("a", "b"): 0.3}, none, 0.5) == {("b", "a"): 0.4}
    # joined in 0.4 only: dropped
    assert majority_graph(["a", "b"], {("a", "b"): 0.2, ("b", "a"): 0.2}, none, 0.5) == {}
    # an exact tie: the orientation that comes first in the stability table stays (deterministic)
    assert majority_graph(["a", "b"], {("a", "b"): 0.3, ("b", "a"): 0.3}, none, 0.5) == {("a", "b"): 0.3}
    assert majority_graph(["a", "b"], {("b", "a"): 0.3, ("a", "b"): 0.3}, none, 0.5) == {("b", "a"): 0.3}
