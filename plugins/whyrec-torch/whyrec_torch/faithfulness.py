"""Is attention a faithful explanation? Tests run on a sample of explained recommendations.

1. Agreement with leave-one-out: for each history item, the drop of the logit when that item
   alone is removed; Kendall τ between the attention weights and those drops (and, for
   reference, between integrated gradients and the drops).
2. Deletion curves: remove history items in attention order, integrated-gradients order,
   leave-one-out order (an oracle for single removals), recency order and random orders, and
   follow the rank of the recommended item among all the user's candidates. An order that
   reflects what the model uses pushes the item down fastest.
3. Uniform-attention baseline: the same network with its weights replaced by a uniform
   average over the history. If scores, ranks and test AUC barely move, the learned weights do
   not drive the recommendations and an attention map describes little of the decision.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from whyrec.data import ITEM, USER, RecData
from whyrec.metrics import auc
from whyrec.results import StageResult

from . import plots
from .common import prepare
from .gradients import ig_attributions
from .history_edit import UserCandidates, remove_positions, stack

FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FAITHFUL_TAU = 0.4  # median Kendall τ at or above this, and attention deletes better than random: faithful
WEAK_TAU = 0.2
DELETION_MARGIN = 1.2  # attention's deletion area must beat random's by 20% to count


def _tau(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    res = kendalltau(a, b)
    return float(res.statistic), float(res.pvalue)


def attention_faithfulness(model: Any, data: RecData, explanation: Any, max_pairs: int = 20, ig_steps: int = 32,
                           random_orders: int = 3, seed: int = 0, test_rows: int = 5000) -> StageResult:
    keep = [c for c in (USER, ITEM, "rank") if c in explanation.pairs.columns]
    rows = prepare(model, data, explanation.pairs[keep])
    eligible = np.array([i for i, h in enumerate(rows.history) if len(h) >= 2], dtype=np.int64)
    base = {"pairs_explained": int(len(rows.pairs)), "cold_start_pairs": int(rows.cold.sum()),
            "method": "leave-one-out Kendall tau, deletion curves on rank, uniform-attention baseline"}
    if len(eligible) == 0:
        verdict = ("Cannot judge whether attention is faithful: none of the explained recommendations has two or "
                   "more history items to compare.")
        return StageResult(summary={**base, "pairs_checked": 0, "verdict": verdict, "faithful": "unknown"},
                           files={"verdict.txt": verdict + "\n"}, kind="faithfulness")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=min(max_pairs, len(eligible)), replace=False))
    enc = rows.enc.take(chosen)
    hist = [rows.history[i] for i in chosen]
    logits, w = model.forward_encoded(enc, return_attention=True)
    ig = ig_attributions(model, enc, steps=ig_steps)["items"][:, 1:]
    uniform_logits = model.forward_encoded(enc, uniform_attention=True)

    # 1. leave-one-out effects, every removal of every pair in one batched call
    parts, owner = [], []
    for r, h in enumerate(hist):
        one = enc.take([r])
        for pos, _ in h:
            parts.append(remove_positions(one, [pos]))
            owner.append((r, pos))
    minus = model.forward_encoded(stack(parts))
    effect = np.full(w.shape, np.nan)
    for (r, pos), s in zip(owner, minus):
        effect[r, pos] = logits[r] - s

    per_pair, loo_rows = [], []
    for r, (i, h) in enumerate(zip(chosen, hist)):
        P = np.array([p for p, _ in h])
        t_att, p_att = _tau(w[r, P], effect[r, P])
        t_ig, _ = _tau(ig[r, P], effect[r, P])
        top_att, top_loo = P[np.argmax(w[r, P])], P[np.argmax(effect[r, P])]
        per_pair.append({"pair": int(i), "user": str(rows.pairs.at[i, USER]), "item": str(rows.pairs.at[i, ITEM]),
                         "rank": int(rows.pairs.at[i, "rank"]) if "rank" in rows.pairs.columns else None,
                         "history_items": len(P), "tau_attention_loo": t_att, "p_value": p_att, "tau_ig_loo": t_ig,
                         "top_attention_item": data.item_title(dict(h)[top_att]),
                         "top_loo_item": data.item_title(dict(h)[top_loo]), "top1_agree": bool(top_att == top_loo),
                         "logit": float(logits[r]), "logit_uniform_attention": float(uniform_logits[r])})
        for pos, item in h:
            loo_rows.append({"pair": int(i), "position": int(pos), "history_title": data.item_title(item),
                             "attention": float(w[r, pos]), "integrated_gradients": float(ig[r, pos]),
                             "loo_effect": float(effect[r, pos])})
    pp = pd.DataFrame(per_pair)

    # 2. deletion curves on the rank, and 3. ranks under uniform attention
    cands: dict[Any, UserCandidates] = {}
    curve_rows, uniform_ranks, orig_ranks = [], [], []
    for r, (i, h) in enumerate(zip(chosen, hist)):
        user, item = rows.pairs.at[i, USER], rows.pairs.at[i, ITEM]
        if user not in cands:
            cands[user] = UserCandidates.build(model, data, user, context=data.context_of(rows.pairs.loc[i]))
        uc = cands[user]
        t = uc.index_of(item)
        if t is None:  # the explained item is not one of the user's candidates (already seen)
            continue
        P = np.array([p for p, _ in h])
        orders = {
            "attention": P[np.argsort(-w[r, P], kind="stable")],
            "integrated gradients": P[np.argsort(-ig[r, P], kind="stable")],
            "leave-one-out (oracle)": P[np.argsort(-effect[r, P], kind="stable")],
            "recency": np.sort(P),
        }
        for k in range(random_orders):
            orders[f"random {k + 1}"] = rng.permutation(P)
        removals, labels = [], []
        for name, order in orders.items():
            for f in FRACTIONS:
                removals.append(order[: int(round(f * len(P)))])
                labels.append((name, f))
        ranks = uc.ranks(model, removals, [t] * len(removals))
        for (name, f), rk in zip(labels, ranks):
            curve_rows.append({"pair": int(i), "order": "random" if name.startswith("random") else name,
                               "fraction": f, "rank": int(rk)})
        orig_ranks.append(int(uc.ranks(model, [[]], [t])[0]))
        uniform_ranks.append(int(uc.ranks(model, [[]], [t], uniform=True)[0]))
    curves_long = pd.DataFrame(curve_rows, columns=["pair", "order", "fraction", "rank"])
    curves = (curves_long.groupby(["order", "fraction"], sort=False)["rank"]
              .agg(mean_rank="mean", median_rank="median", n="size").reset_index())
    area = {}
    for name, g in curves.groupby("order", sort=False):
        g = g.sort_values("fraction")
        area[name] = float((g["mean_rank"] - g["mean_rank"].iloc[0]).mean())

    # uniform attention on held-out test pairs
    auc_learned = auc_uniform = None
    if data.test is not None and len(data.test) > 1:
        test = data.test
        if len(test) > test_rows:
            test = test.iloc[np.sort(np.random.default_rng(seed).choice(len(test), test_rows, replace=False))]
        te = model.encode(data.features(test)[model.feature_names])
        y = test["label"].to_numpy()
        auc_learned = auc(y, model.forward_encoded(te))
        auc_uniform = auc(y, model.forward_encoded(te, uniform_attention=True))

    taus = pp["tau_attention_loo"].to_numpy(float)
    tau_med = float(np.nanmedian(taus)) if np.isfinite(taus).any() else float("nan")
    tau_ig_med = float(np.nanmedian(pp["tau_ig_loo"].to_numpy(float))) if np.isfinite(pp["tau_ig_loo"].to_numpy(float)).any() else float("nan")
    summary = {
        **base,
        "pairs_checked": int(len(chosen)),
        "kendall_tau_attention_loo_median": tau_med,
        "kendall_tau_attention_loo_mean": float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan"),
        "share_tau_positive": float(np.mean(taus[np.isfinite(taus)] > 0)) if np.isfinite(taus).any() else float("nan"),
        "kendall_tau_ig_loo_median": tau_ig_med,
        "top1_agreement": float(pp["top1_agree"].mean()),
        "deletion_area": area,
        "mean_abs_logit_change_uniform_attention": float(np.mean(np.abs(pp["logit"] - pp["logit_uniform_attention"]))),
        "mean_rank_learned_attention": float(np.mean(orig_ranks)) if orig_ranks else None,
        "mean_rank_uniform_attention": float(np.mean(uniform_ranks)) if uniform_ranks else None,
        "test_auc_learned_attention": auc_learned,
        "test_auc_uniform_attention": auc_uniform,
        "ig_steps": ig_steps,
        "random_orders": random_orders,
    }
    faithful, verdict = _verdict(summary)
    summary["faithful"] = faithful
    summary["verdict"] = verdict
    figures = {"deletion_curves": plots.deletion_curves(curves), "kendall_tau": plots.tau_hist(taus, "attention vs leave-one-out, per recommendation")}
    return StageResult(summary=summary, tables={"per_pair": pp, "leave_one_out": pd.DataFrame(loo_rows), "deletion_curves": curves,
                                                "deletion_ranks": curves_long},
                       figures=figures, files={"verdict.txt": verdict + "\n"}, csv_tables=("per_pair", "deletion_curves"),
                       kind="faithfulness")


def _verdict(s: dict) -> tuple[str, str]:
    """("yes" | "partly" | "no" | "unknown", the verdict in words)."""
    tau = s["kendall_tau_attention_loo_median"]
    area = s["deletion_area"]
    a_att, a_rand, a_ig = area.get("attention", 0.0), area.get("random", 0.0), area.get("integrated gradients", 0.0)
    beats_random = a_att > 0 and a_att >= DELETION_MARGIN * max(a_rand, 0.0)
    tau_txt = f"median Kendall τ between attention and leave-one-out effects = {tau:.2f} over {s['pairs_checked']} recommendations"
    del_txt = (f"removing history items in attention order moves the item down by {a_att:.1f} ranks on average along the "
               f"deletion curve, against {a_rand:.1f} for random order and {a_ig:.1f} for integrated-gradients order")
    uni = ""
    if s["test_auc_learned_attention"] is not None:
        gap = s["test_auc_learned_attention"] - s["test_auc_uniform_attention"]
        uni = (f" Replacing the learned weights by a uniform average changes the test AUC from "
               f"{s['test_auc_learned_attention']:.3f} to {s['test_auc_uniform_attention']:.3f}")
        uni += (": the model barely relies on where its attention goes." if abs(gap) < 0.005
                else " and moves the explained items from mean rank "
                     f"{s['mean_rank_learned_attention']:.1f} to {s['mean_rank_uniform_attention']:.1f}.")
    if np.isnan(tau):
        return "unknown", ("Cannot rank history items by attention: its weights (or the leave-one-out effects) are "
                           "constant on every checked recommendation, so an attention map says nothing about which "
                           f"item matters.{uni}")
    if tau >= FAITHFUL_TAU and beats_random:
        return "yes", f"Attention is a faithful explanation for this model on this sample: {tau_txt}, and {del_txt}.{uni}"
    if tau >= WEAK_TAU or beats_random:
        return "partly", (f"Attention is only partly faithful for this model: {tau_txt}, and {del_txt}. Read attention "
                          f"maps as a hint; prefer integrated gradients or the history counterfactual for decisions.{uni}")
    return "no", (f"Attention is NOT a faithful explanation for this model: {tau_txt}, and {del_txt}. The weights do "
                   f"not tell which history items the score depends on; use integrated gradients or the history "
                   f"counterfactual instead.{uni}")
