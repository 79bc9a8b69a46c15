"""A small synthetic RecData laid out like MovieLens-100K (user, item, history with a
sequence, cross), built in memory so the distill tests run in seconds.

Labels follow a known logistic model (users like items of their preferred genres, cheap items,
items matching their recent history), so teachers and students have real signal to agree on.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from whyrec import Feature, FeatureSchema, RecData

# Report settings that keep each compression under a few seconds on the toy data (kept here,
# not in conftest.py: several test folders have a conftest module, `import conftest` is ambiguous).
FAST = dict(eval_users=15, explain_users=3, explain_k=2, explainer="occlusion", repeats=1)

GENRES = ("A", "B", "C")
N_HIST = 3


def _featurizer(data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
    users, items = data.users, data.items
    u, it = pairs["user"].to_numpy(), pairs["item"].to_numpy()
    cache = data.__dict__.setdefault("_distill_toy_cache", {})
    if "seq" not in cache:
        seq = np.full((len(users), N_HIST), np.nan)
        hl = np.zeros(len(users))
        for k, uid in enumerate(users.index):
            h = data.history(uid)[::-1][:N_HIST]  # most recent first
            seq[k, : len(h)] = h
            hl[k] = len(data.history(uid))
        cache["seq"], cache["hist_len"] = seq, hl
    upos, ipos = users.index.get_indexer(u), items.index.get_indexer(it)
    seq = cache["seq"][upos]
    gen = items[[f"genre_{g}" for g in GENRES]].to_numpy(float)
    seq_pos = items.index.get_indexer(np.nan_to_num(seq, nan=-1).astype(int).ravel()).reshape(seq.shape)
    hist_gen = np.where((seq_pos >= 0)[..., None], gen[np.maximum(seq_pos, 0)], 0.0)
    n_hist = (seq_pos >= 0).sum(axis=1)
    cand = gen[ipos]
    out = {
        "user_id": pd.Categorical(u, categories=users.index),
        "age": users["age"].to_numpy(float)[upos],
        "gender": pd.Categorical(users["gender"].to_numpy()[upos], categories=["F", "M"]),
        "item_id": pd.Categorical(it, categories=items.index),
        "price": items["price"].to_numpy(float)[ipos],
    }
    for j, g in enumerate(GENRES):
        out[f"genre_{g}"] = cand[:, j]
    for j, g in enumerate(GENRES):
        out[f"hist_genre_{g}"] = np.where(n_hist > 0, hist_gen[:, :, j].sum(1) / np.maximum(n_hist, 1), 0.0)
    out["hist_len"] = cache["hist_len"][upos]
    for k in range(N_HIST):
        out[f"hist_{k}"] = seq[:, k]
    out["genre_match"] = ((hist_gen * cand[:, None, :]).sum(-1) > 0).sum(1).astype(float)
    return pd.DataFrame(out, index=pairs.index)


def make_toy_data(n_users: int = 50, n_items: int = 40, per_user: int = 16, seed: int = 0, drop: tuple[str, ...] = ()) -> RecData:
    """``drop`` removes features from the schema (to test loading against another schema)."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"age": rng.integers(18, 65, n_users).astype(float), "gender": rng.choice(["F", "M"], n_users)},
                         index=pd.Index(np.arange(1, n_users + 1), name="user"))
    g = rng.random((n_items, len(GENRES))) < 0.4
    items = pd.DataFrame({f"genre_{x}": g[:, j].astype(float) for j, x in enumerate(GENRES)},
                         index=pd.Index(np.arange(101, 101 + n_items), name="item"))
    items["price"] = np.round(rng.uniform(1, 10, n_items), 2)
    items["title"] = [f"Item {i}" for i in items.index]
    taste = rng.normal(0, 1.5, (n_users, len(GENRES)))
    rows, t = [], 0
    for k, uid in enumerate(users.index):
        for j in rng.choice(n_items, per_user, replace=False):
            logit = (taste[k] * g[j]).sum() - 0.3 * items["price"].iat[j] + 1.0
            rows.append((uid, items.index[j], int(rng.random() < 1 / (1 + np.exp(-logit))), t))
            t += 1
    inter = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
    last = inter.groupby("user").cumcount(ascending=False) < 3
    test, train = inter[last].reset_index(drop=True), inter[~last].reset_index(drop=True)
    feats = [
        Feature("user_id", "user", "categorical"), Feature("age", "user"), Feature("gender", "user", "categorical"),
        Feature("item_id", "item", "categorical"), Feature("price", "item", actionable=True),
        *[Feature(f"genre_{x}", "item", group="genre") for x in GENRES],
        *[Feature(f"hist_genre_{x}", "history", group="genre_profile") for x in GENRES],
        Feature("hist_len", "history"),
        *[Feature(f"hist_{k}", "history", "sequence") for k in range(N_HIST)],
        Feature("genre_match", "cross"),
    ]
    schema = FeatureSchema([f for f in feats if f.name not in drop])
    featurizer = _featurizer
    if drop:
        def featurizer(data, pairs):  # noqa: E306
            return _featurizer(data, pairs).drop(columns=list(drop))
    return RecData(name="toy", interactions=inter, users=users, items=items, schema=schema, train=train, test=test,
                   featurizer=featurizer, params={"seed": seed}, description="distill test data", history_length=N_HIST)
