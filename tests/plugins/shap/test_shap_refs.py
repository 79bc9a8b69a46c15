"""whyrec-shap checks that guard truth, fed real violations and tested at their limits:
tree-shap's additivity check against a margin that does not add up (the worst row named),
exact-field-shapley's documented 16-player limit (16 works, 17 is refused) and its Shapley
combination against the permutation definition."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import RegistryError, UnsupportedError
from whyrec_shap.exact import (
    MAX_FIELDS, ExactFieldShapley, coalition_masks, exact_group_shapley, model_groups, shapley_from_values,
)
from whyrec_shap.tree import AdditivityError, TreeShap

from shap_testkit import LinearModel, toy


class OffsetMargin:
    """A tree model whose reported margin is off by ``offsets`` per row: attributions computed
    from the booster then fail to add up by exactly |offset|."""

    def __init__(self, model, offsets) -> None:
        self._m, self.offsets = model, np.asarray(offsets, float)

    def __getattr__(self, name):
        return getattr(self._m, name)

    def predict_margin(self, M):
        return self._m.predict_margin(M) + self.offsets[: len(M)]


@pytest.fixture(scope="module")
def pairs():
    return pd.DataFrame({"user": [1, 2, 3, 4], "item": [101, 102, 103, 104]})


def test_tree_shap_adds_up_on_the_real_margin(lgb_model, toy_data, pairs):
    e = TreeShap().explain(lgb_model, toy_data, pairs)
    assert (e.pairs["additivity_error"] < 1e-9).all()
    assert e.summary["additivity_ok"] is True and e.summary["max_additivity_error"] < 1e-9
    assert e.summary["additivity_tolerance"] == 1e-6 and e.summary["rows"] == 4
    M = lgb_model.encode(toy_data.features(pairs)[lgb_model.feature_names])
    np.testing.assert_allclose(e.pairs["output_value"], lgb_model.predict_margin(M), atol=1e-12)


def test_tree_shap_additivity_violation_is_caught_and_names_the_worst_row(lgb_model, toy_data, pairs):
    model = OffsetMargin(lgb_model, [0.0, 0.05, 0.3, 0.1])
    with pytest.raises(AdditivityError, match=r"= 0\.3 > tolerance 1e-06 for user 3, item 103 "):
        TreeShap().explain(model, toy_data, pairs)
    with pytest.raises(AdditivityError, match=r"= 0\.3 > tolerance 0\.29 for user 3, item 103"):
        TreeShap(tolerance=0.29).explain(model, toy_data, pairs)


def test_tree_shap_worst_row_first_or_last(lgb_model, toy_data, pairs):
    with pytest.raises(AdditivityError, match=r"= 0\.5 > tolerance 0\.01 for user 1, item 101"):
        TreeShap(tolerance=0.01).explain(OffsetMargin(lgb_model, [-0.5, 0.0, 0.0, 0.2]), toy_data, pairs)
    with pytest.raises(AdditivityError, match=r"= 0\.7 > tolerance 0\.01 for user 4, item 104"):
        TreeShap(tolerance=0.01).explain(OffsetMargin(lgb_model, [0.0, 0.2, 0.0, 0.7]), toy_data, pairs)


def test_tree_shap_records_the_violation_when_not_checked(lgb_model, toy_data, pairs):
    offsets = [0.0, -0.05, 0.3, 0.1]
    e = TreeShap(check_additivity=False).explain(OffsetMargin(lgb_model, offsets), toy_data, pairs)
    np.testing.assert_allclose(e.pairs["additivity_error"], np.abs(offsets), atol=1e-9)
    assert e.summary["max_additivity_error"] == pytest.approx(0.3, abs=1e-9)
    assert e.summary["additivity_ok"] is False
    assert e.max_additivity_error == pytest.approx(0.3, abs=1e-9)


def test_tree_shap_tolerance_above_the_error_passes(lgb_model, toy_data, pairs):
    e = TreeShap(tolerance=0.31).explain(OffsetMargin(lgb_model, [0.0, 0.05, 0.3, 0.1]), toy_data, pairs)
    assert e.summary["additivity_ok"] is True and e.summary["additivity_tolerance"] == 0.31
    assert e.summary["max_additivity_error"] == pytest.approx(0.3, abs=1e-9)


def test_tree_shap_output_is_the_margin_and_base_plus_phi(lgb_model, toy_data, pairs):
    e = TreeShap().explain(lgb_model, toy_data, pairs)
    np.testing.assert_allclose(e.attributions.sum(axis=1) + e.pairs["base_value"], e.pairs["output_value"], atol=1e-9)
    assert list(e.attributions.columns) == list(lgb_model.feature_names)
    assert e.params["output"] == "raw margin" and "tree_path_dependent" in e.params["engine"]
    # field sums of the feature attributions
    groups = toy_data.schema.select(lgb_model.feature_names).groups()
    for f, cols in groups.items():
        np.testing.assert_allclose(e.field_attributions[f], e.attributions[cols].sum(axis=1), atol=1e-12)


def test_tree_shap_interventional_adds_up_with_its_own_base(numeric_lgb, toy_data, pairs):
    e = TreeShap(feature_perturbation="interventional", background_size=20).explain(numeric_lgb, toy_data, pairs)
    assert e.summary["additivity_ok"] is True and (e.pairs["additivity_error"] < 1e-6).all()
    assert e.params["engine"] == "shap.TreeExplainer(interventional)"
    with pytest.raises(AdditivityError):
        TreeShap(feature_perturbation="interventional", background_size=20).explain(
            OffsetMargin(numeric_lgb, [0.0, 0.0, 0.01, 0.0]), toy_data, pairs)


# -- exact-field-shapley ---------------------------------------------------------------------
def permutation_shapley(v: dict, n: int) -> np.ndarray:
    """The definition: average marginal contribution over all orderings of the players."""
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        S = 0
        for u in order:
            phi[u] += v[S | (1 << u)] - v[S]
            S |= 1 << u
    return phi / math.factorial(n)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_shapley_from_values_equals_the_permutation_definition(n):
    rng = np.random.default_rng(n)
    v = rng.normal(size=(2, 2**n))
    phi = shapley_from_values(v, n)
    for r in range(2):
        np.testing.assert_allclose(phi[r], permutation_shapley(dict(enumerate(v[r])), n), atol=1e-12)
        assert phi[r].sum() == pytest.approx(v[r, -1] - v[r, 0])  # efficiency


def test_coalition_masks_bit_u_is_player_u():
    m = coalition_masks(3)
    assert m.shape == (8, 3)
    assert m.tolist()[5] == [True, False, True] and m.tolist()[6] == [False, True, True]
    assert m[0].sum() == 0 and m[7].all()


def test_exact_group_shapley_linear_closed_form():
    w = np.array([1.0, -2.0, 0.5])
    f = lambda X: X.to_numpy(float) @ w + 3.0  # noqa: E731
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0], "c": [4.0, -4.0]})
    B = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 1.0], "c": [2.0, 0.0]})
    phi, base, fx = exact_group_shapley(f, X, B, {"g1": ["a", "c"], "g2": ["b"]})
    d = (X - B.mean()).to_numpy() * w
    np.testing.assert_allclose(phi, np.column_stack([d[:, 0] + d[:, 2], d[:, 1]]), atol=1e-12)
    assert base == pytest.approx(float(f(B).mean()))
    np.testing.assert_allclose(fx, f(X))


def wide_model():
    data = toy.make_toy_data(extra_features=2)
    m = LinearModel()
    m.fit(data)
    return m, data


def players(m, k):
    """k groups over the model's features: the first k-1 features alone, the rest together."""
    names = list(m.feature_names)
    return {**{f"g{j}": [c] for j, c in enumerate(names[: k - 1])}, f"g{k - 1}": names[k - 1:]}


def test_exact_field_shapley_limit_is_16_fields_at_the_boundary():
    m, data = wide_model()
    assert MAX_FIELDS == 16 and len(m.feature_names) >= 17
    pair = pd.DataFrame({"user": [1], "item": [101]})
    e = ExactFieldShapley(groups=players(m, 16), background_size=2).explain(m, data, pair)  # documented as allowed
    assert list(e.field_attributions.columns) == [f"g{j}" for j in range(16)]
    assert e.summary["coalitions"] == 2**16 and e.summary["background_rows"] == 2
    assert e.summary["model_rows"] == 2**16 * 2
    assert e.max_additivity_error < 1e-9
    with pytest.raises(UnsupportedError, match=r"has 17 fields/groups at level 'field' .*limited to 16"):
        ExactFieldShapley(groups=players(m, 17), background_size=2).explain(m, data, pair)


def test_exact_field_shapley_closed_form_on_the_linear_model(linear_model, toy_data, pairs):
    e = ExactFieldShapley(background_size=10).explain(linear_model, toy_data, pairs)
    ex = ExactFieldShapley(background_size=10)
    B = ex.background(linear_model, toy_data)
    X = toy_data.features(pairs)[linear_model.feature_names]
    contrib = (linear_model.matrix(X) - linear_model.matrix(B).mean(axis=0)) * linear_model.clf.coef_[0]
    groups = model_groups(linear_model, toy_data, "field")
    for g, cols in groups.items():
        idx = [linear_model.feature_names.index(c) for c in cols]
        np.testing.assert_allclose(e.field_attributions[g], contrib[:, idx].sum(axis=1), atol=1e-9)
    np.testing.assert_allclose(e.pairs["output_value"], linear_model.score_features(X), atol=1e-12)
    assert e.pairs["base_value"].iloc[0] == pytest.approx(float(linear_model.score_features(B).mean()))
    assert e.params["groups"] == groups and e.summary["players"] == list(groups)


def test_model_groups_explicit_groups():
    m, data = wide_model()
    names = list(m.feature_names)
    out = model_groups(m, data, "field", {"a": names[:2], "b": names[2:3], "empty": []})
    assert out == {"a": names[:2], "b": names[2:3], "other": names[3:]}
    assert model_groups(m, data, "field", {"all": names}) == {"all": names}
    with pytest.raises(RegistryError, match=r"groups name features \['nope'\] that model 'linear' does not use"):
        model_groups(m, data, "field", {"a": ["nope", names[0]]})


def test_model_groups_from_the_schema_and_unknown_features():
    m, data = wide_model()
    by_field = model_groups(m, data, "field")
    assert sorted(c for cols in by_field.values() for c in cols) == sorted(m.feature_names)
    assert "other" not in by_field and set(by_field) <= {"user", "item", "context", "history", "cross"}

    class Extra:
        name = "extra"
        feature_names = [*m.feature_names, "not_in_schema"]

    assert model_groups(Extra(), data, "field")["other"] == ["not_in_schema"]
    by_group = model_groups(m, data, "group")
    assert by_group == data.schema.select(m.feature_names).groups("group")


def test_level_is_validated():
    with pytest.raises(RegistryError, match=r"level 'row' is not one of \['field', 'group'\]"):
        ExactFieldShapley(level="row")
    assert ExactFieldShapley(level="group").params["level"] == "group"


# -- quality and rank helpers ----------------------------------------------------------------
def test_quality_spearman_against_scipy_with_ties():
    from scipy.stats import spearmanr

    from whyrec_shap.quality import spearman

    rng = np.random.default_rng(11)
    a, b = rng.integers(0, 4, 30).astype(float), rng.normal(size=30)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert math.isnan(spearman(np.ones(4), b[:4])) and math.isnan(spearman(b[:4], np.ones(4)))


def test_quality_top_overlap_hand_worked():
    from whyrec_shap.quality import top_overlap

    a, b = np.array([5.0, -4.0, 0.1, 0.0]), np.array([-6.0, 0.0, 5.0, 0.2])
    assert top_overlap(a, b) == pytest.approx(2 / 4)  # default k = 3: {0, 1, 2} vs {0, 2, 3}
    assert top_overlap(a, b, k=1) == 1.0 and top_overlap(a, b, k=9) == 1.0  # k capped at 4 units
    assert top_overlap(np.zeros(3), np.zeros(3), k=2) == 1.0  # ties: the earlier units
    assert top_overlap(np.array([]), np.array([])) == 1.0


def test_quality_steps_grid():
    from whyrec_shap.quality import MAX_STEPS, _steps

    assert MAX_STEPS == 20
    assert _steps(4, (1, 3, 5)).tolist() == [0, 1, 2, 3, 4]
    g = _steps(40, (1, 3, 5))
    assert g.tolist() == sorted({*range(0, 41, 2), 1, 3, 5})
    assert _steps(0, (1,)).tolist() == [0]


def test_rank_against_counts_strictly_higher_scores():
    from whyrec_shap.rank import rank_against

    others = np.array([0.9, 0.1, 0.5, 0.5])
    assert rank_against(others, 0.5) == 2  # only 0.9 is strictly higher: ties do not push it down
    assert rank_against(others, np.array([1.0, 0.5, 0.2, 0.0])).tolist() == [1, 2, 4, 5]
    assert rank_against(np.array([]), 0.3) == 1


def test_explanation_units_of_feature_and_field_explanations(lgb_model, toy_data, pairs):
    from whyrec_shap.quality import explanation_units

    e = TreeShap().explain(lgb_model, toy_data, pairs)
    table, units = explanation_units(e, lgb_model)
    assert table is e.attributions and units == {c: [c] for c in lgb_model.feature_names}
    f = ExactFieldShapley(background_size=5).explain(lgb_model, toy_data, pairs)
    table, units = explanation_units(f, lgb_model)
    assert table is f.field_attributions and units == f.params["groups"]
    g = ExactFieldShapley(groups={"p": ["price"], "rest": [c for c in lgb_model.feature_names if c != "price"]},
                          background_size=5).explain(lgb_model, toy_data, pairs)
    assert explanation_units(g, lgb_model)[1]["p"] == ["price"]


# -- documented defaults, exact labels and the additivity boundary ---------------------------
def four_decimals(x: float) -> bool:
    return abs(x * 1e4 - round(x * 1e4)) < 1e-6


def test_tree_shap_documented_defaults():
    assert TreeShap().params == {"feature_perturbation": "tree_path_dependent", "background_size": 100, "seed": 0,
                                 "tolerance": 1e-6, "check_additivity": True, "n_reasons": 3, "n_waterfall": 3,
                                 "quality_pairs": 20, "quality_sanity": True, "engine": "whyrec", "threads": 1}


def test_exact_field_shapley_documented_defaults():
    assert ExactFieldShapley().params == {"level": "field", "groups": None, "background_size": 50, "seed": 0,
                                          "max_rows": 200_000, "n_reasons": 3, "n_waterfall": 3, "quality_pairs": 20,
                                          "quality_sanity": True}
    with pytest.raises(RegistryError, match=r"^explainer 'exact-field-shapley': level 'row' is not one of \['field', 'group'\]$"):
        ExactFieldShapley(level="row")


def test_tree_shap_error_at_exactly_the_tolerance_passes(lgb_model, toy_data, pairs):
    model = OffsetMargin(lgb_model, [0.0, 0.25, 0.5, 0.125])
    err = TreeShap(check_additivity=False).explain(model, toy_data, pairs).pairs["additivity_error"].to_numpy()
    e = TreeShap(tolerance=float(err.max())).explain(model, toy_data, pairs)  # not above the tolerance: accepted
    assert e.summary["additivity_ok"] is True
    with pytest.raises(AdditivityError, match=r"Set check_additivity = false to record the error and continue$"):
        TreeShap(tolerance=float(np.nextafter(err.max(), 0))).explain(model, toy_data, pairs)


def test_tree_shap_labels_and_summary(lgb_model, toy_data, pairs):
    e = TreeShap().explain(lgb_model, toy_data, pairs)
    assert e.additive is True and e.method == "tree-shap"
    assert e.params["engine"] == "whyrec_shap.treeshap_engine(tree_path_dependent), equal to LightGBM pred_contrib"
    assert TreeShap(engine="shap").explain(lgb_model, toy_data, pairs).params["engine"] == \
        "shap.TreeExplainer(tree_path_dependent) via LightGBM pred_contrib"
    assert set(e.summary) == {"max_additivity_error", "additivity_tolerance", "additivity_ok", "engine", "seconds", "rows"}
    assert four_decimals(e.summary["seconds"])


def test_exact_field_shapley_labels_and_summary(lgb_model, toy_data, pairs):
    e = ExactFieldShapley(background_size=5).explain(lgb_model, toy_data, pairs)
    assert e.params["output"] == "model score_features (raw)"
    X = toy_data.features(pairs)[lgb_model.feature_names]
    assert e.schema.names == [c for c in X.columns if c in toy_data.schema]
    assert four_decimals(e.summary["seconds"])
    # n_reasons = 3: at most the 3 largest positive and the 3 most negative fields of a pair
    neg = [i for i in range(len(pairs)) if (e.field_attributions.iloc[i] < 0).all()]
    assert neg and all(len(e.reasons[i]) == 3 for i in neg) and len(e.field_attributions.columns) > 3


def test_tree_shap_supports_only_tree_models_with_a_booster():
    class M:
        capabilities = frozenset({"tree"})
        booster = None

        def encode(self, X):
            return X

    assert not TreeShap().supports(M())
    m = M()
    m.capabilities, m.booster = frozenset({"linear"}), object()
    assert not TreeShap().supports(m)
    m.capabilities = frozenset({"tree"})
    assert TreeShap().supports(m)
    m.encode = None
    assert not TreeShap().supports(m)


def test_tree_shap_reuses_its_shap_explainer(lgb_model):
    ex = TreeShap()
    a = ex._shap_tree_explainer(lgb_model.booster)
    assert ex._shap_tree_explainer(lgb_model.booster) is a


class ListOutput:
    """shap's older list output (one array per class): the last one is the positive class."""

    def __init__(self, real):
        self.real = real
        self.expected_value = real.expected_value

    def shap_values(self, M, check_additivity=False):
        phi = np.asarray(self.real.shap_values(M, check_additivity=False))
        return [phi + 7.0, phi - 3.0, phi]


def test_tree_shap_takes_the_last_array_of_a_list_output(lgb_model, toy_data, pairs, monkeypatch):
    ex = TreeShap()
    real = ex._shap_tree_explainer(lgb_model.booster)
    monkeypatch.setattr(ex, "_shap_tree_explainer", lambda booster: ListOutput(real))
    e = ex.explain(lgb_model, toy_data, pairs)
    assert e.summary["additivity_ok"] is True


def test_tree_shap_interventional_takes_the_last_array_of_a_list_output(numeric_lgb, toy_data, pairs, monkeypatch):
    import shap

    real_cls = shap.TreeExplainer

    def fake(*a, **kw):
        return ListOutput(real_cls(*a, **kw))

    monkeypatch.setattr(shap, "TreeExplainer", fake)
    e = TreeShap(feature_perturbation="interventional", background_size=20).explain(numeric_lgb, toy_data, pairs)
    assert e.summary["additivity_ok"] is True


def test_retrain_on_shuffled_labels_keeps_the_model_parameters(lgb_model, toy_data):
    from whyrec_shap.quality import retrain_on_shuffled_labels

    clone = retrain_on_shuffled_labels(lgb_model, toy_data, seed=3)
    assert type(clone) is type(lgb_model) and clone is not lgb_model
    assert clone.params == lgb_model.params
    assert retrain_on_shuffled_labels(lgb_model, toy_data, seed=3) is clone  # cached


class ShiftedBase:
    """tree-shap with the first pair's base value raised by 0.3 and one attribution lowered by
    0.3: still additive per pair, but the two pairs no longer share a base value."""

    def __init__(self):
        self.inner = TreeShap()

    def supports(self, model):
        return self.inner.supports(model)

    def explain(self, model, data, pairs):
        e = self.inner.explain(model, data, pairs)
        e.pairs.loc[0, "base_value"] += 0.3
        e.attributions.iloc[0, 0] -= 0.3
        return e


def test_why_above_difference_error_counts_the_base_gap(lgb_model, toy_data):
    from whyrec_shap.rank import why_above

    w = why_above(lgb_model, toy_data, 2, 101, 102, explainer=ShiftedBase(), k=3)
    assert w.difference_error < 1e-9  # differences + base gap = score gap
    assert w.difference["difference"].sum() == pytest.approx(w.gap - 0.3, abs=1e-9)
    d = w.to_dict()
    assert list(d) == ["user", "item_a", "item_b", "title_a", "title_b", "score_a", "score_b", "gap", "rank_a", "rank_b",
                       "k", "n_candidates", "method", "difference_error", "difference", "counterfactual"]
    assert d["rank_b"] == w.rank_b and d["counterfactual"] == w.counterfactual
    first = w.lines()[0]
    assert first.startswith(f"For user 2, {w.title_a} (rank {w.rank_a}, score {w.score_a:.3f}) is ")
    assert first.endswith(f"(rank {w.rank_b}, score {w.score_b:.3f}): gap {w.gap:+.3f} (tree-shap).")


def test_default_explainer_for_a_non_tree_model(linear_model):
    from whyrec_shap.rank import _default_explainer

    ex = _default_explainer(linear_model)
    assert ex.name == "permutation-shap"
    assert ex.params["max_evals"] == 2 * len(linear_model.feature_names) + 1 + 200


def test_quality_per_pair_auc_averages_to_the_curve_auc(lgb_model, toy_data, pairs):
    from whyrec_shap.quality import explanation_quality

    e = TreeShap().explain(lgb_model, toy_data, pairs)
    q = explanation_quality(lgb_model, toy_data, e, seed=5, n_pairs=4, n_random=2, background_size=10)
    s, per = q.summary, q.tables["pairs"]
    assert s["seed"] == 5 and s["pairs"] == 4 and s["random_orders"] == 2 and s["background_rows"] == 10
    # the trapezoid rule is linear: the mean of the per-pair areas is the area of the mean curve
    assert per["deletion_rank_auc"].mean() == pytest.approx(s["deletion_rank_auc"], abs=1e-12)
    assert per["deletion_rank_auc_random"].mean() == pytest.approx(s["deletion_rank_auc_random"], abs=1e-12)
    assert ((per["deletion_rank_auc"] >= 0) & (per["deletion_rank_auc"] <= 1)).all()


class Shrunk:
    """Stands for a model retrained on shuffled labels whose attributions are the original
    ones times ``factor``: same ranking, relative change exactly 1 - factor."""

    def __init__(self, model, factor):
        self.model, self.factor = model, factor


class ScalingExplainer:
    def __init__(self, seed=0):
        self.inner = TreeShap(seed=seed)

    def explain(self, model, data, pairs):
        if isinstance(model, Shrunk):
            e = self.inner.explain(model.model, data, pairs)
            e.attributions = e.attributions * model.factor
            return e
        return self.inner.explain(model, data, pairs)


@pytest.mark.parametrize("factor,passed", [(0.3, True), (0.6, False)])
def test_quality_sanity_threshold_is_half_the_attribution_size(lgb_model, toy_data, pairs, factor, passed):
    from whyrec_shap.quality import explanation_quality

    e = TreeShap().explain(lgb_model, toy_data, pairs)
    q = explanation_quality(lgb_model, toy_data, e, n_pairs=4, n_random=1, background_size=5, rerun_seeds=0,
                            explainer_for_seed=ScalingExplainer, retrain=lambda m, d, s: Shrunk(m, factor))
    s = q.summary
    assert s["sanity_relative_change"] == pytest.approx(1 - factor) and s["sanity_spearman_mean"] == pytest.approx(1.0)
    assert s["sanity_magnitude_ratio"] == pytest.approx(factor)
    assert s["sanity_passed"] is passed
