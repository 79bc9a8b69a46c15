"""Independent references for whyrec_causalnex.structure (issue 19, mutation scores).

Exact dict contents, truth tables worked by hand, weighted moments computed with numpy's own
formulas, the bootstrap counts derived by hand from the generator's draws, and CausalNex's own
solvers called on data prepared outside the module."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec_causalnex.structure import (
    JITTER, Constraints, learn_structure, notears_weights, reduced_matrix, resample_weights, single_threaded_blas,
)


def test_constraints_to_dict_has_exactly_these_keys_and_values():
    c = Constraints(tabu_parents=["y"], tabu_children=["age"], forbidden=[("a", "b")], required=[("c", "d")],
                    field_forbidden=[("x", "z"), ("z", "x"), ("q", "x")], field_rules={"item": ["item", "user"]})
    assert c.to_dict() == {
        "tabu_parents": ["y"], "tabu_children": ["age"], "forbidden_edges": [["a", "b"]],
        "required_edges": [["c", "d"]], "field_rules": {"item": ["item", "user"]},
        "edges_forbidden_by_field_rules": 3,
    }
    assert Constraints().to_dict() == {"tabu_parents": [], "tabu_children": [], "forbidden_edges": [],
                                       "required_edges": [], "field_rules": None, "edges_forbidden_by_field_rules": 0}


def test_allowed_truth_table():
    c = Constraints(tabu_parents=["y"], tabu_children=["age"], forbidden=[("a", "b")], field_forbidden=[("b", "c")])
    names = ["a", "b", "c", "y", "age"]
    # worked by hand: no self loops, nothing out of y, nothing into age, a->b and b->c banned
    banned = {("a", "b"), ("b", "c")}
    for s in names:
        for t in names:
            want = s != t and s != "y" and t != "age" and (s, t) not in banned
            assert c.allowed(s, t) is want, (s, t)
    # the reverse directions stay allowed (a ban is directed)
    assert c.allowed("b", "a") and c.allowed("c", "b") and c.allowed("age", "y")
    # forbidden edges given as lists (as loaded from JSON/TOML) ban the same
    assert not Constraints(forbidden=[["a", "b"]], field_forbidden=[["b", "c"]]).allowed("a", "b")
    assert not Constraints(forbidden=[["a", "b"]], field_forbidden=[["b", "c"]]).allowed("b", "c")


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * np.array([1.0, 5.0, 0.2]) + np.array([3.0, -1.0, 10.0])
    X[:, 1] += 2 * X[:, 0]
    return X


@pytest.mark.parametrize("standardise", [False, True])
def test_reduced_matrix_reproduces_the_weighted_covariance(standardise):
    X = _data()
    w = np.arange(len(X)) % 3  # bootstrap-like counts 0, 1, 2
    R, mean, scale = reduced_matrix(X, standardise, weights=w)
    Xr = np.repeat(X, w, axis=0)  # the weighted sample, rows repeated by their counts
    np.testing.assert_allclose(mean, Xr.mean(axis=0), rtol=1e-12)
    want_scale = Xr.std(axis=0) if standardise else np.ones(3)
    np.testing.assert_allclose(scale, want_scale, rtol=1e-12)
    C = np.cov(Xr / want_scale, rowvar=False, bias=True)
    assert R.shape == (3, 3)
    np.testing.assert_allclose(R.T @ R / 3, C, rtol=1e-9, atol=1e-12)
    # unweighted
    R1, mean1, scale1 = reduced_matrix(X, standardise)
    np.testing.assert_allclose(mean1, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(R1.T @ R1 / 3, np.cov(X / scale1, rowvar=False, bias=True), rtol=1e-9, atol=1e-12)


def test_reduced_matrix_jitter_and_constant_columns():
    X = _data()
    X[:, 2] = 4.0  # constant column: scale 1, not 0 (no division by zero)
    _, _, s0 = reduced_matrix(X, True)
    np.testing.assert_allclose(s0, [X[:, 0].std(), X[:, 1].std(), 1.0], rtol=1e-12)
    _, _, s = reduced_matrix(X, True, seed=7)
    z = np.random.default_rng([7, 1234]).standard_normal(3)
    np.testing.assert_allclose(s, s0 * (1 + 0.001 * z), rtol=1e-12)
    assert JITTER == 0.001
    assert np.all(s != s0)
    # no jitter without standardising, seed or not
    _, _, s_raw = reduced_matrix(X, False, seed=7)
    np.testing.assert_array_equal(s_raw, np.ones(3))
    # different seeds, different jitter
    _, _, s8 = reduced_matrix(X, True, seed=8)
    assert np.all(s8 != s)


def _cn_weights(W_sm, d):
    W = np.zeros((d, d))
    for u, v, w in W_sm.edges(data="weight"):
        W[int(u), int(v)] = w
    return W


def test_notears_weights_match_causalnex_on_standardised_jittered_data_and_lasso():
    """The module's W equals CausalNex's from_numpy / from_numpy_lasso run on all rows, after the
    centring, scaling and jitter the docstring describes (computed here with numpy)."""
    from causalnex.structure.notears import from_numpy, from_numpy_lasso

    rng = np.random.default_rng(5)
    n = 300
    a = rng.normal(size=n)
    b = 1.5 * a + rng.normal(size=n)
    c = -1.0 * b + 0.5 * rng.normal(size=n)
    X = np.column_stack([a, b, c]) * np.array([1.0, 3.0, 0.5]) + 2.0
    names = ["a", "b", "c"]
    Xc = X - X.mean(axis=0)
    sd = Xc.std(axis=0) * (1 + 0.001 * np.random.default_rng([4, 1234]).standard_normal(3))
    Xs = Xc / sd
    with single_threaded_blas():
        W_ref = _cn_weights(from_numpy(Xs, w_threshold=0.0), 3)
        W_lasso_ref = _cn_weights(from_numpy_lasso(Xs, 0.5, w_threshold=0.0), 3)
    W = notears_weights(X, names, Constraints(), standardise=True, seed=4)
    np.testing.assert_allclose(W, W_ref, atol=2e-2)
    W_lasso = notears_weights(X, names, Constraints(), standardise=True, seed=4, lasso=0.5)
    np.testing.assert_allclose(W_lasso, W_lasso_ref, atol=2e-2)
    # the penalty shrinks: the lasso answer is clearly smaller in total than the plain one
    assert np.abs(W_lasso).sum() < np.abs(W).sum() - 0.2
    # a lasso of 0 is the plain solver
    np.testing.assert_allclose(notears_weights(X, names, Constraints(), standardise=True, seed=4, lasso=0.0), W,
                               atol=1e-12)


def test_resample_weights_rows_derived_by_hand():
    n = 11
    got = resample_weights(n, np.random.default_rng(3))
    draws = np.random.default_rng(3).integers(0, n, n)
    want = np.array([np.sum(draws == i) for i in range(n)], dtype=float)
    np.testing.assert_array_equal(got, want)
    assert got.sum() == n and got.dtype == float


def test_resample_weights_pigeonhole_derived_by_hand():
    users = np.array([0, 0, 1, 2, 2, 2, 3])
    items = np.array([0, 1, 1, 0, 2, 1, 2])
    got = resample_weights(len(users), np.random.default_rng(9), (users, items))
    r = np.random.default_rng(9)
    du = r.integers(0, 4, 4)  # 4 users drawn with replacement
    di = r.integers(0, 3, 3)  # then 3 items
    times_u = {u: int(np.sum(du == u)) for u in range(4)}
    times_i = {i: int(np.sum(di == i)) for i in range(3)}
    want = np.array([times_u[u] * times_i[i] for u, i in zip(users, items)], dtype=float)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == float
    # the total weight is (users drawn) x (items drawn) summed over the rows that exist: never above 4 * 3
    assert 0 < got.sum() <= 12


def test_resample_weights_falls_back_to_rows_when_every_drawn_pair_is_missing():
    # user code 0 and item code 0 have no rows: a draw of only those gives all-zero weights
    users = np.array([1, 1])
    items = np.array([1, 1])
    seeds = []
    for s in range(200):
        r = np.random.default_rng(s)
        du, di = r.integers(0, 2, 2), r.integers(0, 2, 2)
        if not (du == 1).any() or not (di == 1).any():
            seeds.append(s)
        if len(seeds) == 3:
            break
    assert seeds
    for s in seeds:
        got = resample_weights(2, np.random.default_rng(s), (users, items))
        r = np.random.default_rng(s)
        r.integers(0, 2, 2), r.integers(0, 2, 2)
        want = np.bincount(r.integers(0, 2, 2), minlength=2).astype(float)
        np.testing.assert_array_equal(got, want)
        assert got.sum() == 2


def test_bootstrap_resamples_follow_the_documented_draws():
    """learn_structure's resample b: rows weighted by resample_weights (from one generator seeded
    with ``seed``), rows of weight 0 dropped, a column made constant by the resample given a tiny
    noise from the same generator, NOTEARS with seed + b + 1, required edges not forced."""
    from whyrec_causalnex.structure import threshold_edges

    rng = np.random.default_rng(0)
    n = 40
    a = rng.normal(size=n)
    rare = np.zeros(n)
    rare[3] = 1.0  # a rare binary column: most resamples make it constant
    b = 1.2 * a + 0.3 * rng.normal(size=n)
    X = np.column_stack([a, rare, b])
    names = ["a", "rare", "b"]
    cons = Constraints(required=[("rare", "b")])
    res = learn_structure(X, names, cons, w_threshold=0.2, standardise=True, bootstrap=3, seed=2, max_iter=30)
    g = np.random.default_rng(2)
    no_req = Constraints()
    want = []
    constant_seen = False
    for k in range(3):
        w = resample_weights(n, g)
        keep = w > 0
        Xb, wb = X[keep], w[keep]
        if np.any(Xb.std(axis=0) == 0):
            constant_seen = True
            Xb = Xb + g.normal(0, 1e-9, Xb.shape)
        Wb = notears_weights(Xb, names, cons, standardise=True, seed=2 + k + 1, weights=wb, max_iter=30)
        want.append(list(threshold_edges(Wb, names, 0.2, no_req)))
    assert constant_seen
    assert res.boot_edges == want
    assert res.bootstrap == 3
    counts = {}
    for kept in want:
        for e in kept:
            counts[e] = counts.get(e, 0) + 1
    assert res.stability == {e: c / 3 for e, c in counts.items()}
    # the full-data graph holds the required edge; the resamples are not forced to
    assert ("rare", "b") in res.edges


def _three(n=120, seed=11):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 1.3 * a + 0.6 * rng.normal(size=n)
    c = (rng.uniform(size=n) < 1 / (1 + np.exp(-b))).astype(float)
    return np.column_stack([a * 2 + 1, b, c])


def test_notears_weights_defaults_are_the_documented_ones():
    X = _three()
    names = ["a", "b", "c"]
    got = notears_weights(X, names, Constraints())
    want = notears_weights(X, names, Constraints(), standardise=True, method="linear", max_iter=100, h_tol=1e-8,
                           seed=0, lasso=0.0, weights=None)
    np.testing.assert_array_equal(got, want)
    # and they matter: another seed (another jitter) changes the answer
    assert not np.array_equal(got, notears_weights(X, names, Constraints(), seed=1))
    with pytest.raises(ValueError, match="unknown NOTEARS method 'mlp'"):
        notears_weights(X, names, Constraints(), method="mlp")


def test_learn_structure_defaults_are_the_documented_ones():
    X = _three()
    names = ["a", "b", "c"]
    r = learn_structure(X, names, Constraints(), w_threshold=0.1, standardise=True)
    r2 = learn_structure(X, names, Constraints(), w_threshold=0.1, standardise=True, method="linear", max_iter=100,
                         bootstrap=0, seed=0, lasso=0.0)
    np.testing.assert_array_equal(r.weights, r2.weights)
    assert r.edges == r2.edges and r.stability == {} and r.bootstrap == 0 and r.boot_edges == []


def test_nonlinear_weights_match_causalnex_from_pandas_on_prepared_data():
    """The nonlinear branch equals CausalNex's pytorch from_pandas on the rows repeated by their
    counts, centred, scaled with the seeded jitter, named v0..v{d-1}, with the constraints mapped."""
    import torch
    from causalnex.structure.pytorch import from_pandas

    X = _three(60)
    names = ["a", "b", "c"]
    wts = np.arange(60) % 3
    cons = Constraints(tabu_parents=["c"], forbidden=[("b", "a")])
    threads = torch.get_num_threads()
    got = notears_weights(X, names, cons, method="nonlinear", max_iter=20, hidden_units=4, seed=5,
                          weights=wts, dist_types={"c": "cont"})
    assert torch.get_num_threads() == threads
    Xr = np.repeat(X, wts, axis=0)
    Xc = Xr - Xr.mean(axis=0)
    Xc = Xc / (Xc.std(axis=0) * (1 + 0.001 * np.random.default_rng([5, 1234]).standard_normal(3)))
    torch.manual_seed(5)
    torch.set_num_threads(1)
    try:
        sm = from_pandas(pd.DataFrame(Xc, columns=["v0", "v1", "v2"]),
                         dist_type_schema={"v0": "cont", "v1": "cont", "v2": "cont"}, hidden_layer_units=[4],
                         max_iter=20, w_threshold=0.0, use_gpu=False, lasso_beta=0.0,
                         tabu_edges=[("v1", "v0")], tabu_parent_nodes=["v2"])
    finally:
        torch.set_num_threads(threads)
    want = np.zeros((3, 3))
    for u, v, w in sm.edges(data="weight"):
        want[int(u[1]), int(v[1])] = w
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert got[2].tolist() == [0.0, 0.0, 0.0] and got[1, 0] == 0.0  # the constraints hold
    assert np.abs(got).sum() > 0


def test_constraint_indices_skip_unknown_names_and_ban_the_reverse_of_required_edges():
    from whyrec_causalnex.structure import _indices

    c = Constraints(tabu_parents=["c", "nope"], tabu_children=["a", "nope"],
                    forbidden=[("a", "b"), ("a", "zzz"), ("zzz", "c")], field_forbidden=[("c", "a")],
                    required=[("b", "c"), ("q", "a"), ("a", "q")])
    assert _indices(["a", "b", "c"], c) == {"tabu_edges": [(0, 1), (2, 0), (2, 1)], "tabu_parent_nodes": [2],
                                            "tabu_child_nodes": [0]}
    # names none of the constraints know: nothing to pass (None, not an empty list)
    assert _indices(["u", "v"], c) == {"tabu_edges": None, "tabu_parent_nodes": None, "tabu_child_nodes": None}


def test_threshold_edges_strictly_above_the_threshold_and_required_kept():
    from whyrec_causalnex.structure import threshold_edges

    names = ["a", "b", "c"]
    W = np.array([[9.0, 0.5, -0.7],
                  [0.0, 9.0, 0.51],
                  [0.6, 0.0, 9.0]])
    # exactly 0.5 is not above 0.5; the diagonal never counts; a -> c -> a is a cycle: a -> c
    # (|-0.7|) is stronger than c -> a (0.6), so c -> a goes
    assert threshold_edges(W, names, 0.5, Constraints()) == {("a", "c"): -0.7, ("b", "c"): 0.51}
    # a required edge stays even against a stronger learned one, with its own weight (0 if unknown)
    got = threshold_edges(W, names, 0.5, Constraints(required=[("c", "a"), ("b", "zzz")]))
    assert got == {("b", "c"): 0.51, ("c", "a"): 0.6, ("b", "zzz"): 0.0}


def test_learn_structure_reports_progress_times_and_hands_bic_to_structure_select():
    from whyrec_causalnex.structure_select import learn_structure_bic

    X = _three()
    names = ["a", "b", "c"]
    calls = []

    def progress(it, desc, total):
        calls.append((desc, total))
        return it

    r = learn_structure(X, names, Constraints(), w_threshold=0.1, standardise=True, bootstrap=2, max_iter=20,
                        progress=progress)
    assert calls == [("NOTEARS bootstrap", 2)] and len(r.boot_edges) == 2
    assert 0 <= r.seconds < 600 and 0 <= r.boot_seconds < 600
    calls.clear()
    learn_structure(X, names, Constraints(), w_threshold=0.1, standardise=True, bootstrap=0, max_iter=20,
                    progress=progress)
    assert calls == []
    b = learn_structure(X, names, Constraints(), w_threshold=0.1, standardise=True, method="bic")
    ref = learn_structure_bic(X, names, Constraints(), bootstrap=0, seed=0)
    assert b.edges == ref.edges and len(b.edges) >= 1


def test_nonlinear_weights_stay_finite_with_a_constant_column():
    X = _three(40)
    X[:, 2] = 3.0  # constant: its sd of 0 must not divide the centred zeros (0 / 0 = NaN)
    W = notears_weights(X, ["a", "b", "c"], Constraints(), method="nonlinear", max_iter=5, hidden_units=2, seed=1)
    assert np.isfinite(W).all() and np.abs(W[:2, :2]).sum() > 0


def test_linear_defaults_are_exactly_causalnex_from_numpy_at_h_tol_1e8():
    """With its defaults the linear branch is CausalNex's plain ``from_numpy`` (not the lasso
    solver with beta 0, whose split w+ - w- parametrisation ends elsewhere) on the reduced matrix,
    at max_iter 100 and h_tol 1e-8. The data are chosen so that h_tol matters: the augmented
    Lagrangian's h passes between 1e-8 and 2e-8, so 2e-8 stops one step earlier."""
    from causalnex.structure.notears import from_numpy, from_numpy_lasso

    X = _three() * np.array([0.3, 1.0, 1.0])
    names = ["a", "b", "c"]
    R, _, _ = reduced_matrix(X, False, seed=0)
    with single_threaded_blas():
        want = _cn_weights(from_numpy(R, max_iter=100, h_tol=1e-8, w_threshold=0.0), 3)
        h_2e8 = _cn_weights(from_numpy(R, max_iter=100, h_tol=2e-8, w_threshold=0.0), 3)
        lasso_0 = _cn_weights(from_numpy_lasso(R, 0.0, max_iter=100, h_tol=1e-8, w_threshold=0.0), 3)
    got = notears_weights(X, names, Constraints(), standardise=False)
    np.testing.assert_array_equal(got, want)
    # the two alternatives really differ on these data (else the equality above would prove nothing)
    assert np.abs(h_2e8 - want).max() > 1e-6
    assert np.abs(lasso_0 - want).max() > 1e-6
    # learn_structure passes the same defaults through
    r = learn_structure(X, names, Constraints(), w_threshold=0.1, standardise=False)
    np.testing.assert_array_equal(r.weights, want)


def test_nonlinear_default_hidden_layer_has_8_units():
    """The nonlinear branch's default MLP has one hidden layer of 8 units (notears_weights and
    learn_structure): CausalNex's from_pandas with hidden_layer_units=[8] on the same prepared data.
    Two variables, ten rows and one dual-ascent step keep it fast; the width still shows."""
    import torch
    from causalnex.structure.pytorch import from_pandas

    X = _three(10)[:, :2]
    names = ["a", "b"]
    Xc = X - X.mean(axis=0)
    Xc = Xc / (Xc.std(axis=0) * (1 + 0.001 * np.random.default_rng([0, 1234]).standard_normal(2)))
    threads = torch.get_num_threads()
    refs = {}
    for units in (8, 9):
        torch.manual_seed(0)
        torch.set_num_threads(1)
        try:
            sm = from_pandas(pd.DataFrame(Xc, columns=["v0", "v1"]), dist_type_schema={"v0": "cont", "v1": "cont"},
                             hidden_layer_units=[units], max_iter=1, w_threshold=0.0, use_gpu=False, lasso_beta=0.0)
        finally:
            torch.set_num_threads(threads)
        W = np.zeros((2, 2))
        for u, v, w in sm.edges(data="weight"):
            W[int(u[1]), int(v[1])] = w
        refs[units] = W
    assert np.abs(refs[8] - refs[9]).max() > 1e-4  # the width matters on these data
    got = notears_weights(X, names, Constraints(), method="nonlinear", max_iter=1)
    np.testing.assert_allclose(got, refs[8], rtol=1e-6, atol=1e-9)
    r = learn_structure(X, names, Constraints(), w_threshold=0.1, standardise=True, method="nonlinear", max_iter=1)
    np.testing.assert_allclose(r.weights, refs[8], rtol=1e-6, atol=1e-9)
