"""The fidelity report: every compressed model against its teacher, on the test users.

For each evaluated test user, every model scores *all* of the user's candidates (items unseen
in training) from one shared feature matrix. From those scores come the ranking figures
(Jaccard@k, recall@k, Kendall tau, rank-biased overlap), the AUC on the teacher's labels and
NDCG@k / HR@k against the user's real held-out positives. Size is measured on the saved model
directory, throughput by timing ``score_features`` on the same rows, and explanation agreement
by explaining the teacher's top recommendations with both models (see agreement.py).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import ITEM, LABEL, USER, RecData
from whyrec.errors import DataError
from whyrec.progress import progress

from . import fidelity as F
from .agreement import agreement, attributions, choose_explainer
from .persist import model_bytes, weight_bytes

# The bar the issue sets for a compressed model (checked, never assumed).
BAR = {"size_ratio": ("<=", 0.1), "speedup": (">=", 5.0), "jaccard@k": (">=", 0.8), "top3_agreement": (">=", 0.8)}


@dataclass
class EvalSettings:
    """How the fidelity report is measured (compressor parameters of the same names)."""

    eval_users: int = 100
    k: int = 10
    rbo_p: float = 0.9
    explain_users: int = 10
    explain_k: int = 3
    agreement_k: int = 3
    explainer: str = "auto"
    explainer_params: dict = field(default_factory=dict)
    throughput_rows: int = 20000
    repeats: int = 3
    threads: int = 1
    seed: int = 0


def eval_users(data: RecData, n: int, seed: int) -> list:
    """Test users with at least one held-out positive (sorted, seeded sample of ``n``)."""
    test = data.test
    if test is None or len(test) == 0:
        raise DataError(f"dataset {data.name!r} has no test pairs; the fidelity report needs held-out users")
    pos = test[test[LABEL] > 0] if LABEL in test.columns else test
    users = np.sort(pos[USER].unique())
    users = np.array([u for u in users if len(data.candidates(u)) > 0], dtype=users.dtype)
    if len(users) == 0:
        raise DataError(f"dataset {data.name!r}: no test user has a positive held-out item and candidates to rank")
    if n and len(users) > n:
        users = np.sort(np.random.default_rng(seed).choice(users, n, replace=False))
    return list(users)


def model_size(model: Any) -> dict:
    """Bytes of the saved model (figures excluded), of its weight files alone, parameters and
    non-zero parameters."""
    with tempfile.TemporaryDirectory(prefix="whyrec-distill-size-") as tmp:
        model.save(Path(tmp) / "m")
        size = model_bytes(Path(tmp) / "m")
        wsize = weight_bytes(Path(tmp) / "m")
    comp = getattr(model, "compression", None)
    comp = comp if isinstance(comp, dict) else {}
    # a compressed torch-network model records its counts (an int8 layer hides its weight from parameters())
    params = comp.get("parameters")
    if params is None:
        params = model.n_parameters() if hasattr(model, "n_parameters") else None
    nz = comp.get("nonzero_parameters")
    if nz is None:
        nz = model.nonzero_parameters() if hasattr(model, "nonzero_parameters") else params
    return {"bytes": int(size), "weight_bytes": int(wsize), "parameters": params, "nonzero_parameters": nz}


def rows_per_second(model: Any, X: pd.DataFrame, repeats: int = 3, threads: int = 1) -> float:
    """Best-of-``repeats`` throughput of ``score_features`` (the model's own work, encoding
    included; building the feature rows is the dataset's and the same for every model).
    torch models run on ``threads`` intra-op threads so teacher and student are timed alike."""
    from contextlib import nullcontext

    Xm = X[list(model.feature_names)]
    ctx = nullcontext()
    if threads:
        import sys

        if "torch" in sys.modules:
            from .threads import torch_threads

            ctx = torch_threads(threads)
    with ctx:
        model.score_features(Xm.iloc[: min(len(Xm), 512)])  # warm-up: lazy init, caches
        best = float("inf")
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            model.score_features(Xm)
            best = min(best, time.perf_counter() - t0)
    return float(len(Xm) / best) if best > 0 else float("nan")


def _candidate_frame(data: RecData, users: list) -> pd.DataFrame:
    parts = [data.user_pairs(u, data.candidates(u)) for u in users]  # each user's latest context
    return pd.concat(parts, ignore_index=True)


def evaluate(teacher: Any, models: dict[str, Any], data: RecData, settings: EvalSettings, *, method: str,
             teacher_name: str | None = None, host: Any = None) -> dict:
    """Measure every model of ``models`` (label -> model) against ``teacher``.

    Returns {"summary", "tables", "figures"} for a CompressionReport."""
    s = settings
    k = int(s.k)
    users = eval_users(data, s.eval_users, s.seed)
    pairs = _candidate_frame(data, users)
    X = data.features(pairs)
    scores = {}
    everyone = {"teacher": teacher, **models}
    for label in progress(list(everyone), desc=f"{method}: scoring {len(pairs):,} candidates of {len(users)} test users",
                          unit="models"):
        m = everyone[label]
        scores[label] = np.asarray(m.score_features(X[list(m.feature_names)]), dtype=float)

    test = data.test
    pos = test[test[LABEL] > 0] if LABEL in test.columns else test
    relevant = pos.groupby(USER)[ITEM].apply(set)
    bounds = np.r_[0, np.cumsum(pairs.groupby(USER, sort=False).size().reindex(users).to_numpy())]
    items = pairs[ITEM].to_numpy()

    per_user, acc = [], {lab: {"ndcg": [], "hr": []} for lab in scores}
    for ui, u in enumerate(users):
        sl = slice(bounds[ui], bounds[ui + 1])
        it = items[sl]
        t = scores["teacher"][sl]
        t_rank = it[F.top_k(t, len(t))]
        t_top = t_rank[:k]
        for lab in scores:
            sc = scores[lab][sl]
            ranked = it[F.top_k(sc, len(sc))]
            n, h = F.ndcg_hr(ranked[:k], relevant.get(u, set()), k)
            acc[lab]["ndcg"].append(n)
            acc[lab]["hr"].append(h)
            if lab == "teacher":
                continue
            per_user.append({
                "model": lab, USER: u, f"jaccard@{k}": F.jaccard_at_k(t_top, ranked[:k]),
                f"recall@{k}": F.recall_at_k(t_top, ranked[:k]), "kendall_tau": F.kendall_tau(t, sc),
                "rbo": F.rank_biased_overlap(t_rank, ranked, p=s.rbo_p),
            })
    per_user_df = pd.DataFrame(per_user)

    # size and speed, measured alike for every model
    rows = X.iloc[: min(len(X), int(s.throughput_rows))]
    sizes, speed = {}, {}
    for lab in progress(list(everyone), desc=f"{method}: size and speed", unit="models"):
        sizes[lab] = model_size(everyone[lab])
        speed[lab] = rows_per_second(everyone[lab], rows, s.repeats, s.threads)

    # explanation agreement on the teacher's top recommendations of the first explain_users
    expl_rows, expl_name, agree = [], None, {}
    if s.explain_users > 0 and s.explain_k > 0:
        expl_name, explainer = choose_explainer(s.explainer, [teacher, *models.values()], host, s.explainer_params)
        ex_pairs = []
        for ui, u in enumerate(users[: s.explain_users]):
            sl = slice(bounds[ui], bounds[ui + 1])
            order = F.top_k(scores["teacher"][sl], s.explain_k)
            top = pairs.iloc[bounds[ui] + np.asarray(order)].reset_index(drop=True)  # rows with their context
            ex_pairs.append(top.assign(rank=np.arange(1, len(order) + 1)))
        ex = pd.concat(ex_pairs, ignore_index=True)
        background = None
        if explainer is None:
            tr = data.train if data.train is not None and len(data.train) else pairs
            background = data.features(tr.sample(min(len(tr), 256), random_state=s.seed))
        seq = data.schema.of_kind("sequence")
        bar = progress(total=len(everyone), desc=f"{method}: {expl_name} explanations of {len(ex)} pairs", unit="models")
        t_attr = attributions(teacher, data, ex, expl_name, explainer, background, s.seed)
        bar.update(1)
        for lab, m in models.items():
            m_attr = attributions(m, data, ex, expl_name, explainer, background, s.seed)
            bar.update(1)
            table, _ = agreement(t_attr, m_attr, seq, s.agreement_k)
            agree[lab] = table
            expl_rows.append(pd.concat([pd.DataFrame({"model": lab}, index=ex.index), ex, table], axis=1))
        bar.close()
    agreement_df = pd.concat(expl_rows, ignore_index=True) if expl_rows else pd.DataFrame()

    # one row per model
    ka = int(s.agreement_k)
    fid_rows = []
    for lab in scores:
        row: dict[str, Any] = {"model": lab, "name": _name(teacher if lab == "teacher" else models[lab], teacher_name if lab == "teacher" else None)}
        if lab != "teacher":
            pu = per_user_df[per_user_df["model"] == lab]
            row.update({c: float(np.nanmean(pu[c])) for c in (f"jaccard@{k}", f"recall@{k}", "kendall_tau", "rbo")})
            row["teacher_auc"] = F.teacher_label_auc(scores["teacher"], scores[lab])
            if lab in agree:
                row[f"top{ka}_agreement"] = float(np.nanmean(agree[lab][f"top{ka}_agreement"]))
                row["attribution_rank_correlation"] = float(np.nanmean(agree[lab]["rank_correlation"]))
        row[f"ndcg@{k}"] = float(np.mean(acc[lab]["ndcg"]))
        row[f"hr@{k}"] = float(np.mean(acc[lab]["hr"]))
        row.update(sizes[lab])
        row["rows_per_second"] = speed[lab]
        if lab != "teacher":
            row.update(F.ratios({**sizes["teacher"], "rows_per_second": speed["teacher"]}, {**sizes[lab], "rows_per_second": speed[lab]}))
        fid_rows.append(row)
    fid = pd.DataFrame(fid_rows)

    first = next(iter(models))
    main = fid_rows[1]
    bar_rows = []
    for key, (op, target) in BAR.items():
        col = {"jaccard@k": f"jaccard@{k}", "top3_agreement": f"top{ka}_agreement"}.get(key, key)
        val = main.get(col)
        met = None if val is None or (isinstance(val, float) and np.isnan(val)) else bool(val <= target if op == "<=" else val >= target)
        bar_rows.append({"criterion": f"{col} {op} {target:g}", "value": val, "met": met})
    summary = {
        "method": method,
        "teacher": teacher_name or _name(teacher),
        "student": _name(models[first]),
        "eval_users": len(users),
        "candidates_ranked": int(len(pairs)),
        "k": k,
        "explainer": expl_name,
        "models": {r["model"]: {c: _plain(v) for c, v in r.items() if c != "model"} for r in fid_rows},
        "bar": {r["criterion"]: r["met"] for r in bar_rows},
    }
    figures = _figures(fid, scores, k, ka)
    return {"summary": summary, "tables": {"fidelity": fid, "per_user": per_user_df, "agreement": agreement_df,
                                           "bar": pd.DataFrame(bar_rows)}, "figures": figures, "scores": scores, "pairs": pairs}


def _name(model: Any, given: str | None = None) -> str:
    return given or getattr(model, "component_name", None) or getattr(model, "name", type(model).__name__)


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _figures(fid: pd.DataFrame, scores: dict, k: int, ka: int) -> dict:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = {}
    cols = [c for c in (f"jaccard@{k}", f"recall@{k}", "kendall_tau", "rbo", "teacher_auc", f"top{ka}_agreement",
                        "attribution_rank_correlation") if c in fid.columns]
    comp = fid[fid["model"] != "teacher"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / max(len(comp), 1)
    x = np.arange(len(cols))
    for i, (_, r) in enumerate(comp.iterrows()):
        ax.bar(x + i * width, [r[c] if pd.notna(r[c]) else 0 for c in cols], width, label=f"{r['model']} ({r['name']})")
    ax.axhline(0.8, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x + width * (len(comp) - 1) / 2, cols, rotation=20, ha="right")
    ax.set_ylim(min(0, float(np.nanmin(comp[cols].to_numpy(float))) if len(comp) else 0), 1.05)
    ax.set_title("Fidelity to the teacher (dashed: the 0.8 bar)")
    ax.legend(fontsize=8)
    out["fidelity"] = fig

    fig, axes = plt.subplots(1, len(comp), figsize=(3.6 * max(len(comp), 1), 3.4), squeeze=False)
    rng = np.random.default_rng(0)
    n = len(scores["teacher"])
    idx = rng.choice(n, min(n, 3000), replace=False)
    for ax, (_, r) in zip(axes[0], comp.iterrows()):
        ax.scatter(scores["teacher"][idx], scores[r["model"]][idx], s=3, alpha=0.4)
        ax.set_xlabel("teacher score")
        ax.set_ylabel(f"{r['model']} score")
        ax.set_title(f"{r['name']}: tau={r['kendall_tau']:.2f}", fontsize=9)
    fig.tight_layout()
    out["scores"] = fig
    return out
