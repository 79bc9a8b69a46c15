"""The logistic model: a model that scores feature rows, saved as JSON, with an optional extra."""
from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError, UnsupportedError
from whyrec.plugins import resolve_factory
from whyrec_example_plugin.logistic import LogisticModel

from example_data import PRICE, QUALITY, make_data


@pytest.fixture(scope="module")
def fitted(data) -> LogisticModel:
    model = LogisticModel()
    model.fit(data)
    return model


def test_each_registered_model_declares_its_capabilities(host):
    """`provides` at registration is the class's `capabilities` (what the core matches explainers by)."""
    for name in host.names("models"):
        comp = host.get("models", name)
        assert comp.plugin == "example"
        assert comp.provides == frozenset(resolve_factory(comp.factory).capabilities), name
    assert host.get("models", "logistic").provides == {"additive"}


def test_fits_the_numeric_features_and_recovers_the_planted_effects(host, data):
    model = host.create("models", "logistic", {"epochs": 400})
    info = model.fit(data)
    assert model.feature_names == ["age", "price", "quality"]  # the categorical feature is left out
    assert info["features"] == 3 and info["train_logloss"] < np.log(2)
    w = dict(zip(model.feature_names, model.weights * 1.0))
    assert w["quality"] > 0.5 and w["price"] < -0.3 and abs(w["age"]) < 0.3
    # standardised weights: the planted slopes times the features' spread
    std = dict(zip(model.feature_names, model.std))
    assert w["quality"] / std["quality"] == pytest.approx(QUALITY, rel=0.35)
    assert w["price"] / std["price"] == pytest.approx(PRICE / 20, rel=0.35)
    assert model.evaluate(data)["auc"] > 0.7


def test_scores_feature_rows_additively(fitted, data):
    rows = data.test.head(25)
    X = data.features(rows)
    margin = fitted.score_features(X[fitted.feature_names])
    np.testing.assert_allclose(fitted.score(rows), margin)  # score(rows) = score_features(features(rows))
    np.testing.assert_allclose(fitted.bias + fitted.terms(X).sum(axis=1), margin)
    # a feature at its training mean (or missing) adds nothing
    at_mean = X.assign(quality=np.nan)
    np.testing.assert_allclose(fitted.terms(at_mean)["quality"], 0.0)
    # the margin moves with quality exactly by its weight
    up = X.assign(quality=X["quality"] + fitted.std[2])
    np.testing.assert_allclose(fitted.score_features(up) - margin, fitted.weights[2])


def test_recommend_ranks_unseen_items_by_score(fitted, data):
    recs = fitted.recommend(3, 5)
    assert list(recs["rank"]) == [1, 2, 3, 4, 5]
    assert recs["score"].is_monotonic_decreasing
    assert not set(recs["item"]) & data.seen(3)
    best = data.candidates(3)[np.argmax(fitted.score(data.user_pairs(3, data.candidates(3))))]
    assert recs["item"].iloc[0] == best


def test_saved_as_json_and_reloaded_to_the_same_scores(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    weights = json.loads((tmp_path / "m" / "weights.json").read_text())
    assert weights["features"] == ["age", "price", "quality"] and len(weights["weights"]) == 3
    loaded = LogisticModel.load(tmp_path / "m", data)
    rows = data.test.head(30)
    np.testing.assert_allclose(loaded.score(rows), fitted.score(rows))
    assert loaded.params == fitted.params


def test_a_pickle_in_place_of_the_weights_is_refused(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "weights.json").write_bytes(pickle.dumps({"bias": 0.0}))
    with pytest.raises(DataError, match="not a JSON logistic model .*never loaded"):
        LogisticModel.load(tmp_path / "m", data)


def test_loading_on_data_without_a_feature_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    other = make_data()
    other.schema = other.schema.select(["age", "price", "category"])  # no quality
    with pytest.raises(DataError, match=r"missing features \['quality'\]"):
        LogisticModel.load(tmp_path / "m", other)


def test_bad_parameters_and_data_are_one_line_errors(data):
    with pytest.raises(DataError, match="solver='newton' must be 'gd'"):
        LogisticModel(solver="newton")
    with pytest.raises(DataError, match=r"features \['category'\] are not numeric features"):
        LogisticModel(features=["category"]).fit(data)
    with pytest.raises(DataError, match="not fitted or loaded"):
        LogisticModel().score_features(data.features(data.test.head(2)))


def test_lbfgs_needs_the_fast_extra_and_names_it(monkeypatch, host):
    for mod in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "scipy", None)  # as if scipy were not installed
    with pytest.raises(UnsupportedError) as err:
        host.create("models", "logistic", {"solver": "lbfgs"})
    msg = str(err.value)
    assert msg == ("logistic solver = \"lbfgs\" needs scipy, which is not installed; "
                   "install the extra: pip install 'whyrec-example-plugin[fast]'")
    assert "\n" not in msg
    host.create("models", "logistic", {"solver": "gd"})  # the default needs no extra


def test_lbfgs_with_the_extra_agrees_with_gradient_descent(data, fitted):
    pytest.importorskip("scipy")
    model = LogisticModel(solver="lbfgs")
    model.fit(data)
    np.testing.assert_allclose(model.weights, fitted.weights, atol=0.05)


def test_model_agnostic_explainers_explain_it(data, fitted):
    """What scoring feature rows buys: exact-field-shapley (whyrec-shap) explains it unchanged."""
    pytest.importorskip("whyrec_shap")
    from whyrec_shap.exact import ExactFieldShapley

    recs = fitted.recommend(5, 3)
    expl = ExactFieldShapley(background_size=20).explain(fitted, data, recs)
    assert expl.max_additivity_error < 1e-6
    np.testing.assert_allclose(expl.pairs["output_value"], recs["score"])
    assert set(expl.field_attributions.columns) == {"user", "item"}
