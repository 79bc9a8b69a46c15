"""The lightgbm model: training, raw-margin scoring, top-k, persistence and bad input."""
from __future__ import annotations

import dataclasses
import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import whyrec_lightgbm
from whyrec import FeatureSchema
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.plugins import PluginHost
from whyrec_lightgbm.model import LightGBMModel

import lgb_toy_data as toy
from lgb_toy_data import SMALL


def test_fit_reports_best_iteration_and_valid_loss(lgb_model):
    info = lgb_model.train_info
    assert 1 <= info["best_iteration"] <= SMALL["n_estimators"]
    assert info["n_trees"] == info["best_iteration"]  # only the trees that score are kept
    assert 0 < info["valid_binary_logloss"] < np.log(2) + 0.2
    assert info["train_rows"] + info["valid_rows"] == 660
    assert info["categorical_features"] == ["user_id", "gender", "item_id"]


def test_uses_every_non_sequence_feature(lgb_model, toy_data):
    seq = toy_data.schema.of_kind("sequence")
    assert seq and not set(seq) & set(lgb_model.feature_names)
    assert lgb_model.feature_names == [n for n in toy_data.schema.names if n not in seq]
    assert "tree" in lgb_model.capabilities


def test_score_features_is_the_raw_margin(lgb_model, toy_data):
    X = toy_data.features(toy_data.test[["user", "item"]])[lgb_model.feature_names]
    margin = lgb_model.score_features(X)
    prob = lgb_model.booster.predict(lgb_model.encode(X))
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), prob, rtol=0, atol=1e-12)
    assert margin.min() < 0 < margin.max()


def test_categoricals_are_native_with_fixed_codes(lgb_model, toy_data):
    cat_idx = [lgb_model.feature_names.index(c) for c in ("user_id", "gender", "item_id")]
    assert lgb_model.booster.params["categorical_feature"] == cat_idx
    infos = lgb_model.booster.dump_model()["feature_infos"]
    assert set(infos["gender"]["values"]) == {-1, 0, 1} and infos["age"]["values"] == []
    X = toy_data.features(toy_data.test[["user", "item"]].head(20))[lgb_model.feature_names]
    # the same values in a category dtype with another category order give the same codes
    shuffled = X.copy()
    shuffled["gender"] = shuffled["gender"].cat.reorder_categories(["M", "F"])
    shuffled["item_id"] = shuffled["item_id"].astype(object)  # plain values work as well
    np.testing.assert_array_equal(lgb_model.encode(X), lgb_model.encode(shuffled))
    np.testing.assert_array_equal(lgb_model.score_features(X), lgb_model.score_features(shuffled))
    # gender codes are positions in the frozen categories
    assert lgb_model.encoder.categorical["gender"] == ["F", "M"]
    np.testing.assert_array_equal(lgb_model.encode(X)[:, lgb_model.feature_names.index("gender")], (X["gender"] == "M").to_numpy(float))


def test_unseen_category_scores_as_missing(lgb_model, toy_data):
    X = toy_data.features(toy_data.test[["user", "item"]].head(3))[lgb_model.feature_names].copy()
    X["item_id"] = pd.Categorical([9999] * 3)
    M = lgb_model.encode(X)
    assert np.isnan(M[:, lgb_model.feature_names.index("item_id")]).all()
    assert np.isfinite(lgb_model.score_features(X)).all()


def test_recommend_ranks_unseen_candidates(lgb_model, toy_data):
    recs = lgb_model.recommend(3, 5)
    assert list(recs.columns) == ["user", "item", "score", "rank"]
    assert list(recs["rank"]) == [1, 2, 3, 4, 5]
    assert not set(recs["item"]) & toy_data.seen(3)
    cands = toy_data.candidates(3)
    scores = lgb_model.score(pd.DataFrame({"user": 3, "item": cands}))
    best = cands[np.argsort(-scores, kind="stable")[:5]]
    assert list(recs["item"]) == list(best)
    assert np.all(np.diff(recs["score"]) <= 0)


def test_evaluate_reports_auc_ndcg_hr(lgb_model):
    m = lgb_model.evaluate()
    assert set(m) >= {"auc", "ndcg@10", "hr@10"}
    assert 0.55 < m["auc"] <= 1  # the toy labels carry signal the model finds
    assert 0 <= m["ndcg@10"] <= 1 and 0 <= m["hr@10"] <= 1


def test_lambdarank_objective(toy_data):
    m = LightGBMModel(objective="lambdarank", **SMALL)
    info = m.fit(toy_data)
    assert "valid_ndcg@10" in info and 0 < info["valid_ndcg@10"] <= 1
    assert m.booster.params["objective"] == "lambdarank"
    recs = m.recommend(1, 3)
    assert len(recs) == 3


def test_without_validation_uses_all_rounds(toy_data):
    m = LightGBMModel(**{**SMALL, "n_estimators": 12}, valid_fraction=0.0)
    info = m.fit(toy_data)
    assert info["best_iteration"] == 12 and info["valid_rows"] == 0
    assert "valid_binary_logloss" not in info


def test_save_load_roundtrip_text_and_json(lgb_model, toy_data, tmp_path):
    lgb_model.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["lightgbm.json", "model.json", "model.txt"]
    assert (tmp_path / "model.txt").read_text().startswith("tree")  # LightGBM's text format
    meta = json.loads((tmp_path / "lightgbm.json").read_text())
    assert meta["encoder"]["categorical"]["gender"] == ["F", "M"]
    loaded = LightGBMModel.load(tmp_path, toy_data)
    X = toy_data.features(toy_data.test[["user", "item"]])[lgb_model.feature_names]
    np.testing.assert_array_equal(loaded.score_features(X), lgb_model.score_features(X))
    np.testing.assert_array_equal(loaded.encode(X), lgb_model.encode(X))
    assert loaded.train_info["best_iteration"] == lgb_model.train_info["best_iteration"]
    pd.testing.assert_frame_equal(loaded.recommend(2, 5), lgb_model.recommend(2, 5))


def test_load_rejects_model_whose_features_are_not_in_the_schema(lgb_model, toy_data, tmp_path):
    lgb_model.save(tmp_path)
    schema = FeatureSchema([f for f in toy_data.schema if f.name != "price"])
    other = dataclasses.replace(toy_data, schema=schema)
    with pytest.raises(DataError, match=r"missing features \['price'\]"):
        LightGBMModel.load(tmp_path, other)


def test_load_rejects_feature_that_changed_kind(lgb_model, toy_data, tmp_path):
    lgb_model.save(tmp_path)
    schema = FeatureSchema([dataclasses.replace(f, kind="categorical") if f.name == "age" else f for f in toy_data.schema])
    with pytest.raises(DataError, match=r"features of another kind \['age'\]"):
        LightGBMModel.load(tmp_path, dataclasses.replace(toy_data, schema=schema))


def test_load_rejects_categories_that_match_no_data_value(lgb_model, toy_data, tmp_path):
    lgb_model.save(tmp_path)
    meta = json.loads((tmp_path / "lightgbm.json").read_text())
    meta["encoder"]["categorical"]["item_id"] = [f"i{v}" for v in meta["encoder"]["categorical"]["item_id"]]
    (tmp_path / "lightgbm.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="categorical feature 'item_id'.*retrain"):
        LightGBMModel.load(tmp_path, toy_data)


def test_load_rejects_mismatched_booster_file(lgb_model, toy_data, tmp_path):
    lgb_model.save(tmp_path)
    small = LightGBMModel(**SMALL, features=["age", "price"])
    small.fit(toy_data)
    (tmp_path / "model.txt").write_text(small.booster.model_to_string())
    with pytest.raises(DataError, match="do not belong together"):
        LightGBMModel.load(tmp_path, toy_data)


def test_load_without_weights_says_so(lgb_model, toy_data, tmp_path):
    lgb_model.save(tmp_path)
    (tmp_path / "model.txt").unlink()
    with pytest.raises(DataError, match="no model.txt"):
        LightGBMModel.load(tmp_path, toy_data)


@pytest.mark.parametrize("victim", ["model.txt", "model.json", "lightgbm.json"])
def test_a_pickle_in_place_of_a_model_file_is_refused_unread(lgb_model, toy_data, tmp_path, victim):
    import pickle

    lgb_model.save(tmp_path)
    marker = tmp_path / "executed"

    class Payload:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / victim).write_bytes(pickle.dumps(Payload(), protocol=4))
    with pytest.raises(DataError, match=r"(is not a LightGBM text model|not a JSON .*model description).*never"):
        LightGBMModel.load(tmp_path, toy_data)
    assert not marker.exists()


# -- bad input ---------------------------------------------------------------------------------
def test_unknown_user(lgb_model):
    with pytest.raises(DataError, match="user 99999 is not in dataset 'toy'"):
        lgb_model.recommend(99999, 5)


def test_k_larger_than_candidates(lgb_model, toy_data):
    n = len(toy_data.candidates(1))
    with pytest.raises(DataError, match=f"k={n + 1} but user 1 has {n} candidate items"):
        lgb_model.recommend(1, n + 1)


def _with_nan_price(data):
    items = data.items.copy()
    items.loc[items.index[:5], "price"] = np.nan
    return dataclasses.replace(data, items=items)


def test_nan_where_the_model_cannot_take_it_names_the_column(toy_data):
    data = _with_nan_price(toy_data)
    with pytest.raises(DataError, match=r"features with NaN \(column: rows\) \{'price': \d+\}.*use_missing = false"):
        LightGBMModel(**SMALL, use_missing=False).fit(data)


def test_nan_is_fine_when_the_model_takes_missing_values(toy_data):
    m = LightGBMModel(**SMALL)  # use_missing = true (default): NaN is LightGBM's missing value
    m.fit(_with_nan_price(toy_data))
    assert np.isfinite(m.recommend(1, 3)["score"]).all()


def test_nan_at_scoring_time_with_use_missing_false(toy_data):
    m = LightGBMModel(**SMALL, use_missing=False)
    m.fit(toy_data)
    X = toy_data.features(toy_data.test[["user", "item"]].head(4))[m.feature_names].copy()
    X.loc[X.index[0], "age"] = np.nan
    with pytest.raises(DataError, match=r"\{'age': 1\}"):
        m.score_features(X)


def test_infinite_values_are_refused(lgb_model, toy_data):
    X = toy_data.features(toy_data.test[["user", "item"]].head(4))[lgb_model.feature_names].copy()
    X.loc[X.index[1], "price"] = np.inf
    with pytest.raises(DataError, match=r"features \['price'\] hold infinite values"):
        lgb_model.score_features(X)


def test_non_numeric_values_in_numeric_feature(lgb_model, toy_data):
    X = toy_data.features(toy_data.test[["user", "item"]].head(4))[lgb_model.feature_names].copy()
    X["age"] = X["age"].astype(object)
    X.loc[X.index[2], "age"] = "old"
    with pytest.raises(DataError, match="feature 'age' is numeric in the schema but holds non-numeric values \\(e.g. 'old'\\)"):
        lgb_model.score_features(X)


def test_missing_labels(toy_data):
    train = toy_data.train.copy()
    train.loc[train.index[:3], "label"] = np.nan
    with pytest.raises(DataError, match="column 'label' of the training table has 3 missing"):
        LightGBMModel(**SMALL).fit(dataclasses.replace(toy_data, train=train))


@pytest.mark.parametrize("params, msg", [
    ({"objective": "regression"}, "objective 'regression' is not one of"),
    ({"n_estimators": 0}, "n_estimators must be >= 1"),
    ({"valid_fraction": 1.0}, r"valid_fraction must be in \[0, 1\)"),
])
def test_bad_parameters(params, msg):
    with pytest.raises(RegistryError, match=msg):
        LightGBMModel(**params)


def test_unknown_or_sequence_features_param(toy_data):
    with pytest.raises(DataError, match=r"features \['nope'\] are not in dataset"):
        LightGBMModel(features=["age", "nope"]).fit(toy_data)
    with pytest.raises(DataError, match="sequence columns"):
        LightGBMModel(features=["age", "hist_0"]).fit(toy_data)


def test_unfitted_model_says_fit_first():
    with pytest.raises(UnsupportedError, match="not fitted"):
        LightGBMModel().recommend(1, 3)


def test_registered_through_the_plugin_hook():
    host = PluginHost()
    host.add(whyrec_lightgbm, "whyrec-lightgbm")
    assert host.names("models") == ["lightgbm"]
    m = host.create("models", "lightgbm", {"n_estimators": 5})
    assert isinstance(m, LightGBMModel) and m.name == "lightgbm" and m.params["n_estimators"] == 5
    assert lgb.__version__
