"""What the teacher says: its scores over user-item pairs, observed and unobserved, and its
top-K per user (the weighted positives of ranking distillation)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import DataError
from whyrec.progress import progress


def training_users(data: RecData, max_users: int, rng: np.random.Generator) -> np.ndarray:
    """Users of the training pairs (all, or a seeded sample of ``max_users``), sorted."""
    src = data.train if data.train is not None and len(data.train) else data.interactions
    users = np.sort(src[USER].unique())
    if len(users) == 0:
        raise DataError(f"dataset {data.name!r} has no training users to distil on")
    if max_users and len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    return users


def sample_pairs(data: RecData, users: np.ndarray, per_user: int, rng: np.random.Generator) -> pd.DataFrame:
    """Each user's training pairs plus ``per_user`` unobserved candidates drawn uniformly
    (0 = every candidate): the pairs the student learns the teacher's scores on."""
    train = data.train if data.train is not None else data.interactions
    observed = train[train[USER].isin(users)][[USER, ITEM, *data.context_names]]  # a logged row keeps its context
    parts = [observed]
    for u in users:
        c = data.candidates(u)
        if per_user and len(c) > per_user:
            c = rng.choice(c, per_user, replace=False)
        parts.append(data.user_pairs(u, c))  # unobserved candidates: in the user's latest context
    return pd.concat(parts, ignore_index=True).drop_duplicates([USER, ITEM]).reset_index(drop=True)


def score_pairs(model: Any, data: RecData, pairs: pd.DataFrame, chunk: int = 200_000) -> np.ndarray:
    """The model's raw scores (margins) of ``pairs``, featurised in chunks."""
    out = []
    for s in progress(range(0, len(pairs), chunk), desc=f"teacher scores of {len(pairs):,} pairs", unit="chunks"):
        X = data.features(pairs.iloc[s:s + chunk])
        out.append(np.asarray(model.score_features(X[list(model.feature_names)]), dtype=float))
    return np.concatenate(out) if out else np.zeros(0)


def teacher_top_k(teacher: Any, data: RecData, users: np.ndarray, k: int, pool: int, rng: np.random.Generator,
                  users_per_chunk: int = 128) -> pd.DataFrame:
    """The teacher's top-``k`` unseen items per user (columns user, item, rank, score), ranked
    over all candidates, or over ``pool`` sampled ones when ``pool`` > 0."""
    rows = []
    for s in progress(range(0, len(users), users_per_chunk), desc=f"teacher top-{k} of {len(users)} users", unit="chunks"):
        parts = []
        for u in users[s:s + users_per_chunk]:
            c = data.candidates(u)
            if pool and len(c) > pool:
                c = rng.choice(c, pool, replace=False)
            parts.append(data.user_pairs(u, c))
        pairs = pd.concat(parts, ignore_index=True)
        sc = score_pairs(teacher, data, pairs)
        pairs["score"] = sc
        pairs = pairs.sort_values([USER, "score"], ascending=[True, False], kind="stable")
        top = pairs.groupby(USER, sort=False).head(k).copy()
        top["rank"] = top.groupby(USER, sort=False).cumcount() + 1
        rows.append(top)
    return pd.concat(rows, ignore_index=True)[[USER, ITEM, "rank", "score"]]


def position_weights(k: int, lam: float) -> np.ndarray:
    """Ranking distillation's position importance (Tang & Wang, KDD 2018): w_r ∝ exp(-r/λ)
    for r = 1..k, normalised to sum to 1 (top positions count most)."""
    r = np.arange(1, k + 1, dtype=float)
    w = np.exp(-r / lam)
    return w / w.sum()
