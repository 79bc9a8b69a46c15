"""The ab-test analyzer on the real Open Bandit A/B test (uniform random vs Bernoulli TS) and on
explanation variants recorded through the feedback log."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportions_ztest
from whyrec.errors import DataError

from whyrec_feedback.abtest import ABTest
from whyrec_feedback.store import make_event, read_events


def test_obd_random_vs_bts(obd, tmp_path):
    rep = ABTest(control="random").analyze(obd)
    s = rep.summary
    assert s["arms"] == ["bts", "random"] and s["control"] == "random"
    assert s["per_arm"]["random"]["exposures"] == 10_000 and s["per_arm"]["random"]["clicks"] == 38
    assert s["per_arm"]["bts"]["exposures"] == 10_000 and s["per_arm"]["bts"]["clicks"] == 42
    assert s["per_arm"]["bts"]["ctr"] == pytest.approx(0.0042)
    c = s["comparisons"]["bts"]
    assert c["diff"] == pytest.approx(0.0004)
    assert c["lift"] == pytest.approx(42 / 38 - 1)
    assert c["p_value"] == pytest.approx(proportions_ztest([42, 38], [10_000, 10_000])[1])
    assert not c["significant"] and c["diff_ci_low"] < 0 < c["diff_ci_high"]
    assert s["srm"]["chi2"] == 0.0 and not s["srm"]["mismatch"]
    p = s["power"]["bts"]
    assert p["power_at_current_n"] < 0.1 and p["n_control_needed"] > 400_000  # a 10% lift at 0.4% CTR needs ~430k per arm
    sq = s["sequential"]
    assert sq["looks"] == 7 and sq["look_every"] == "1D"  # one look per day of the week logged
    assert not sq["arms"]["bts"]["significant"]
    assert "underpowered" in s["conclusion"]
    files = {p.name for p in rep.save(tmp_path)}
    assert {"arms.parquet", "arms.csv", "comparisons.parquet", "sequential.parquet", "power.parquet",
            "rate_by_arm.png", "sequential.png", "summary.json"} <= files
    assert json.loads((tmp_path / "summary.json").read_text())["kind"] == "feedback"


def _explanation_log(path, seed=0):
    """Users see an explanation made by one of two explainers; some click, some rate it.
    (Written in one go: record_event's per-event fsync is tested in test_store.)"""
    rng = np.random.default_rng(seed)
    lines = []

    def record_event(_path, *args, **kw):
        ev = make_event(*args, **kw)
        lines.append(json.dumps(ev))
        return ev

    methods = {"tree-shap": (0.30, 0.70), "attention-map": (0.20, 0.40)}  # (click rate, helpful rate)
    k = 0
    for user in range(400):
        method = "tree-shap" if user % 2 else "attention-map"
        fmt = "text" if user % 4 < 2 else "bar-chart"
        ctr, helpful = methods[method]
        k += 1
        imp = record_event(path, "impression", user, user % 7, position=1, variant="explained",
                           explanation_method=method, explanation_format=fmt, event_id=f"i{k}",
                           timestamp=f"2024-03-0{1 + user % 5}T12:00:00+00:00")
        if rng.random() < ctr:
            record_event(path, "click", user, user % 7, variant="explained", impression_id=imp["event_id"],
                         explanation_method=method, timestamp=f"2024-03-0{1 + user % 5}T12:00:05+00:00")
        if user % 2 == 0 or user % 3 == 0:
            record_event(path, "explanation_feedback", user, user % 7, explanation_method=method,
                         explanation_format=fmt, helpful=bool(rng.random() < helpful))
    path.write_text("\n".join(lines) + "\n")


def test_explanation_variants_as_arms_and_helpfulness(tmp_path):
    log = tmp_path / "events.jsonl"
    _explanation_log(log)
    events = read_events(log).events
    fb = events[events["event"] == "explanation_feedback"]
    want = fb.groupby("explanation_method")["helpful"].agg(["size", "sum"])

    rep = ABTest(arm="explanation_method", control="attention-map").analyze(events)
    s = rep.summary
    imp = events[events["event"] == "impression"]
    clicks = events[events["event"] == "click"]
    for m in ("tree-shap", "attention-map"):
        assert s["per_arm"][m]["exposures"] == int((imp["explanation_method"] == m).sum())
        assert s["per_arm"][m]["clicks"] == int((clicks["explanation_method"] == m).sum())
        h = s["explanations"]["helpfulness_by_method"][m]
        assert (h["feedback"], h["helpful"]) == (int(want.loc[m, "size"]), int(want.loc[m, "sum"]))
    assert s["explanations"]["most_helpful"] == "tree-shap"
    assert s["explanations"]["test_across_methods"]["p_value"] < 0.01
    assert set(rep.tables["helpfulness_by_format"]["explanation_format"]) == {"text", "bar-chart"}
    assert "helpfulness" in rep.figures

    # the same arms, tested on what users said about the explanations
    helpful = ABTest(arm="explanation_method", metric="helpful", control="attention-map").analyze(events).summary
    assert helpful["per_arm"]["tree-shap"]["exposures"] == int(want.loc["tree-shap", "size"])
    assert helpful["comparisons"]["tree-shap"]["significant"]

    # arms from two columns: method x format
    combo = ABTest(arm=["explanation_method", "explanation_format"]).analyze(events).summary
    assert len(combo["arms"]) == 4 and "tree-shap/text" in combo["arms"]


def test_a_variant_with_no_events(obd):
    with pytest.raises(DataError, match=r"variant 'new' has no events \(arms with impressions: bts, random\)"):
        ABTest(variants=["random", "bts", "new"]).analyze(obd)
    events = pd.concat([obd.head(50).assign(event="impression"),
                        pd.DataFrame({"event": ["explanation_feedback"], "user": [1], "item": [2], "variant": ["feedback-only"],
                                      "explanation_method": ["tree-shap"], "helpful": [True], "event_id": [-1]})])
    with pytest.raises(DataError, match="variant 'feedback-only' has events but no impressions"):
        ABTest(variants=["random", "feedback-only"]).analyze(events)
    with pytest.raises(DataError, match=r"control 'control' has no events \(arms: bts, random\)"):
        ABTest(control="control").analyze(obd)
    with pytest.raises(DataError, match="needs at least two arms"):
        ABTest().analyze(obd[obd["variant"] == "bts"])


def test_sample_ratio_mismatch_is_flagged(obd):
    lopsided = pd.concat([obd[obd["variant"] == "random"], obd[obd["variant"] == "bts"].head(9_000)])
    s = ABTest(control="random").analyze(lopsided).summary
    assert s["srm"]["mismatch"] and s["srm"]["p_value"] < 1e-6
    assert s["conclusion"].startswith("SAMPLE RATIO MISMATCH")
    planned = ABTest(control="random", expected_split={"random": 10, "bts": 9}).analyze(lopsided).summary
    assert not planned["srm"]["mismatch"]
    with pytest.raises(DataError, match="expected_split has 3 shares for 2 arms"):
        ABTest(expected_split=[1, 1, 1]).analyze(obd)
    with pytest.raises(DataError, match=r"expected_split has no share for arm\(s\) \['random'\]"):
        ABTest(expected_split={"bts": 1}).analyze(obd)


def test_cuped_with_a_pre_period_covariate():
    """Users differ a lot in how much they click; their clicks in a pre-period predict this
    period's, which CUPED uses to cut the variance of the difference without biasing it."""
    rng = np.random.default_rng(0)
    n = 30_000
    p_user = rng.beta(1, 9, n)  # one impression per user here, users vary
    arm = rng.integers(0, 2, n)
    click = rng.random(n) < p_user + 0.01 * arm
    events = pd.DataFrame({"event_id": np.arange(n), "user": np.arange(n), "item": 1, "label": click.astype(int),
                           "variant": np.where(arm == 1, "new", "old"), "pre_clicks": rng.binomial(30, p_user)})
    s = ABTest(control="old", covariate="pre_clicks").analyze(events).summary
    cu = s["cuped"]
    assert cu["variance_reduction"] > 0.03 and cu["theta"] > 0
    c = cu["comparisons"]["new"]
    assert c["se_adjusted"] < c["se_unadjusted"]
    assert abs(c["diff_adjusted"] - 0.01) < 3 * c["se_adjusted"]
    assert c["diff_unadjusted"] == pytest.approx(s["comparisons"]["new"]["diff"])
    with pytest.raises(DataError, match="covariate column 'pre' is not in the events"):
        ABTest(covariate="pre").analyze(events)
    with pytest.raises(DataError, match="covariate column 'variant' is not numeric"):
        ABTest(covariate="variant").analyze(events)


def test_numeric_arms_are_named_by_text():
    events = pd.DataFrame({"user": range(400), "item": 1, "label": [k % 5 == 0 for k in range(400)],
                           "variant": [k % 2 for k in range(400)]})
    s = ABTest(control="1", variants=["0", "1"]).analyze(events).summary  # as given on the command line
    assert s["control"] == "1" and s["arms"] == ["0", "1"]
    assert s["per_arm"]["0"]["exposures"] == 200


def test_looks_and_parameters(obd):
    s = ABTest(control="random", n_looks=4).analyze(obd).summary
    assert s["sequential"]["looks"] == 4
    s = ABTest(control="random", look_every="12h").analyze(obd).summary
    assert s["sequential"]["looks"] == 14
    with pytest.raises(DataError, match="look_every 'fortnightly' is not a pandas frequency"):
        ABTest(look_every="fortnightly").analyze(obd)
    with pytest.raises(DataError, match="metric 'revenue' is not one of ctr, helpful"):
        ABTest(metric="revenue")
    with pytest.raises(DataError, match="mde is a relative lift"):
        ABTest(mde=0)
    with pytest.raises(DataError, match=r"have no arm column \['bucket'\]"):
        ABTest(arm="bucket").analyze(obd)
