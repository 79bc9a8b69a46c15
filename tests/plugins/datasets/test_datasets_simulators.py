"""Simulators: seeded SCMs whose DAG, interventional effects and contributions are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.causal import CausalGraph
from whyrec.errors import DataError
from whyrec_datasets.simulators import SimEcommerce, SimFinance, SimVideo

SIMS = [SimEcommerce, SimVideo, SimFinance]


@pytest.fixture(scope="module")
def loaded():
    return {cls.name: cls(n_users=400, n_items=200, n_rows=12000, seed=3, mc_pairs=100000).load() for cls in SIMS}


@pytest.mark.parametrize("cls", SIMS)
def test_seeded_and_deterministic(cls):
    a = cls(n_users=50, n_items=30, n_rows=600, seed=1, mc_pairs=2000).load()
    b = cls(n_users=50, n_items=30, n_rows=600, seed=1, mc_pairs=2000).load()
    c = cls(n_users=50, n_items=30, n_rows=600, seed=2, mc_pairs=2000).load()
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    assert a.data_hash() == b.data_hash() != c.data_hash()
    assert a.truth["interventions"] == b.truth["interventions"]
    assert len(a.interactions) == 600 and not a.interactions.duplicated(["user", "item"]).any()


@pytest.mark.parametrize("name", ["sim-ecommerce", "sim-video", "sim-finance"])
def test_truth_graph_covers_the_features(loaded, name):
    data = loaded[name]
    g: CausalGraph = data.truth["graph"]
    assert g.nodes == data.schema.names + ["label"]
    assert g.is_acyclic() and data.truth["outcome"] == "label"
    assert {e.source for e in g.edges} | {e.target for e in g.edges} <= set(g.nodes)
    assert len(g.edges) <= 2 * len(g.nodes)  # sparse
    assert g.parents("label")  # the outcome has causes
    assert set(data.truth["interventions"]) == set(data.schema.actionable())
    assert CausalGraph.from_dict(g.to_dict()).edge_set() == g.edge_set()


def test_actionable_features():
    assert SimEcommerce().schema.actionable() == ["price", "discount"]
    assert SimVideo().schema.actionable() == ["duration"]
    assert SimFinance().schema.actionable() == ["fees"]


@pytest.mark.parametrize("name", ["sim-ecommerce", "sim-finance"])
def test_contributions_add_up_to_the_true_logit(loaded, name):
    data = loaded[name]
    c = data.truth["contributions"]
    assert list(c.columns) == data.schema.names and c.index.equals(data.train.index)
    total = data.truth["base_value"] + c.sum(axis=1).to_numpy()
    assert np.allclose(total, data.truth["logit_train"], atol=1e-9)
    assert np.allclose(c.mean().to_numpy(), 0, atol=1e-9)
    parents = set(data.truth["graph"].parents("label"))
    for f in data.schema.names:  # only the outcome's parents contribute
        assert (c[f].abs().max() > 0) == (f in parents), f


def test_contributions_match_the_structural_equation():
    data = SimFinance(n_users=100, n_items=50, n_rows=2000, mc_pairs=2000).load()
    X = data.features(data.train)
    c = data.truth["contributions"]
    fees_term = -1.5 * X["fees"]
    assert np.allclose(c["fees"], fees_term - fees_term.mean())
    gap = np.maximum(0, X["risk"] - X["risk_tolerance"])
    assert np.allclose(X["risk_gap"], gap)
    assert np.allclose(c["risk_gap"], -0.5 * (gap - gap.mean()))


def test_video_outcome_is_not_additive(loaded):
    assert loaded["sim-video"].truth["contributions"] is None


def test_interventional_effects_have_the_designed_direction(loaded):
    iv = {n: d.truth["interventions"] for n, d in loaded.items()}
    for name, feat, sign in [("sim-ecommerce", "price", -1), ("sim-ecommerce", "discount", 1),
                             ("sim-video", "duration", -1), ("sim-finance", "fees", -1)]:
        y = np.array(iv[name][feat]["expected_outcome"])
        assert np.all(np.sign(np.diff(y)) == sign), (name, feat)
        assert max(iv[name][feat]["mc_se"]) < 0.002


def test_finance_fees_effect_equals_the_outcome_equation():
    # fees has no descendant but the label, so E[y | do(fees=v)] is the outcome equation averaged
    # over every (user, item) pair of a large population.
    sim = SimFinance(n_users=2000, n_items=2000, n_rows=1000, seed=5, mc_pairs=400000)
    data = sim.load()
    U, I = data.users, data.items
    gap = np.maximum(0, I["risk"].to_numpy()[None, :] - U["risk_tolerance"].to_numpy()[:, None])
    iv = data.truth["interventions"]["fees"]
    for v, expected in zip(iv["values"], iv["expected_outcome"]):
        logit = (-1.2 + 0.35 * (I["expected_return"].to_numpy()[None, :] - 4) - 0.5 * gap - 1.5 * (v - 0.6)
                 + 0.06 * (U["years_investing"].to_numpy()[:, None] - 10))
        assert np.mean(1 / (1 + np.exp(-logit))) == pytest.approx(expected, abs=0.01)


def test_ecommerce_price_effect_is_confounded_in_the_logs():
    data = SimEcommerce(seed=0).load()
    X = data.features(data.train)
    naive = np.polyfit(X["price"], data.train["label"], 1)[0]
    iv = data.truth["interventions"]["price"]
    causal = np.polyfit(iv["values"], iv["expected_outcome"], 1)[0]
    # better-rated products cost more and sell more: the logs understate the price effect
    assert causal < 2 * naive < 0
    items = data.items
    assert np.polyfit(items["rating"], items["price"], 1)[0] == pytest.approx(12, rel=0.1)


def test_features_for_any_pair_are_deterministic(loaded):
    data = loaded["sim-video"]
    pairs = pd.DataFrame({"user": [0, 0, 399, 5], "item": [0, 199, 7, 7]})
    a, b = data.features(pairs), data.features(pairs)
    pd.testing.assert_frame_equal(a, b)
    assert a["genre_match"].between(0, 1).all()
    assert list(a.columns) == ["watch_history", "recency", "duration", "genre_match"]
    assert data.schema["genre_match"].field == "cross" and data.schema["watch_history"].field == "history"
    rec = data.candidates(0)
    assert len(rec) == 200 - len(data.seen(0))


def test_bad_sizes():
    with pytest.raises(DataError, match="n_rows=1000 exceeds n_users \\* n_items = 100"):
        SimEcommerce(n_users=10, n_items=10, n_rows=1000)
    with pytest.raises(DataError, match="n_users=0"):
        SimVideo(n_users=0)
    data = SimEcommerce(n_users=20, n_items=10, n_rows=100, mc_pairs=2000).load()
    with pytest.raises(DataError, match="item ids must be integers 0..9"):
        data.features(pd.DataFrame({"user": [1], "item": [10]}))


def test_reasons():
    e = SimEcommerce(n_users=20, n_items=10, n_rows=100, mc_pairs=2000).load()
    assert e.describe_feature("price", 23.456) == "price $23.46"
    assert e.describe_feature("discount", 12.2) == "12% off"
    v = SimVideo(n_users=20, n_items=10, n_rows=100, mc_pairs=2000).load()
    assert v.describe_feature("genre_match", 0.42) == "its genre is 42% of your taste"
    f = SimFinance(n_users=20, n_items=10, n_rows=100, mc_pairs=2000).load()
    assert f.describe_feature("risk_gap", 2.0) == "risk 2.0 points above your tolerance"
