"""Knowledge graphs of datasets: unknown ids counted and reported, bad files refused in one line,
the ml-100k graph from the pinned recbole wheel."""
from __future__ import annotations

import shutil
import warnings

import pandas as pd
import pytest

from kg_toy import TRIPLES, toy_table, write_toy
from whyrec.errors import DataError, DataWarning, UnsupportedError, WhyrecError
from whyrec_datasets import cache
from whyrec_datasets.kg import table_graph
from whyrec_kg.explainer import KGPaths


def test_toy_graph_summary(toy):
    g = toy.knowledge_graph()
    assert g.summary()["triples"] == 9 and g.summary()["linked_items"] == 6 and g.summary()["unknown_heads"] == 0
    assert g.entity_of(1) == "1" and g.entity_label("5") == "Aliens" and g.items_linked("D1") == 2


def test_unknown_heads_are_counted_and_reported(tmp_path):
    """Direct linking: a triple whose head is no item of the dataset gives no path; it is
    counted, named in a warning with the file, and kept out of the graph."""
    bad = TRIPLES + [("99", "film.film.genre", "G"), ("Alien", "film.film.genre", "G"), ("99", "film.film.actor", "A")]
    p = write_toy(tmp_path, bad)
    items = pd.read_csv(p["items"]).set_index("item")
    with pytest.warns(DataWarning, match=r"triples\.csv: 3 triples have a head that is no item of the dataset "
                                         r"\(direct linking\) \(e\.g\. '?99'?\)"):
        g = table_graph(p["kg"], items)
    assert g.report["unknown_heads"] == 3 and g.report["triples"] == 9


def test_link_file_unknown_items_and_entities_without_facts(tmp_path):
    p = write_toy(tmp_path, [("e1", "directed_by", "D"), ("e5", "directed_by", "D")])
    pd.DataFrame({"item": [1, 5, 42, 2], "entity": ["e1", "e5", "e42", "e-none"]}).to_csv(tmp_path / "link.csv", index=False)
    items = pd.read_csv(p["items"]).set_index("item")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = table_graph(p["kg"], items, tmp_path / "link.csv")
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert any("1 link rows name items the dataset does not have (e.g. '42')" in m and "link.csv" in m for m in msgs)
    assert any("1 linked entities appear in no triple (e.g. 'e-none')" in m for m in msgs)
    assert g.report["unknown_link_items"] == 1 and g.report["linked_entities_without_facts"] == 1
    assert g.item_entity == {1: "e1", 5: "e5"} and g.entity_label("e5") == "Aliens"


@pytest.mark.parametrize("rows, match", [
    ("head,rel,tail\n1,a,b\n", r"triples\.csv: no column 'relation'; kg \(a triples file\) needs columns head, relation, tail \(its columns: head, rel, tail\)"),
    ("head,relation,tail\n1,a,\n", r"triples\.csv: 1 rows have an empty head/relation/tail value \(first at row 1\)"),
])
def test_bad_triples_file_is_one_clear_error(tmp_path, rows, match):
    p = write_toy(tmp_path)
    p["kg"].write_text(rows)
    items = pd.read_csv(p["items"]).set_index("item")
    with pytest.raises(DataError, match=match):
        table_graph(p["kg"], items)


def test_missing_triples_file_fails_the_dataset(tmp_path):
    with pytest.raises(DataError, match="nope.csv"):
        toy_table(tmp_path, kg=tmp_path / "nope.csv")


def test_item_linked_twice_is_refused(tmp_path):
    p = write_toy(tmp_path)
    (tmp_path / "link.csv").write_text("item,entity\n1,e1\n1,e2\n")
    with pytest.raises(DataError, match=r"link\.csv: item '1' is linked to more than one entity"):
        table_graph(p["kg"], pd.read_csv(p["items"]).set_index("item"), tmp_path / "link.csv")


def test_explainer_refuses_what_it_cannot_explain(tmp_path, weights_model):
    no_kg = toy_table(tmp_path / "a", kg=None)
    with pytest.raises(UnsupportedError, match="dataset 'toy-kg' has no knowledge graph.*kg = "):
        KGPaths().explain(weights_model, no_kg, no_kg.user_pairs(1, [5]))
    no_history = toy_table(tmp_path / "b", history_length=0)
    with pytest.raises(UnsupportedError, match="no history sequence features.*history_length > 0"):
        KGPaths().explain(weights_model, no_history, no_history.user_pairs(1, [5]))
    for bad in ({"scoring": "gradient"}, {"max_paths": 0}, {"max_entity_share": 0}, {"history": "recent"}):
        with pytest.raises(WhyrecError, match="kg-paths: "):
            KGPaths(**bad)


@pytest.mark.parametrize("entry, lines", [
    ('max_paths = 0', ["pipelines.p.explainers[0]: kg-paths: max_paths=0 and per_history_item=2 must be >= 1"]),
    ('max_entity_share = 0', ["pipelines.p.explainers[0]: kg-paths: max_entity_share=0 must be in (0, 1] (1 keeps every entity)"]),
    ('history = "recent"', ["pipelines.p.explainers[0]: kg-paths: history='recent' must be 'window' (the items the model "
                            "sees) or 'all' (every liked training item; those outside the window score 0)"]),
    ('min_score = nan', ["pipelines.p.explainers[0]: kg-paths: min_score=nan must be a number (-inf keeps every path)"]),
    ('max_paths = "3"', ["pipelines.p.explainers[0].max_paths: expected int, got str '3'"]),  # the registry's line, once
])
def test_validate_refuses_bad_parameters_before_anything_loads(tmp_path, capsys, entry, lines):
    """`whyrec validate` used to pass these; only `whyrec run` refused them (at building the explainers)."""
    from whyrec.cli import main

    reg = tmp_path / "r.toml"
    reg.write_text(f'[pipelines.p]\ndataset = {{ use = "sim-video" }}\nmodel = {{ use = "lightgbm" }}\n'
                   f'explainers = [ {{ use = "kg-paths", {entry} }} ]\n')
    with pytest.raises(SystemExit) as e:
        main(["validate", "--registry", str(reg)])
    assert e.value.code == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert err == [f"error: {reg}: {line}" for line in lines]


def test_validate_hook_passes_good_parameters():
    import whyrec_kg

    good = {"explainers": [{"use": "kg-paths", "where": "w", "params": {"max_paths": 3, "min_score": float("-inf"),
                                                                        "scoring": "shapley", "history": "all"}}]}
    assert whyrec_kg.validate_pipeline(stages=good) is None


def test_registered_as_an_explainer():
    from whyrec.plugins import get_host

    comp = get_host().get("explainers", "kg-paths")
    assert comp.plugin == "whyrec-kg"


# -- MovieLens-100K ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml_graph():
    from whyrec_datasets.movielens import MovieLens100K

    data = MovieLens100K().load()
    return data, data.knowledge_graph()


def test_movielens_graph_from_the_recbole_wheel(ml_graph):
    data, g = ml_graph
    s = g.summary()
    assert (s["triples"], s["relations"], s["linked_items"], s["entities"]) == (91631, 24, 1598, 34628)
    assert s["unknown_link_items"] == 0 and s["linked_entities_without_facts"] == 0
    assert cache.problems("ml-100k-kg") == []
    from whyrec_kg.paths import facts_between

    # Alien (183) and Aliens (176): the most specific shared fact is a genre of 225 films
    first = facts_between(g, 183, 176, None)[0]
    assert (first.relation, first.hops, first.items_linked) == ("film.film.genre", 2, 225)
    assert g.relation_label("film.director.film") == "director" and g.entity_label(g.entity_of(183)) == "Alien (1979)"


def test_damaged_kg_cache_is_detected(tmp_path, monkeypatch):
    src = cache.ensure("ml-100k-kg", [])
    shutil.copytree(src, tmp_path / "ml-100k-kg")
    kg_file = tmp_path / "ml-100k-kg" / "ml-100k.kg"
    kg_file.write_bytes(kg_file.read_bytes()[:1000])
    assert "truncated" in cache.problems("ml-100k-kg", root=tmp_path)[0]


def test_the_accessor_travels_with_the_data(toy):
    """Executors send the RecData to workers: the accessor and its graph pickle with it."""
    import pickle

    back = pickle.loads(pickle.dumps(toy))
    assert back.knowledge_graph().summary() == toy.knowledge_graph().summary()
    from whyrec_datasets.kg import GraphAccessor, movielens_graph
    import functools

    lazy = GraphAccessor(functools.partial(movielens_graph, None, toy.items))
    assert pickle.loads(pickle.dumps(lazy))._graph is None  # not loaded until called


def test_link_file_without_its_columns_is_refused(tmp_path):
    p = write_toy(tmp_path)
    (tmp_path / "link.csv").write_text("item_id,entity\n1,e1\n")
    with pytest.raises(DataError, match=r"link\.csv: no column 'item'; kg_link needs columns item, entity"):
        toy_table(tmp_path, kg_link=tmp_path / "link.csv")


@pytest.mark.parametrize("relation, label", [
    ("film.film.directed_by", "director"), ("film.director.film", "director"), ("film.film.sequel", "sequel"),
    ("film.film_genre.films_in_this_genre", "genre"), ("directed_by", "director"), ("has_genre", "genre"),
    ("sold-by", "seller"), ("shop.item.brand", "brand"), ("similar_to", "similar to")])
def test_relation_labels(relation, label):
    from whyrec_datasets.kg import relation_label

    assert relation_label(relation) == label
