"""What a user of the ab-test analyzer reads, checked on small logs with hand-counted answers:
the names of the rates in the summary and tables, Holm's adjustment deciding "significant",
the fixed-horizon p-values of every sequential look, the note for a control rate of zero, the
order of events along the looks, and the two refusals (a look period without a fixed length,
feedback without a 'helpful' value)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportions_ztest
from whyrec.errors import DataError

from whyrec_feedback.abtest import ABTest


def _impressions(counts: dict[str, tuple[int, int]], **cols) -> pd.DataFrame:
    """One impression per row: for each arm (exposures, clicks), the clicks first."""
    rows = []
    for arm, (n, x) in counts.items():
        rows += [{"variant": arm, "label": int(i < x)} for i in range(n)]
    df = pd.DataFrame(rows)
    return df.assign(user=np.arange(len(df)), item=1, event_id=np.arange(len(df)), **cols)


def _feedback(counts: dict[str, tuple[int, int]]) -> pd.DataFrame:
    rows = []
    for arm, (n, x) in counts.items():
        rows += [{"variant": arm, "helpful": i < x} for i in range(n)]
    df = pd.DataFrame(rows)
    return df.assign(event="explanation_feedback", user=np.arange(len(df)), item=1, event_id=np.arange(len(df)),
                     explanation_method="tree-shap")


def test_helpful_metric_names_its_rate_and_counts():
    rep = ABTest(metric="helpful", control="A", sequential=False).analyze(_feedback({"A": (100, 30), "B": (100, 50)}))
    arms = rep.tables["arms"]
    assert list(arms.columns) == ["arm", "exposures", "helpful", "helpful_rate", "ci_low", "ci_high", "control"]
    s = rep.summary
    assert s["per_arm"]["B"]["helpful"] == 50 and s["per_arm"]["B"]["helpful_rate"] == 0.5
    assert set(s["per_arm"]["A"]) == {"exposures", "helpful", "helpful_rate", "ci_low", "ci_high"}
    p = proportions_ztest([50, 30], [100, 100])[1]
    assert s["comparisons"]["B"]["p_value"] == pytest.approx(p)
    # the sentence a user reads names the rate being compared
    assert f"B vs A: helpful rate difference +0.20000 (lift +66.7%), p = {p:.3g} (significant at alpha 0.05)." in s["conclusion"]
    assert "CTR" not in s["conclusion"]


def test_ctr_metric_names_its_rate_and_counts():
    s = ABTest(control="A", sequential=False).analyze(_impressions({"A": (1000, 100), "B": (1000, 150)})).summary
    assert s["per_arm"]["B"] == pytest.approx({"exposures": 1000, "clicks": 150, "ctr": 0.15,
                                               "ci_low": s["per_arm"]["B"]["ci_low"], "ci_high": s["per_arm"]["B"]["ci_high"]})
    p = proportions_ztest([150, 100], [1000, 1000])[1]
    assert f"B vs A: CTR difference +0.05000 (lift +50.0%), p = {p:.3g} (significant at alpha 0.05)." in s["conclusion"]
    assert "helpful rate" not in s["conclusion"]


def test_holm_adjusted_p_decides_significant():
    # B alone would pass at 5% (raw p ~ 0.03); with two treatments Holm doubles the smaller p
    counts = {"A": (1000, 100), "B": (1000, 131), "C": (1000, 102)}
    rep = ABTest(control="A", sequential=False).analyze(_impressions(counts))
    comps = rep.tables["comparisons"].set_index("arm")
    p_b = proportions_ztest([131, 100], [1000, 1000])[1]
    p_c = proportions_ztest([102, 100], [1000, 1000])[1]
    assert 0.025 < p_b < 0.05 and p_c > 0.5
    assert comps.loc["B", "p_value_holm"] == pytest.approx(2 * p_b)
    assert comps.loc["C", "p_value_holm"] == pytest.approx(max(2 * p_b, p_c))
    assert comps["significant"].tolist() == [False, False]
    assert rep.summary["comparisons"]["B"]["significant"] is False
    assert f"p = {p_b:.3g} (not significant at alpha 0.05)" in rep.summary["conclusion"]
    # a strong effect stays significant after the adjustment
    strong = ABTest(control="A", sequential=False).analyze(_impressions({"A": (1000, 100), "B": (1000, 200), "C": (1000, 102)}))
    assert strong.tables["comparisons"].set_index("arm")["significant"].to_dict() == {"B": True, "C": False}


def test_sequential_looks_follow_time_not_log_order():
    """400 impressions logged newest first; B clicks only in the earlier half of the time.
    Two looks: the first holds the 200 earliest events (by timestamp), not the first 200 rows."""
    n = 400
    t = np.arange(n)[::-1].astype(float)  # seconds since the epoch, decreasing down the log
    arm = np.where(np.arange(n) % 2, "B", "A")
    early = t < n / 2
    label = ((arm == "B") & early & (np.arange(n) % 4 == 1)).astype(int)  # 50 clicks of B, all early
    events = pd.DataFrame({"variant": arm, "label": label, "timestamp": t, "user": np.arange(n), "item": 1,
                           "event_id": np.arange(n)})
    rep = ABTest(control="A", n_looks=2, tau=0.05, min_exposures=50).analyze(events)
    seq = rep.tables["sequential"]
    assert seq["n_arm"].tolist() == [100, 200] and seq["n_control"].tolist() == [100, 200]
    # all of B's clicks are in the first look (by time): 50 of 100, then 50 of 200
    assert seq["diff"].tolist() == pytest.approx([0.5, 0.25])
    assert seq["until"].tolist() == ["50% of events", "100% of events"]
    # each look's fixed-horizon p is the pooled z-test on the counts up to that look
    assert seq["p_fixed_horizon"].tolist() == pytest.approx([proportions_ztest([50, 0], [100, 100])[1],
                                                            proportions_ztest([50, 0], [200, 200])[1]])
    s = rep.summary["sequential"]
    assert "events_without_timestamp" not in s and "note" not in s
    assert s["look_every"] == "2 equal slices of the events"
    assert s["arms"]["B"]["significant"] is True and s["arms"]["B"]["first_significant_look"] == 1
    assert s["arms"]["B"]["looks_where_fixed_horizon_p_below_alpha"] == 2


def test_no_timestamp_column_slices_the_log_in_order():
    events = _impressions({"A": (300, 30), "B": (300, 60)})  # A's rows first, then B's
    s = ABTest(control="A").analyze(events).summary["sequential"]
    assert s["looks"] == 10 and s["look_every"] == "10 equal slices of the events"
    assert "events_without_timestamp" not in s and "note" not in s  # nothing is missing: there is no time at all


def test_zero_control_rate_gets_a_note_instead_of_a_test():
    events = _impressions({"A": (500, 0), "B": (500, 20)})
    rep = ABTest(control="A").analyze(events)
    seq = rep.summary["sequential"]
    assert seq["tau"] == 0.0
    assert seq["arms"] == {"B": {"note": "the control rate is 0, so the default tau (mde x control rate) is 0; set tau"}}
    assert rep.tables["sequential"].empty
    assert "B vs A: CTR difference +0.04000 (lift n/a)" in rep.summary["conclusion"]
    # an explicit tau runs the test
    given = ABTest(control="A", tau=0.02).analyze(events).summary["sequential"]
    assert "note" not in given["arms"]["B"] and given["arms"]["B"]["p_always_valid"] < 0.05


def test_look_every_without_fixed_length_is_refused_for_numeric_times():
    events = _impressions({"A": (200, 20), "B": (200, 30)}, timestamp=np.arange(400) * 86_400.0)
    with pytest.raises(DataError, match=r"^ab-test: look_every 'MS' has no fixed length; use e.g. '1D' or '12h'$"):
        ABTest(control="A", look_every="MS").analyze(events)
    # a fixed length bins the seconds: one look per 100 days of 400
    assert ABTest(control="A", look_every="100D").analyze(events).summary["sequential"]["looks"] == 4


def test_helpful_metric_refuses_feedback_without_a_helpful_value():
    fb = _feedback({"A": (50, 10), "B": (50, 20)})
    fb["helpful"] = fb["helpful"].astype(object)
    fb.loc[[3, 60], "helpful"] = None
    with pytest.raises(DataError, match=r"^ab-test: 2 explanation_feedback event\(s\) have no 'helpful' value$"):
        ABTest(metric="helpful", control="A").analyze(fb)
    with pytest.raises(DataError, match=r"^ab-test: 100 explanation_feedback event\(s\) have no 'helpful' value$"):
        ABTest(metric="helpful", control="A").analyze(fb.drop(columns="helpful"))


def test_arms_left_out_keep_the_times_and_covariate_of_the_kept_rows():
    """Rows of an arm outside `variants` (and rows without an arm) are dropped before the
    analysis: the looks by day and CUPED then equal an analysis of the kept rows alone."""
    rng = np.random.default_rng(1)
    n = 3000
    arm = rng.choice(np.array(["A", "B", "C", None], dtype=object), n, p=[0.4, 0.4, 0.15, 0.05])
    pre = rng.binomial(10, 0.2, n)
    events = pd.DataFrame({"variant": arm, "label": (rng.random(n) < 0.1 + 0.02 * pre).astype(int), "pre": pre,
                           "timestamp": rng.integers(0, 5, n) * 86_400.0 + rng.integers(0, 86_400, n),
                           "user": np.arange(n), "item": 1, "event_id": np.arange(n)})
    kept = events[np.isin(events["variant"].astype(str), ["A", "B"])]
    full = ABTest(control="A", variants=["A", "B"], covariate="pre").analyze(events)
    alone = ABTest(control="A", covariate="pre").analyze(kept)
    assert full.summary["input"]["exposures_without_arm"] == int(pd.isna(arm).sum())
    assert full.summary["sequential"]["looks"] == 5 and full.summary["sequential"]["look_every"] == "1D"
    pd.testing.assert_frame_equal(full.tables["sequential"], alone.tables["sequential"])
    pd.testing.assert_frame_equal(full.tables["cuped"], alone.tables["cuped"])
    assert full.summary["cuped"]["theta"] == pytest.approx(alone.summary["cuped"]["theta"]) and alone.summary["cuped"]["theta"] > 0


@pytest.mark.parametrize(("kw", "message"), [
    ({"alpha": 0}, r"alpha \(0\) and srm_alpha \(0.001\) must be between 0 and 1"),
    ({"alpha": 1}, r"alpha \(1\) and srm_alpha \(0.001\) must be between 0 and 1"),
    ({"srm_alpha": 0}, r"alpha \(0.05\) and srm_alpha \(0\) must be between 0 and 1"),
    ({"srm_alpha": 1}, r"alpha \(0.05\) and srm_alpha \(1\) must be between 0 and 1"),
    ({"power": 0}, "power must be between 0 and 1, got 0"),
    ({"power": 1}, "power must be between 0 and 1, got 1"),
    ({"mde": -0.1}, r"mde is a relative lift > 0 \(0.1 = \+10%\), got -0.1"),
    ({"n_looks": 0}, "n_looks must be >= 1, got 0"),
    ({"tau": 0}, "tau must be > 0, got 0"),
])
def test_parameters_out_of_range_are_refused(kw, message):
    with pytest.raises(DataError, match=f"^ab-test: {message}$"):
        ABTest(**kw)


def test_parameters_at_the_edge_of_their_range_are_accepted():
    events = _impressions({"A": (300, 30), "B": (300, 45)})
    s = ABTest(control="A", alpha=0.5, srm_alpha=0.999, power=0.999, mde=1e-3, n_looks=1, tau=1e-3).analyze(events).summary
    assert s["alpha"] == 0.5 and s["sequential"]["looks"] == 1 and s["sequential"]["tau"] == 1e-3
    assert s["srm"]["alpha"] == 0.999 and s["power"]["B"]["target_power"] == 0.999


def test_power_that_cannot_be_solved_is_reported_not_a_crash():
    """A large alpha is allowed, but statsmodels' power solver does not converge there: the
    analysis goes on, the sizes are NaN and a note says why (this crashed before)."""
    s = ABTest(control="A", alpha=0.9).analyze(_impressions({"A": (300, 30), "B": (300, 45)})).summary
    p = s["power"]["B"]
    assert np.isnan(p["n_control_needed"]) and np.isnan(p["n_treatment_needed"])
    assert p["note"] == "the sample size for power 0.8 at alpha 0.9 could not be solved (statsmodels' root finder did not converge)"
    assert p["power_at_current_n"] > 0.8  # the power of the current sample is still computed
    assert s["comparisons"]["B"]["significant"]


def test_a_p_value_exactly_at_alpha_is_not_significant():
    """significant means p < alpha (Holm-adjusted; with one treatment that is the p itself)."""
    events = _impressions({"A": (1000, 100), "B": (1000, 131)})
    p = proportions_ztest([131, 100], [1000, 1000])[1]
    at = ABTest(control="A", alpha=p, sequential=False).analyze(events)
    assert at.tables["comparisons"]["p_value_holm"].tolist() == [p]
    assert at.summary["comparisons"]["B"]["significant"] is False
    above = ABTest(control="A", alpha=float(np.nextafter(p, 1)), sequential=False).analyze(events)
    assert above.summary["comparisons"]["B"]["significant"] is True


def test_daily_looks_follow_dates_logged_out_of_order():
    """ISO timestamps logged newest day first: look 1 is the earliest day, and the counts add up
    day by day in time order."""
    days = ["2026-11-05", "2026-11-04", "2026-11-03", "2026-11-02", "2026-11-01"]  # log order
    per_day = {d: 40 + 20 * k for k, d in enumerate(sorted(days))}  # 40 on the 1st ... 120 on the 5th
    rows = []
    for d in days:
        rows += [{"variant": "AB"[i % 2], "label": int(i % 5 == 0), "timestamp": f"{d}T{10 + i % 8:02d}:00:00Z"}
                 for i in range(per_day[d])]
    events = pd.DataFrame(rows).assign(user=lambda f: np.arange(len(f)), item=1, event_id=lambda f: np.arange(len(f)))
    seq = ABTest(control="A", min_exposures=10).analyze(events).tables["sequential"]
    assert seq["until"].tolist() == [f"2026-11-0{k}T00:00:00+00:00" for k in range(2, 7)]
    cumulative = np.cumsum([per_day[d] for d in sorted(days)]) // 2
    assert seq["n_arm"].tolist() == cumulative.tolist() and seq["n_control"].tolist() == cumulative.tolist()


def test_one_arm_is_refused_with_the_column_and_the_fix():
    with pytest.raises(DataError, match=r"^ab-test: needs at least two arms in column 'variant', found \['A'\]; "
                                        r"set arm = \"<column>\" to the column that holds the variant$"):
        ABTest().analyze(_impressions({"A": (100, 10)}))


def test_explanation_feedback_without_helpful_or_method_is_refused_in_a_ctr_test():
    """With metric "ctr" the explanation feedback is summarised too (helpfulness per method):
    feedback rows without a 'helpful' value or an 'explanation_method' are refused, counted."""
    imp = _impressions({"A": (200, 20), "B": (200, 30)}).assign(event="impression")
    fb = _feedback({"A": (5, 2), "B": (5, 3)}).assign(event_id=lambda f: f["event_id"] + 10_000)
    fb["helpful"] = fb["helpful"].astype(object)
    fb.loc[[1, 6], "helpful"] = None
    with pytest.raises(DataError, match=r"^explanation_feedback events need a true/false 'helpful' value; 2 have none$"):
        ABTest(control="A").analyze(pd.concat([imp, fb], ignore_index=True))
    with pytest.raises(DataError, match=r"^explanation_feedback events need a true/false 'helpful' value; 10 have none$"):
        ABTest(control="A").analyze(pd.concat([imp, fb.drop(columns="helpful").assign(rating=1)], ignore_index=True))
    good = _feedback({"A": (5, 2), "B": (5, 3)}).assign(event_id=lambda f: f["event_id"] + 10_000)
    with pytest.raises(DataError, match=r"^explanation_feedback events need the 'explanation_method' the user saw$"):
        ABTest(control="A").analyze(pd.concat([imp, good.drop(columns="explanation_method")], ignore_index=True))
