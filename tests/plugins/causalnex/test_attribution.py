"""Causal effect next to mean |attribution|, with the flags."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.explanation import Explanation
from whyrec.schema import Feature, FeatureSchema
from whyrec_causalnex.attribution import (
    AGREE, CAUSE_NOT_USED, LEANS_ON_PROXY, SIGN_DISAGREES, causal_vs_attribution, correlation_interval,
    mean_abs_attributions,
)
from whyrec_causalnex.discretise import VariableStates

SCHEMA = FeatureSchema([Feature("price", "item"), Feature("reviews", "item"), Feature("item_id", "item", "categorical"),
                        Feature("tiny", "item")])


def explanation(model: str = "m") -> Explanation:
    attr = pd.DataFrame({"price": [1.0, -3.0], "reviews": [2.0, 2.0], "item_id": [0.5, -0.5], "tiny": [0.01, -0.01]})
    pairs = pd.DataFrame({"user": [1, 2], "item": [3, 4], "output_value": [0.0, 0.0], "base_value": [0.0, 0.0]})
    return Explanation(method="tree-shap", model=model, pairs=pairs, schema=SCHEMA, attributions=attr, additive=False)


EFFECTS = pd.DataFrame({
    "feature": ["price", "reviews", "tiny", "quality"],
    "effect": [0.30, 0.0, 0.002, 0.2],
    "effect_low": [0.25, 0.0, np.nan, 0.15],
    "effect_high": [0.35, 0.0, np.nan, 0.25],
    "path_to_outcome": [True, False, True, True],
})


def test_mean_abs_attributions():
    m = mean_abs_attributions([explanation()]).set_index("feature")
    assert m.loc["price", "mean_abs_attribution"] == 2.0
    assert m.loc["reviews", "mean_abs_attribution"] == 2.0
    assert m.loc["price", "attribution_share"] == pytest.approx(2.0 / 4.51)
    assert m.loc["tiny", "attribution_rank"] == 4


def test_flags():
    t = causal_vs_attribution(EFFECTS, [explanation()], min_effect=0.01, attribution_share=0.05).set_index("feature")
    assert t.loc["price", "flag"] == AGREE
    assert t.loc["reviews", "flag"] == LEANS_ON_PROXY  # 44 % of the attribution, no path to the outcome
    assert t.loc["tiny", "flag"] == "neither"
    assert t.loc["item_id", "flag"] == "not a causal variable"
    assert t.loc["quality", "flag"] == CAUSE_NOT_USED + " (not a model input)"
    assert t.loc["quality", "mean_abs_attribution"] == 0.0
    assert t.loc["price", "causal_effect"] == 0.30 and t.loc["price", "causal_effect_low"] == 0.25


def test_one_block_per_model_and_method():
    t = causal_vs_attribution(EFFECTS, [explanation("a"), explanation("b")])
    assert sorted(t["model"].unique()) == ["a", "b"]
    assert len(t) == 2 * 5


def test_without_attributions_the_table_still_lists_causal_effects():
    t = causal_vs_attribution(EFFECTS, [])
    # what the graph shows, not a claim of no effect: reviews has no path, tiny a path and a tiny effect
    assert t["flag"].tolist() == ["causal effect", "no path found in the learned graph", "no causal effect shown",
                                  "causal effect"]
    assert t["reason"].iloc[1] == ("no directed path to the outcome in the learned graph, so the effect is not estimated "
                                   "(a cause the structure search missed is not ruled out); no attributions to compare")
    assert t["model"].eq("").all()


def test_no_path_is_never_stated_as_no_effect():
    """A feature the learned graph has no path from, that the model leans on: the flag and the
    reason hedge, and the bootstrap graphs' interval (a resample that found a path) is quoted."""
    eff = EFFECTS.copy()
    eff.loc[1, "effect_high"] = 0.04  # some bootstrap graphs have a path from reviews
    t = causal_vs_attribution(eff, [explanation()]).set_index("feature")
    assert t.loc["reviews", "flag"] == LEANS_ON_PROXY
    assert "or an effect the learned graph misses" in LEANS_ON_PROXY and "confounded or proxy)" not in LEANS_ON_PROXY
    assert t.loc["reviews", "reason"] == (
        "44.3% of the attribution (>= 5%), but no directed path to the outcome in the learned graph, so the effect is "
        "not estimated (a cause the structure search missed is not ruled out; the bootstrap graphs put its effect at "
        "[0.000, 0.040])")


def test_an_uncertain_effect_does_not_count_as_causal():
    eff = EFFECTS.copy()
    eff.loc[0, "effect_low"] = 0.001  # the interval reaches ~0
    t = causal_vs_attribution(eff, [explanation()]).set_index("feature")
    assert t.loc["price", "flag"] == LEANS_ON_PROXY


def test_correlation_interval_is_fisher_z():
    x = np.arange(10, dtype=float)
    y = np.array([0.0, 2, 1, 3, 5, 4, 6, 8, 7, 9])
    r, lo, hi = correlation_interval(x, y)
    assert r == pytest.approx(1 - 6 * 6 / (10 * 99))  # a permutation: 1 - 6 sum(d^2) / (n (n^2 - 1)), sum(d^2) = 6
    z, se = np.arctanh(r), 1 / np.sqrt(7)
    assert lo == pytest.approx(np.tanh(z - 1.959964 * se), abs=1e-5)
    assert hi == pytest.approx(np.tanh(z + 1.959964 * se), abs=1e-5)
    assert np.isnan(correlation_interval(x[:3], y[:3])[0])  # too few rows: no direction
    assert np.isnan(correlation_interval(np.ones(10), y)[0])  # constant value: no direction


# rating: the model scores higher for a higher rating; do(high rating) lowers the outcome
RATING_STATES = {"rating": VariableStates("rating", "bins", ["low", "high"], edges=[3.0], counts=[50, 50], support=[1, 5]),
                 "price": VariableStates("price", "bins", ["low", "high"], edges=[10.0], counts=[50, 50], support=[5, 15])}


def signed_explanation(n: int = 40) -> Explanation:
    rng = np.random.default_rng(0)
    rating = rng.uniform(1, 5, n)
    price = rng.uniform(5, 15, n)
    attr = pd.DataFrame({"rating": 0.8 * (rating - 3), "price": -0.5 * (price - 10)})
    vals = pd.DataFrame({"rating": rating, "price": price})
    pairs = pd.DataFrame({"user": range(n), "item": range(n), "output_value": 0.0, "base_value": 0.0})
    schema = FeatureSchema([Feature("rating", "item"), Feature("price", "item")])
    return Explanation(method="tree-shap", model="m", pairs=pairs, schema=schema, attributions=attr,
                       feature_values=vals, additive=False)


def levels_table(rating_ci, price_ci):
    rows = []
    for f, (p0, p1), (lo, hi) in (("rating", (0.30, 0.25), rating_ci), ("price", (0.30, 0.20), price_ci)):
        rows.append({"feature": f, "level": 0, "p_do": p0, "effect_low": 0.0, "effect_high": 0.0})
        rows.append({"feature": f, "level": 1, "p_do": p1, "effect_low": lo, "effect_high": hi})
    return pd.DataFrame(rows)


def effects_table(rating_low):
    return pd.DataFrame({"feature": ["rating", "price"], "effect": [0.05, 0.10], "effect_low": [rating_low, 0.07],
                         "effect_high": [0.08, 0.13], "path_to_outcome": [True, True]})


def test_sign_disagreement_is_flagged_only_when_both_intervals_exclude_zero():
    e = signed_explanation()
    t = causal_vs_attribution(effects_table(0.03), [e], levels=levels_table((-0.08, -0.02), (-0.13, -0.07)),
                              states=RATING_STATES).set_index("feature")
    assert t.loc["rating", "flag"] == SIGN_DISAGREES
    assert t.loc["rating", "attribution_direction"] == pytest.approx(1.0)
    assert t.loc["rating", "causal_direction"] == pytest.approx(-0.05)
    assert (t.loc["rating", "causal_sign"], t.loc["rating", "attribution_sign"]) == (-1, 1)
    assert t.loc["rating", "reason"].startswith("the model scores higher when it is higher (attribution vs value "
                                                "correlation +1.000 [")
    assert "but raising it lowers the outcome (P(do(high)) - P(do(low)) -0.050 [-0.080, -0.020])" in t.loc["rating", "reason"]
    # price: attribution falls with price and so does the outcome: they agree
    assert t.loc["price", "flag"] == AGREE and t.loc["price", "attribution_sign"] == -1
    # the mean signed attribution of the high state minus the low state, on the learner's states
    hl = e.attributions["rating"][e.feature_values["rating"] >= 3].mean() - e.attributions["rating"][e.feature_values["rating"] < 3].mean()
    assert t.loc["rating", "attribution_high_vs_low"] == pytest.approx(hl)
    # the causal direction's interval reaching 0: no sign claim, the effect interval decides
    t = causal_vs_attribution(effects_table(0.03), [e], levels=levels_table((-0.08, 0.01), (-0.13, -0.07)),
                              states=RATING_STATES).set_index("feature")
    assert t.loc["rating", "flag"] == AGREE and t.loc["rating", "causal_sign"] == 0


def test_leaning_more_than_the_causal_effect_supports():
    """The effect's interval reaching below min_effect / 2: the model's reliance is not supported."""
    e = signed_explanation()
    t = causal_vs_attribution(effects_table(0.001), [e], levels=levels_table((-0.08, 0.01), (-0.13, -0.07)),
                              states=RATING_STATES, min_effect=0.01).set_index("feature")
    assert t.loc["rating", "flag"] == LEANS_ON_PROXY
    m = e.attributions.abs().mean()
    share = m["rating"] / m.sum()
    assert t.loc["rating", "attribution_share"] == pytest.approx(share)
    assert t.loc["rating", "reason"] == (f"{100 * share:.1f}% of the attribution (>= 5%), while causal effect 0.050 "
                                         "[0.001, 0.080] is not shown to reach 0.01; attribution vs value correlation "
                                         "+1.000 [+1.000, +1.000]")


def test_a_methods_coverage_is_not_the_models_inputs():
    """Issue 15.1: an explainer that covers only history positions must not make a feature the
    model takes look like "not a model input"; a feature no input list has still is one."""
    full = explanation("torch")
    partial = type(full)(method="attention-map", model="torch", pairs=full.pairs,
                         schema=full.schema.select(["price"]), attributions=full.attributions[["price"]].copy())
    t = causal_vs_attribution(EFFECTS, [full, partial])
    att = t[t["method"] == "attention-map"].set_index("feature")
    assert "reviews" not in att.index and "item_id" not in att.index  # covered by the other method: no claim
    assert att.loc["quality", "flag"] == CAUSE_NOT_USED + " (not a model input)"  # no method of the model has it
    # the model's declared inputs decide: quality is one, so the partial method makes no claim on it
    t2 = causal_vs_attribution(EFFECTS, [partial], model_inputs={"torch": ["price", "quality"]}).set_index("feature")
    assert "quality" not in t2.index
    assert t2.loc["tiny", "flag"] == "neither (not a model input)"


def test_report_drops_coverage_rows_of_older_tables():
    """A table written before 15.1 said "(not a model input)" for a feature another method of
    the same model attributes; the report drops such rows and names the partial method."""
    from whyrec_causalnex.report import coverage_checked

    cva = pd.DataFrame({
        "feature": ["item_popularity", "hist_0", "item_popularity", "hist_0", "quality"],
        "model": ["torch"] * 5,
        "method": ["attention-map", "attention-map", "integrated-gradients", "integrated-gradients", "integrated-gradients"],
        "flag": [CAUSE_NOT_USED + " (not a model input)", "neither", AGREE, "neither", CAUSE_NOT_USED + " (not a model input)"],
    })
    kept, partial = coverage_checked(cva)
    assert list(zip(kept["feature"], kept["method"])) == [("hist_0", "attention-map"), ("item_popularity", "integrated-gradients"),
                                                         ("hist_0", "integrated-gradients"), ("quality", "integrated-gradients")]
    assert partial == {("torch", "attention-map"): ["hist_0"]}
