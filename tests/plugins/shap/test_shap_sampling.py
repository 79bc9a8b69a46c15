"""permutation-shap and kernel-shap (shap's explainers) through the frame codec and the
k-means background."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec_shap.background import FrameCodec, kmeans_background, sample_background
from whyrec_shap.exact import ExactFieldShapley
from whyrec_shap.sampling import CostWarning, KernelShap, PermutationShap


@pytest.fixture(scope="module")
def small_lgb(toy_data):
    """Five features (categoricals included): kernel SHAP can enumerate all 2^5 coalitions."""
    from whyrec_lightgbm.model import LightGBMModel

    from shap_testkit import SMALL

    m = LightGBMModel(**SMALL, features=["user_id", "gender", "price", "hist_genre_A", "genre_match"])
    m.fit(toy_data)
    return m


def test_kernel_with_every_coalition_equals_exact_shapley(small_lgb, toy_data, top_pairs):
    pairs = top_pairs.head(3)
    # background_k >= background_size: no summarising, the same 12 rows as the exact method
    with pytest.warns(CostWarning, match=r"kernel-shap scores 64 coalitions x 12 background rows = 768 model rows per pair"):
        k = KernelShap(nsamples=64, background_size=12, background_k=12, seed=4).explain(small_lgb, toy_data, pairs)
    groups = {c: [c] for c in small_lgb.feature_names}
    ex = ExactFieldShapley(groups=groups, background_size=12, seed=4).explain(small_lgb, toy_data, pairs)
    np.testing.assert_allclose(k.attributions.to_numpy(), ex.field_attributions.to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(k.pairs["base_value"], ex.pairs["base_value"], atol=1e-9)
    assert k.max_additivity_error < 1e-6


def test_permutation_on_a_linear_model_is_exact(linear_model, toy_data, top_pairs):
    """Any permutation gives the exact Shapley values of an additive model: w_j (x_j - mean x_j)."""
    pairs = top_pairs.head(2)
    with pytest.warns(CostWarning, match="permutation-shap scores about .* model rows per pair"):
        e = PermutationShap(max_evals=60, background_size=15, background_k=15).explain(linear_model, toy_data, pairs)
    X = toy_data.features(pairs[["user", "item"]])[linear_model.feature_names]
    B = sample_background(linear_model, toy_data, 15, 0)
    s = linear_model.scale
    ref = (linear_model.matrix(X) * s - (linear_model.matrix(B) * s).mean(0)) * linear_model.weights
    np.testing.assert_allclose(e.attributions.to_numpy(), ref, rtol=0, atol=1e-9)
    assert "hist_0" in e.attributions.columns  # sequence positions are features too
    assert e.max_additivity_error < 1e-9


def test_permutation_with_kmeans_background_adds_up_and_is_seeded(lgb_model, toy_data, top_pairs):
    pairs = top_pairs.head(2)
    with pytest.warns(CostWarning):
        a = PermutationShap(max_evals=100, background_size=60, background_k=5, seed=1).explain(lgb_model, toy_data, pairs)
        b = PermutationShap(max_evals=100, background_size=60, background_k=5, seed=1).explain(lgb_model, toy_data, pairs)
    assert a.summary["background_centers"] == 5
    np.testing.assert_array_equal(a.attributions.to_numpy(), b.attributions.to_numpy())
    assert a.max_additivity_error < 1e-9
    assert len(a.reasons[0]) >= 1


def test_frame_codec_roundtrip_keeps_categories_and_nan(toy_data, lgb_model):
    X = toy_data.features(toy_data.train[["user", "item"]].head(40))
    X.loc[X.index[0], "hist_1"] = np.nan
    X["gender"] = X["gender"].astype(object)  # plain strings become codes too
    codec = FrameCodec.fit(X)
    M = codec.encode(X)
    assert M.dtype == float and np.isnan(M[0, codec.columns.index("hist_1")])
    back = codec.decode(M)
    pd.testing.assert_frame_equal(back, X.reset_index(drop=True), check_dtype=True)


def test_kmeans_background_modes_for_categories():
    rng = np.random.default_rng(0)
    cat = np.r_[np.zeros(30), np.ones(30)]
    cat[[0, 1]] = 1  # minority values inside the clusters
    num = np.r_[rng.normal(0, 0.1, 30), rng.normal(5, 0.1, 30)]
    num[5] = np.nan
    M = np.c_[cat, num]
    centers, weights = kmeans_background(M, 2, np.array([True, False]), seed=0)
    assert weights.sum() == 60 and sorted(weights.tolist()) == [30.0, 30.0]
    order = np.argsort(centers[:, 1])
    assert centers[order, 0].tolist() == [0.0, 1.0]  # the mode, never a mean of codes
    assert set(centers[:, 1]) <= set(num[~np.isnan(num)])  # rounded to values the column takes
