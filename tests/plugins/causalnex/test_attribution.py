"""Causal effect next to mean |attribution|, with the flags."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.explanation import Explanation
from whyrec.schema import Feature, FeatureSchema
from whyrec_causalnex.attribution import CAUSE_NOT_USED, USES_NO_CAUSE, causal_vs_attribution, mean_abs_attributions

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
    assert t.loc["price", "flag"] == "both"
    assert t.loc["reviews", "flag"] == USES_NO_CAUSE  # 44 % of the attribution, no path to the outcome
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
    assert t["flag"].tolist() == ["causal effect", "no causal effect", "no causal effect", "causal effect"]
    assert t["model"].eq("").all()


def test_an_uncertain_effect_does_not_count_as_causal():
    eff = EFFECTS.copy()
    eff.loc[0, "effect_low"] = 0.001  # the interval reaches ~0
    t = causal_vs_attribution(eff, [explanation()]).set_index("feature")
    assert t.loc["price", "flag"] == USES_NO_CAUSE
