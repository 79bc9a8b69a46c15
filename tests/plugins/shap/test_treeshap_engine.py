"""whyrec's TreeSHAP engine against LightGBM's own pred_contrib (and shap's TreeExplainer).

Boosters are trained here on small random data with numerical, categorical and missing
values; rows to explain add what training never saw: NaN everywhere, negative, fractional and
unseen categories, exact zeros, values on the thresholds.
"""
from __future__ import annotations

import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pytest

from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec_shap import treeshap_engine
from whyrec_shap.tree import TreeShap
from whyrec_shap.treeshap_engine import TreeShapEngine

CAT = [4, 5]  # a small and a large (>32 categories: several bitset words) categorical feature


def _data(n: int, seed: int, zeros: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 7))
    X[:, 3] = rng.integers(0, 4, n)  # few distinct values
    X[:, 4] = rng.integers(0, 9, n)
    X[:, 5] = rng.integers(0, 70, n)
    if zeros:
        X[rng.random(n) < 0.3, 1] = 0.0
    y = (2 * X[:, 0] + np.where(X[:, 1] > 0, 1.0, -1.0) * X[:, 2] + (X[:, 4] % 3 == 0) + 0.8 * (X[:, 5] % 7 == 1)
         + 0.5 * X[:, 3] + rng.normal(scale=0.3, size=n))
    X[rng.random((n, 7)) < 0.08] = np.nan
    return X, y


def _rows(n: int, seed: int) -> np.ndarray:
    """Rows with every edge case: NaN, zeros, negative/fractional/unseen categories, thresholds."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 7))
    X[:, 3] = rng.integers(-1, 6, n)
    X[:, 4] = rng.choice([-np.inf, -3e9, -3, -1, -0.5, 0, 1, 2, 2.7, 5, 8, 9, 40, 1e6, 3e9, np.inf], n)
    X[:, 5] = rng.integers(-2, 200, n)
    X[rng.random(n) < 0.15, 1] = 0.0
    X[rng.random(n) < 0.05, 1] = -0.0
    X[rng.random((n, 7)) < 0.15] = np.nan
    return X


def _train(params: dict, rounds: int, seed: int = 0, zeros: bool = False, keep: bool = False) -> lgb.Booster:
    X, y = _data(1500, seed, zeros)
    base = {"objective": "regression", "verbose": -1, "seed": seed, "min_data_per_group": 5, "cat_smooth": 1.0,
            "max_cat_to_onehot": 4, "num_threads": 1}
    return lgb.train({**base, **params}, lgb.Dataset(X, y, categorical_feature=CAT), rounds, keep_training_booster=keep)


def _check(booster: lgb.Booster, X: np.ndarray, engine: TreeShapEngine | None = None) -> float:
    engine = engine or TreeShapEngine.for_booster(booster)
    ref = booster.predict(X, pred_contrib=True)
    margin = booster.predict(X, raw_score=True)
    for threads in (1, 2):
        phi, base = engine.shap_values(X, threads=threads)
        np.testing.assert_allclose(phi, ref[:, :-1], rtol=0, atol=1e-9)
        assert base == pytest.approx(ref[0, -1], abs=1e-12)
        np.testing.assert_allclose(phi.sum(axis=1) + base, margin, rtol=0, atol=1e-9)  # additivity
    return float(np.abs(phi - ref[:, :-1]).max())


@pytest.mark.parametrize("params", [
    {"num_leaves": 4},
    {"num_leaves": 31},
    {"num_leaves": 63, "min_data_in_leaf": 5},  # deep paths with repeated features
    {"num_leaves": 31, "max_depth": 3},
    {"num_leaves": 15, "zero_as_missing": True},  # missing type Zero
    {"num_leaves": 15, "use_missing": False},  # missing type None: NaN read as 0
], ids=["leaves4", "leaves31", "leaves63", "depth3", "zero-missing", "no-missing"])
def test_equals_pred_contrib_with_nan_and_categories(params):
    booster = _train(params, 40, zeros="zero_as_missing" in params)
    dump = booster.dump_model()
    kinds = {(n["decision_type"], n["missing_type"]) for n in _nodes(dump)}
    assert ("==", "NaN") in kinds or ("==", "None") in kinds  # categorical splits are in the model
    assert _check(booster, np.vstack([_rows(300, 1), _data(200, 2)[0]])) <= 1e-12


def test_every_missing_direction_is_exercised():
    """The engine's rows cross numerical splits of all three missing types, both default
    directions, and categorical splits; a value exactly on a threshold goes left."""
    kinds = set()
    for params, zeros in (({"num_leaves": 15}, False), ({"num_leaves": 15, "zero_as_missing": True}, True),
                          ({"num_leaves": 15, "use_missing": False}, False)):
        booster = _train(params, 30, zeros=zeros)
        nodes = list(_nodes(booster.dump_model()))
        kinds |= {(n["decision_type"], n["missing_type"], n["default_left"]) for n in nodes}
        X = _rows(50, 3)
        on_threshold = [n for n in nodes if n["decision_type"] == "<="][:20]
        for i, n in enumerate(on_threshold):
            X[i, n["split_feature"]] = n["threshold"]
        _check(booster, X)
    assert {("<=", "NaN"), ("<=", "Zero"), ("<=", "None"), ("==", "NaN")} <= {k[:2] for k in kinds}
    assert {True, False} <= {k[2] for k in kinds if k[0] == "<="}


def test_single_leaf_trees_and_a_single_leaf_booster():
    X = _rows(40, 4)
    # nothing to split on: every tree is one leaf (the boosted average)
    stump = _train({"num_leaves": 7, "min_data_in_leaf": 5000}, 5)
    assert all(t["num_leaves"] == 1 for t in stump.dump_model()["tree_info"])
    phi, base = TreeShapEngine.for_booster(stump).shap_values(X)
    assert (phi == 0).all()
    _check(stump, X)
    # single-leaf trees among real ones: training continued from the stump
    Xd, yd = _data(1500, 0)
    mixed = lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 7, "num_threads": 1,
                       "min_data_per_group": 5, "cat_smooth": 1.0}, lgb.Dataset(Xd, yd, categorical_feature=CAT), 4,
                      init_model=stump)
    sizes = [t["num_leaves"] for t in mixed.dump_model()["tree_info"]]
    assert sizes[0] == 1 and min(sizes[1:]) > 1
    _check(mixed, X)


def test_leaves_too_deep_for_tables_are_computed_directly(monkeypatch):
    booster = _train({"num_leaves": 63, "min_data_in_leaf": 5}, 15)
    monkeypatch.setattr(treeshap_engine, "MAX_TABLE_DEPTH", 2)
    engine = TreeShapEngine(booster.dump_model())
    assert engine.max_unique > 2 and (engine.l_hoff < 0).any() and (engine.l_hoff >= 0).any()
    _check(booster, _rows(120, 6), engine)


def test_binary_objective_and_random_forest_average():
    X, y = _data(800, 7)
    base = {"verbose": -1, "num_leaves": 15, "num_threads": 1, "min_data_per_group": 5}
    binary = lgb.train({**base, "objective": "binary"}, lgb.Dataset(X, (y > 0).astype(float), categorical_feature=CAT), 30)
    _check(binary, _rows(100, 8))
    rf = lgb.train({**base, "objective": "regression", "boosting": "rf", "bagging_fraction": 0.7, "bagging_freq": 1},
                   lgb.Dataset(X, y, categorical_feature=CAT), 10)
    assert rf.dump_model()["average_output"]
    _check(rf, _rows(100, 9))  # the raw score of a forest is the sum of its trees, as in pred_contrib


def test_best_iteration_trees_are_the_ones_predict_uses():
    booster = _train({"num_leaves": 15}, 20)
    booster.best_iteration = 8  # as early stopping with keep_training_booster leaves it
    X = _rows(60, 11)
    assert not np.allclose(booster.predict(X, raw_score=True), booster.predict(X, raw_score=True, num_iteration=20))
    assert TreeShapEngine.for_booster(booster).n_trees == 8
    _check(booster, X)


def test_engine_is_cached_on_the_booster_and_rebuilt_when_it_grows():
    booster = _train({"num_leaves": 7}, 5, keep=True)
    first = TreeShapEngine.for_booster(booster)
    assert TreeShapEngine.for_booster(booster) is first
    booster.update()  # one more tree: the cached engine is stale
    second = TreeShapEngine.for_booster(booster)
    assert second is not first and second.n_trees == first.n_trees + 1
    _check(booster, _rows(30, 12))


def test_unsupported_boosters_and_bad_input_are_refused():
    X, y = _data(600, 13)
    multi = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1, "num_leaves": 4},
                      lgb.Dataset(X, np.abs(y).astype(int) % 3), 3)
    with pytest.raises(UnsupportedError, match="multiclass.*engine = \"shap\""):
        TreeShapEngine.for_booster(multi)
    linear = lgb.train({"objective": "regression", "linear_tree": True, "verbose": -1, "num_threads": 1, "num_leaves": 4},
                       lgb.Dataset(np.nan_to_num(X[:, :4]), y), 3)
    with pytest.raises(UnsupportedError, match="linear trees"):
        TreeShapEngine.for_booster(linear)
    engine = TreeShapEngine.for_booster(_train({"num_leaves": 4}, 3))
    with pytest.raises(DataError, match="expected a matrix of 7 feature columns.*got shape \\(5, 6\\)"):
        engine.shap_values(np.zeros((5, 6)))
    phi, base = engine.shap_values(np.zeros((0, 7)))
    assert phi.shape == (0, 7)


def test_tree_shap_explainer_engines_agree(lgb_model, toy_data, top_pairs):
    """The explainer's default engine and shap's (the reference) on the toy recommender."""
    ours = TreeShap().explain(lgb_model, toy_data, top_pairs)
    ref = TreeShap(engine="shap").explain(lgb_model, toy_data, top_pairs)
    two = TreeShap(threads=2).explain(lgb_model, toy_data, top_pairs)
    assert "treeshap_engine" in ours.summary["engine"] and "shap.TreeExplainer" in ref.summary["engine"]
    np.testing.assert_allclose(ours.attributions.to_numpy(), ref.attributions.to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.pairs["base_value"], ref.pairs["base_value"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(two.attributions.to_numpy(), ours.attributions.to_numpy())
    assert ours.summary["max_additivity_error"] <= 1e-9 and ours.summary["additivity_ok"]


@pytest.mark.parametrize("kwargs, message", [
    ({"engine": "fast"}, "engine 'fast' is not one of \\['whyrec', 'shap'\\]"),
    ({"threads": -1}, "threads -1 must be an integer >= 0"),
    ({"threads": "2"}, "threads '2' must be an integer >= 0"),
])
def test_bad_engine_parameters(kwargs, message):
    with pytest.raises(RegistryError, match=message):
        TreeShap(**kwargs)


def test_loading_the_plugin_and_the_engine_module_imports_no_numba():
    code = ("import sys, whyrec, whyrec_shap, whyrec_shap.tree, whyrec_shap.treeshap_engine; "
            "whyrec.get_host(); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _nodes(dump: dict):
    stack = [t["tree_structure"] for t in dump["tree_info"]]
    while stack:
        n = stack.pop()
        if "split_index" in n:
            yield n
            stack += [n["left_child"], n["right_child"]]


def test_hand_written_tree_equals_brute_force_shapley_with_a_zero_cover_leaf():
    """An independent reference: the path-dependent game v(S) = E[f | x_S] (features outside S
    follow the cover-weighted average of both children) and Shapley values by the subset
    formula. The tree repeats a feature on a path, has a categorical split and a leaf with
    zero training rows (whose cover fraction 0 sends it to the direct computation)."""
    import itertools
    import math

    def leaf(i, value, count):
        return {"leaf_index": i, "leaf_value": value, "leaf_count": count}

    def split(i, f, thr, count, left, right, kind="<=", missing="NaN", default_left=True):
        return {"split_index": i, "split_feature": f, "threshold": thr, "decision_type": kind, "missing_type": missing,
                "default_left": default_left, "internal_count": count, "left_child": left, "right_child": right}

    tree = split(0, 0, 0.5, 10,
                 split(1, 1, 0.0, 6, leaf(0, 5.0, 0), leaf(1, -1.0, 6), missing="None"),
                 split(2, 0, 2.0, 4,
                       split(3, 2, "1||3", 3, leaf(2, 2.0, 1), leaf(3, 0.5, 2), kind="=="),
                       leaf(4, 3.0, 1), default_left=False))
    dump = {"max_feature_idx": 2, "tree_info": [{"num_leaves": 5, "tree_structure": tree}]}

    def goes_left(n, x):
        v = x[n["split_feature"]]
        if n["decision_type"] == "==":
            return not math.isnan(v) and v >= 0 and int(v) in {1, 3}
        if math.isnan(v):
            return n["default_left"] if n["missing_type"] == "NaN" else 0.0 <= n["threshold"]
        return v <= n["threshold"]

    def value(n, x, S):
        if "split_index" not in n:
            return n["leaf_value"]
        if n["split_feature"] in S:
            return value(n["left_child"] if goes_left(n, x) else n["right_child"], x, S)
        w = n["internal_count"]
        counts = [c.get("internal_count", c.get("leaf_count")) for c in (n["left_child"], n["right_child"])]
        return sum(k / w * value(c, x, S) for k, c in zip(counts, (n["left_child"], n["right_child"])))

    engine = TreeShapEngine(dump)
    assert (engine.l_hoff < 0).sum() == 1  # the zero-cover leaf
    rows = np.array([[0.0, -1.0, 1.0], [0.0, 1.0, 3.0], [1.0, 5.0, 2.0], [3.0, np.nan, 1.0], [np.nan, 0.0, np.nan],
                     [1.5, np.nan, 3.0]])
    phi, base = engine.shap_values(rows)
    assert base == pytest.approx(value(tree, rows[0], set()), abs=1e-15)
    for x, got in zip(rows, phi):
        ref = np.zeros(3)
        for i in range(3):
            others = [j for j in range(3) if j != i]
            for r in range(3):
                for S in itertools.combinations(others, r):
                    weight = math.factorial(r) * math.factorial(3 - r - 1) / math.factorial(3)
                    ref[i] += weight * (value(tree, x, set(S) | {i}) - value(tree, x, set(S)))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
        assert got.sum() + base == pytest.approx(value(tree, x, {0, 1, 2}), abs=1e-12)
