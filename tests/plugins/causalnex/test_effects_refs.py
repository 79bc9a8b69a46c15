"""Independent references for whyrec_causalnex.effects (issue 19, mutation scores).

The Bayesian network's CPDs use the K2 prior (one pseudo-count per cell), so every answer of
do_effects on a small discrete network is worked out here from counts: the back-door sum for
P(y | do(x)), Bayes' rule for P(y | x), and the bootstrap intervals from the same resamples
(structure.resample_weights with the same seed) recomputed by those formulas."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec_causalnex.discretise import VariableStates
from whyrec_causalnex.effects import LEVEL_COLUMNS, DoModel, do_effects, intervention_result
from whyrec_causalnex.network import FittedNetwork
from whyrec_causalnex.structure import resample_weights


def _codes(n=160, seed=0):
    rng = np.random.default_rng(seed)
    z = (rng.uniform(size=n) < 0.4).astype(int)
    x = np.clip(z + rng.integers(0, 2, n) + (rng.uniform(size=n) < 0.2), 0, 2).astype(int)
    p = 0.15 + 0.25 * x / 2 + 0.3 * z
    y = (rng.uniform(size=n) < p).astype(int)
    w = rng.integers(0, 2, n)  # unconnected: no path
    return pd.DataFrame({"z": z, "x": x, "y": y, "w": w})


def _states(codes):
    def st(name, k):
        return VariableStates(name, "values", [f"{name}{i}" for i in range(k)], values=list(range(k)),
                              counts=[int((codes[name] == i).sum()) for i in range(k)])
    return {"z": st("z", 2), "x": st("x", 3), "y": st("y", 2), "w": st("w", 2)}


EDGES = [("z", "x"), ("z", "y"), ("x", "y")]


def _k2(df):
    """P(z), P(x | z), P(y = 1 | x, z) with one pseudo-count per cell (K2)."""
    n = len(df)
    pz = np.array([(np.sum(df.z == a) + 1) / (n + 2) for a in range(2)])
    px_z = np.array([[(np.sum((df.x == b) & (df.z == a)) + 1) / (np.sum(df.z == a) + 3) for a in range(2)]
                     for b in range(3)])
    py = np.array([[(np.sum((df.y == 1) & (df.x == b) & (df.z == a)) + 1) / (np.sum((df.x == b) & (df.z == a)) + 2)
                    for a in range(2)] for b in range(3)])
    return pz, px_z, py


def do_ref(df):
    pz, _, py = _k2(df)
    return np.array([np.sum(pz * py[b]) for b in range(3)])  # back-door sum over z


def obs_ref(df):
    pz, px_z, py = _k2(df)
    out = []
    for b in range(3):
        post = pz * px_z[b]
        out.append(np.sum(post * py[b]) / post.sum())
    return np.array(out)


@pytest.fixture(scope="module")
def bn():
    codes = _codes()
    states = _states(codes)
    net = FittedNetwork.fit(["z", "x", "y", "w"], EDGES, "y", codes, states)
    return codes, states, net


def test_bn_point_answers_are_the_back_door_sum_and_bayes_rule(bn):
    codes, states, net = bn
    levels, fx = do_effects(net, ["x", "w"], states, codes, baseline=0.3)
    # the table's columns, as users read them
    assert list(levels.columns) == LEVEL_COLUMNS == [
        "feature", "level", "state", "description", "interval", "p_do", "p_do_low", "p_do_high", "effect_vs_first",
        "effect_low", "effect_high", "estimate_in_interval", "p_observed", "path_to_outcome", "train_count"]
    x = levels[levels.feature == "x"].reset_index(drop=True)
    assert list(x.interval) == [states["x"].interval(i) for i in range(3)]
    np.testing.assert_allclose(x.p_do, do_ref(codes), atol=1e-9)
    np.testing.assert_allclose(x.p_observed, obs_ref(codes), atol=1e-9)
    np.testing.assert_allclose(x.effect_vs_first, do_ref(codes) - do_ref(codes)[0], atol=1e-9)
    assert list(x.level) == [0, 1, 2] and list(x.state) == ["x0", "x1", "x2"]
    assert list(x.description) == ["x: x0", "x: x1", "x: x2"]
    assert list(x.train_count) == states["x"].counts
    assert x.path_to_outcome.all() and x.estimate_in_interval.isna().all()
    # a path but no bootstrap: no interval
    assert x[["p_do_low", "p_do_high", "effect_low", "effect_high"]].isna().all().all()
    # w has no path (not even in the network): the baseline, exactly, with a zero-width interval
    w = levels[levels.feature == "w"]
    assert (w.p_do == 0.3).all() and (w.p_do_low == 0.3).all() and (w.p_do_high == 0.3).all()
    assert (w.effect_vs_first == 0).all() and (w.effect_low == 0).all() and (w.effect_high == 0).all()
    assert w.p_observed.isna().all() and not w.path_to_outcome.any()
    f = fx.set_index("feature")
    assert list(fx.columns) == ["feature", "effect", "effect_low", "effect_high", "path_to_outcome"]
    ref = do_ref(codes)
    assert f.loc["x", "effect"] == pytest.approx(ref.max() - ref.min(), abs=1e-9)
    assert np.isnan(f.loc["x", "effect_low"]) and np.isnan(f.loc["x", "effect_high"])
    assert f.loc["w", "effect"] == 0.0 and f.loc["w", "effect_low"] == 0.0 and f.loc["w", "effect_high"] == 0.0
    assert bool(f.loc["x", "path_to_outcome"]) and not bool(f.loc["w", "path_to_outcome"])


def test_bn_bootstrap_intervals_recomputed_from_the_same_resamples(bn):
    codes, states, net = bn
    n_boot, ci, seed = 12, 0.8, 4
    levels, fx = do_effects(net, ["x"], states, codes, baseline=0.3, n_boot=n_boot, ci=ci, seed=seed)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        wt = resample_weights(len(codes), rng)
        boots.append(do_ref(codes.iloc[np.repeat(np.arange(len(codes)), wt.astype(int))]))
    b = np.array(boots)
    q = [0.1, 0.9]
    for lvl in range(3):
        row = levels.iloc[lvl]
        np.testing.assert_allclose([row.p_do_low, row.p_do_high], np.quantile(b[:, lvl], q), atol=1e-9)
        np.testing.assert_allclose([row.effect_low, row.effect_high], np.quantile(b[:, lvl] - b[:, 0], q), atol=1e-9)
        assert row.estimate_in_interval == bool(row.p_do_low - 1e-12 <= row.p_do <= row.p_do_high + 1e-12)
    span = b.max(axis=1) - b.min(axis=1)
    f = fx.set_index("feature").loc["x"]
    np.testing.assert_allclose([f.effect_low, f.effect_high], np.quantile(span, q), atol=1e-9)


def test_no_features_gives_empty_tables_with_the_columns(bn):
    codes, states, net = bn
    levels, fx = do_effects(net, [], states, codes, baseline=0.3)
    assert levels.empty and list(levels.columns) == LEVEL_COLUMNS
    assert fx.empty and list(fx.columns) == ["feature", "effect", "effect_low", "effect_high", "path_to_outcome"]


def test_intervention_result_next_to_the_observational_marginal(bn):
    codes, states, net = bn
    base = np.array([0.6, 0.4])
    out = intervention_result(net, {"x": 2}, base)
    assert list(out.columns) == ["outcome", "state", "p_do", "p_observed", "change"]
    assert list(out.state) == ["y0", "y1"] and (out.outcome == "y").all()
    np.testing.assert_allclose(out.p_do[1], do_ref(codes)[2], atol=1e-9)
    np.testing.assert_allclose(out.p_do.sum(), 1.0, atol=1e-9)
    np.testing.assert_allclose(out.change, out.p_do - base, atol=1e-12)


# -- the g-formula path: a linear-logistic toy where the answers are the model's own ---------------
def _gf_data(n=400, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    x = 0.8 * z + rng.standard_normal(n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.2 + 1.0 * x + 0.5 * z)))).astype(float)
    return pd.DataFrame({"z": z, "x": x, "label": y})


KINDS = {"z": "numeric", "x": "numeric", "label": "numeric"}


def _gf_states(df):
    x = VariableStates("x", "bins", ["low", "mid", "high"], edges=list(np.quantile(df.x, [1 / 3, 2 / 3])),
                       counts=[5, 6, 7], support=[float(df.x.min()), float(df.x.max())])
    z = VariableStates("z", "bins", ["low", "high"], edges=[float(np.median(df.z))], counts=[1, 2],
                       support=[float(df.z.min()), float(df.z.max())])
    y = VariableStates("label", "values", ["0", "1"], values=[0.0, 1.0], counts=[1, 1])
    return {"x": x, "z": z, "label": y}


def test_gformula_answers_and_intervals_from_the_models_own_resamples():
    df = _gf_data()
    st = _gf_states(df)
    codes = pd.DataFrame({c: st[c].transform(df[c]) for c in df})
    model = DoModel(df, KINDS, [("z", "x"), ("z", "label"), ("x", "label")], "label", 1.0, st, seed=0)
    n_boot, ci, seed = 6, 0.9, 3
    levels, fx = do_effects(None, ["x"], st, codes, baseline=0.5, n_boot=n_boot, ci=ci, seed=seed, model=model)
    vals = model.values("x")
    # each state stands for the training median inside its bin
    want_vals = [float(np.median(df.x[codes.x == i])) for i in range(3)]
    np.testing.assert_allclose(vals, want_vals, rtol=1e-12)
    p = np.array([model.gf.mean_outcome({"x": v}) for v in vals])
    np.testing.assert_allclose(levels.p_do, p, atol=1e-12)
    np.testing.assert_allclose(levels.effect_vs_first, p - p[0], atol=1e-12)
    assert list(levels.do_value) == [repr(float(v)) for v in vals]
    assert p[2] - p[0] > 0.3  # x raises the outcome
    rng = np.random.default_rng(seed)
    b = np.array([model.levels("x", model.resample(k, resample_weights(len(df), rng))) for k in range(n_boot)])
    q = [0.05, 0.95]
    for lvl in range(3):
        row = levels.iloc[lvl]
        np.testing.assert_allclose([row.p_do_low, row.p_do_high], np.quantile(b[:, lvl], q), atol=1e-12)
        np.testing.assert_allclose([row.effect_low, row.effect_high], np.quantile(b[:, lvl] - b[:, 0], q),
                                   atol=1e-12)
    f = fx.set_index("feature").loc["x"]
    assert f.effect == pytest.approx(p.max() - p.min(), abs=1e-12) and bool(f.path_to_outcome)
    np.testing.assert_allclose([f.effect_low, f.effect_high], np.quantile(b.max(axis=1) - b.min(axis=1), q),
                               atol=1e-12)
    assert f.effect_low > 0.1
    # without a bootstrap: no interval for a feature with a path
    lv0, fx0 = do_effects(None, ["x"], st, codes, baseline=0.5, model=model)
    assert lv0[["p_do_low", "p_do_high", "effect_low", "effect_high"]].isna().all().all()
    assert np.isnan(fx0.effect_low.iloc[0]) and np.isnan(fx0.effect_high.iloc[0])


def test_gformula_without_a_path_is_the_baseline_and_the_model_round_trips():
    df = _gf_data()
    st = _gf_states(df)
    codes = pd.DataFrame({c: st[c].transform(df[c]) for c in df})
    model = DoModel(df, KINDS, [("z", "x"), ("z", "label")], "label", 1.0, st, seed=0)
    assert not model.has_path("x") and model.has_path("z")
    assert model.training_values("x") is None
    np.testing.assert_array_equal(model.training_values("z"), df.z.to_numpy(float))
    levels, fx = do_effects(None, ["x"], st, codes, baseline=0.25, n_boot=3, model=model)
    assert (levels.p_do == 0.25).all() and (levels.p_do_low == 0.25).all() and (levels.p_do_high == 0.25).all()
    assert (levels.effect_low == 0.0).all() and (levels.effect_high == 0.0).all()
    f = fx.set_index("feature").loc["x"]
    assert f.effect == 0.0 and f.effect_low == 0.0 and f.effect_high == 0.0 and not bool(f.path_to_outcome)
    back = DoModel.from_dict(model.to_dict(), st)
    assert back.values("z") == model.values("z") and back.has_path("z") and not back.has_path("x")
    np.testing.assert_allclose(back.levels("z"), model.levels("z"), atol=0)


def test_resample_takes_bootstrap_graph_b_with_the_required_edges_or_falls_back_on_a_cycle():
    df = _gf_data(200)
    st = _gf_states(df)
    graphs = [
        [("x", "z"), ("x", "label"), ("z", "label")],  # holds the reverse of the required z -> x
        [("z", "label")],                              # x off the outcome's ancestry
        [("x", "label"), ("label", "x")],              # a cycle: the learned graph instead
    ]
    model = DoModel(df, KINDS, [("z", "label")], "label", 1.0, st, seed=10, boot_graphs=graphs, required=[("z", "x")])
    w = np.arange(len(df)) % 3
    g0 = model.resample(0, w)
    # the reverse of the required edge is dropped, the required edge added: z -> x -> label, z -> label
    assert g0.parents == {"z": [], "x": ["z"], "label": ["z", "x"]}
    assert g0.seed == 11 and g0.has_path("x")
    np.testing.assert_array_equal(g0.weights, w[w > 0])  # the resample's counts weight its rows (zeros dropped)
    g1 = model.resample(1, w)
    assert g1.parents == {"z": [], "label": ["z"]} and g1.seed == 12 and not g1.has_path("x")
    g2 = model.resample(2, w)  # graph 2 + required has a cycle x -> label -> x: the learned graph
    assert g2.parents == {"z": [], "label": ["z"]} and g2.seed == 13
    g3 = model.resample(3, w)  # cyclic over the graphs: graph 0 again, its own seed
    assert g3.parents == g0.parents and g3.seed == 14
    # without bootstrap graphs: the learned graph
    plain = DoModel(df, KINDS, [("z", "x"), ("x", "label")], "label", 1.0, st, seed=2)
    gp = plain.resample(4, w)
    assert gp.parents == {"z": [], "x": ["z"], "label": ["x"]} and gp.seed == 7


def test_gformula_with_the_network_and_resamples_without_a_path():
    """The g-formula path with a fitted network: ``p_observed`` is the network's P(y | x) (Bayes'
    rule on K2 counts, as for the bn path). With the structure's bootstrap graphs, a resample
    whose graph has no path from x counts every level at its own baseline: effect 0 (the level
    differences and the spread are 0 there), and it is left out of the P(y | do) interval."""
    df = _gf_data(300)
    st = _gf_states(df)
    codes = pd.DataFrame({c: st[c].transform(df[c]) for c in df})
    edges = [("z", "x"), ("z", "label"), ("x", "label")]
    net = FittedNetwork.fit(["z", "x", "label"], edges, "label", codes, st)
    graphs = [edges, [("z", "label")]]  # resamples 0, 2, 4: a path from x; 1, 3, 5: none
    model = DoModel(df, KINDS, edges, "label", 1.0, st, seed=0, boot_graphs=graphs)
    n_boot, ci, seed = 6, 0.8, 5
    levels, fx = do_effects(net, ["x"], st, codes, baseline=0.5, n_boot=n_boot, ci=ci, seed=seed, model=model)
    np.testing.assert_allclose(levels.p_observed, obs_ref(codes.rename(columns={"label": "y"})), atol=1e-9)
    rng = np.random.default_rng(seed)
    rows, has = [], []
    for k in range(n_boot):
        gb = model.resample(k, resample_weights(len(df), rng))
        has.append(gb.has_path("x"))
        rows.append(model.levels("x", gb) if has[-1] else np.zeros(3))
    b, has = np.array(rows), np.array(has)
    assert has.tolist() == [True, False] * 3
    q = [0.1, 0.9]
    for lvl in range(3):
        row = levels.iloc[lvl]
        np.testing.assert_allclose([row.effect_low, row.effect_high], np.quantile(b[:, lvl] - b[:, 0], q), atol=1e-12)
        np.testing.assert_allclose([row.p_do_low, row.p_do_high], np.quantile(b[has, lvl], q), atol=1e-12)
        assert row.estimate_in_interval is (row.p_do_low - 1e-12 <= row.p_do <= row.p_do_high + 1e-12)
    assert levels.estimate_in_interval.map(type).eq(bool).all()
    f = fx.set_index("feature").loc["x"]
    np.testing.assert_allclose([f.effect_low, f.effect_high], np.quantile(b.max(axis=1) - b.min(axis=1), q),
                               atol=1e-12)
    assert f.effect_low == 0.0 < f.effect_high  # half the resamples say "no effect"


def test_gformula_on_a_categorical_feature_states_each_level_as_text():
    """A categorical cause: each state stands for its level (do_value is the level's text, not a
    number), and P(y | do(g = level)) is the g-formula's mean outcome at that level."""
    rng = np.random.default_rng(3)
    n = 300
    g = rng.choice(["a", "b", "c"], n)
    y = (rng.uniform(size=n) < np.select([g == "a", g == "b"], [0.2, 0.5], 0.8)).astype(float)
    df = pd.DataFrame({"g": g, "label": y})
    st = {"g": VariableStates("g", "levels", ["a", "b", "c"], values=["a", "b", "c"], counts=[1, 1, 1]),
          "label": VariableStates("label", "values", ["0", "1"], values=[0.0, 1.0], counts=[1, 1])}
    codes = pd.DataFrame({c: st[c].transform(df[c]) for c in df})
    model = DoModel(df, {"g": "categorical", "label": "numeric"}, [("g", "label")], "label", 1.0, st, seed=0)
    levels, _ = do_effects(None, ["g"], st, codes, baseline=0.5, model=model)
    assert list(levels.do_value) == ["a", "b", "c"]
    np.testing.assert_allclose(levels.p_do, [model.gf.mean_outcome({"g": v}) for v in "abc"], atol=1e-12)
    # no confounder: close to P(y | g) (the outcome model is a fit, not a table of means)
    np.testing.assert_allclose(levels.p_do, [y[g == v].mean() for v in "abc"], atol=0.01)


class _ShiftedResamples(DoModel):
    """The real g-formula model, with the answers of every resample moved by a fixed amount per
    level from the point answers (0.5 at each level): intervals that end exactly where the
    containment check's 1e-12 slack starts or stops counting."""

    SHIFT = np.array([1.5e-12, 1e-12, -1.5e-12, -1e-12])

    def levels(self, var, gf=None):
        return np.full(4, 0.5) if gf is None else 0.5 + self.SHIFT


def test_estimate_in_interval_allows_1e12_of_rounding_inclusive():
    df = _gf_data(200)
    st = _gf_states(df)
    st["x"] = VariableStates("x", "bins", ["q1", "q2", "q3", "q4"], edges=list(np.quantile(df.x, [0.25, 0.5, 0.75])),
                             counts=[1, 1, 1, 1], support=[float(df.x.min()), float(df.x.max())])
    codes = pd.DataFrame({c: st[c].transform(df[c]) for c in df})
    model = _ShiftedResamples(df, KINDS, [("z", "x"), ("x", "label")], "label", 1.0, st, seed=0)
    levels, _ = do_effects(None, ["x"], st, codes, baseline=0.5, n_boot=3, model=model)
    assert (levels.p_do == 0.5).all()
    np.testing.assert_array_equal(levels.p_do_low, 0.5 + _ShiftedResamples.SHIFT)
    # 1.5e-12 above or below: outside; exactly 1e-12 above or below: inside (the slack is inclusive)
    assert levels.estimate_in_interval.tolist() == [False, True, False, True]
    assert (0.5 + 1e-12) - 1e-12 == 0.5 == (0.5 - 1e-12) + 1e-12  # the boundary is exact in floating point


class _FixedNetwork:
    """The network interface do_effects reads (bn path), answering 0.5 at every level, and each
    refitted resample 0.5 + SHIFT[level]: the boundary of the containment check. A stand-in for
    the network's numbers only; the rule under test is do_effects' own."""

    positive_state = 1

    def __init__(self, states, shifted=False):
        self.states, self.variables, self.shifted = states, list(states), shifted

    def has_path(self, var):
        return True

    def ancestral(self):
        return self

    def copy_structure(self):
        return _FixedNetwork(self.states, shifted=True)

    def refit(self, sample):
        return self

    def query_outcome(self, observations):
        return np.array([0.5, 0.5])

    def do_outcome(self, do):
        (_, lvl), = do.items()
        p = 0.5 + (_ShiftedResamples.SHIFT[lvl] if self.shifted else 0.0)
        return np.array([1 - p, p])


def test_bn_estimate_in_interval_allows_1e12_of_rounding_inclusive():
    st = {"x": VariableStates("x", "values", ["a", "b", "c", "d"], values=[0, 1, 2, 3], counts=[1, 1, 1, 1]),
          "y": VariableStates("y", "values", ["0", "1"], values=[0, 1], counts=[1, 1])}
    codes = pd.DataFrame({"x": [0, 1, 2, 3] * 5, "y": [0, 1] * 10})
    levels, _ = do_effects(_FixedNetwork(st), ["x"], st, codes, baseline=0.5, n_boot=3)
    assert (levels.p_do == 0.5).all()
    np.testing.assert_array_equal(levels.p_do_low, 0.5 + _ShiftedResamples.SHIFT)
    assert levels.estimate_in_interval.tolist() == [False, True, False, True]
