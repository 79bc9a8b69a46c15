"""LightGBM + SHAP on the real MovieLens-100K (whyrec-datasets; the data cache or a fetch)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("whyrec_datasets", reason="whyrec-datasets is a separate plugin (make test installs it)")


@pytest.mark.slow
def test_movielens_lightgbm_explained_end_to_end(tmp_path):
    from whyrec_datasets.movielens import MovieLens100K

    from whyrec_lightgbm.model import LightGBMModel
    from whyrec_shap.exact import ExactFieldShapley
    from whyrec_shap.rank import why_above
    from whyrec_shap.tree import TreeShap

    data = MovieLens100K().load()
    m = LightGBMModel(n_estimators=25, num_leaves=15, learning_rate=0.2, seed=0)
    info = m.fit(data)
    assert info["features"] == 48 and info["categorical_features"] == ["user_id", "gender", "occupation", "item_id"]
    assert not any(n.startswith("hist_") and n[5:].isdigit() for n in m.feature_names)  # no sequence columns
    metrics = m.evaluate(data, max_users=30, seed=0)
    assert metrics["auc"] > 0.75 and metrics["hr@10"] > 0.1

    recs = m.recommend(1, 10)
    e = TreeShap().explain(m, data, recs)
    assert e.summary["max_additivity_error"] <= 1e-6
    np.testing.assert_allclose(e.pairs["output_value"], recs["score"], atol=1e-9)
    assert list(e.field_attributions.columns) == ["user", "item", "history", "cross"]
    words = " ".join(r for rs in e.reasons for r in rs)
    assert "likes in training" in words or "genre" in words  # the dataset's own describer speaks

    f = ExactFieldShapley(background_size=20).explain(m, data, recs.head(3))
    assert f.max_additivity_error < 1e-9 and list(f.field_attributions.columns) == ["user", "item", "history", "cross"]

    w = why_above(m, data, 1, recs["item"].iloc[0], recs["item"].iloc[9], k=5)
    assert w.rank_a <= w.rank_b and w.difference_error < 1e-9
    assert w.difference["difference"].sum() == pytest.approx(w.score_a - w.score_b, abs=1e-9)

    m.save(tmp_path)
    back = LightGBMModel.load(tmp_path, data)
    pd.testing.assert_frame_equal(back.recommend(1, 10), recs)
