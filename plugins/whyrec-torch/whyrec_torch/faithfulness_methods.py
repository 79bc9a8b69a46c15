"""Which per-history-position explanation is most faithful on this model? One check, every method.

For a sample of explained pairs (two or more history items each), every method that gives one
weight per history position is compared with what the score actually does when items go:

- **Kendall τ vs leave-one-out**: per pair, τ between the method's weights and the drop of the
  logit when that item alone is removed (history masked, aggregate features held: the sequence
  channel, as ``faithfulness.attention_faithfulness`` does); median over pairs;
- **deletion area**: history items are removed in the method's order (largest weight first) at
  0, 20, ..., 100 % of the history, and the rank of the explained item among all the user's
  candidates is followed; the area is the mean rank increase along the curve. It is compared
  with random orders (``random_orders`` of them, averaged): ``deletion_gain`` = area − random.

Methods (those the model supports): ``attention`` (raw last-layer attention, mean of heads),
``rollout`` and ``flow`` (attention-layers models), ``integrated-gradients`` and
``gradient-shap`` (the history positions' share: attributions of the item embeddings at each
position), ``grad-cam`` (signed gradient × activation per position).

The most faithful method: among those whose deletion area beats random, the highest median τ;
where none beats random, the highest median τ (and the verdict says none beat random).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import WhyrecError
from whyrec.results import StageResult

from .common import prepare
from .faithfulness import FRACTIONS, _tau
from .history_edit import UserCandidates, remove_positions, stack

ALL_METHODS = ("attention", "rollout", "flow", "integrated-gradients", "gradient-shap", "grad-cam")


def method_weights(model: Any, data: RecData, enc: Any, methods: tuple[str, ...], ig_steps: int = 32,
                   shap_samples: int = 64, shap_background: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    """Per method, [B, N] weights over the history positions of the encoded rows ``enc``."""
    out: dict[str, np.ndarray] = {}
    maps = None
    layered = "attention-layers" in (getattr(model, "capabilities", ()) or ()) and hasattr(model, "attention_layers")
    if layered and {"attention", "rollout", "flow"} & set(methods):
        import torch

        net = model.torch_module()
        items, _, _, mask = model.to_tensors(enc)
        was = net.training
        net.eval()
        try:
            with torch.inference_mode(), model.threads():
                maps = [m.float().cpu().numpy() for m in net.attention_maps(items, mask)]
        finally:
            net.train(was)
    for name in methods:
        if name == "attention":
            if maps is not None:
                out[name] = maps[-1].mean(axis=1)[:, 0, 1:]
            else:
                out[name] = np.asarray(model.forward_encoded(enc, return_attention=True)[1], dtype=float)
        elif name in ("rollout", "flow"):
            if maps is None:
                continue  # a single-layer attention model: raw attention is all there is
            from .rollout import flow, rollout

            out[name] = (rollout(maps) if name == "rollout" else flow(maps))[:, 1:]
        elif name == "integrated-gradients":
            from .gradients import ig_attributions

            out[name] = ig_attributions(model, enc, steps=ig_steps)["items"][:, 1:]
        elif name == "gradient-shap":
            from .gradient_shap import background_rows, gradient_shap_attributions

            _, bg = background_rows(model, data, shap_background, seed)
            out[name] = gradient_shap_attributions(model, enc, bg, n_samples=shap_samples, seed=seed)["items"][:, 1:]
        elif name == "grad-cam":
            from .gradients import grad_cam

            out[name] = grad_cam(model, enc)["grad_x_act"]
    return {k: np.asarray(v, dtype=float) * enc.mask for k, v in out.items()}


def method_faithfulness(model: Any, data: RecData, pairs: pd.DataFrame, methods: tuple[str, ...] | None = None,
                        max_pairs: int = 20, ig_steps: int = 32, shap_samples: int = 64, shap_background: int = 50,
                        random_orders: int = 3, seed: int = 0,
                        weights_fn: Callable[..., dict[str, np.ndarray]] | None = None) -> dict:
    """The per-method faithfulness table of ``pairs`` (columns user, item[, rank]).

    Returns {"table": DataFrame (one row per method), "per_pair": DataFrame, "most_faithful":
    str | None, "pairs_checked": int, "times": {method: seconds}}. ``weights_fn`` replaces
    ``method_weights`` (same signature), for methods defined elsewhere."""
    methods = tuple(ALL_METHODS if methods is None else methods)
    unknown = [m for m in methods if m not in ALL_METHODS] if weights_fn is None else []
    if unknown:
        raise WhyrecError(f"faithfulness per method: unknown method(s) {unknown}; choose from {', '.join(ALL_METHODS)}")
    if max_pairs < 1 or random_orders < 1:
        raise WhyrecError(f"faithfulness per method: max_pairs={max_pairs} and random_orders={random_orders} must be >= 1")
    keep = [c for c in (USER, ITEM, "rank") if c in pairs.columns]
    rows = prepare(model, data, pairs[keep])
    eligible = np.array([i for i, h in enumerate(rows.history) if len(h) >= 2], dtype=np.int64)
    empty = pd.DataFrame(columns=["method", "tau_median", "tau_mean", "deletion_area", "random_area", "deletion_gain",
                                  "beats_random", "pairs"])
    if len(eligible) == 0:
        return {"table": empty, "per_pair": pd.DataFrame(), "most_faithful": None, "pairs_checked": 0, "times": {}}
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, size=min(max_pairs, len(eligible)), replace=False))
    enc = rows.enc.take(chosen)
    hist = [rows.history[i] for i in chosen]
    times: dict[str, float] = {}
    weights: dict[str, np.ndarray] = {}
    fn = weights_fn or method_weights
    for name in methods:  # one at a time, so each method's cost is known
        t = time.perf_counter()
        weights.update(fn(model, data, enc, (name,), ig_steps=ig_steps, shap_samples=shap_samples,
                          shap_background=shap_background, seed=seed))
        times[name] = time.perf_counter() - t
    names = [m for m in methods if m in weights]

    # leave-one-out drops, all removals in one batched call
    logits = np.asarray(model.forward_encoded(enc), dtype=float)
    parts, owner = [], []
    for r, h in enumerate(hist):
        one = enc.take([r])
        for pos, _ in h:
            parts.append(remove_positions(one, [pos]))
            owner.append((r, pos))
    minus = np.asarray(model.forward_encoded(stack(parts)), dtype=float)
    effect = np.full(enc.mask.shape, np.nan)
    for (r, pos), s in zip(owner, minus):
        effect[r, pos] = logits[r] - s

    per_pair, curve_rows = [], []
    cands: dict[Any, UserCandidates] = {}
    for r, (i, h) in enumerate(zip(chosen, hist)):
        P = np.array([p for p, _ in h])
        rec = {"pair": int(i), "user": rows.pairs.at[i, USER], "item": rows.pairs.at[i, ITEM], "history_items": len(P)}
        for name in names:
            rec[f"tau_{name}"] = _tau(weights[name][r, P], effect[r, P])[0]
        per_pair.append(rec)
        user, item = rows.pairs.at[i, USER], rows.pairs.at[i, ITEM]
        if user not in cands:
            cands[user] = UserCandidates.build(model, data, user, context=data.context_of(rows.pairs.loc[i]))
        uc = cands[user]
        t = uc.index_of(item)
        if t is None:  # an already-seen item: it has no rank among the candidates
            continue
        orders = {name: P[np.argsort(-weights[name][r, P], kind="stable")] for name in names}
        for k in range(random_orders):
            orders[f"random {k + 1}"] = rng.permutation(P)
        removals, labels = [], []
        for name, order in orders.items():
            for f in FRACTIONS:
                removals.append(order[: int(round(f * len(P)))])
                labels.append((name, f))
        for (name, f), rk in zip(labels, uc.ranks(model, removals, [t] * len(removals))):
            curve_rows.append({"pair": int(i), "order": "random" if name.startswith("random") else name,
                               "fraction": f, "rank": int(rk)})
    pp = pd.DataFrame(per_pair)
    curves = pd.DataFrame(curve_rows, columns=["pair", "order", "fraction", "rank"])
    area = deletion_areas(curves)
    a_rand = area.get("random", float("nan"))
    table = []
    for name in names:
        taus = pp[f"tau_{name}"].to_numpy(float)
        fin = taus[np.isfinite(taus)]
        a = area.get(name, float("nan"))
        table.append({"method": name, "tau_median": float(np.median(fin)) if len(fin) else float("nan"),
                      "tau_mean": float(np.mean(fin)) if len(fin) else float("nan"),
                      "deletion_area": a, "random_area": a_rand, "deletion_gain": a - a_rand,
                      "beats_random": bool(a > a_rand), "pairs": int(len(fin)), "seconds": times.get(name)})
    table = pd.DataFrame(table)
    return {"table": table, "per_pair": pp, "most_faithful": most_faithful(table), "pairs_checked": int(len(chosen)),
            "times": times, "deletion_curves": curves}


def deletion_areas(curves: pd.DataFrame) -> dict[str, float]:
    """Per order, the mean rank increase along its deletion curve (mean over pairs per fraction)."""
    area = {}
    means = curves.groupby(["order", "fraction"], sort=False)["rank"].mean().reset_index()
    for name, g in means.groupby("order", sort=False):
        g = g.sort_values("fraction")
        area[str(name)] = float((g["rank"] - g["rank"].iloc[0]).mean())
    return area


def most_faithful(table: pd.DataFrame) -> str | None:
    """Among methods that beat random deletion, the highest median τ (ties: larger deletion
    area); where none does, the highest median τ overall. None when no τ is finite."""
    t = table[np.isfinite(table["tau_median"].to_numpy(float))] if len(table) else table
    if len(t) == 0:
        return None
    good = t[t["beats_random"]]
    pick = good if len(good) else t
    best = pick.sort_values(["tau_median", "deletion_area"], ascending=False, kind="stable").iloc[0]
    return str(best["method"])


def quality_result(res: dict, own: str) -> StageResult:
    """A ``kind: faithfulness`` StageResult (the report's quality/verdict machinery reads it)
    for the explainer whose method is ``own``, naming the most faithful method."""
    table = res["table"]
    best = res["most_faithful"]
    summary = {"kind": "faithfulness", "method": "Kendall tau vs leave-one-out and deletion area vs random, per method",
               "pairs_checked": res["pairs_checked"], "most_faithful_method": best,
               "per_method": {r["method"]: {k: _plain(r[k]) for k in ("tau_median", "deletion_area", "deletion_gain",
                                                                      "beats_random")} for _, r in table.iterrows()}}
    if best is None or own not in set(table["method"]):
        summary.update(faithful="unknown", verdict="Cannot judge which method is faithful: no checked recommendation has "
                                                   "two or more history items with varying weights.")
        return StageResult(summary=summary, tables={"per_method": table}, files={"verdict.txt": summary["verdict"] + "\n"},
                           kind="faithfulness")
    mine = table.set_index("method").loc[own]
    b = table.set_index("method").loc[best]
    summary["kendall_tau_attention_loo_median"] = _plain(mine["tau_median"])  # the verdict table's figure
    from .faithfulness import FAITHFUL_TAU, WEAK_TAU

    tau = float(mine["tau_median"])
    if np.isfinite(tau) and tau >= FAITHFUL_TAU and bool(mine["beats_random"]):
        faithful = "yes"
    elif (np.isfinite(tau) and tau >= WEAK_TAU) or bool(mine["beats_random"]):
        faithful = "partly"
    else:
        faithful = "no"
    parts = [f"{r['method']} τ={r['tau_median']:.2f}, deletion {r['deletion_area']:.1f} vs random {r['random_area']:.1f}"
             for _, r in table.iterrows()]
    verdict = (f"On this model {own} has median Kendall τ {tau:.2f} against leave-one-out drops over "
               f"{res['pairs_checked']} recommendations (deletion area {mine['deletion_area']:.1f} ranks vs "
               f"{mine['random_area']:.1f} for random order). Most faithful method here: {best} "
               f"(τ {b['tau_median']:.2f}{'' if b['beats_random'] else '; no method beats random deletion'}). "
               f"All: {'; '.join(parts)}.")
    summary.update(faithful=faithful, verdict=verdict)
    return StageResult(summary=summary, tables={"per_method": table, "per_pair": res["per_pair"]},
                       files={"verdict.txt": verdict + "\n"}, csv_tables=("per_method",), kind="faithfulness")


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v
