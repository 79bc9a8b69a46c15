"""Explanation.details: per-pair structured lists carried by row(i), saved and loaded as JSON."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from whyrec import Explanation, Feature, FeatureSchema


def _expl(**kw):
    pairs = pd.DataFrame({"user": [1, 2], "item": [5, 6], "output_value": [1.0, 2.0]})
    schema = FeatureSchema([Feature("x", "item", "numeric")])
    return Explanation("m", "model", pairs, schema, attributions=pd.DataFrame({"x": [1.0, 2.0]}), **kw)


def test_details_round_trip_and_row(tmp_path):
    paths = [[{"history_item": 1, "score": 0.5, "relation": "r"}], []]
    e = _expl(details={"paths": paths})
    assert e.row(0)["paths"] == paths[0] and e.row(1)["paths"] == []
    e.save(tmp_path)
    assert json.loads((tmp_path / "details.json").read_text()) == {"paths": paths}
    back = Explanation.load(tmp_path)
    assert back.details == {"paths": paths} and back.row(0)["paths"] == paths[0]


def test_without_details_nothing_changes(tmp_path):
    e = _expl()
    assert "paths" not in e.row(0) and set(e.row(0)) == {"method", "model", "output_value", "base_value", "attributions",
                                                         "field_attributions", "additivity_error", "reasons"}
    e.save(tmp_path)
    assert not (tmp_path / "details.json").exists() and Explanation.load(tmp_path).details == {}


@pytest.mark.parametrize("details, match", [({"reasons": [[], []]}, "clashes with a key of row()"),
                                            ({"paths": [[]]}, "has 1 entries for 2 pairs")])
def test_bad_details_are_refused(details, match):
    with pytest.raises(ValueError, match=match):
        _expl(details=details)
