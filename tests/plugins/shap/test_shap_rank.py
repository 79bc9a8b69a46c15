"""Rank-aware explanations: why A is above B, and what would move A into the top-k."""
from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from whyrec.atomic import to_json
from whyrec.errors import DataError
from whyrec_shap.exact import ExactFieldShapley
from whyrec_shap.rank import default_changeable, rank_against, why_above


def _ranked(model, data, user):
    cands = data.candidates(user)
    s = model.score(pd.DataFrame({"user": user, "item": cands}))
    order = np.argsort(-s, kind="stable")
    return cands[order], s[order]


def test_difference_adds_up_to_the_score_gap(lgb_model, toy_data):
    items, scores = _ranked(lgb_model, toy_data, 2)
    a, b = items[1], items[6]
    w = why_above(lgb_model, toy_data, 2, a, b, k=3)
    assert w.method == "tree-shap"
    # rank = 1 + number of other candidates scoring strictly higher (ties share the better rank)
    assert w.rank_a == 1 + int((np.delete(scores, 1) > scores[1]).sum()) <= 2
    assert w.rank_b == 1 + int((np.delete(scores, 6) > scores[6]).sum())
    assert w.score_a == pytest.approx(scores[1], abs=1e-12) and w.score_b == pytest.approx(scores[6], abs=1e-12)
    assert w.difference["difference"].sum() == pytest.approx(w.gap, abs=1e-9)  # same base value for both
    assert w.difference_error < 1e-9
    assert list(w.difference.columns) == ["unit", "attribution_a", "attribution_b", "difference", "value_a", "value_b"]
    d = w.difference["difference"].abs().to_numpy()
    assert np.all(d[:-1] >= d[1:])  # largest contribution to the gap first
    assert w.counterfactual["already_in_top_k"] and w.counterfactual["changes"] == []
    text = "\n".join(w.lines())
    assert "Item" in text and "is above" in text and "already in the top 3" in text
    json.loads(to_json(w.to_dict()))  # the CLI's --format json


def test_counterfactual_is_real_and_minimal(lgb_model, toy_data):
    user = 4
    items, scores = _ranked(lgb_model, toy_data, user)
    k = 3
    a, b = items[12], items[0]
    w = why_above(lgb_model, toy_data, user, a, b, k=k, max_changes=3)
    cf = w.counterfactual
    assert w.rank_a == 1 + int((np.delete(scores, 12) > scores[12]).sum()) > k and not cf["already_in_top_k"]
    assert cf["threshold"] == pytest.approx(scores[k - 1])
    feats = default_changeable(lgb_model, toy_data)
    assert set(feats) == {"price", "genre_A", "genre_B", "genre_C", "genre_match"}
    assert cf["found"], cf
    # apply the changes and score: A really enters the top-k
    X = toy_data.features(pd.DataFrame({"user": [user], "item": [a]}))[lgb_model.feature_names]
    for c in cf["changes"]:
        assert c["feature"] in feats
        X[c["feature"]] = c["to"]
    new = float(lgb_model.score_features(X)[0])
    assert new == pytest.approx(cf["new_score"], abs=1e-12) and new > cf["threshold"]
    others = np.delete(scores, 12)
    assert cf["new_rank"] == int(rank_against(others, new)) <= k
    # minimal: no smaller set of the searched features, with any donor, gets there
    donors_items = list(dict.fromkeys(list(items[[i for i in range(len(items)) if i != 12][:k]]) + [b]))
    D = toy_data.features(pd.DataFrame({"user": user, "item": donors_items}))[lgb_model.feature_names]
    for size in range(1, len(cf["changes"])):
        for subset in combinations(feats, size):
            rows = pd.concat([toy_data.features(pd.DataFrame({"user": [user], "item": [a]}))[lgb_model.feature_names]] * len(D), ignore_index=True)
            for c in subset:
                rows[c] = D[c].to_numpy()
            assert (lgb_model.score_features(rows) <= cf["threshold"]).all()


def test_changes_are_limited_to_what_may_change(lgb_model, toy_data):
    user = 4
    items, _ = _ranked(lgb_model, toy_data, user)
    # price alone (the schema's one actionable feature) cannot lift this item: said so, in words
    w = why_above(lgb_model, toy_data, user, items[12], items[0], k=3, changeable=["price"], max_changes=1)
    cf = w.counterfactual
    assert not cf["found"] and cf["searched_features"] == 1 and cf["best_score"] < cf["threshold"]
    assert w.lines()[-1] == f"No change of up to 1 of 1 item-side features moves {w.title_a} into the top 3."
    # with price and genre_match, two changes do it; price is flagged as actionable
    w = why_above(lgb_model, toy_data, user, items[12], items[0], k=3, changeable=["price", "genre_match"])
    assert sorted(c["feature"] for c in w.counterfactual["changes"]) == ["genre_match", "price"]
    assert {c["feature"]: c["actionable"] for c in w.counterfactual["changes"]} == {"price": True, "genre_match": False}


def test_any_model_with_a_field_explainer(linear_model, toy_data):
    items, _ = _ranked(linear_model, toy_data, 1)
    w = why_above(linear_model, toy_data, 1, items[0], items[5], explainer=ExactFieldShapley(background_size=20), k=5)
    assert list(w.difference["unit"]) and set(w.difference["unit"]) <= {"user", "item", "history", "cross"}
    assert w.difference["difference"].sum() == pytest.approx(w.gap, abs=1e-9)
    assert w.difference.loc[w.difference["unit"] == "user", "difference"].abs().max() < 1e-9  # same user: no gap


# -- bad input ---------------------------------------------------------------------------------
def test_bad_input(lgb_model, toy_data):
    with pytest.raises(DataError, match="user 777 is not in dataset"):
        why_above(lgb_model, toy_data, 777, 101, 102)
    with pytest.raises(DataError, match="item A 9 is not in dataset 'toy'"):
        why_above(lgb_model, toy_data, 1, 9, 102)
    with pytest.raises(DataError, match="two different items"):
        why_above(lgb_model, toy_data, 1, 101, 101)
    n = len(toy_data.candidates(1))
    with pytest.raises(DataError, match=f"k={n + 5} but user 1 has {n} candidate items"):
        why_above(lgb_model, toy_data, 1, 101, 102, k=n + 5)
    with pytest.raises(DataError, match=r"changeable features \['colour'\]"):
        items, _ = _ranked(lgb_model, toy_data, 4)
        why_above(lgb_model, toy_data, 4, items[12], items[0], k=3, changeable=["colour"])


def test_string_ids_from_the_command_line(lgb_model, toy_data):
    items, _ = _ranked(lgb_model, toy_data, 2)
    w = why_above(lgb_model, toy_data, "2", str(items[0]), str(items[1]), k=2)
    assert w.user == 2 and w.item_a == items[0] and w.rank_a == 1


def test_smallest_change_into_top_k_as_the_cli_calls_it(lgb_model, toy_data):
    """core's `whyrec explain --why-above` calls smallest_change_into_top_k(model, data, user, item, k=k)."""
    from whyrec_shap.rank import smallest_change_into_top_k

    items, scores = _ranked(lgb_model, toy_data, 4)
    cf = smallest_change_into_top_k(lgb_model, toy_data, 4, items[12], k=3)
    assert cf["item"] == items[12] and cf["k"] == 3 and cf["rank"] > 3 and cf["found"]
    assert cf["new_score"] > cf["threshold"] == pytest.approx(scores[2]) and cf["new_rank"] <= 3
    json.loads(to_json(cf))
    top = smallest_change_into_top_k(lgb_model, toy_data, 4, items[0], k=3)
    assert top["already_in_top_k"] and top["changes"] == [] and top["rank"] == 1
