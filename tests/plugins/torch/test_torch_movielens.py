"""torch-attention on the real MovieLens-100K (whyrec-datasets; the data cache or a fetch)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("whyrec_datasets", reason="whyrec-datasets is a separate plugin (make test installs it)")


@pytest.mark.slow
def test_movielens_train_evaluate_and_explain():
    from whyrec_datasets.movielens import MovieLens100K

    from whyrec_torch.attention_map import AttentionMap
    from whyrec_torch.gradients import IntegratedGradients
    from whyrec_torch.model import TorchAttentionModel

    data = MovieLens100K().load()
    m = TorchAttentionModel(epochs=1, device="cpu", seed=0)
    info = m.fit(data)
    assert info["history_length"] == 10 and info["val_auc"] > 0.85
    assert m.feature_names[:4] == ["item_id", "user_id", "gender", "occupation"]
    metrics = m.evaluate(data, max_users=30, seed=0)
    assert metrics["auc"] > 0.8 and metrics["hr@10"] > 0.2  # far above popularity-free chance (10/1600)
    user = int(data.test["user"].iloc[0])
    recs = m.recommend(user, 5)
    e = AttentionMap().explain(m, data, recs)
    hist = [data.item_title(i) for i in data.history(user)[::-1][:10]]
    assert e.reasons[0][0].startswith("because you watched ")
    assert any(t in e.reasons[0][0] for t in hist)  # the titles named are the user's own history
    ig = IntegratedGradients(steps=64).explain(m, data, recs)
    assert ig.max_additivity_error < 0.05
    assert set(ig.field_attributions.columns) == {"user", "item", "history", "cross"}
    np.testing.assert_allclose(ig.pairs["output_value"], recs["score"], atol=1e-5)
    assert isinstance(ig.reasons[0][0], str) and ig.reasons[0][0]
    pd.testing.assert_series_equal(ig.pairs["item"], recs["item"].reset_index(drop=True), check_names=False)
