"""Intervals of whyrec-feedback checked at their stated level by simulation: data drawn with a
known truth many times, the share of intervals covering it compared with 1 - alpha. A 90%
interval labelled 95% covers about 90% of the time and fails these tests."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst

from whyrec_feedback import stats
from whyrec_feedback.offpolicy import OffPolicy

# With R simulated data sets the coverage of a correct 95% interval has sd sqrt(.95 .05 / R);
# the lower bound below sits ~3 sd under 0.95 and ~4 sd over 0.90 for R = 1000.
R = 1000


def covered(lo, hi, truth):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return float(np.mean((lo <= truth) & (truth <= hi)))


def test_wilson_coverage_at_95_and_at_80():
    rng = np.random.default_rng(0)
    p, n = 0.3, 200
    x = rng.binomial(n, p, R)
    assert 0.93 <= covered(*stats.wilson(x, n), p) <= 0.97
    assert 0.77 <= covered(*stats.wilson(x, n, alpha=0.2), p) <= 0.83


def test_wilson_matches_the_score_formula_and_handles_zero_exposures():
    x, n, z = 12, 80, sst.norm.ppf(0.975)
    ph = x / n
    centre = (ph + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n))
    lo, hi = stats.wilson(x, n)
    assert (float(lo), float(hi)) == (pytest.approx(centre - half), pytest.approx(centre + half))
    lo, hi = stats.wilson([3, 0], [10, 0])
    assert not math.isnan(lo[0]) and math.isnan(lo[1]) and math.isnan(hi[1])


def test_compare_proportions_diff_and_lift_coverage():
    rng = np.random.default_rng(1)
    p_t, p_c, n = 0.12, 0.10, 3000
    xt, xc = rng.binomial(n, p_t, R), rng.binomial(n, p_c, R)
    out = [stats.compare_proportions(int(a), n, int(b), n) for a, b in zip(xt, xc)]
    assert 0.93 <= covered([o["diff_ci_low"] for o in out], [o["diff_ci_high"] for o in out], p_t - p_c) <= 0.97
    assert 0.93 <= covered([o["lift_ci_low"] for o in out], [o["lift_ci_high"] for o in out], p_t / p_c - 1) <= 0.97
    out90 = [stats.compare_proportions(int(a), n, int(b), n, alpha=0.1) for a, b in zip(xt[:300], xc[:300])]
    assert all(o9["diff_ci_high"] - o9["diff_ci_low"] < o["diff_ci_high"] - o["diff_ci_low"] for o9, o in zip(out90, out))


def test_compare_proportions_hand_worked_values():
    o = stats.compare_proportions(30, 100, 20, 100)
    assert o["diff"] == pytest.approx(0.1) and o["lift"] == pytest.approx(0.5)
    pool = 50 / 200
    z = 0.1 / math.sqrt(pool * (1 - pool) * (2 / 100))
    assert o["z"] == pytest.approx(z) and o["p_value"] == pytest.approx(2 * sst.norm.sf(z))
    assert o["diff_ci_low"] < 0.1 < o["diff_ci_high"] and o["lift_ci_low"] < 0.5 < o["lift_ci_high"]
    none = stats.compare_proportions(0, 50, 0, 50)
    assert (none["z"], none["p_value"]) == (0.0, 1.0)
    every = stats.compare_proportions(50, 50, 50, 50)
    assert (every["z"], every["p_value"]) == (0.0, 1.0)
    zero_c = stats.compare_proportions(5, 50, 0, 50)
    assert math.isnan(zero_c["lift"]) and math.isnan(zero_c["lift_ci_low"]) and math.isnan(zero_c["lift_ci_high"])
    zero_t = stats.compare_proportions(0, 50, 5, 50)
    assert zero_t["lift"] == -1.0 and math.isnan(zero_t["lift_ci_low"])


def test_cuped_interval_coverage_and_variance_reduction():
    rng = np.random.default_rng(2)
    n, effect, hits, reductions = 400, 0.3, 0, []
    for _ in range(400):
        x = rng.normal(size=2 * n)
        arm = np.repeat([0, 1], n)
        y = 2.0 * x + effect * arm + rng.normal(size=2 * n)
        rows, info = stats.cuped(y, x, arm, ["control", "treatment"], control=0)
        hits += rows[0]["ci_low"] <= effect <= rows[0]["ci_high"]
        reductions.append(info["variance_reduction"])
    assert 0.92 <= hits / 400 <= 0.98
    assert np.mean(reductions) == pytest.approx(0.8, abs=0.03)  # corr^2 = 4 / 5


def test_cuped_hand_worked_theta_and_missing_covariate():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 7.0])
    x = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0])
    arm = np.array([0, 0, 0, 1, 1, 1])
    rows, info = stats.cuped(y, x, arm, ["c", "t"], control=0)
    xf = np.where(np.isnan(x), np.nanmean(x), x)
    theta = np.cov(xf, y, bias=True)[0, 1] / xf.var()
    ya = y - theta * (xf - xf.mean())
    assert info["theta"] == pytest.approx(theta) and info["covariate_missing"] == 1
    assert rows[0]["arm"] == "t" and rows[0]["diff_adjusted"] == pytest.approx(ya[3:].mean() - ya[:3].mean())
    assert rows[0]["diff_unadjusted"] == pytest.approx(y[3:].mean() - y[:3].mean())
    t = sst.ttest_ind(ya[3:], ya[:3], equal_var=False)
    assert rows[0]["p_value"] == pytest.approx(t.pvalue)
    assert rows[0]["ci_low"] == pytest.approx(t.confidence_interval(0.95).low)
    assert rows[0]["ci_high"] == pytest.approx(t.confidence_interval(0.95).high)
    with pytest.raises(ValueError, match="missing for every exposure"):
        stats.cuped(y, np.full(6, np.nan), arm, ["c", "t"], control=0)


def test_msprt_always_valid_false_positive_rate():
    """Under no difference, peeking at every look and stopping at p < alpha rejects at most
    about alpha of the time (a fixed-horizon test peeked at this often rejects far more)."""
    rng = np.random.default_rng(3)
    looks = np.arange(200, 4001, 200)
    rejected_av = rejected_naive = 0
    sims = 300
    for _ in range(sims):
        ct = np.cumsum(rng.binomial(1, 0.1, looks[-1]))[looks - 1]
        cc = np.cumsum(rng.binomial(1, 0.1, looks[-1]))[looks - 1]
        out = stats.msprt(ct, looks, cc, looks, tau=0.05)
        rejected_av += bool((out["p_always_valid"] < 0.05).any())
        rejected_naive += bool((stats.two_proportion_p(ct, looks, cc, looks) < 0.05).any())
        assert (np.diff(out["cs_low"]) >= 0).all() and (np.diff(out["cs_high"]) <= 0).all()
    assert rejected_av / sims <= 0.06
    assert rejected_naive / sims > 0.12


def test_msprt_hand_worked_statistic():
    out = stats.msprt([60], [500], [40], [500], tau=0.1, min_n=100)
    d, v, t2 = 0.04, 0.12 * 0.88 / 500 + 0.08 * 0.92 / 500, 0.01
    lam = 0.5 * math.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2))
    assert out["log_lambda"][0] == pytest.approx(lam)
    assert out["p_always_valid"][0] == pytest.approx(min(1.0, math.exp(-lam)))
    half = math.sqrt(2 * v * (v + t2) / t2 * (math.log(20) + 0.5 * math.log((v + t2) / v)))
    assert (out["cs_low"][0], out["cs_high"][0]) == (pytest.approx(d - half), pytest.approx(d + half))
    early = stats.msprt([6], [50], [4], [50], tau=0.1, min_n=100)
    assert not early["tested"][0] and early["p_always_valid"][0] == 1.0 and early["cs_low"][0] == -np.inf


def test_two_proportion_p_and_srm():
    p = stats.two_proportion_p([30, 0], [100, 100], [20, 0], [100, 100])
    pool = 0.25
    assert p[0] == pytest.approx(2 * sst.norm.sf(0.1 / math.sqrt(pool * (1 - pool) * 0.02))) and p[1] == 1.0
    ok = stats.srm_check([5000, 5050], [0.5, 0.5])
    assert not ok["mismatch"] and ok["expected"] == [5025.0, 5025.0]
    bad = stats.srm_check([5000, 5400], [1, 1])
    chi2 = 2 * 200 ** 2 / 5200
    assert bad["chi2"] == pytest.approx(chi2) and bad["mismatch"] and bad["p_value"] == pytest.approx(sst.chi2.sf(chi2, 1))
    assert bad["expected_share"] == [0.5, 0.5] and bad["alpha"] == 0.001


def test_power_analysis_against_the_normal_approximation():
    p_c, mde, n = 0.1, 0.2, 5000
    out = stats.power_analysis(p_c, n, n, mde)
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.1))
    z = sst.norm.ppf(0.975)
    power = sst.norm.sf(z - h * math.sqrt(n / 2)) + sst.norm.cdf(-z - h * math.sqrt(n / 2))
    assert out["power_at_current_n"] == pytest.approx(power, rel=1e-6)
    n_needed = 2 * ((z + sst.norm.ppf(0.8)) / h) ** 2
    assert out["n_control_needed"] == math.ceil(n_needed) == out["n_treatment_needed"]
    back = stats.power_analysis(p_c, n, n, out["mde_at_current_n"])
    assert back["power_at_current_n"] == pytest.approx(0.8, abs=1e-3)
    bad = stats.power_analysis(0.9, n, n, 0.2)
    assert math.isnan(bad["power_at_current_n"]) and "not a proportion" in bad["note"]
    uneven = stats.power_analysis(p_c, n, 2 * n, mde)
    assert uneven["n_treatment_needed"] == pytest.approx(2 * uneven["n_control_needed"], abs=2)


# -- off-policy bootstrap intervals ----------------------------------------------------------
def ips_terms(rng, n):
    """Uniform logging over 4 items (propensity 1/4); the target always shows item 0 (pi = 1)."""
    ctr = np.array([0.3, 0.1, 0.2, 0.05])
    item = rng.integers(0, 4, n)
    r = (rng.random(n) < ctr[item]).astype(float)
    w = np.where(item == 0, 4.0, 0.0)
    return {"wr": w * r, "w": w}, r, ctr[0]


@pytest.mark.parametrize("alpha,low,high", [(0.05, 0.925, 0.97), (0.2, 0.76, 0.84)])
def test_offpolicy_bootstrap_interval_coverage(alpha, low, high):
    rng = np.random.default_rng(4)
    op = OffPolicy(estimators=["IPS", "SNIPS"], bootstrap=300, alpha=alpha)
    hits = {"IPS": 0, "SNIPS": 0}
    sims = 600
    for _ in range(sims):
        t, r, truth = ips_terms(rng, 800)
        boot, method = op._bootstrap(t, r != 0, rng)
        assert method.startswith("percentile bootstrap, 300 resamples of the 800 events")
        for e in hits:
            hits[e] += boot[e][0] <= truth <= boot[e][1]
    for e in hits:
        assert low <= hits[e] / sims <= high, (e, hits[e] / sims)


def test_offpolicy_poisson_bootstrap_interval_coverage():
    rng = np.random.default_rng(5)
    op = OffPolicy(estimators=["IPS", "SNIPS"], bootstrap=300, alpha=0.05)
    hits = {"IPS": 0, "SNIPS": 0}
    sims = 600
    for _ in range(sims):
        t, r, truth = ips_terms(rng, 800)
        boot = op._poisson_split(t, r != 0, rng)
        for e in hits:
            hits[e] += boot[e][0] <= truth <= boot[e][1]
    for e in hits:
        assert 0.925 <= hits[e] / sims <= 0.97, (e, hits[e] / sims)


def test_offpolicy_bootstrap_se_matches_the_analytic_se():
    rng = np.random.default_rng(6)
    t, r, _ = ips_terms(rng, 2000)
    op = OffPolicy(estimators=["IPS"], bootstrap=2000, alpha=0.05)
    lo, hi, se = op._bootstrap(t, r != 0, rng)[0]["IPS"]
    analytic = t["wr"].std() / math.sqrt(len(r))
    assert se == pytest.approx(analytic, rel=0.08)
    assert hi - lo == pytest.approx(2 * 1.96 * analytic, rel=0.1)


def test_wilson_with_one_exposure_and_counts_of_one():
    lo, hi = stats.wilson(1, 1)
    z = sst.norm.ppf(0.975)
    assert float(hi) == pytest.approx(1.0) and float(lo) == pytest.approx(1 / (1 + z * z))
    for x_t, x_c in ((3, 1), (1, 3)):  # a single click in one arm still gives a finite lift interval
        o = stats.compare_proportions(x_t, 50, x_c, 50)
        assert math.isfinite(o["lift_ci_low"]) and math.isfinite(o["lift_ci_high"])
        assert o["lift_ci_low"] < o["lift"] < o["lift_ci_high"]


def test_power_analysis_refuses_a_lift_to_zero():
    out = stats.power_analysis(0.1, 1000, 1000, -1.0)
    assert math.isnan(out["power_at_current_n"]) and "not a proportion in (0, 1)" in out["note"]
    assert math.isnan(stats.power_analysis(0.0, 1000, 1000, 0.1)["n_control_needed"])


def test_msprt_reference_text():
    assert stats.MSPRT_REFERENCE == (
        "mixture sequential probability ratio test (mSPRT) with a normal mixture over the difference, plug-in "
        "variance: Johari, Koomen, Pekelis & Walsh, 'Always Valid Inference: Continuous Monitoring of A/B Tests', "
        "Operations Research 70(3), 2022 (arXiv:1512.04922); the confidence sequence is the set of differences the "
        "mSPRT does not reject (their Prop. 3)")


def test_cuped_unadjusted_p_value_and_msprt_default_min_n():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 7.0])
    x = np.array([1.0, 2.0, 3.0, 3.5, 5.0, 6.0])
    rows, _ = stats.cuped(y, x, np.array([0, 0, 0, 1, 1, 1]), ["c", "t"], control=0)
    assert rows[0]["p_value_unadjusted"] == pytest.approx(sst.ttest_ind(y[3:], y[:3], equal_var=False).pvalue)
    out = stats.msprt([10, 10], [99, 100], [5, 5], [99, 100], tau=0.1)  # default min_n = 100
    assert out["tested"].tolist() == [False, True]


def test_offpolicy_bootstrap_returns_only_the_asked_estimators():
    rng = np.random.default_rng(8)
    t, r, _ = ips_terms(rng, 200)
    boot, _ = OffPolicy(estimators=["IPS"], bootstrap=50)._bootstrap(t, r != 0, rng)
    assert set(boot) == {"IPS"}


def test_offpolicy_by_position_hand_worked():
    import pandas as pd

    op = OffPolicy(estimators=["IPS", "SNIPS"])
    slots = np.array([0, 1, 1, 2])
    r = np.array([1.0, 0.0, 1.0, 0.0])
    t = {"wr": np.array([2.0, 0.0, 4.0, 0.0]), "w": np.array([2.0, 1.0, 4.0, 0.0])}
    df = op._by_position(t, r, slots, [1, 2, 3], None)
    assert df["events"].tolist() == [1, 2, 1]
    assert df["logged_ctr"].tolist() == [1.0, 0.5, 0.0]  # one event at position 1: its own click rate
    assert df["IPS"].tolist() == [2.0, 2.0, 0.0]
    assert df["SNIPS"].tolist()[:2] == [1.0, 0.8] and math.isnan(df["SNIPS"].tolist()[2])
    ref = pd.DataFrame({"position": [1, 1, 3], "label": [1, 0, 1]})
    assert op._by_position(t, r, slots, [1, 2, 3], ref)["reference_ctr"].tolist()[::2] == [0.5, 1.0]


def test_offpolicy_refused_propensities_are_listed():
    import pandas as pd

    from whyrec.errors import DataError

    logged = pd.DataFrame({"propensity": [0.0, 1.0, 1.5, 0.5]})
    with pytest.raises(DataError, match=r"propensities must be in \(0, 1\]; found \[0\.0, 1\.5\]$"):
        OffPolicy(estimators=["IPS"])._propensity(logged)
    assert OffPolicy(estimators=["DM"])._propensity(logged) is None


def small_logs(n=300, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({"event_id": np.arange(n), "user": rng.integers(0, 20, n), "item": rng.integers(0, 4, n),
                         "position": rng.integers(1, 3, n), "propensity": 0.25,
                         "label": (rng.random(n) < 0.3).astype(int), "user_feature_age": rng.normal(size=n)})


def test_offpolicy_summary_weights_and_estimates_layout():
    rep = OffPolicy(bootstrap=0, reward_features=["user_feature_age"]).analyze(small_logs())
    s = rep.summary
    w = s["weights"]
    assert w["ess_fraction"] == pytest.approx(w["ess"] / 300) and w["mean"] == pytest.approx(1.0)
    assert all("estimator" not in v for v in s["estimates"].values()) and set(s["estimates"]) == {"IPS", "SNIPS", "DR", "DM"}
    assert s["reward_model"].endswith(", numeric user_feature_age")
    assert isinstance(rep.figures, dict) and rep.figures


def test_offpolicy_few_effective_events_note_and_missing_item():
    logs = small_logs(60)
    rep = OffPolicy(bootstrap=0, estimators=["IPS"]).analyze(logs)
    assert rep.summary["notes"] == ["effective sample size is only 60 of 60 events: the weighted estimates rest on few events"]
    from whyrec.errors import DataError

    bad = logs.astype({"item": "float"})
    bad.loc[[3, 7], "item"] = np.nan
    with pytest.raises(DataError, match=r"^off-policy: 2 logged event\(s\) have no item$"):
        OffPolicy(bootstrap=0, estimators=["IPS"]).analyze(bad)
    with pytest.raises(DataError, match=r"^off-policy events: no 'event' column and no 'label' column; "):
        OffPolicy(bootstrap=0).analyze(logs.drop(columns=["label"]))
    with pytest.raises(DataError, match=r"^off-policy events: no 'user' column \(columns: "):
        OffPolicy(bootstrap=0).analyze(logs.drop(columns=["user"]))


def test_abtest_power_must_be_a_probability_and_split_list():
    from whyrec.errors import DataError
    from whyrec_feedback.abtest import ABTest

    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(DataError, match=r"power must be between 0 and 1"):
            ABTest(power=bad)
    assert ABTest(expected_split=[1, 3])._expected_split(["a", "b"]) == [1.0, 3.0]
    assert ABTest(expected_split={"a": 2, "b": 1})._expected_split(["a", "b"]) == [2.0, 1.0]
    assert ABTest()._expected_split(["a", "b", "c"]) == [1.0, 1.0, 1.0]
    with pytest.raises(DataError, match=r"shares must be > 0, got \[0\.0, 1\.0\]"):
        ABTest(expected_split=[0, 1])._expected_split(["a", "b"])


def test_offpolicy_dr_alone_fits_the_reward_model_and_agrees_with_the_full_run():
    logs = small_logs()
    full = OffPolicy(bootstrap=0, reward_features=["user_feature_age"]).analyze(logs).summary
    dr = OffPolicy(bootstrap=0, estimators=["DR"], reward_features=["user_feature_age"]).analyze(logs).summary
    assert set(dr["estimates"]) == {"DR"} and dr["reward_model"] == full["reward_model"]
    assert dr["estimates"]["DR"] == full["estimates"]["DR"]


def test_offpolicy_refusals_of_estimators_and_of_an_empty_log_are_anchored():
    from whyrec.errors import DataError

    with pytest.raises(DataError, match=r"^off-policy: unknown estimator\(s\) \['XYZ'\]; choose from IPS, SNIPS, DR, DM$"):
        OffPolicy(estimators=["ips", "xyz"])
    logs = small_logs(40).assign(variant="random")
    with pytest.raises(DataError, match=r"^off-policy: no logged impressions to evaluate from \(variants: random\)$"):
        OffPolicy(bootstrap=0, estimators=["IPS"], reference_variant="random").analyze(logs)


def test_offpolicy_unsupported_items_message_and_weights_layout():
    """A uniform target over logged items 0, 1 and never-logged items: the message lists up to 10
    of them (then "..."), is both a note and the summary's unsupported message, and the weights
    count the events the target can show (items 0 and 1: propensity 0.25, weight 1 / k / 0.25)."""
    logs = small_logs()
    can_show = int(logs["item"].isin([0, 1]).sum())
    many = OffPolicy(bootstrap=0, estimators=["IPS"], items=[0, 1, *range(100, 112)]).analyze(logs).summary
    assert many["weights"]["nonzero"] == can_show and many["weights"]["max"] == pytest.approx(1 / 14 / 0.25)
    msg = many["unsupported"]["message"]
    assert msg in many["notes"] and msg.startswith("UNSUPPORTED: target ")
    listed = ", ".join(map(str, range(100, 110)))
    assert f" puts 85.7% of its probability on 12 item(s) never logged ({listed} ...); " in msg
    few = OffPolicy(bootstrap=0, estimators=["IPS"], items=[0, 1, 100, 101]).analyze(logs).summary
    assert " puts 50.0% of its probability on 2 item(s) never logged (100, 101); " in few["unsupported"]["message"]
    assert few["weights"]["nonzero"] == can_show


def _grouped_terms(n_events: int, n_groups: int = 10):
    """IPS terms of n_events events falling into exactly n_groups distinct (w, wr) groups."""
    g = np.arange(n_events) % n_groups
    w = 0.1 * (g + 1)
    return {"w": w, "wr": w * (g % 2)}


@pytest.mark.parametrize("n_events, by_index", [(70, True), (71, False)])
def test_offpolicy_exact_bootstrap_resamples_events_by_index_up_to_4n_equal_28g(n_events, by_index):
    """Two exact bootstraps (same distribution, different cost): event indices drawn while
    4 N <= 28 G, multinomial counts over the G groups above that. 10 groups: 70 events by index,
    71 by groups; each equals that resampling written out with the same generator."""
    op = OffPolicy(estimators=["IPS", "SNIPS"], bootstrap=40)
    t = _grouped_terms(n_events)
    got, method = op._bootstrap(t, t["wr"] > 0, np.random.default_rng(5))
    assert method == f"percentile bootstrap, 40 resamples of the {n_events} events"
    rng = np.random.default_rng(5)
    if by_index:
        idx = rng.integers(0, n_events, size=(40, n_events))
        sw, swr = t["w"][idx].sum(axis=1), t["wr"][idx].sum(axis=1)
    else:
        first = np.arange(10)  # the groups' first events, in order of appearance
        cnt = rng.multinomial(n_events, np.bincount(np.arange(n_events) % 10) / n_events, size=40).astype(float)
        sw, swr = cnt @ t["w"][first], cnt @ t["wr"][first]
    q = [2.5, 97.5]
    np.testing.assert_allclose(got["IPS"][:2], np.percentile(swr / n_events, q), rtol=1e-12)
    np.testing.assert_allclose(got["SNIPS"][:2], np.percentile(swr / sw, q), rtol=1e-12)


def test_offpolicy_bootstrap_snips_is_nan_where_a_resample_has_no_weight():
    """Resamples that draw only zero-weight events have no SNIPS (0 / 0): NaN, left out of the
    interval, never 0."""
    op = OffPolicy(estimators=["IPS", "SNIPS"], bootstrap=30)
    t = {"w": np.array([0.0, 0.0, 2.0]), "wr": np.array([0.0, 0.0, 2.0])}
    draws = op._draws(t, t, np.ones(3), 3, 30, True, np.random.default_rng(1))
    idx = np.random.default_rng(1).integers(0, 3, size=(30, 3))
    sw = t["w"][idx].sum(axis=1)
    assert (sw == 0).sum() >= 3  # several resamples without weight
    want = np.where(sw > 0, t["wr"][idx].sum(axis=1) / np.where(sw > 0, sw, 1), np.nan)
    np.testing.assert_array_equal(draws["SNIPS"], want)
