"""The explanation-quality report: rank deletion/insertion, comprehensiveness/sufficiency,
stability and the shuffled-label sanity check."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from whyrec.data import LABEL
from whyrec_shap.background import sample_background
from whyrec_shap.exact import ExactFieldShapley
from whyrec_shap.masking import hybrid_frame
from whyrec_shap.quality import explanation_quality, shuffled_label_data, spearman, top_overlap
from whyrec_shap.tree import TreeShap


@pytest.fixture(scope="module")
def tree_quality(lgb_model, toy_data, top_pairs):
    ex = TreeShap()
    e = ex.explain(lgb_model, toy_data, top_pairs)
    return e, ex.quality(lgb_model, toy_data, e, None)


def test_report_contents(tree_quality, tmp_path):
    e, q = tree_quality
    s = q.summary
    assert q.kind == "explanation-quality" and s["method"] == "tree-shap" and s["pairs"] == len(e.pairs)
    for key in ("deletion_rank_auc", "deletion_rank_auc_random", "insertion_rank_auc", "insertion_rank_auc_random",
                "comprehensiveness@1", "sufficiency@3", "rerun_identical", "seed_spearman_mean", "sanity_spearman_mean"):
        assert key in s, key
    assert set(q.tables) == {"curves", "pairs", "stability"} and "deletion_insertion" in q.figures
    written = {p.name for p in q.save(tmp_path)}
    assert {"summary.json", "curves.parquet", "curves.csv", "pairs.parquet", "deletion_insertion.png"} <= written
    assert json.loads((tmp_path / "summary.json").read_text())["kind"] == "explanation-quality"


def test_attribution_order_beats_random_on_rank(tree_quality):
    _, q = tree_quality
    s = q.summary
    # removing the most positive features first pushes the item further down than random order
    assert s["deletion_gain_over_random"] > 0
    assert s["insertion_gain_over_random"] > 0
    assert s["comprehensiveness@1"] > s["comprehensiveness@1_random"]
    c = q.tables["curves"]
    dele = c[(c["curve"] == "deletion") & (c["order"] == "attribution")]
    assert dele["mean_rank"].iloc[-1] > dele["mean_rank"].iloc[0]


def test_curve_start_is_the_real_rank(tree_quality, lgb_model, toy_data):
    e, q = tree_quality
    per = q.tables["pairs"]
    # with no unit removed the item's rank among candidates is its recommendation rank
    # (ties share the better rank, so it is never worse)
    assert (per["rank_full"] <= per["rank"]).all() and (per["rank_full"] >= 1).all()
    assert (per["rank_full"] == per["rank"]).mean() > 0.5


def test_comprehensiveness_matches_a_direct_computation(tree_quality, lgb_model, toy_data):
    e, q = tree_quality
    pairs = e.pairs
    B = sample_background(lgb_model, toy_data, 20, 0)  # the report's background (seed 0, 20 rows)
    X = toy_data.features(pairs[["user", "item"]])[lgb_model.feature_names].reset_index(drop=True)
    A = e.attributions.to_numpy()
    units = [[c] for c in lgb_model.feature_names]
    diffs = []
    for i in range(len(pairs)):
        keep = np.ones((1, 1, len(units)), dtype=bool)
        keep[0, 0, int(np.argmax(A[i]))] = False
        frame = hybrid_frame(X.iloc[[i]], B, units, keep)
        diffs.append(lgb_model.score_features(X.iloc[[i]])[0] - lgb_model.score_features(frame).mean())
    assert q.summary["comprehensiveness@1"] == pytest.approx(np.mean(diffs), abs=1e-9)


def test_stability_and_sanity(tree_quality):
    _, q = tree_quality
    s = q.summary
    assert s["rerun_identical"] and s["rerun_max_abs_diff"] == 0.0  # path-dependent TreeSHAP is deterministic
    assert s["seed_spearman_mean"] == pytest.approx(1.0)  # ...and ignores the seed
    assert s["sanity_passed"] is True and abs(s["sanity_spearman_mean"]) < 0.5
    assert s["sanity_relative_change"] > 0.5 and s["sanity_magnitude_ratio"] < 1


def test_field_explanations_and_seed_dependence(lgb_model, toy_data, top_pairs):
    ex = ExactFieldShapley(background_size=15, seed=0)
    e = ex.explain(lgb_model, toy_data, top_pairs)
    q = explanation_quality(lgb_model, toy_data, e, explainer_for_seed=ex.with_seed, n_pairs=6, n_random=3, sanity=False)
    s = q.summary
    assert s["unit_kind"] == "field" and s["units"] == 4 and s["pairs"] == 6
    assert s["rerun_identical"]
    assert s["seed_max_abs_diff"] > 0  # another background sample gives other values...
    assert s["seed_spearman_mean"] > 0.5  # ...but ranks the fields much the same
    assert "sanity_passed" not in s


def test_shuffled_label_data_keeps_features(toy_data):
    sh = shuffled_label_data(toy_data, 3)
    assert sorted(sh.train[LABEL]) == sorted(toy_data.train[LABEL])
    assert (sh.train[LABEL].to_numpy() != toy_data.train[LABEL].to_numpy()).any()
    pairs = toy_data.train[["user", "item"]].head(30)
    pd.testing.assert_frame_equal(sh.features(pairs), toy_data.features(pairs))
    assert toy_data.train[LABEL].sum() == sh.train[LABEL].sum()


def test_statistics():
    assert spearman(np.array([1, 2, 3]), np.array([10, 20, 30])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.array([1, 1, 1]), np.array([1, 2, 3])))
    assert top_overlap(np.array([5, -4, 0.1, 0]), np.array([-6, 0, 5, 0.2]), k=2) == pytest.approx(1 / 3)


def test_sanity_check_fails_when_retraining_changes_nothing(lgb_model, toy_data, top_pairs):
    """The check can fail: a 'retrained' model that is the same model keeps every attribution."""
    ex = TreeShap()
    e = ex.explain(lgb_model, toy_data, top_pairs)
    q = explanation_quality(lgb_model, toy_data, e, explainer_for_seed=ex.with_seed, n_pairs=6, n_random=2,
                            retrain=lambda model, data, seed: model)
    s = q.summary
    assert s["sanity_relative_change"] == 0.0 and s["sanity_spearman_mean"] == pytest.approx(1.0)
    assert s["sanity_passed"] is False


def test_sanity_skipped_with_the_reason_when_the_model_cannot_be_refitted(lgb_model, toy_data, top_pairs):
    def refuse(model, data, seed):
        raise RuntimeError("no training data in this deployment")

    ex = TreeShap()
    e = ex.explain(lgb_model, toy_data, top_pairs)
    q = explanation_quality(lgb_model, toy_data, e, explainer_for_seed=ex.with_seed, n_pairs=4, n_random=2, retrain=refuse)
    assert q.summary["sanity_skipped"] == "RuntimeError: no training data in this deployment"
    assert "sanity_passed" not in q.summary
