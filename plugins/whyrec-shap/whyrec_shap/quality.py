"""How much to trust an explanation: a report any additive explainer can produce.

On a sample of explained (user, item) pairs:

- deletion / insertion curves on the item's *rank* among the user's candidates: remove the
  attributed units (features or fields) in attribution order (largest first; a removed unit
  takes background rows' values, the score is the expectation over them) and watch how far
  the item falls; insert them in that order starting from all removed and watch it rise.
  The same with random orders is the baseline a useful explanation must beat.
- comprehensiveness@k (score lost when the top-k units are removed) and sufficiency@k
  (score lost when only the top-k units are kept), with their random-order baselines.
- stability: the explainer rerun with the same seed (must be identical) and other seeds
  (Spearman correlation and top-3 overlap of the attributions).
- sanity (Adebayo et al. 2018): the model retrained on shuffled labels must be explained
  differently; attributions that survive label shuffling describe the data, not the model.

Model- and explainer-agnostic so other plugins (e.g. the torch explainers) reuse it.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from whyrec.data import ITEM, LABEL, USER, RecData
from whyrec.explanation import Explanation
from whyrec.results import StageResult

from .background import sample_background
from .masking import expected_outputs
from .rank import candidate_scores, rank_against

MAX_STEPS = 20


# -- small statistics ------------------------------------------------------------------------
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 3) -> float:
    """Jaccard overlap of the k units with the largest |attribution|."""
    k = min(k, len(a))
    ta = set(np.argsort(-np.abs(a), kind="stable")[:k])
    tb = set(np.argsort(-np.abs(b), kind="stable")[:k])
    return len(ta & tb) / len(ta | tb) if ta | tb else 1.0


# -- units -----------------------------------------------------------------------------------
def explanation_units(explanation: Explanation, model: Any) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """(attribution table, unit -> feature columns) of an explanation."""
    if explanation.attributions is not None:
        table = explanation.attributions
        return table, {c: [c] for c in table.columns}
    table = explanation.field_attributions
    groups = explanation.params.get("groups")
    if not groups:
        names = [n for n in model.feature_names if n in explanation.schema]
        groups = explanation.schema.select(names).groups("group" if any(":" in c for c in table.columns) else "field")
    return table, {u: list(groups[u]) for u in table.columns}


def _steps(n_units: int, ks: tuple[int, ...]) -> np.ndarray:
    grid = np.unique(np.round(np.linspace(0, n_units, min(n_units, MAX_STEPS) + 1)).astype(int))
    return np.unique(np.concatenate([grid, [k for k in ks if k <= n_units]]))


# -- label-shuffled retraining (cached: several explainers share one retrained model) --------
_SHUFFLED: dict[tuple[int, int], tuple[Any, Any]] = {}


def shuffled_label_data(data: RecData, seed: int) -> RecData:
    """The same data with training labels permuted; features (history included) are still
    computed from the original data, so only the label-feature link is destroyed."""
    shuffled = copy.copy(data)
    train = data.train.copy()
    train[LABEL] = np.random.default_rng(seed).permutation(train[LABEL].to_numpy())
    shuffled.train = train
    for name in ("features", "history", "seen", "candidates", "describe_feature"):
        setattr(shuffled, name, getattr(data, name))
    return shuffled


def retrain_on_shuffled_labels(model: Any, data: RecData, seed: int = 0) -> Any:
    """A fresh model of the same class and parameters fitted on shuffled labels."""
    key = (id(model), seed)
    hit = _SHUFFLED.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    clone = type(model)(**dict(getattr(model, "params", {})))
    clone.fit(shuffled_label_data(data, seed))
    _SHUFFLED.clear()  # keep at most one retrained model alive
    _SHUFFLED[key] = (model, clone)
    return clone


# -- the report ------------------------------------------------------------------------------
def explanation_quality(
    model: Any,
    data: RecData,
    explanation: Explanation,
    *,
    explainer_for_seed: Callable[[int], Any] | None = None,
    seed: int = 0,
    n_pairs: int = 20,
    n_random: int = 5,
    background_size: int = 20,
    ks: tuple[int, ...] = (1, 3, 5),
    rerun_seeds: int = 2,
    sanity: bool = True,
    retrain: Callable[[Any, RecData, int], Any] | None = None,
    ctx: Any = None,
) -> StageResult:
    """The explanation-quality StageResult (summary.json, curve and per-pair tables, figure)."""
    t0 = time.perf_counter()
    n_total = len(explanation.pairs)
    idx = np.unique(np.linspace(0, n_total - 1, min(n_pairs, n_total)).round().astype(int))
    pairs = explanation.pairs.iloc[idx].reset_index(drop=True)
    table, units = explanation_units(explanation, model)
    A = table.iloc[idx].to_numpy(float)
    unit_names = list(table.columns)
    n_u = len(unit_names)
    cols = list(model.feature_names)
    X = data.features(pairs)[cols].reset_index(drop=True)
    src_rows = len(data.train) if data.train is not None else len(data.interactions)
    B = sample_background(model, data, min(background_size, src_rows), seed, param="quality background_size")
    rng = np.random.default_rng(seed)
    n_p = len(pairs)
    steps = _steps(n_u, ks)
    n_s = len(steps)

    # orders: 0 = attribution order (largest first), 1..R = random
    orders = np.empty((n_p, 1 + n_random, n_u), dtype=int)
    for i in range(n_p):
        orders[i, 0] = np.argsort(-A[i], kind="stable")
        for r in range(n_random):
            orders[i, 1 + r] = rng.permutation(n_u)
    # keep masks: deletion (units in order[:t] removed) then insertion (only order[:t] kept)
    n_o = 1 + n_random
    keep = np.ones((n_p, 2, n_o, n_s, n_u), dtype=bool)
    for i in range(n_p):
        for o in range(n_o):
            for si, t in enumerate(steps):
                first = orders[i, o, :t]
                keep[i, 0, o, si, first] = False
                keep[i, 1, o, si] = False
                keep[i, 1, o, si, first] = True
    unit_cols = [units[u] for u in unit_names]
    ev = expected_outputs(model.score_features, X, B, unit_cols, keep.reshape(n_p, -1, n_u), columns=cols)
    ev = ev.reshape(n_p, 2, n_o, n_s)

    # ranks against the user's other candidates
    ranks = np.empty_like(ev)
    n_cands = np.empty(n_p)
    cache: dict[Any, pd.Series] = {}
    ctx_cols = [c for c in data.context_names if c in pairs.columns]
    for i, (u, item) in enumerate(zip(pairs[USER].tolist(), pairs[ITEM].tolist())):
        # the other candidates are ranked in the explained row's own context
        context = {c: pairs[c].iloc[i] for c in ctx_cols}
        key = (u, tuple(map(str, context.values())))
        if key not in cache:
            cache[key] = candidate_scores(model, data, u, context)
        others = cache[key].drop(index=item, errors="ignore").to_numpy()
        n_cands[i] = len(others) + 1
        ranks[i] = rank_against(others, ev[i].ravel()).reshape(ev[i].shape)
    norm = (ranks - 1) / np.maximum(n_cands - 1, 1)[:, None, None, None]

    curves = []
    for c, cname in enumerate(("deletion", "insertion")):
        for o, oname in ((0, "attribution"), (None, "random")):
            sl = norm[:, c, 0] if o == 0 else norm[:, c, 1:].mean(axis=1)
            rk = ranks[:, c, 0] if o == 0 else ranks[:, c, 1:].mean(axis=1)
            sc = ev[:, c, 0] if o == 0 else ev[:, c, 1:].mean(axis=1)
            for si, t in enumerate(steps):
                curves.append({"curve": cname, "order": oname, "step": int(t), "fraction": t / max(n_u, 1),
                               "mean_rank": float(rk[:, si].mean()), "mean_normalized_rank": float(sl[:, si].mean()),
                               "mean_score": float(sc[:, si].mean())})
    curves = pd.DataFrame(curves)

    def area(cname: str, oname: str, col: str = "mean_normalized_rank") -> float:
        c = curves[(curves["curve"] == cname) & (curves["order"] == oname)]
        return float(np.trapezoid(c[col], c["fraction"])) if len(c) > 1 else float(c[col].mean())

    f_x = ev[:, 0, 0, 0]  # all units kept
    summary: dict[str, Any] = {
        "method": explanation.method, "model": explanation.model, "pairs": int(n_p), "units": n_u,
        "unit_kind": "feature" if explanation.attributions is not None else "field",
        "background_rows": int(len(B)), "random_orders": n_random, "seed": seed,
        "deletion_rank_auc": area("deletion", "attribution"), "deletion_rank_auc_random": area("deletion", "random"),
        "insertion_rank_auc": area("insertion", "attribution"), "insertion_rank_auc_random": area("insertion", "random"),
        "deletion_score_auc": area("deletion", "attribution", "mean_score"),
        "deletion_score_auc_random": area("deletion", "random", "mean_score"),
        "insertion_score_auc": area("insertion", "attribution", "mean_score"),
        "insertion_score_auc_random": area("insertion", "random", "mean_score"),
    }
    # higher is better for both: the item falls further on deletion, rises sooner on insertion
    summary["deletion_gain_over_random"] = summary["deletion_rank_auc"] - summary["deletion_rank_auc_random"]
    summary["insertion_gain_over_random"] = summary["insertion_rank_auc_random"] - summary["insertion_rank_auc"]
    for k in ks:
        if k > n_u:
            continue
        si = int(np.searchsorted(steps, k))
        summary[f"comprehensiveness@{k}"] = float((f_x - ev[:, 0, 0, si]).mean())
        summary[f"comprehensiveness@{k}_random"] = float((f_x[:, None] - ev[:, 0, 1:, si]).mean())
        summary[f"sufficiency@{k}"] = float((f_x - ev[:, 1, 0, si]).mean())
        summary[f"sufficiency@{k}_random"] = float((f_x[:, None] - ev[:, 1, 1:, si]).mean())
        summary[f"rank_drop@{k}"] = float((ranks[:, 0, 0, si] - ranks[:, 0, 0, 0]).mean())

    per_pair = pairs[[c for c in (USER, ITEM, "rank") if c in pairs.columns]].copy()
    per_pair["candidates"] = n_cands.astype(int)
    per_pair["rank_full"] = ranks[:, 0, 0, 0]
    per_pair["deletion_rank_auc"] = [float(np.trapezoid(norm[i, 0, 0], steps / max(n_u, 1))) if n_s > 1 else float(norm[i, 0, 0].mean()) for i in range(n_p)]
    per_pair["deletion_rank_auc_random"] = [float(np.trapezoid(norm[i, 0, 1:].mean(0), steps / max(n_u, 1))) if n_s > 1 else float(norm[i, 0, 1:].mean()) for i in range(n_p)]

    tables = {"curves": curves, "pairs": per_pair}
    # -- stability ---------------------------------------------------------------------------
    if explainer_for_seed is not None:
        own_seed = int(explanation.params.get("seed", seed))
        stab_rows = []
        for s in [own_seed] + [own_seed + 1 + j for j in range(rerun_seeds)]:
            other = explainer_for_seed(s).explain(model, data, pairs)
            B2, _ = explanation_units(other, model)
            A2 = B2[unit_names].to_numpy(float)
            for i in range(n_p):
                stab_rows.append({"seed": s, "same_seed": s == own_seed, "pair": i,
                                  "spearman": spearman(A[i], A2[i]), "top3_overlap": top_overlap(A[i], A2[i]),
                                  "max_abs_diff": float(np.abs(A[i] - A2[i]).max())})
        stab = pd.DataFrame(stab_rows)
        tables["stability"] = stab
        same, diff = stab[stab["same_seed"]], stab[~stab["same_seed"]]
        summary["rerun_max_abs_diff"] = float(same["max_abs_diff"].max())
        summary["rerun_identical"] = bool(same["max_abs_diff"].max() <= 1e-9)
        if len(diff):
            summary["seed_spearman_mean"] = float(diff["spearman"].mean())
            summary["seed_top3_overlap_mean"] = float(diff["top3_overlap"].mean())
            summary["seed_max_abs_diff"] = float(diff["max_abs_diff"].max())
    # -- sanity: retrain on shuffled labels --------------------------------------------------
    if sanity and explainer_for_seed is not None:
        try:
            shuffled = (retrain or retrain_on_shuffled_labels)(model, data, seed)
            other = explainer_for_seed(int(explanation.params.get("seed", seed))).explain(shuffled, data, pairs)
            B3, _ = explanation_units(other, model)
            A3 = B3[unit_names].to_numpy(float)
            rho = np.array([spearman(A[i], A3[i]) for i in range(n_p)])
            mag = float(np.abs(A3).mean() / max(np.abs(A).mean(), 1e-12))
            rel = float(np.mean(np.linalg.norm(A - A3, axis=1) / np.maximum(np.linalg.norm(A, axis=1), 1e-12)))
            mean_rho = float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan")
            summary["sanity_spearman_mean"] = mean_rho
            summary["sanity_magnitude_ratio"] = mag
            summary["sanity_relative_change"] = rel
            # passed: the attributions moved by at least half their size (a rank correlation
            # over a handful of fields is too coarse alone), or their ranking changed
            summary["sanity_passed"] = bool(rel >= 0.5 or np.isnan(mean_rho) or abs(mean_rho) < 0.5)
        except Exception as exc:  # noqa: BLE001  (a model that cannot be refitted skips the check, saying why)
            summary["sanity_skipped"] = f"{type(exc).__name__}: {exc}"
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    figures = {"deletion_insertion": _curve_figure(curves, explanation)}
    return StageResult(summary=summary, tables=tables, figures=figures, csv_tables=("curves",), kind="explanation-quality")


def _curve_figure(curves: pd.DataFrame, explanation: Explanation):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, cname in zip(axes, ("deletion", "insertion")):
        for oname, style in (("attribution", "-"), ("random", "--")):
            c = curves[(curves["curve"] == cname) & (curves["order"] == oname)]
            ax.plot(c["fraction"], c["mean_rank"], style, marker="o", ms=3, label=f"{oname} order")
        ax.set_title(f"{cname}: units {'removed' if cname == 'deletion' else 'inserted'} in order")
        ax.set_xlabel("fraction of units")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("mean rank of the explained item")
    axes[0].invert_yaxis()
    fig.suptitle(f"{explanation.method} on {explanation.model}: rank deletion / insertion", fontsize=9)
    fig.tight_layout()
    return fig
