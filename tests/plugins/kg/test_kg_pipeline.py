"""kg-paths in a pipeline: a table with kg = "triples.csv", the runner's explainers stage, the
saved explanation (details.json) and `whyrec explain`'s JSON carry the paths."""
from __future__ import annotations

import pytest

import whyrec
from kg_toy import TRIPLES, write_toy
from whyrec.errors import DataWarning
from whyrec.explanation import Explanation


def test_pipeline_saves_paths_and_explain_returns_them(tmp_path):
    p = write_toy(tmp_path, TRIPLES + [("99", "film.film.genre", "G")])  # 99 is no item: counted, reported
    (tmp_path / "r.toml").write_text(f"""
[pipelines.p]
sample_users = 2
top_k = 3
model = {{ use = "lightgbm", n_estimators = 5 }}
explainers = [ {{ use = "kg-paths", max_entity_share = 1.0, min_score = -inf }} ]
report = {{ enabled = false }}
[pipelines.p.dataset]
use = "table"
interactions = "{p['interactions'].name}"
items = "{p['items'].name}"
label_col = "label"
timestamp_col = "ts"
title_col = "title"
history_length = 3
test_fraction = 0.25
kg = "{p['kg'].name}"
""")
    run = whyrec.run("p", registry=tmp_path / "r.toml", out=tmp_path / "runs")
    folder = run.path / "explanations" / "kg-paths__lightgbm"
    assert (folder / "details.json").is_file()
    e = Explanation.load(folder)
    i = e.find(1, 5)
    assert i is not None  # user 1 has three candidates: 4, 6 and 5
    paths = e.row(i)["paths"]
    # a 6-row LightGBM fit is a constant: every history item scores exactly 0, shown with min_score = -inf
    assert {(q["history_item"], q["relation"]) for q in paths} >= {(1, "film.film.sequel"), (2, "film.film.genre")}
    assert {q["scoring"] for q in paths} == {"leave-one-out"} and {q["score"] for q in paths} == {0.0}
    assert e.summary["graph"]["triples"] == 9 and e.summary["graph"]["unknown_heads"] == 1
    # ... which no history item tells apart: the caution is in the summary and the stage's warnings
    assert e.summary["history_items_told_apart"] is False and "min_score = -inf keeps them all" in e.summary["caution"]
    kg_stage = next(st for st in run.manifest["stages"] if st["name"] == "explainer:kg-paths@lightgbm")
    assert [w for w in kg_stage["warnings"] if "does not tell history items apart" in w] == [
        f"WhyrecWarning: {e.summary['caution']}"]
    dataset_stage = next(st for st in run.manifest["stages"] if st["name"] == "dataset")
    assert any("1 triples have a head that is no item of the dataset" in w and "triples.csv" in w
               for w in dataset_stage["warnings"])

    from whyrec.explain import explain_user
    from whyrec.rundir import Run

    with pytest.warns(DataWarning, match="1 triples have a head that is no item"):  # reloading says it again
        out = explain_user(Run(run.path), 1, 3, model="lightgbm", methods=("kg-paths",))
    rec = next(r for r in out["recommendations"] if r["item"] == 5)
    assert rec["explanations"][0]["paths"] == paths  # recomputed by `whyrec explain`, the same answer
