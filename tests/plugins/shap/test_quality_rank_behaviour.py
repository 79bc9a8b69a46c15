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


def test_summary_header_five_random_orders_by_default_and_k_up_to_the_number_of_units(lgb_model, toy_data,
                                                                                      tree_explanation):
    n_u = len(tree_explanation.attributions.columns)
    q = explanation_quality(lgb_model, toy_data, tree_explanation, n_pairs=3, rerun_seeds=0, sanity=False,
                            ks=(1, n_u, n_u + 1))
    s = q.summary
    assert s["random_orders"] == 5
    assert (s["method"], s["model"], s["pairs"], s["units"], s["unit_kind"], s["seed"]) == (
        tree_explanation.method, tree_explanation.model, 3, n_u, "feature", 0)
    # k = every unit is reported (all removed / only they kept); k above it is not
    assert f"comprehensiveness@{n_u}" in s and f"sufficiency@{n_u}" in s and f"rank_drop@{n_u}" in s
    assert not any(key.endswith(f"@{n_u + 1}") for key in s)


def test_field_units_of_a_field_level_explanation_ignore_the_finer_groups():
    """A field-level explanation (columns user, item) of a schema whose features also have finer
    groups: each unit is a field and holds every feature of it."""
    from whyrec import Explanation, Feature, FeatureSchema

    from whyrec_shap.quality import explanation_units

    schema = FeatureSchema([Feature("age", "user", group="demo"), Feature("gender", "user", group="demo"),
                            Feature("price", "item", group="cost"), Feature("genre", "item")])

    class _Model:
        feature_names = ["age", "gender", "price", "genre"]

    e = Explanation(method="field", model="m", pairs=pd.DataFrame({"user": [1], "item": [2]}), schema=schema,
                    field_attributions=pd.DataFrame({"user": [0.5], "item": [-0.25]}))
    table, units = explanation_units(e, _Model())
    assert units == {"user": ["age", "gender"], "item": ["price", "genre"]}
    # columns named <field>:<group>: the finer groups are the units
    e2 = Explanation(method="group", model="m", pairs=e.pairs, schema=schema,
                     field_attributions=pd.DataFrame({"user:demo": [0.5], "item:cost": [0.1], "item": [0.2]}))
    assert explanation_units(e2, _Model())[1] == {"user:demo": ["age", "gender"], "item:cost": ["price"],
                                                   "item": ["genre"]}


class _LabelRecorder:
    """A model that keeps the labels it was fitted on (to see what retraining gave it)."""

    def __init__(self, **params):
        self.params = params

    def fit(self, data):
        self.labels = data.train["label"].to_numpy().copy()
        return {}


def test_retraining_on_shuffled_labels_uses_seed_0_by_default(toy_data):
    from whyrec_shap.quality import retrain_on_shuffled_labels

    model = _LabelRecorder(depth=2)
    clone = retrain_on_shuffled_labels(model, toy_data)
    want = np.random.default_rng(0).permutation(toy_data.train["label"].to_numpy())
    np.testing.assert_array_equal(clone.labels, want)
    assert clone.params == {"depth": 2} and clone is not model
    assert not np.array_equal(want, np.random.default_rng(1).permutation(toy_data.train["label"].to_numpy()))


def test_with_one_other_candidate_the_normalised_rank_is_rank_minus_1(lgb_model, toy_data):
    """Ranks are normalised by the number of other candidates: (rank - 1) / (candidates - 1), so
    0 is the top and 1 the bottom. With one other candidate that divisor is 1."""
    import copy

    data = copy.copy(toy_data)
    a, b = list(toy_data.item_ids[:2])
    data.candidates = lambda user: np.array([a, b])  # every user chooses between two items
    pairs = pd.DataFrame({"user": list(toy_data.user_ids[:3]), "item": [a] * 3})
    e = TreeShap().explain(lgb_model, data, pairs)
    q = explanation_quality(lgb_model, data, e, n_pairs=3, n_random=2, rerun_seeds=0, sanity=False)
    c = q.tables["curves"]
    assert c["mean_rank"].between(1, 2).all() and c["mean_rank"].nunique() > 1  # rank 1 or 2, averaged
    np.testing.assert_allclose(c["mean_normalized_rank"], c["mean_rank"] - 1, atol=1e-12)


def _why(gap_sign: float, counterfactual: dict, n_units: int = 7):
    from whyrec_shap.rank import WhyAbove

    diff = pd.DataFrame({"unit": [f"u{j}" for j in range(n_units)],
                         "difference": [0.5 - 0.1 * j for j in range(n_units)],
                         "value_a": [1.5] * n_units, "value_b": ["x"] * n_units})
    return WhyAbove(user=7, item_a=1, item_b=2, title_a="A", title_b="B", score_a=0.5, score_b=0.5 - gap_sign * 0.25,
                    rank_a=4, rank_b=2, k=3, n_candidates=9, method="tree-shap", difference=diff,
                    difference_error=0.0, counterfactual=counterfactual)


def test_why_above_text_as_users_read_it():
    cf = {"found": True, "threshold": 0.8, "new_score": 0.9, "new_rank": 2,
          "changes": [{"feature": "price", "from": 10.0, "to": 4.25, "donor": 11},
                      {"feature": "genre", "from": "a", "to": "b", "donor": 12}]}
    lines = _why(-1.0, cf).lines()
    assert lines[0] == ("For user 7, A (rank 4, score 0.500) is below B (rank 2, score 0.750): gap -0.250 "
                        "(tree-shap).")
    assert lines[1:6] == [f"  u{j} (1.5 vs x): {0.5 - 0.1 * j:+.3f}" for j in range(5)]  # the top 5 units
    assert lines[6] == ("To reach the top 3 (score > 0.800): change price 10 -> 4.25 (as item 11); genre a -> b "
                        "(as item 12); new score 0.900, rank 2.")
    assert len(lines) == 7
    up = _why(1.0, {"already_in_top_k": True}).lines()
    assert "is above B" in up[0] and up[-1] == "A is already in the top 3."
    assert _why(1.0, {"found": False, "max_changes": 3, "searched_features": 4}).lines()[-1] == (
        "No change of up to 3 of 4 item-side features moves A into the top 3.")


def test_top_k_of_every_candidate_has_no_threshold_to_beat(lgb_model, toy_data):
    """k = the number of candidates: the item is in the top k whatever its score, and the score to
    beat is -inf (fewer than k other candidates)."""
    from whyrec_shap.rank import candidate_scores, smallest_change_into_top_k

    scores = candidate_scores(lgb_model, toy_data, 1)
    worst = scores.idxmin()
    cf = smallest_change_into_top_k(lgb_model, toy_data, 1, worst, k=len(scores), scores=scores)
    assert cf["already_in_top_k"] is True and cf["found"] is True and cf["changes"] == []
    assert cf["threshold"] == -np.inf and cf["rank"] == 1 + int((scores > scores.min()).sum())  # ties share a rank


def test_why_above_defaults_to_the_top_10_and_shows_both_items_values(lgb_model, toy_data):
    from whyrec_shap.rank import candidate_scores, why_above

    scores = candidate_scores(lgb_model, toy_data, 2).sort_values(ascending=False, kind="stable")
    a, b = scores.index[12], scores.index[0]
    w = why_above(lgb_model, toy_data, 2, a, b)
    assert w.k == 10 and w.counterfactual["k"] == 10
    X = toy_data.features(toy_data.user_pairs(2, [a, b]))[lgb_model.feature_names]
    d = w.difference.set_index("unit")
    for unit in d.index:
        assert d.at[unit, "value_a"] == X[unit].iloc[0] and d.at[unit, "value_b"] == X[unit].iloc[1], unit
