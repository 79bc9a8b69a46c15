"""What the explanation-quality figure draws, the quality report's refusal of an empty
background, and the search limit of the smallest-change counterfactual."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from whyrec.errors import DataError

from whyrec_shap.quality import explanation_quality
from whyrec_shap.rank import smallest_change
from whyrec_shap.tree import TreeShap


@pytest.fixture(scope="module")
def tree_explanation(lgb_model, toy_data, top_pairs):
    return TreeShap().explain(lgb_model, toy_data, top_pairs)


def test_the_figure_draws_each_curve_of_the_table(lgb_model, toy_data, tree_explanation):
    q = explanation_quality(lgb_model, toy_data, tree_explanation, n_pairs=6, n_random=2, rerun_seeds=0, sanity=False)
    curves = q.tables["curves"]
    fig = q.figures["deletion_insertion"]
    for ax, cname in zip(fig.axes, ("deletion", "insertion")):
        assert [ln.get_label() for ln in ax.get_lines()] == ["attribution order", "random order"]
        for line, oname in zip(ax.get_lines(), ("attribution", "random")):
            want = curves[(curves["curve"] == cname) & (curves["order"] == oname)]
            assert len(want) > 1
            np.testing.assert_array_equal(line.get_xdata(), want["fraction"].to_numpy())
            np.testing.assert_array_equal(line.get_ydata(), want["mean_rank"].to_numpy())


def test_an_empty_quality_background_is_refused_with_its_parameter_name(lgb_model, toy_data, tree_explanation):
    with pytest.raises(DataError, match=r"^quality background_size=0: the background sample needs at least one row$"):
        explanation_quality(lgb_model, toy_data, tree_explanation, background_size=0, sanity=False)


class _Linear:
    """score = sum of w_j x_j: feature f_j's single change from 0 to 1 gains j + 1."""

    def __init__(self, n: int) -> None:
        self.w = np.arange(1, n + 1, dtype=float)

    def score_features(self, x: pd.DataFrame) -> np.ndarray:
        return x.to_numpy(dtype=float) @ self.w


def test_smallest_change_searches_the_12_best_single_changes_by_default():
    feats = [f"f{j}" for j in range(14)]
    x_a = pd.DataFrame([np.zeros(14)], columns=feats)
    donors = pd.DataFrame([np.ones(14)], columns=feats, index=["d"])
    cf = smallest_change(_Linear(14), x_a, donors, feats, threshold=20.0)
    # no single change reaches 20 (at most 14); the best pair is f13 + f12 = 27
    assert cf["found"] and cf["searched_features"] == 12
    assert [c["feature"] for c in cf["changes"]] == ["f13", "f12"] and cf["new_score"] == 27.0
    assert smallest_change(_Linear(14), x_a, donors, feats, threshold=20.0, max_features=14)["searched_features"] == 14
    # out of reach (the 3 best changes give 39): not found, with the best single change
    low = smallest_change(_Linear(14), x_a, donors, feats, threshold=41.5, max_changes=3)
    assert low["found"] is False and low["searched_features"] == 12 and low["best_score"] == 14.0
