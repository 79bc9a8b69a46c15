"""kg-paths on the toy graph (kg_toy.py): the best paths, their scores and how they are scored."""
from __future__ import annotations

import pandas as pd
import pytest

from kg_toy import BothOrNothing, MostRecentOnly, toy_table, write_toy
from whyrec_kg.explainer import KGPaths


def explain(model, data, **kw):
    kw.setdefault("max_entity_share", 1.0)  # six items: the default share would skip every entity
    return KGPaths(**kw).explain(model, data, data.user_pairs(1, [5]))


def test_best_paths_are_the_known_ones(toy, weights_model):
    e = explain(weights_model, toy)
    paths = e.row(0)["paths"]
    # Alien (weight 2 + 0.25 for hist_len) first: the direct sequel fact, then the shared director;
    # then Heat (0.5 + 0.25) through the genre; Ronin (-1 + 0.25) supports nothing and is left out.
    assert [(p["history_item"], p["relation"], p["entity"], p["hops"]) for p in paths] == [
        (1, "film.film.sequel", "Aliens", 1), (1, "film.film.directed_by", "D1", 2), (2, "film.film.genre", "G", 2)]
    assert [p["score"] for p in paths] == [2.25, 2.25, 0.75]
    assert {p["scoring"] for p in paths} == {"leave-one-out"} and e.summary["scoring"] == "leave-one-out"
    assert paths[1] | {} == {"history_item": 1, "history_title": "Alien", "relation": "film.film.directed_by",
                             "relation_label": "director", "entity": "D1", "entity_id": "D1", "item": 5,
                             "score": 2.25, "scoring": "leave-one-out", "hops": 2, "entity_items": 2,
                             "history_is_head": True}
    assert e.reasons[0][0] == "you liked Alien; Aliens is the sequel of Alien (contribution +2.250, leave-one-out)"
    assert e.attributions.iloc[0].to_dict() == {"hist_0": 2.25, "hist_1": 0.75, "hist_2": -0.75}
    assert e.summary["pairs_with_path"] == 1 and e.summary["coverage"] == 1.0


def test_limits_and_negative_paths(toy, weights_model):
    every = explain(weights_model, toy, min_score=None, max_paths=10).row(0)["paths"]
    assert [(p["history_item"], p["score"]) for p in every] == [(1, 2.25), (1, 2.25), (2, 0.75), (3, -0.75)]
    one = explain(weights_model, toy, per_history_item=1, max_paths=2).row(0)["paths"]
    assert [(p["history_item"], p["relation"]) for p in one] == [(1, "film.film.sequel"), (2, "film.film.genre")]
    # an entity shared by more items than the cap allows is no reason (6 linked items, 2 share D1)
    capped = explain(weights_model, toy, max_entity_share=0.1).row(0)["paths"]  # cap: ceil(0.6) = 1 item
    assert [p["relation"] for p in capped] == ["film.film.sequel"]


def test_leave_one_out_equals_rebuilding_the_data_without_the_item(tmp_path, toy, weights_model):
    """The score of a path = the model's score minus its score on data in which the user never
    liked that history item (the interaction relabelled 0, the dataset loaded again)."""
    paths = explain(weights_model, toy, min_score=None, max_paths=10).row(0)["paths"]
    scores = {p["history_item"]: p["score"] for p in paths}
    full = weights_model.score(toy.user_pairs(1, [5]))[0]
    for h in (1, 2, 3):
        p = write_toy(tmp_path / f"without-{h}")
        inter = pd.read_csv(p["interactions"])
        inter.loc[(inter["user"] == 1) & (inter["item"] == h), "label"] = 0
        inter.to_csv(p["interactions"], index=False)
        from whyrec_datasets.table import Table

        without = Table(interactions=p["interactions"], items=p["items"], label_col="label", timestamp_col="ts",
                        title_col="title", history_length=3, test_fraction=0.25, name="toy-kg").load()
        assert h not in without.history(1)
        m = type(weights_model)()
        m.fit(without)
        assert scores[h] == pytest.approx(full - m.score(without.user_pairs(1, [5]))[0], abs=1e-12)


def test_sequence_models_get_shapley_values(toy):
    m = BothOrNothing()
    m.fit(toy)
    shap = explain(m, toy)  # auto: the model declares "sequence"
    paths = shap.row(0)["paths"]
    assert shap.summary["scoring"] == "shapley" and {p["scoring"] for p in paths} == {"shapley"}
    assert sorted({(p["history_item"], p["score"]) for p in paths}) == [(1, 0.5), (2, 0.5)]
    assert shap.row(0)["base_value"] == 0.0 and shap.row(0)["output_value"] == 1.0
    assert shap.max_additivity_error == pytest.approx(0.0, abs=1e-12)  # Shapley values sum to the gap
    loo = explain(m, toy, scoring="leave-one-out").row(0)["paths"]
    assert sorted({(p["history_item"], p["score"]) for p in loo}) == [(1, 1.0), (2, 1.0)]


def test_history_all_adds_items_outside_the_window(tmp_path):
    small = toy_table(tmp_path, history_length=1)  # the model sees Alien only
    m = MostRecentOnly()
    m.fit(small)
    window = explain(m, small).row(0)["paths"]
    assert {p["history_item"] for p in window} == {1}
    every = explain(m, small, history="all", min_score=None, max_paths=10).row(0)["paths"]
    assert {(p["history_item"], p["score"]) for p in every} == {(1, 2.0), (2, 0.0), (3, 0.0)}


def test_a_model_blind_to_which_items_names_none_as_a_reason(toy):
    """Leaving any item out of a 3-item history costs a length-only model 0.25: a "contribution"
    true of every item. Naming Alien as the reason would be a silent wrong answer, so no path is
    shown, the summary says why, and one warning line does."""
    from kg_toy import LengthOnly
    from whyrec.errors import WhyrecWarning

    m = LengthOnly()
    m.fit(toy)
    with pytest.warns(WhyrecWarning, match=r"^kg-paths: model 'length-only' does not tell history items apart"):
        e = explain(m, toy)
    assert e.attributions.iloc[0].to_dict() == {"hist_0": 0.25, "hist_1": 0.25, "hist_2": 0.25}  # leave-one-out itself
    assert e.row(0)["paths"] == [] and e.reasons == [[]]
    assert e.summary["pairs_with_path"] == 1 and e.summary["pairs_with_supported_path"] == 0
    assert e.summary["history_items_told_apart"] is False and "no path is shown" in e.summary["caution"]
    # min_score = -inf keeps every path, as documented, and the caution says so
    with pytest.warns(WhyrecWarning, match="paths are kept only because min_score = -inf keeps them all"):
        kept = explain(m, toy, min_score=float("-inf"), max_paths=10)
    assert {p["history_item"] for p in kept.row(0)["paths"]} == {1, 2, 3}
    # a model that reads the items is not flagged, even when it reads only one position
    seen = explain(_fitted(MostRecentOnly(), toy), toy)
    assert seen.summary["history_items_told_apart"] is True and "caution" not in seen.summary


def _fitted(m, data):
    m.fit(data)
    return m
