"""tree-shap: path-dependent and interventional TreeSHAP on the LightGBM margin."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.atomic import write_figure
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.explanation import Explanation
from whyrec_shap.background import sample_background
from whyrec_shap.interventional import has_categorical_splits, interventional_shap
from whyrec_shap.tree import AdditivityError, TreeShap

from shap_testkit import brute_force_shapley


def test_path_dependent_equals_lightgbm_pred_contrib_and_adds_up(lgb_model, toy_data, top_pairs):
    e = TreeShap().explain(lgb_model, toy_data, top_pairs)
    X = toy_data.features(top_pairs[["user", "item"]])[lgb_model.feature_names]
    contrib = lgb_model.booster.predict(lgb_model.encode(X), pred_contrib=True)
    np.testing.assert_allclose(e.attributions.to_numpy(), contrib[:, :-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(e.pairs["base_value"], contrib[:, -1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(e.pairs["output_value"], lgb_model.score_features(X), rtol=0, atol=1e-12)
    assert (e.pairs["additivity_error"] <= 1e-6).all()
    assert e.summary["additivity_ok"] and e.summary["max_additivity_error"] <= 1e-6
    assert list(e.pairs["rank"]) == list(top_pairs["rank"])  # the recommendation's rank is kept
    assert list(e.field_attributions.columns) == ["user", "item", "history", "cross"]
    np.testing.assert_allclose(e.field_attributions.sum(axis=1), e.attributions.sum(axis=1), atol=1e-12)


def test_interventional_with_categorical_splits_equals_brute_force(lgb_model, toy_data, top_pairs):
    assert has_categorical_splits(lgb_model.booster)  # shap 0.51 cannot do these: our engine runs
    ex = TreeShap(feature_perturbation="interventional", background_size=6, seed=3)
    e = ex.explain(lgb_model, toy_data, top_pairs.head(2))
    assert "whyrec_shap.interventional" in e.summary["engine"]
    B = sample_background(lgb_model, toy_data, 6, 3)
    X = toy_data.features(top_pairs.head(2)[["user", "item"]])[lgb_model.feature_names]
    groups = {c: [c] for c in lgb_model.feature_names}
    # brute force over 13 single-feature players is 13! orderings: use the coalition form instead
    ref = _coalition_reference(lgb_model.score_features, X.iloc[[0]], B, groups)
    np.testing.assert_allclose(e.attributions.iloc[0].to_numpy(), ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(e.pairs["base_value"], lgb_model.score_features(B).mean(), atol=1e-12)
    assert (e.pairs["additivity_error"] <= 1e-6).all()


def _coalition_reference(f, x, B, groups):
    """Shapley by the subset formula; every coalition's frame built explicitly with numpy
    (no code shared with whyrec_shap), all coalitions scored in one call."""
    import itertools
    import math

    names = list(groups)
    n, nb = len(names), len(B)
    bits = np.array(list(itertools.product((0, 1), repeat=n)), dtype=bool)  # (2^n, n)
    cols = {}
    for g, name in enumerate(names):
        for c in groups[name]:
            take_x = np.repeat(bits[:, g], nb)
            bvals = np.tile(B[c].astype(object).to_numpy(), len(bits))
            vals = np.where(take_x, x[c].astype(object).to_numpy()[0], bvals)
            cols[c] = pd.Categorical(vals, categories=B[c].cat.categories) if isinstance(B[c].dtype, pd.CategoricalDtype) else vals.astype(float)
    frame = pd.DataFrame(cols)[list(B.columns)]
    v = np.asarray(f(frame)).reshape(len(bits), nb).mean(axis=1)
    index = {tuple(b): k for k, b in enumerate(bits.astype(int).tolist())}
    phi = np.zeros(n)
    for b, k in index.items():
        s = sum(b)
        for j in range(n):
            if not b[j]:
                with_j = b[:j] + (1,) + b[j + 1:]
                phi[j] += math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) * (v[index[with_j]] - v[k])
    return phi


def test_interventional_numeric_model_uses_shap_and_matches_our_engine(numeric_lgb, toy_data, top_pairs):
    assert not has_categorical_splits(numeric_lgb.booster)
    ex = TreeShap(feature_perturbation="interventional", background_size=40, seed=1)
    e = ex.explain(numeric_lgb, toy_data, top_pairs)
    assert e.summary["engine"] == "shap.TreeExplainer(interventional)"
    X = numeric_lgb.encode(toy_data.features(top_pairs[["user", "item"]])[numeric_lgb.feature_names])
    B = numeric_lgb.encode(sample_background(numeric_lgb, toy_data, 40, 1))
    phi, base = interventional_shap(numeric_lgb.booster, X, B)
    # shap's C engine holds inputs in float32: agreement to float32 precision, not 1e-12
    np.testing.assert_allclose(e.attributions.to_numpy(), phi, rtol=0, atol=1e-6)
    np.testing.assert_allclose(e.pairs["base_value"], base, atol=1e-6)
    assert e.summary["max_additivity_error"] <= 1e-6


def test_interventional_engine_handles_missing_values_like_lightgbm(toy_data):
    """NaN in numeric and categorical columns, every missing_type: additivity against the
    booster itself proves the engine follows LightGBM's decisions."""
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    n = 1500
    c = rng.integers(0, 12, n).astype(float)
    c[rng.random(n) < 0.1] = np.nan
    x1 = rng.normal(size=n)
    x1[rng.random(n) < 0.2] = np.nan
    x2 = np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n))
    y = ((np.nan_to_num(c) % 3 == 0) + np.nan_to_num(x1, nan=1.0) + x2 + rng.normal(size=n) > 0.7).astype(int)
    M = np.c_[c, x1, x2]
    for zero_as_missing in (False, True):
        b = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 15, "min_data_per_group": 5,
                       "zero_as_missing": zero_as_missing}, lgb.Dataset(M, y, categorical_feature=[0]), 20)
        phi, base = interventional_shap(b, M[:50], M[100:130])
        np.testing.assert_allclose(phi.sum(1) + base, b.predict(M[:50], raw_score=True), rtol=0, atol=1e-9)


def test_reasons_in_words(lgb_model, toy_data, top_pairs):
    e = TreeShap(n_reasons=2).explain(lgb_model, toy_data, top_pairs)
    assert len(e.reasons) == len(top_pairs)
    for i, reasons in enumerate(e.reasons):
        a = e.attributions.iloc[i]
        pos = a[a > 0].sort_values(ascending=False)
        neg = a[a < 0].sort_values()
        assert len(reasons) == min(2, len(pos)) + min(2, len(neg))
        top = pos.index[0]
        row = e.feature_values.iloc[i]
        assert reasons[0] == f"{toy_data.describe_feature(top, row[top], row)}: {pos.iloc[0]:+.2f}"
        assert reasons[min(2, len(pos))].endswith(f"{neg.iloc[0]:+.2f}")
    assert any("shares a genre with" in r for rs in e.reasons for r in rs)


def test_reasons_are_worded_on_first_use(lgb_model, toy_data, top_pairs):
    from whyrec.atomic import to_json
    import json

    e = TreeShap().explain(lgb_model, toy_data, top_pairs)
    assert not e.reasons.built and len(e.reasons) == len(top_pairs)
    first = e.reasons[0]
    assert e.reasons.built and first == e.row(0)["reasons"]
    assert json.loads(to_json({"r": e.reasons})) == {"r": e.reasons.tolist()}


def test_explanation_roundtrip(lgb_model, toy_data, top_pairs, tmp_path):
    e = TreeShap().explain(lgb_model, toy_data, top_pairs)
    e.save(tmp_path / "e")
    back = Explanation.load(tmp_path / "e")
    np.testing.assert_allclose(back.attributions.to_numpy(), e.attributions.to_numpy())
    assert back.reasons == e.reasons and back.summary["additivity_ok"]


def test_figures(lgb_model, toy_data, top_pairs, tmp_path):
    ex = TreeShap(n_waterfall=2)
    e = ex.explain(lgb_model, toy_data, top_pairs)
    figs = ex.figures(e, toy_data)
    assert sorted(figs) == ["bar", "beeswarm", "waterfall_0", "waterfall_1"]
    for name, fig in figs.items():
        assert fig.axes, name
        p = write_figure(tmp_path / f"{name}.png", fig)
        assert p.stat().st_size > 5000


# -- bad input ---------------------------------------------------------------------------------
def test_unsupported_model_names_the_explainers_that_support_it(linear_model, toy_data, top_pairs):
    ex = TreeShap()
    assert not ex.supports(linear_model)
    with pytest.raises(UnsupportedError, match=r"'tree-shap' does not support model 'linear'.*needs a tree model.*"
                                                r"exact-field-shapley.*kernel-shap.*permutation-shap"):
        ex.explain(linear_model, toy_data, top_pairs)


def test_background_larger_than_the_data(lgb_model, toy_data, top_pairs):
    n = len(toy_data.train)
    ex = TreeShap(feature_perturbation="interventional", background_size=n + 1)
    with pytest.raises(DataError, match=f"background_size={n + 1} is larger than the data.*{n} training rows"):
        ex.explain(lgb_model, toy_data, top_pairs)


def test_unknown_user_in_pairs(lgb_model, toy_data):
    with pytest.raises(DataError, match=r"users \[4242\] are not in dataset 'toy'"):
        TreeShap().explain(lgb_model, toy_data, pd.DataFrame({"user": [1, 4242], "item": [101, 102]}))


def test_additivity_is_enforced_and_recorded(lgb_model, toy_data, top_pairs):
    with pytest.raises(AdditivityError, match="tolerance -1 for user 1"):
        TreeShap(tolerance=-1.0).explain(lgb_model, toy_data, top_pairs)
    e = TreeShap(tolerance=-1.0, check_additivity=False).explain(lgb_model, toy_data, top_pairs)
    assert e.summary["additivity_ok"] is False


def test_bad_perturbation_parameter():
    with pytest.raises(RegistryError, match="feature_perturbation 'causal' is not one of"):
        TreeShap(feature_perturbation="causal")
