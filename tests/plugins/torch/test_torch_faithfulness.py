"""'Is attention faithful?': the attention-map explainer's quality check."""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import kendalltau

from whyrec_torch.attention_map import AttentionMap
from whyrec_torch.faithfulness import FRACTIONS, _verdict

from torch_fixtures import COLD_USER, rank_without


@pytest.fixture(scope="module")
def checked(seq_model, toy):
    pairs = pd.concat([seq_model.recommend(u, 3) for u in (1, 2, 3, 4, COLD_USER)], ignore_index=True)
    ex = AttentionMap(quality_pairs=8, random_orders=2)
    e = ex.explain(seq_model, toy, pairs)
    return e, ex.quality(seq_model, toy, e, None)


def test_leave_one_out_and_tau_are_recomputed_independently(checked, seq_model, toy):
    e, q = checked
    loo, pp = q.tables["leave_one_out"], q.tables["per_pair"]
    assert q.summary["pairs_checked"] == 8 == len(pp)
    assert COLD_USER not in set(pp["user"].astype(int))  # cold-start pairs have nothing to check
    for i, g in loo.groupby("pair"):
        X = toy.features(e.pairs.loc[[i], ["user", "item"]])[seq_model.feature_names]
        full = seq_model.score_features(X)[0]
        for _, r in g.iterrows():
            Y = X.copy()
            Y[seq_model.sequence_features[int(r["position"])]] = np.nan
            assert r["loo_effect"] == pytest.approx(full - seq_model.score_features(Y)[0], abs=1e-5)
        tau = kendalltau(g["attention"], g["loo_effect"]).statistic
        got = pp.loc[pp["pair"] == i, "tau_attention_loo"].iloc[0]
        assert (np.isnan(tau) and np.isnan(got)) or got == pytest.approx(tau, abs=1e-12)
    assert q.summary["kendall_tau_attention_loo_median"] == pytest.approx(np.nanmedian(pp["tau_attention_loo"]))


def test_deletion_curves(checked, seq_model, toy):
    e, q = checked
    ranks = q.tables["deletion_ranks"]
    assert set(ranks["order"]) == {"attention", "integrated gradients", "leave-one-out (oracle)", "recency", "random"}
    for i, g in ranks.groupby("pair"):
        p = e.pairs.loc[i]
        at0 = g[g["fraction"] == 0.0]["rank"].unique()
        at1 = g[g["fraction"] == 1.0]["rank"].unique()
        assert list(at0) == [p["rank"]]  # nothing removed: the recommended rank
        assert len(at1) == 1 and at1[0] == rank_without(seq_model, toy, p["user"], p["item"], range(int(p["history_items"])))
    curves = q.tables["deletion_curves"]
    assert sorted(curves["fraction"].unique()) == list(FRACTIONS)
    area = q.summary["deletion_area"]
    g = curves[curves["order"] == "attention"].sort_values("fraction")
    assert area["attention"] == pytest.approx((g["mean_rank"] - g["mean_rank"].iloc[0]).mean())


def test_report_files_and_verdict(checked, tmp_path):
    _, q = checked
    assert q.summary["faithful"] in ("yes", "partly", "no")
    start = {"yes": "Attention is a faithful explanation", "partly": "Attention is only partly faithful",
             "no": "Attention is NOT a faithful explanation"}[q.summary["faithful"]]
    assert q.summary["verdict"].startswith(start)
    q.save(tmp_path)
    assert (tmp_path / "verdict.txt").read_text().strip() == q.summary["verdict"]
    assert json.loads((tmp_path / "summary.json").read_text())["kind"] == "faithfulness"
    for f in ("per_pair.csv", "deletion_curves.csv", "deletion_curves.png", "kendall_tau.png", "leave_one_out.parquet"):
        assert (tmp_path / f).exists(), f


def test_uniform_attention_baseline_is_exact_when_attention_is_uniform(seq_model, toy):
    flat = copy.deepcopy(seq_model)
    last = flat.net.attention.score[-1]
    with torch.no_grad():  # every history item gets the same score: softmax is uniform
        last.weight.zero_()
        last.bias.zero_()
    pairs = pd.concat([flat.recommend(u, 3) for u in (1, 2)], ignore_index=True)
    ex = AttentionMap(quality_pairs=4, random_orders=1)
    q = ex.quality(flat, toy, ex.explain(flat, toy, pairs), None)
    s = q.summary
    assert s["mean_abs_logit_change_uniform_attention"] < 1e-6
    assert s["test_auc_learned_attention"] == pytest.approx(s["test_auc_uniform_attention"], abs=1e-9)
    assert s["mean_rank_learned_attention"] == s["mean_rank_uniform_attention"]
    assert s["faithful"] == "unknown" and "weights (or the leave-one-out effects) are constant" in s["verdict"]
    assert "the model barely relies on where its attention goes" in s["verdict"]


def test_only_cold_start_pairs_cannot_be_judged(model, toy):
    pairs = model.recommend(COLD_USER, 3)
    ex = AttentionMap()
    q = ex.quality(model, toy, ex.explain(model, toy, pairs), None)
    assert q.summary["pairs_checked"] == 0 and q.summary["faithful"] == "unknown"
    assert q.summary["verdict"].startswith("Cannot judge whether attention is faithful: none of the explained")


def _summary(tau, att, rand, auc=(0.80, 0.70)):
    return {"kendall_tau_attention_loo_median": tau, "pairs_checked": 10,
            "deletion_area": {"attention": att, "random": rand, "integrated gradients": 5.0},
            "test_auc_learned_attention": auc[0], "test_auc_uniform_attention": auc[1],
            "mean_rank_learned_attention": 3.0, "mean_rank_uniform_attention": 9.0}


@pytest.mark.parametrize("tau,att,rand,expect", [
    (0.6, 6.0, 2.0, "yes"),  # agrees with leave-one-out and deletes faster than random
    (0.6, 2.1, 2.0, "partly"),  # agrees, but removing by attention is no better than random
    (0.1, 6.0, 2.0, "partly"),
    (0.1, 2.0, 2.0, "no"),
    (-0.5, 0.0, 1.0, "no"),
])
def test_verdict_rules(tau, att, rand, expect):
    faithful, text = _verdict(_summary(tau, att, rand))
    assert faithful == expect
    assert f"= {tau:.2f} over 10 recommendations" in text
    assert "changes the test AUC from 0.800 to 0.700 and moves the explained items from mean rank 3.0 to 9.0" in text


def test_attention_map_quality_can_be_switched_off(model, toy, pairs):
    ex = AttentionMap(check=False)
    assert ex.quality(model, toy, ex.explain(model, toy, pairs), None) is None


def test_report_section_states_the_verdict(checked, tmp_path):
    from whyrec_torch.report import TITLE, render

    assert render(tmp_path) is None  # a run without the check has no such section
    _, q = checked
    q.save(tmp_path / "explanations" / "attention-map__din" / "quality")
    s = render(tmp_path)
    assert s.title == TITLE and s.status == "ok"
    assert s.covers == ("explanations/attention-map__din/quality",)
    import html

    assert html.escape(q.summary["verdict"], quote=True) in s.body
    assert s.body.count("<img") == 2
