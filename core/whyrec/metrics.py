"""Ranking metrics used by every model: AUC, NDCG@k and HR@k (numpy only)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def auc(labels: "np.ndarray", scores: "np.ndarray") -> float:
    """ROC AUC by the rank-sum formula, ties averaged. NaN when one class is missing."""
    import numpy as np
    import pandas as pd

    labels = np.asarray(labels) > 0
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ndcg_hr_at_k(ranked_items: list, relevant: set, k: int = 10) -> tuple[float, float]:
    """NDCG@k and hit rate @k of one ranked list against a set of relevant items."""
    import math

    top = ranked_items[:k]
    dcg = sum(1.0 / math.log2(i + 2) for i, it in enumerate(top) if it in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return (dcg / ideal if ideal else 0.0), float(any(it in relevant for it in top))


def evaluate_model(model: Any, data: Any, k: int = 10, max_users: int | None = 200, seed: int = 0) -> dict:
    """AUC on the labelled test pairs; NDCG@k and HR@k ranking all unseen candidates of up to
    ``max_users`` test users (sampled with ``seed``) against their positive test items."""
    import numpy as np

    from .data import ITEM, LABEL, USER

    test = data.test
    if test is None or len(test) == 0:
        return {}
    # whole test rows: their context columns are part of what the model scores
    out = {"auc": auc(test[LABEL].to_numpy(), model.score(test))}
    pos = test[test[LABEL] > 0]
    users = pos[USER].unique()
    if max_users is not None and len(users) > max_users:
        users = np.random.default_rng(seed).choice(users, max_users, replace=False)
    relevant = pos.groupby(USER)[ITEM].apply(set)
    ndcg, hr = [], []
    for u in users:
        n_cand = len(data.candidates(u))
        if n_cand == 0:  # a user who has seen every item has nothing to rank
            continue
        recs = model.recommend(u, min(k, n_cand))
        n, h = ndcg_hr_at_k(list(recs[ITEM]), relevant[u], k)
        ndcg.append(n)
        hr.append(h)
    out[f"ndcg@{k}"] = float(np.mean(ndcg)) if ndcg else float("nan")
    out[f"hr@{k}"] = float(np.mean(hr)) if hr else float("nan")
    out["eval_users"] = int(len(users))
    return out
