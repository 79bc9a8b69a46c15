"""privacy.redact_fields: the saved LightGBM model drops hidden features' raw [min:max] from
its feature_infos line, and predicts exactly as before."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np

from whyrec_lightgbm.model import _without_value_ranges


def test_hidden_ranges_are_gone_and_predictions_identical():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(20_000, 90_000, 500).round(3) + 0.123, rng.normal(size=500), rng.integers(0, 4, 500)])
    X[::17, 1] = np.nan
    y = (X[:, 0] / 90_000 + X[:, 2] * 0.2 + rng.normal(0, 0.2, 500) > 0.9).astype(float)
    b = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 8}, lgb.Dataset(X, y, categorical_feature=[2]), 20)
    text = b.model_to_string()
    first = next(ln for ln in text.splitlines() if ln.startswith("feature_infos=")).split("=", 1)[1].split(" ")[0]
    lo, hi = (float(v) for v in first.strip("[]").split(":"))
    assert (lo, hi) == (X[:, 0].min(), X[:, 0].max())  # LightGBM writes raw values: the reason for the rewrite
    safe = _without_value_ranges(text, [True, False, False])
    infos = next(ln for ln in safe.splitlines() if ln.startswith("feature_infos="))
    assert infos.split("=", 1)[1].split(" ")[0] == "none"
    assert first not in safe
    assert infos.split(" ")[1:] == next(ln for ln in text.splitlines() if ln.startswith("feature_infos=")).split(" ")[1:]
    b2 = lgb.Booster(model_str=safe)
    np.testing.assert_array_equal(b.predict(X, raw_score=True), b2.predict(X, raw_score=True))
    np.testing.assert_array_equal(b.predict(X, pred_contrib=True), b2.predict(X, pred_contrib=True))
    assert _without_value_ranges(text, [False, False, False]) == text
