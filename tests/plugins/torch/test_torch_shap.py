"""whyrec-shap's model-agnostic explainers on the torch-attention model: same scoring contract.

exact-field-shapley masks whole fields by swapping in background rows' values (history ids
included), which the model must score like any other row; its Shapley values over fields are
exact, so they are checked against a brute-force evaluation of every coalition here."""
from __future__ import annotations

from itertools import combinations
from math import factorial

import pytest

whyrec_shap = pytest.importorskip("whyrec_shap", reason="whyrec-shap is a separate plugin (make test installs it)")


def test_exact_field_shapley_on_the_torch_model(model, toy, pairs):
    from whyrec_shap.background import sample_background
    from whyrec_shap.exact import ExactFieldShapley

    ex = ExactFieldShapley(background_size=12, seed=0)
    assert ex.supports(model)
    e = ex.explain(model, toy, pairs)
    assert e.max_additivity_error < 1e-9
    fields = list(e.field_attributions.columns)
    assert set(fields) == {"user", "item", "history", "cross"}
    # brute force for the first pair: v(S) = mean over background of f(x_S, b_rest)
    X = toy.features(pairs.loc[[0], ["user", "item"]])[model.feature_names]
    B = sample_background(model, toy, 12, 0)
    groups = toy.schema.select(model.feature_names).groups()

    def v(S):
        H = B.copy()
        for f in S:
            for c in groups[f]:
                H[c] = X[c].iloc[0]
        return model.score_features(H).mean()

    n = len(fields)
    for f in fields:
        others = [g for g in fields if g != f]
        phi = sum(factorial(len(S)) * factorial(n - len(S) - 1) / factorial(n) * (v(S + (f,)) - v(S))
                  for r in range(n) for S in combinations(others, r))
        assert e.field_attributions.at[0, f] == pytest.approx(phi, abs=1e-6)
