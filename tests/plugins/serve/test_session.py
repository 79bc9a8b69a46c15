"""The core's ExplainSession that `whyrec explain` and `whyrec serve` share."""
from __future__ import annotations

import math

from whyrec.rundir import Run
from whyrec.session import ExplainSession, explanation_rows


def test_explainers_are_built_once_per_model_and_method(served_run):
    s = ExplainSession(Run(served_run))
    first = s.explainers("lightgbm")
    assert [n for n, _ in first] == ["tree-shap", "exact-field-shapley"]
    again = s.explainers("lightgbm", ("exact-field-shapley",))
    assert again[0][1] is first[1][1]  # the same instance: its background sample is featurised once
    assert s.explainers()[0][1] is first[0][1]
    out = s.explain(3, 2, methods=("tree-shap",))
    assert s.explainers("lightgbm", ("tree-shap",))[0][1] is first[0][1]
    assert [r["rank"] for r in out["recommendations"]] == [1, 2]


def test_explanation_rows_equal_row_by_row(served_run):
    s = ExplainSession(Run(served_run))
    data, model = s.data, s.model()
    recs = model.recommend(5, 4)
    for _, x in s.explainers():
        e = x.explain(model, data, recs)
        rows = explanation_rows(e)
        assert len(rows) == 4
        for i, row in enumerate(rows):
            want = e.row(i)
            assert row.keys() == want.keys()
            for k, v in want.items():
                if isinstance(v, float) and math.isnan(v):
                    assert math.isnan(row[k])
                else:
                    assert row[k] == v, k
