"""The random structural causal model generator (whyrec_datasets.scm) and the `random-scm` dataset."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError
from whyrec_datasets.scm import PARENT_LEVELS, SCM, Outcome, RandomSCMDataset, Var, random_scm


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("n_nodes,seed,hidden", [(8, 0, 0), (10, 1, 1), (10, 2, 2), (15, 3, 1), (20, 4, 0)])
def test_random_dags_are_acyclic_and_respect_levels(n_nodes, seed, hidden):
    scm = random_scm(n_nodes, seed, n_hidden=hidden)
    assert len(scm.observed) == n_nodes - 1 and len(scm.hidden) == hidden
    g = nx.DiGraph([(s, t) for s, t, _ in scm.all_edges])
    assert nx.is_directed_acyclic_graph(g)
    for v in scm.variables:
        for p in v.parents:  # a user variable depends on users only, an item variable on items only
            assert scm.by_name[p].level in PARENT_LEVELS[v.level]
    assert len(scm.outcome.parents) >= 2
    # every actionable variable reaches the outcome and is an item or interaction variable
    for a in scm.actionable:
        assert nx.has_path(g, a, "label") and scm.by_name[a].level != "user"
    kinds = {v.kind for v in scm.variables if not v.hidden}
    assert len(kinds) >= 2 or n_nodes < 10  # mixed variables


def test_reproducible_under_seed_and_different_across_seeds():
    a, b, c = random_scm(10, 7), random_scm(10, 7), random_scm(10, 8)
    assert a.describe() == b.describe()
    assert a.describe() != c.describe()
    pd.testing.assert_frame_equal(a.sample(400), b.sample(400))
    assert not a.sample(400).equals(a.sample(400, seed=99))
    d1 = RandomSCMDataset(n_nodes=8, seed=3, n_rows=600, mc_pairs=2000).load()
    d2 = RandomSCMDataset(n_nodes=8, seed=3, n_rows=600, mc_pairs=2000).load()
    pd.testing.assert_frame_equal(d1.train, d2.train)
    assert d1.truth["interventions"] == d2.truth["interventions"]


def test_names_do_not_reveal_the_causal_order():
    """Column order x0, x1, ... must not be a topological order (it would leak the answer to any
    learner that breaks ties by column)."""
    leaked = 0
    for seed in range(10):
        scm = random_scm(10, seed)
        topo = [v.name for v in scm.variables if not v.hidden]
        leaked += topo == sorted(topo, key=lambda n: int(n[1:]))
    assert leaked <= 1


def one_edge(w=1.3, bias=-0.4, b=0.2):
    """x (binary item variable) -> label: E[label | do(x = v)] = sigmoid(bias + w (2v - 1))."""
    x = Var("x", "item", "binary", bias=b, actionable=True)
    return SCM([x], Outcome("logistic", {"x": w}, bias), seed=0)


def test_do_effects_match_the_hand_derived_values_exactly():
    scm = one_edge()
    res = scm.do_effects("x", [0.0, 1.0], n_mc=5000)
    assert res["expected_outcome"] == pytest.approx([sigmoid(-0.4 - 1.3), sigmoid(-0.4 + 1.3)], abs=1e-12)
    assert res["mc_se"] == pytest.approx([0, 0], abs=1e-12)  # P(label) is deterministic given do(x)


def test_do_effect_through_a_mediator_matches_the_integral_within_mc_error():
    """x (continuous, unit 5 + 2 z) -> m (continuous, z_m = 0.8 z_x + N(0,1)) -> label
    (sigmoid(-0.2 + 0.9 z_m)). E[label | do(x = v)] = E[sigmoid(-0.2 + 0.9 (0.8 (v - 5)/2 + e))],
    e ~ N(0, 1): Gauss-Hermite quadrature."""
    x = Var("x", "item", "continuous", offset=5.0, scale=2.0, actionable=True)
    m = Var("m", "context", "continuous", {"x": 0.8}, offset=-1.0, scale=10.0)
    scm = SCM([x, m], Outcome("logistic", {"m": 0.9}, -0.2), seed=1)
    values = [3.0, 5.0, 9.0]
    res = scm.do_effects("x", values, n_mc=100_000)
    t, wt = np.polynomial.hermite_e.hermegauss(60)
    for v, got, se in zip(values, res["expected_outcome"], res["mc_se"]):
        exact = float(np.sum(wt * sigmoid(-0.2 + 0.9 * (0.8 * (v - 5) / 2 + t))) / np.sqrt(2 * np.pi))
        assert abs(got - exact) < 4 * se + 1e-4, (v, got, exact, se)
    assert res["expected_outcome"][2] > res["expected_outcome"][0] + 0.1  # positive effect


def test_hidden_confounder_makes_conditioning_differ_from_intervening():
    """h (hidden) -> x and h -> label, no x -> label edge: do(x) changes nothing (exactly, same
    noise for both values) while the observed rates of label differ by x."""
    h = Var("h", "item", "continuous", hidden=True)
    x = Var("x", "item", "binary", {"h": 1.5}, actionable=True)
    scm = SCM([h, x], Outcome("logistic", {"h": 1.2}, 0.0), seed=2)
    res = scm.do_effects("x", [0.0, 1.0], n_mc=40_000)
    assert res["expected_outcome"][0] == pytest.approx(res["expected_outcome"][1], abs=1e-12)
    df = scm.sample(20_000)
    assert "h" not in df.columns
    obs = df.groupby("x")["label"].mean()
    assert obs.loc[1.0] - obs.loc[0.0] > 0.2
    assert scm.true_edges == []  # no edge between observed variables


def test_hidden_confounders_are_not_observed_anywhere():
    scm = random_scm(10, 5, n_hidden=2)
    assert scm.hidden == ["h0", "h1"]
    for h in scm.hidden:
        kids = [v.name for v in scm.variables if h in v.parents] + (["label"] if h in scm.outcome.parents else [])
        assert len(kids) >= 2  # a confounder: at least two observed children
    df = scm.sample(300)
    assert not set(scm.hidden) & set(df.columns)
    assert set(scm.hidden) <= set(scm.sample(300, hidden=True).columns)
    data = RandomSCMDataset(n_nodes=10, seed=5, n_hidden=2, n_rows=500, mc_pairs=2000).load()
    truth = data.truth["graph"]
    assert not set(scm.hidden) & set(truth.nodes)
    assert not any(e.source in scm.hidden or e.target in scm.hidden for e in truth.edges)
    assert not set(scm.hidden) & set(data.schema.names)
    for table in (data.train, data.test, data.users, data.items, data.features(data.train)):
        assert not set(scm.hidden) & set(table.columns)
    assert data.truth["hidden"] == scm.hidden


def test_dataset_truth_has_the_learner_checks_format():
    data = RandomSCMDataset(n_nodes=10, seed=11, n_rows=800, mc_pairs=3000).load()
    scm = data.truth["scm"]
    assert set(data.truth["graph"].nodes) == set(data.schema.names) | {"label"}
    assert data.truth["outcome"] == "label"
    actionable = data.schema.actionable()
    assert actionable and set(data.truth["interventions"]) == set(actionable)
    for name, spec in data.truth["interventions"].items():
        assert len(spec["values"]) == len(spec["expected_outcome"]) >= 2
        assert all(0 < p < 1 for p in spec["expected_outcome"])
    assert scm["outcome"] == "logistic"
    # features of logged pairs come back with their own context (by the pair when the row lacks it)
    X = data.features(data.train[["user", "item"]])
    ctx = [f.name for f in data.schema if f.field in ("context", "cross")]
    for c in ctx:
        np.testing.assert_array_equal(X[c].to_numpy(), data.train[c].to_numpy())
    # user / item variables are constant within a user / an item
    for f in data.schema:
        if f.field in ("user", "history"):
            assert X.groupby(data.train["user"])[f.name].nunique().max() == 1
        if f.field == "item":
            assert X.groupby(data.train["item"])[f.name].nunique().max() == 1


def test_rating_outcome():
    data = RandomSCMDataset(n_nodes=8, seed=2, n_rows=3000, outcome="rating", mc_pairs=2000).load()
    r = data.train["rating"]
    assert set(r.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0} and r.nunique() >= 3
    assert ((r >= 4).astype(int) == data.train["label"]).all()


def test_refuses_bad_parameters():
    with pytest.raises(DataError, match="n_nodes"):
        random_scm(2, 0)
    with pytest.raises(DataError, match="outcome"):
        random_scm(10, 0, outcome="poisson")
    with pytest.raises(ValueError, match="cannot depend"):
        SCM([Var("i", "item", "continuous"), Var("u", "user", "continuous", {"i": 1.0})], Outcome())
    with pytest.raises(ValueError, match="topological order"):
        SCM([Var("a", "item", "continuous", {"b": 1.0}), Var("b", "item", "continuous")], Outcome())
    with pytest.raises(DataError, match="binary"):
        one_edge().do_effects("x", [0.5])


def test_registered_as_a_dataset():
    import whyrec_datasets

    assert "random-scm" in whyrec_datasets.DATASETS
    from whyrec.plugins import PluginHost

    host = PluginHost()
    host.add(whyrec_datasets, "whyrec-datasets")
    ds = host.create("datasets", "random-scm", {"n_nodes": 8, "seed": 1, "n_rows": 300, "mc_pairs": 2000})
    data = ds.load()
    assert data.name == "random-scm" and len(data.schema.names) == 7
