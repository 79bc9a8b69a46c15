"""Explanation: additivity errors computed from hand-made numbers, the worst row reported, field
sums from the schema, and the Parquet/JSON round trip."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import RunDirError
from whyrec.explanation import Explanation
from whyrec.schema import Feature, FeatureSchema

SCHEMA = FeatureSchema([Feature("age", "user"), Feature("price", "item", group="money"),
                        Feature("genre", "item", kind="categorical"), Feature("hour", "context")])


def make(attr=None, *, pairs=None, additive=True, **kw):
    pairs = pd.DataFrame({"user": [1, 2, 3], "item": [10, 20, 30], "output_value": [1.0, 2.0, 0.5],
                          "base_value": [0.5, 0.5, 0.5]}) if pairs is None else pairs
    if attr is None:
        # rows 0 and 2 add up exactly; row 1 is off by 0.25 (0.5 + 1.25 = 1.75 vs 2.0)
        attr = pd.DataFrame({"age": [0.25, 0.5, 0.0], "price": [0.25, 0.25, -0.5], "genre": [0.0, 0.5, 0.25],
                             "hour": [0.0, 0.0, 0.25]})
    return Explanation(method="m", model="lgb", pairs=pairs, schema=SCHEMA, attributions=attr, additive=additive, **kw)


def test_additivity_error_per_row_from_hand_numbers():
    e = make()
    assert e.pairs["additivity_error"].tolist() == pytest.approx([0.0, 0.25, 0.0])


def test_max_additivity_error_reports_the_worst_row_not_the_best():
    e = make()
    assert e.max_additivity_error == pytest.approx(0.25)
    # the violation in the last row, and a negative residual (output above base + attributions)
    pairs = pd.DataFrame({"user": [1, 2], "item": [1, 2], "output_value": [1.0, 3.0], "base_value": [0.0, 0.0]})
    attr = pd.DataFrame({"age": [1.0, 1.0], "price": [0.0, 0.0]})
    e2 = make(attr, pairs=pairs)
    assert e2.pairs["additivity_error"].tolist() == pytest.approx([0.0, 2.0])
    assert e2.max_additivity_error == pytest.approx(2.0)
    # base + attributions above the output: the absolute value counts
    attr3 = pd.DataFrame({"age": [1.0, 5.0], "price": [0.0, 0.0]})
    assert make(attr3, pairs=pairs).max_additivity_error == pytest.approx(2.0)


def test_max_additivity_error_ignores_nan_rows_and_is_none_when_all_nan():
    pairs = pd.DataFrame({"user": [1, 2], "item": [1, 2], "additivity_error": [np.nan, 0.3]})
    assert make(pd.DataFrame({"age": [1.0, 2.0]}), pairs=pairs).max_additivity_error == pytest.approx(0.3)
    pairs = pd.DataFrame({"user": [1, 2], "item": [1, 2], "additivity_error": [np.nan, np.nan]})
    assert make(pd.DataFrame({"age": [1.0, 2.0]}), pairs=pairs).max_additivity_error is None


def test_a_given_additivity_error_column_is_kept():
    pairs = pd.DataFrame({"user": [1], "item": [1], "output_value": [5.0], "base_value": [0.0],
                          "additivity_error": [0.125]})
    assert make(pd.DataFrame({"age": [1.0]}), pairs=pairs).pairs["additivity_error"].tolist() == [0.125]


def test_non_additive_methods_promise_nothing():
    e = make(additive=False)
    assert e.pairs["additivity_error"].isna().all()
    assert e.max_additivity_error is None
    assert e.row(1)["additivity_error"] is None


def test_without_output_or_base_value_the_error_is_nan():
    pairs = pd.DataFrame({"user": [1], "item": [1], "output_value": [1.0]})
    assert make(pd.DataFrame({"age": [1.0]}), pairs=pairs).pairs["additivity_error"].isna().all()
    pairs = pd.DataFrame({"user": [1], "item": [1], "base_value": [1.0]})
    assert make(pd.DataFrame({"age": [1.0]}), pairs=pairs).pairs["additivity_error"].isna().all()


def test_field_only_explanations_check_additivity_on_fields():
    pairs = pd.DataFrame({"user": [1, 2], "item": [1, 2], "output_value": [1.0, 1.0], "base_value": [0.0, 0.0]})
    fa = pd.DataFrame({"user": [0.5, 0.5], "item": [0.5, 0.0]})
    e = Explanation(method="f", model="m", pairs=pairs, schema=SCHEMA, field_attributions=fa)
    assert e.pairs["additivity_error"].tolist() == pytest.approx([0.0, 0.5])
    assert e.attributions is None and e.max_additivity_error == pytest.approx(0.5)


def test_field_attributions_are_summed_by_the_schema():
    e = make()
    assert list(e.field_attributions.columns) == ["user", "item", "context"]
    assert e.field_attributions["item"].tolist() == pytest.approx([0.25, 0.75, -0.25])
    assert e.field_attributions["user"].tolist() == pytest.approx([0.25, 0.5, 0.0])
    # columns unknown to the schema are left out of the field sums
    attr = pd.DataFrame({"age": [1.0], "mystery": [2.0]})
    pairs = pd.DataFrame({"user": [1], "item": [1]})
    e2 = make(attr, pairs=pairs)
    assert e2.field_attributions.to_dict("list") == {"user": [1.0]}


def test_given_field_attributions_are_not_recomputed():
    fa = pd.DataFrame({"user": [9.0, 9.0, 9.0]})
    assert make(field_attributions=fa).field_attributions["user"].tolist() == [9.0, 9.0, 9.0]


def test_row_counts_must_match_and_indexes_are_reset():
    with pytest.raises(ValueError, match="attributions has 2 rows for 3 pairs"):
        make(pd.DataFrame({"age": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="feature_values has 1 rows for 3 pairs"):
        make(feature_values=pd.DataFrame({"age": [1]}))
    with pytest.raises(ValueError, match="field_attributions has 4 rows"):
        make(field_attributions=pd.DataFrame({"user": [1.0] * 4}))
    pairs = pd.DataFrame({"user": [1, 2], "item": [1, 2]}, index=[7, 9])
    attr = pd.DataFrame({"age": [1.0, 2.0]}, index=[3, 4])
    fv = pd.DataFrame({"age": [30, 40]}, index=[5, 6])
    e = make(attr, pairs=pairs, feature_values=fv)
    assert list(e.pairs.index) == [0, 1] and list(e.attributions.index) == [0, 1]
    assert list(e.feature_values.index) == [0, 1] and list(e.field_attributions.index) == [0, 1]


def test_row_contract():
    e = make(reasons=[["a"], ["b", "c"], []])
    r = e.row(1)
    assert r == {"method": "m", "model": "lgb", "output_value": 2.0, "base_value": 0.5,
                 "attributions": {"age": 0.5, "price": 0.25, "genre": 0.5, "hour": 0.0},
                 "field_attributions": {"user": 0.5, "item": 0.75, "context": 0.0},
                 "additivity_error": pytest.approx(0.25), "reasons": ["b", "c"]}
    assert make().row(0)["reasons"] == [] and make().row(0)["additivity_error"] == 0.0
    pairs = pd.DataFrame({"user": [1], "item": [1]})
    r0 = make(pd.DataFrame({"age": [1.0]}), pairs=pairs).row(0)
    assert r0["output_value"] is None and r0["base_value"] is None


def test_find_and_difference():
    e = make()
    assert e.find(2, 20) == 1 and e.find(3, 30) == 2
    assert e.find(2, 10) is None
    d = e.difference(1, 0)
    assert d.to_dict() == pytest.approx({"age": 0.25, "price": 0.0, "genre": 0.5, "hour": 0.0})
    assert list(d.index[:2]) == ["genre", "age"]  # largest absolute difference first
    d2 = e.difference(2, 1)
    assert list(d2.index[:2]) == ["price", "age"]  # -0.75 ranks above -0.5 and +0.25


def test_difference_of_a_field_only_explanation():
    fa = pd.DataFrame({"user": [1.0, 0.0], "item": [0.0, 3.0]})
    e = Explanation(method="f", model="m", pairs=pd.DataFrame({"user": [1, 2], "item": [1, 2]}), schema=SCHEMA,
                    field_attributions=fa)
    assert e.difference(1, 0).to_dict() == {"item": 3.0, "user": -1.0}


def test_save_load_round_trip(tmp_path):
    fv = pd.DataFrame({"age": [30, 40, 50], "price": [1.5, 2.5, 3.5], "genre": ["a", "b", "c"], "hour": [1, 2, 3]})
    e = make(feature_values=fv, reasons=[["x"], [], ["y"]], params={"k": 3}, summary={"s": 1},
             extras={"attention": pd.DataFrame({"pair": [0, 1], "w": [0.5, 0.25]})})
    written = e.save(tmp_path / "e")
    assert {p.name for p in written} == {"pairs.parquet", "attributions.parquet", "field_attributions.parquet",
                                         "extra_attention.parquet", "explanation.json"}
    back = Explanation.load(tmp_path / "e")
    pd.testing.assert_frame_equal(back.pairs, e.pairs)
    pd.testing.assert_frame_equal(back.attributions, e.attributions)
    pd.testing.assert_frame_equal(back.field_attributions, e.field_attributions)
    assert back.feature_values.to_dict("list") == {"age": ["30", "40", "50"], "price": ["1.5", "2.5", "3.5"],
                                                    "genre": ["a", "b", "c"], "hour": ["1", "2", "3"]}
    assert (back.method, back.model, back.params, back.additive) == ("m", "lgb", {"k": 3}, True)
    assert back.reasons == [["x"], [], ["y"]] and back.summary == {"s": 1}
    assert back.extras["attention"].to_dict("list") == {"pair": [0, 1], "w": [0.5, 0.25]}
    assert back.schema.to_dict() == SCHEMA.to_dict()
    assert back.max_additivity_error == pytest.approx(0.25)
    import json
    meta = json.loads((tmp_path / "e" / "explanation.json").read_text())
    assert meta["n_pairs"] == 3 and meta["max_additivity_error"] == pytest.approx(0.25)
    assert meta["features"] == ["age", "price", "genre", "hour"] and meta["fields"] == ["user", "item", "context"]
    assert meta["feature_value_columns"] == ["age", "price", "genre", "hour"] and meta["extras"] == ["attention"]
    long = pd.read_parquet(tmp_path / "e" / "attributions.parquet")
    assert dict(zip(long["feature"], long["field"])) == {"age": "user", "price": "item", "genre": "item", "hour": "context"}


def test_save_load_field_only_and_unknown_feature(tmp_path):
    fa = pd.DataFrame({"user": [1.0], "item": [2.0]})
    e = Explanation(method="f", model="m", pairs=pd.DataFrame({"user": [1], "item": [1]}), schema=SCHEMA,
                    field_attributions=fa, additive=False)
    e.save(tmp_path / "f")
    back = Explanation.load(tmp_path / "f")
    assert back.attributions is None and back.feature_values is None and back.additive is False
    assert back.field_attributions.to_dict("list") == {"user": [1.0], "item": [2.0]}
    assert not (tmp_path / "f" / "attributions.parquet").exists()
    e2 = make(pd.DataFrame({"mystery": [1.0]}), pairs=pd.DataFrame({"user": [1], "item": [1]}))
    e2.save(tmp_path / "g")
    assert pd.read_parquet(tmp_path / "g" / "attributions.parquet")["field"].tolist() == [""]
    assert Explanation.load(tmp_path / "g").feature_values is None


def test_load_refuses_missing_or_corrupted(tmp_path):
    with pytest.raises(RunDirError, match="no explanation.json"):
        Explanation.load(tmp_path)
    make().save(tmp_path / "e")
    (tmp_path / "e" / "attributions.parquet").unlink()
    with pytest.raises(RunDirError, match="missing or corrupted"):
        Explanation.load(tmp_path / "e")


def test_repr_html_names_the_worst_error():
    html = make()._repr_html_()
    assert "<b>m</b> on <b>lgb</b>: 3 pairs" in html and "max additivity error 2.50e-01" in html
    assert "attribution: user" in html and "attribution: context" in html and "0.7500" in html  # row 1's item field
    assert "additivity error" not in make(additive=False)._repr_html_()
    assert math.isnan(make(additive=False).pairs["additivity_error"][0])


def test_defaults_are_empty_and_not_shared():
    a, b = make(), make()
    assert (a.params, a.summary, a.extras, a.reasons, a.feature_values) == ({}, {}, {}, None, None)
    a.params["k"] = 1
    a.summary["s"] = 2
    assert b.params == {} and b.summary == {}


def test_row_count_message_is_exact():
    with pytest.raises(ValueError, match=r"^attributions has 2 rows for 3 pairs$"):
        make(pd.DataFrame({"age": [1.0, 2.0]}))


def test_additivity_needs_only_output_and_base_columns():
    pairs = pd.DataFrame({"output_value": [1.0], "base_value": [0.25]})
    e = Explanation(method="m", model="x", pairs=pairs, schema=SCHEMA, attributions=pd.DataFrame({"age": [0.5]}))
    assert e.pairs["additivity_error"].tolist() == [0.25]


def test_save_creates_parent_directories_and_overwrites(tmp_path):
    e = make()
    e.save(tmp_path / "a" / "b")
    e.save(tmp_path / "a" / "b")  # a rerun writes over its own artifacts
    assert Explanation.load(tmp_path / "a" / "b").max_additivity_error == pytest.approx(0.25)


def test_load_messages_and_column_names(tmp_path):
    with pytest.raises(RunDirError, match=r"^\S+: no explanation.json; rerun the pipeline's explainers stage$"):
        Explanation.load(tmp_path)
    fv = pd.DataFrame({"age": [1, 2, 3], "price": [1, 2, 3], "genre": ["a", "b", "c"], "hour": [1, 2, 3]})
    make(feature_values=fv).save(tmp_path / "e")
    back = Explanation.load(tmp_path / "e")
    assert back.feature_values.columns.name is None and back.attributions.columns.name is None
    assert back.field_attributions.columns.name is None
    (tmp_path / "e" / "pairs.parquet").unlink()
    with pytest.raises(RunDirError, match=r"^\S+: explanation artifacts are missing or corrupted \(.*\); rerun the explainers stage$"):
        Explanation.load(tmp_path / "e")


def test_repr_html_layout():
    html = make()._repr_html_()
    assert html.startswith("<div><b>m</b> on <b>lgb</b>: 3 pairs, max additivity error 2.50e-01<table")
    assert html.endswith("</table></div>")
    assert ">0.7500<" in html and "<th></th>" not in html  # 4 decimals, no index column
    n = 25
    pairs = pd.DataFrame({"user": range(n), "item": range(n)})
    big = make(pd.DataFrame({"age": np.arange(n, dtype=float)}), pairs=pairs)._repr_html_()
    assert big.count("<tr>") == 20 and "<td>19</td>" in big and "<td>20</td>" not in big  # the first 20 pairs
