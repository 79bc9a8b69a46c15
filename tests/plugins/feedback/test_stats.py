"""Statistics of the A/B analyzer against closed forms and simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportions_ztest

from whyrec_feedback import stats


def test_wilson_matches_the_closed_form():
    x, n, z = 38, 10_000, norm.ppf(0.975)
    centre = (x + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
    lo, hi = stats.wilson(x, n)
    assert lo == pytest.approx(centre - half, rel=1e-12)
    assert hi == pytest.approx(centre + half, rel=1e-12)
    lo, hi = stats.wilson(np.array([0, 5]), np.array([0, 10]))
    assert math.isnan(lo[0]) and hi[1] > 0.5 > lo[1]


def test_two_proportions():
    c = stats.compare_proportions(60, 1000, 40, 1000)
    pool = 100 / 2000
    z = (0.06 - 0.04) / math.sqrt(pool * (1 - pool) * 2 / 1000)
    assert c["diff"] == pytest.approx(0.02)
    assert c["lift"] == pytest.approx(0.5)
    assert c["z"] == pytest.approx(z)
    assert c["p_value"] == pytest.approx(2 * norm.sf(z))
    assert c["diff_ci_low"] < 0.02 < c["diff_ci_high"]
    assert c["lift_ci_low"] < 0.5 < c["lift_ci_high"]
    zero = stats.compare_proportions(0, 100, 0, 100)
    assert zero["p_value"] == 1.0 and math.isnan(zero["lift"])


def test_vectorised_fixed_horizon_p_equals_statsmodels():
    p = stats.two_proportion_p([60, 7], [1000, 300], [40, 9], [1000, 310])
    for k, (a, b, c, d) in enumerate([(60, 1000, 40, 1000), (7, 300, 9, 310)]):
        assert p[k] == pytest.approx(proportions_ztest([a, c], [b, d])[1])


def test_sample_ratio_mismatch():
    ok = stats.srm_check([1000, 1100], [1, 1])
    assert ok["chi2"] == pytest.approx(2 * 50 ** 2 / 1050)
    assert not ok["mismatch"]
    bad = stats.srm_check([1000, 1300], [1, 1])
    assert bad["chi2"] == pytest.approx(2 * 150 ** 2 / 1150) and bad["mismatch"]
    planned = stats.srm_check([1000, 3000], [0.25, 0.75])  # a 25/75 test that ran as planned
    assert planned["chi2"] == pytest.approx(0.0) and not planned["mismatch"]


def test_power_and_sample_size():
    p_c, mde = 0.05, 0.1
    out = stats.power_analysis(p_c, 1000, 1000, mde)
    h = 2 * math.asin(math.sqrt(p_c * 1.1)) - 2 * math.asin(math.sqrt(p_c))
    n = 2 * ((norm.ppf(0.975) + norm.ppf(0.8)) / h) ** 2  # per arm, equal split
    assert out["n_control_needed"] == pytest.approx(n, rel=1e-3)
    d, z = h * math.sqrt(1000 / 2), norm.ppf(0.975)
    assert out["power_at_current_n"] == pytest.approx(norm.cdf(d - z) + norm.cdf(-d - z), rel=1e-9)  # both tails
    at_n = stats.power_analysis(p_c, out["n_control_needed"], out["n_treatment_needed"], mde)
    assert at_n["mde_at_current_n"] == pytest.approx(mde, rel=1e-3)  # inverse of each other
    assert at_n["power_at_current_n"] == pytest.approx(0.8, abs=1e-3)
    assert "cannot be computed" in stats.power_analysis(0.0, 10, 10, 0.1)["note"]


def _aa_paths(rng, n_exp, looks, per_look, p_c, p_t):
    xc = rng.binomial(per_look, p_c, size=(n_exp, looks)).cumsum(axis=1)
    xt = rng.binomial(per_look, p_t, size=(n_exp, looks)).cumsum(axis=1)
    n = per_look * np.arange(1, looks + 1)
    return xc, xt, n


def test_msprt_controls_false_positives_under_continuous_monitoring():
    """A/A tests watched at 40 looks: naive peeking at the fixed-horizon p-value rejects far
    more often than alpha; the always-valid p-value stays below alpha."""
    rng = np.random.default_rng(11)
    xc, xt, n = _aa_paths(rng, 500, 40, 500, 0.05, 0.05)
    ever_naive = ever_av = 0
    for k in range(len(xc)):
        m = stats.msprt(xt[k], n, xc[k], n, tau=0.01, alpha=0.05)
        ever_av += bool((m["p_always_valid"] < 0.05).any())
        ever_naive += bool((stats.two_proportion_p(xt[k], n, xc[k], n) < 0.05).any())
    assert ever_naive / 500 > 0.15  # peeking inflates the false-positive rate (about 0.25 at 40 looks)
    assert ever_av / 500 <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / 500)


def test_msprt_detects_a_real_effect_and_cs_agrees_with_p():
    rng = np.random.default_rng(12)
    xc, xt, n = _aa_paths(rng, 200, 40, 500, 0.05, 0.065)
    detected = 0
    for k in range(len(xc)):
        m = stats.msprt(xt[k], n, xc[k], n, tau=0.01, alpha=0.05)
        detected += bool((m["p_always_valid"] < 0.05).any())
        excludes_zero = (m["cs_low"] > 0) | (m["cs_high"] < 0)
        assert np.array_equal(m["p_always_valid"] < 0.05, excludes_zero)
        assert np.all(np.diff(m["cs_high"] - m["cs_low"]) <= 1e-15)  # a confidence sequence only shrinks
    assert detected / 200 > 0.8


def test_cuped_reduces_variance_without_bias():
    rng = np.random.default_rng(5)
    n = 40_000
    arm = rng.integers(0, 2, n)
    x = rng.normal(0, 1, n)  # pre-period metric
    y = 1.0 + 0.8 * x + 0.05 * arm + rng.normal(0, 0.6, n)
    rows, info = stats.cuped(y, x, arm, ["control", "treatment"], 0)
    (r,) = rows
    rho2 = 0.8 ** 2 / (0.8 ** 2 + 0.6 ** 2)
    assert info["variance_reduction"] == pytest.approx(rho2, abs=0.02)
    assert info["theta"] == pytest.approx(0.8, abs=0.02)
    assert abs(r["diff_adjusted"] - 0.05) < 3 * r["se_adjusted"]
    assert r["ci_high"] - r["ci_low"] == pytest.approx(2 * norm.ppf(0.975) * r["se_adjusted"], rel=1e-3)
    assert r["se_adjusted"] < 0.7 * r["se_unadjusted"]
