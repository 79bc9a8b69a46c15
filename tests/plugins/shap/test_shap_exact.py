"""exact-field-shapley: exact Shapley values over fields and groups, any model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec_shap.background import sample_background
from whyrec_shap.exact import ExactFieldShapley, coalition_masks, shapley_from_values

from shap_testkit import LinearModel, brute_force_shapley, toy


@pytest.mark.parametrize("level", ["field", "group"])
def test_equals_brute_force_reference(lgb_model, toy_data, top_pairs, level):
    ex = ExactFieldShapley(level=level, background_size=8, seed=2)
    pairs = top_pairs.iloc[[0, 5]]
    e = ex.explain(lgb_model, toy_data, pairs)
    groups = e.params["groups"]
    assert list(e.field_attributions.columns) == list(groups)
    if level == "field":
        assert list(groups) == ["user", "item", "history", "cross"]
    else:
        assert {"item:genre", "history:genre_profile"} <= set(groups)
    B = sample_background(lgb_model, toy_data, 8, 2)
    X = toy_data.features(pairs[["user", "item"]])[lgb_model.feature_names]
    for i in range(len(pairs)):
        ref = brute_force_shapley(lgb_model.score_features, X.iloc[[i]], B, groups)
        np.testing.assert_allclose(e.field_attributions.iloc[i].to_numpy(), ref, rtol=0, atol=1e-9)
    assert e.max_additivity_error < 1e-9
    np.testing.assert_allclose(e.pairs["output_value"], lgb_model.score_features(X), atol=1e-12)
    np.testing.assert_allclose(e.pairs["base_value"], lgb_model.score_features(B).mean(), atol=1e-12)


def test_any_model_with_history_sequence_closed_form(linear_model, toy_data, top_pairs):
    """For a linear margin w.x + b the interventional Shapley value of a field is
    sum_{j in field} w_j (x_j - mean_b x_j); the history field includes the sequence columns."""
    assert "hist_0" in linear_model.feature_names
    ex = ExactFieldShapley(background_size=30, seed=0)
    e = ex.explain(linear_model, toy_data, top_pairs)
    X = toy_data.features(top_pairs[["user", "item"]])[linear_model.feature_names]
    B = sample_background(linear_model, toy_data, 30, 0)
    contrib = (linear_model.matrix(X) * linear_model.scale - (linear_model.matrix(B) * linear_model.scale).mean(0)) * linear_model.weights
    contrib = pd.DataFrame(contrib, columns=linear_model.feature_names)
    for field, cols in e.params["groups"].items():
        np.testing.assert_allclose(e.field_attributions[field], contrib[cols].sum(axis=1), rtol=0, atol=1e-9)
    assert "hist_0" in e.params["groups"]["history"]


def test_coalition_machinery_on_a_known_game():
    # v(S) = (sum of members)^2 over players with weights 1, 2, 3: Shapley by hand
    n = 3
    w = np.array([1.0, 2.0, 3.0])
    masks = coalition_masks(n)
    v = ((masks * w).sum(1) ** 2)[None, :]
    phi = shapley_from_values(v, n)
    # for a square of sums: phi_i = w_i * sum(w) (symmetric split of the cross terms)
    np.testing.assert_allclose(phi[0], w * w.sum(), atol=1e-12)
    assert masks.shape == (8, 3) and masks[5].tolist() == [True, False, True]


def test_reasons_name_the_field_and_its_notable_features(lgb_model, toy_data, top_pairs):
    e = ExactFieldShapley().explain(lgb_model, toy_data, top_pairs)
    for i, reasons in enumerate(e.reasons):
        a = e.field_attributions.iloc[i]
        top = a.idxmax()
        words = {"user": "who you are", "item": "the item itself", "history": "what you interacted with before",
                 "cross": "how the item matches your history"}[top]
        assert reasons[0].startswith(words) and reasons[0].endswith(f"{a.max():+.2f}")
    assert any("shares a genre with" in r for rs in e.reasons for r in rs)


def test_refuses_more_than_16_fields_pointing_to_permutation_shap():
    data = toy.make_toy_data(extra_features=2)
    m = LinearModel()
    m.fit(data)
    groups = {f"g{j}": [c] for j, c in enumerate(m.feature_names)}
    assert len(groups) == 18
    with pytest.raises(UnsupportedError, match=r"18 fields/groups.*limited to 16.*permutation-shap"):
        ExactFieldShapley(groups=groups).explain(m, data, pd.DataFrame({"user": [1], "item": [101]}))


def test_explicit_groups_cover_every_feature(lgb_model, toy_data, top_pairs):
    e = ExactFieldShapley(groups={"price": ["price"], "taste": ["genre_match", "hist_genre_A"]}).explain(lgb_model, toy_data, top_pairs)
    assert list(e.field_attributions.columns) == ["price", "taste", "other"]
    assert "age" in e.params["groups"]["other"]
    with pytest.raises(RegistryError, match=r"groups name features \['nope'\]"):
        ExactFieldShapley(groups={"x": ["nope"]}).explain(lgb_model, toy_data, top_pairs)


def test_batches_do_not_change_the_result(lgb_model, toy_data, top_pairs):
    pairs = top_pairs.head(4)
    a = ExactFieldShapley(level="group", background_size=10).explain(lgb_model, toy_data, pairs)
    b = ExactFieldShapley(level="group", background_size=10, max_rows=300).explain(lgb_model, toy_data, pairs)
    np.testing.assert_allclose(a.field_attributions.to_numpy(), b.field_attributions.to_numpy(), rtol=0, atol=1e-12)


def test_unsupported_model_and_bad_background(toy_data):
    class Opaque:  # a model with no score_features over features
        name = "popularity"
        feature_names: list = []

    with pytest.raises(UnsupportedError, match="'exact-field-shapley' does not support model 'popularity'.*no registered explainer"):
        ExactFieldShapley().explain(Opaque(), toy_data, pd.DataFrame({"user": [1], "item": [101]}))


def test_background_larger_than_the_data(lgb_model, toy_data, top_pairs):
    with pytest.raises(DataError, match="background_size=100000 is larger than the data"):
        ExactFieldShapley(background_size=100_000).explain(lgb_model, toy_data, top_pairs)
    with pytest.raises(RegistryError, match="level 'feature' is not one of"):
        ExactFieldShapley(level="feature")
