"""gradient-shap (expected gradients): checked against what the maths gives.

- with one baseline, expected gradients is integrated gradients with a random α, so it converges
  to integrated gradients (computed independently, Captum, fine Riemann grid) within its own
  Monte-Carlo standard errors;
- Σ attributions = f(x) − mean_b f(b) in expectation: the gap falls with n_samples and stays
  within a few standard errors;
- draws depend on the seed only (not on chunking), bad parameters are refused in words.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec import Explanation
from whyrec.errors import UnsupportedError, WhyrecError
from whyrec_torch.encoding import Encoded
from whyrec_torch.gradient_shap import GradientSHAP, background_rows, gradient_shap_attributions
from whyrec_torch.gradients import ig_attributions

from torch_fixtures import COLD_USER

PARTS = ("items", "cat", "num")


def flat(res, prefix=""):
    return np.concatenate([res[prefix + k].ravel() for k in PARTS])


def all_missing(model, enc):
    """Integrated gradients' baseline as one encoded row: ids missing, numbers at the mean."""
    n_hist, n_num = enc.items.shape[1] - 1, enc.num.shape[1]
    return Encoded(np.zeros((1, n_hist + 1), dtype=np.int64), np.array([model.encoder.cat_offsets], dtype=np.int64),
                   np.zeros((1, n_num), dtype=np.float32), np.zeros((1, n_hist), dtype=bool))


def test_one_baseline_converges_to_integrated_gradients(model, toy, pairs):
    pick = [0, 1, 4, 8, int(np.flatnonzero(pairs["user"] == COLD_USER)[0])]
    X = toy.features(pairs[["user", "item"]].iloc[pick])[model.feature_names]
    enc = model.encode(X)
    base = all_missing(model, enc)
    ref = ig_attributions(model, enc, steps=4096, method="riemann_middle")
    quad = np.abs(flat(ref) - flat(ig_attributions(model, enc, steps=2048, method="riemann_middle"))).max()
    errs = {}
    for n in (64, 4000):
        g = gradient_shap_attributions(model, enc, base, n_samples=n, seed=1)
        np.testing.assert_allclose(g["baseline"], ref["baseline"], rtol=0, atol=1e-6)  # f(one baseline) = IG's f(baseline)
        err, se = flat(g) - flat(ref), flat(g, "se_")
        zero = se == 0  # padded history positions (the cold user): exactly zero in both methods
        assert zero.sum() == 5 and np.all(flat(g)[zero] == 0) and np.all(flat(ref)[zero] == 0)
        # within 5 of its own Monte-Carlo standard errors (plus the reference's quadrature error)
        assert np.all(np.abs(err[~zero]) <= 5 * se[~zero] + 2 * quad)
        errs[n] = np.abs(err).mean()
    # error ~ 1/sqrt(n): 62.5x the draws should cut it by ~7.9x; demand 4x
    assert errs[4000] < errs[64] / 4, errs


def test_completeness_holds_in_expectation(model, toy, pairs):
    gap, stderr = {}, {}
    for n in (16, 1024):
        e = GradientSHAP(n_samples=n, background=30, seed=0).explain(model, toy, pairs)
        p = e.pairs
        total = e.attributions.to_numpy().sum(1)
        np.testing.assert_allclose(p["additivity_error"], np.abs(total - (p["output_value"] - p["base_value"])), atol=1e-12)
        # the gap is a sampling error of the sum: within 5 of its standard errors on every pair
        assert np.all(p["additivity_error"] <= 5 * p["mc_stderr"])
        gap[n], stderr[n] = p["additivity_error"].mean(), p["mc_stderr"].mean()
        assert e.summary["additivity_error_mean"] == pytest.approx(gap[n])
    span = (e.pairs["output_value"] - e.pairs["base_value"]).abs().mean()
    assert gap[1024] < gap[16] / 4, gap  # 64x the draws: ~8x smaller expected
    assert stderr[1024] < stderr[16] / 6, stderr
    assert gap[1024] < 0.05 * span, (gap, span)


def test_explanation_values_reasons_and_figures(model, toy, pairs, tmp_path):
    ex = GradientSHAP(background=20, n_samples=32, seed=3)
    e = ex.explain(model, toy, pairs)
    X = toy.features(pairs[["user", "item"]])[model.feature_names]
    np.testing.assert_allclose(e.pairs["output_value"], model.score_features(X), atol=1e-5)
    # base value: the background rows' mean logit, each seen through the explained row's mask
    _, bg = background_rows(model, toy, 20, 3)
    assert len(bg) == 20 and e.params["background"] == 20
    enc = model.encode(X)
    for i in (0, 12):
        rows = Encoded(bg.items, bg.cat, bg.num, np.repeat(enc.mask[i:i + 1], len(bg), 0))
        assert e.pairs.loc[i, "base_value"] == pytest.approx(model.forward_encoded(rows).mean(), abs=1e-5)
    fields = e.field_attributions
    np.testing.assert_allclose(fields.to_numpy().sum(1), e.attributions.to_numpy().sum(1), atol=1e-9)
    assert e.method == "gradient-shap" and "Monte-Carlo" in e.params["additivity_error"]
    cold = e.pairs.index[e.pairs["user"] == COLD_USER]
    assert e.summary["cold_start_pairs"] == len(cold) == 4
    for i in cold:
        assert e.reasons[i][0].startswith("no viewing history yet (cold start)")
        assert np.all(e.attributions.loc[i, model.sequence_features] == 0)
    warm = [r for i, r in enumerate(e.reasons) if i not in set(cold)]
    assert all(r and ":" in r[0] for r in warm)
    tab = e.extras["history_positions"]
    assert set(tab["pair"]) == set(range(12)) and set(tab.columns) >= {"history_title", "attribution"}
    figs = ex.figures(e, toy)
    assert sorted(figs) == ["gshap_fields", "history_positions_user_1", "history_positions_user_2", "history_positions_user_3"]
    e.save(tmp_path / "g")
    back = Explanation.load(tmp_path / "g")
    np.testing.assert_allclose(back.pairs["mc_stderr"], e.pairs["mc_stderr"])
    assert back.reasons == e.reasons


@pytest.mark.parametrize("stdevs", [0.0, 0.05])
def test_same_seed_same_draws_whatever_the_chunking(model, toy, pairs, stdevs):
    X = toy.features(pairs[["user", "item"]].head(6))[model.feature_names]
    enc = model.encode(X)
    _, bg = background_rows(model, toy, 10, 0)
    a = gradient_shap_attributions(model, enc, bg, n_samples=40, stdevs=stdevs, seed=5, chunk=4096)
    b = gradient_shap_attributions(model, enc, bg, n_samples=40, stdevs=stdevs, seed=5, chunk=7)
    c = gradient_shap_attributions(model, enc, bg, n_samples=40, stdevs=stdevs, seed=6)
    np.testing.assert_allclose(flat(a), flat(b), rtol=1e-6, atol=1e-9)  # same draws; float32 batch rounding only
    assert np.abs(flat(a) - flat(c)).max() > 1e-4
    e1 = GradientSHAP(n_samples=16, seed=2).explain(model, toy, pairs)
    e2 = GradientSHAP(n_samples=16, seed=2).explain(model, toy, pairs)
    e3 = GradientSHAP(n_samples=16, seed=9).explain(model, toy, pairs)
    pd.testing.assert_frame_equal(e1.attributions, e2.attributions, check_exact=True)
    assert np.abs(e1.attributions.to_numpy() - e3.attributions.to_numpy()).max() > 1e-4


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 0}, "gradient-shap: n_samples=0 must be a positive integer (e.g. 64 or 1024)"),
    ({"n_samples": 2.5}, "n_samples=2.5 must be a positive integer"),
    ({"background": 0}, "gradient-shap: background=0 must be a positive integer (e.g. 50)"),
    ({"background": "50"}, "background='50' must be a positive integer"),
    ({"stdevs": -0.1}, "gradient-shap: stdevs=-0.1 must be a number >= 0 (e.g. 0.0"),
    ({"stdevs": float("nan")}, "stdevs=nan must be a number >= 0"),
    ({"seed": -1}, "seed=-1 must be a non-negative integer"),
    ({"chunk": True}, "chunk=True must be a positive integer"),
])
def test_bad_parameters_are_refused_in_words(kwargs, message):
    with pytest.raises(WhyrecError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        GradientSHAP(**kwargs)


def test_other_models_are_not_supported(toy, model):
    class LightGBMLike:
        name = "lightgbm"
        capabilities = frozenset({"tree", "shap"})
        feature_names = ["item_id"]

        def score_features(self, X):
            return np.zeros(len(X))

    ex = GradientSHAP()
    assert ex.supports(model) and not ex.supports(LightGBMLike())
    with pytest.raises(UnsupportedError, match="'gradient-shap' needs a torch-attention model.*exact-field-shapley"):
        ex.explain(LightGBMLike(), toy, pd.DataFrame({"user": [1], "item": [2]}))
