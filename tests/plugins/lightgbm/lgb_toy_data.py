"""A tiny synthetic RecData with the same field layout as MovieLens-100K (user, item, history
with a sequence, cross), built in memory so plugin tests run in seconds.

Labels follow a known logistic model: users like items of the genre they prefer, cheap items,
and items that match their recent history; so a fitted model has real signal to explain.
Shared by tests/plugins/lightgbm and tests/plugins/shap (module names are unique across
the test tree because pytest puts every test directory on sys.path).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from whyrec import Feature, FeatureSchema, RecData

GENRES = ("A", "B", "C")
# LightGBM settings for fast tests
SMALL = dict(n_estimators=60, num_leaves=7, min_child_samples=5, num_threads=1, learning_rate=0.1)
N_HIST = 3


def _featurizer(data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
    users, items = data.users, data.items
    u = pairs["user"].to_numpy()
    it = pairs["item"].to_numpy()
    cache = data.__dict__.setdefault("_toy_cache", {})  # per-data cache, kept out of params
    if "seq" not in cache:
        seq = np.full((len(users), N_HIST), np.nan)
        hl = np.zeros(len(users))
        for k, uid in enumerate(users.index):
            h = data.history(uid)[::-1][:N_HIST]  # most recent first
            seq[k, : len(h)] = h
            hl[k] = len(data.history(uid))
        cache["seq"], cache["hist_len"] = seq, hl
    upos = users.index.get_indexer(u)
    ipos = items.index.get_indexer(it)
    seq = cache["seq"][upos]
    gen = items[[f"genre_{g}" for g in GENRES]].to_numpy(float)
    seq_pos = items.index.get_indexer(np.nan_to_num(seq, nan=-1).astype(int).ravel()).reshape(seq.shape)
    hist_gen = np.where((seq_pos >= 0)[..., None], gen[np.maximum(seq_pos, 0)], 0.0)  # pairs x N x G
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
    for c in items.columns:
        if c.startswith("noise_"):
            out[c] = items[c].to_numpy(float)[ipos]
    return pd.DataFrame(out, index=pairs.index)


def _describer(name: str, value, row) -> str | None:
    if name == "genre_match":
        return f"shares a genre with {int(value)} of your last {N_HIST} items"
    if name.startswith("genre_"):
        g = name.split("_", 1)[1]
        return f"is a genre {g} item" if value else f"is not a genre {g} item"
    if name.startswith("hist_genre_"):
        return f"{value:.0%} of your recent items are genre {name.rsplit('_', 1)[1]}"
    if name == "price":
        return f"costs {value:.2f}"
    return None


def make_toy_data(n_users: int = 60, n_items: int = 40, per_user: int = 14, seed: int = 0, extra_features: int = 0) -> RecData:
    """``extra_features`` adds pure-noise item features noise_0.. (to make wide schemas)."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {"age": rng.integers(18, 65, n_users).astype(float), "gender": rng.choice(["F", "M"], n_users)},
        index=pd.Index(np.arange(1, n_users + 1), name="user"),
    )
    g = rng.random((n_items, len(GENRES))) < 0.4
    items = pd.DataFrame({f"genre_{x}": g[:, j].astype(float) for j, x in enumerate(GENRES)},
                         index=pd.Index(np.arange(101, 101 + n_items), name="item"))
    items["price"] = np.round(rng.uniform(1, 10, n_items), 2)
    items["title"] = [f"Item {i}" for i in items.index]
    for k in range(extra_features):
        items[f"noise_{k}"] = rng.normal(size=n_items)
    taste = rng.normal(0, 1.2, (n_users, len(GENRES))) + np.where(users["gender"].to_numpy()[:, None] == "F", [0.8, -0.5, 0], [-0.5, 0.8, 0])
    rows = []
    t = 0
    for k, uid in enumerate(users.index):
        chosen = rng.choice(n_items, per_user, replace=False)
        for j in chosen:
            logit = (taste[k] * g[j]).sum() - 0.25 * items["price"].iat[j] + 0.6 + 0.02 * (users["age"].iat[k] - 40)
            label = int(rng.random() < 1 / (1 + np.exp(-logit)))
            rows.append((uid, items.index[j], label, t))
            t += 1
    inter = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
    inter["rank_in_user"] = inter.groupby("user").cumcount(ascending=False)
    test = inter[inter["rank_in_user"] < 3].drop(columns="rank_in_user").reset_index(drop=True)
    train = inter[inter["rank_in_user"] >= 3].drop(columns="rank_in_user").reset_index(drop=True)
    inter = inter.drop(columns="rank_in_user")
    feats = [
        Feature("user_id", "user", "categorical"),
        Feature("age", "user"),
        Feature("gender", "user", "categorical"),
        Feature("item_id", "item", "categorical"),
        Feature("price", "item", actionable=True),
        *[Feature(f"genre_{x}", "item", group="genre") for x in GENRES],
        *[Feature(f"hist_genre_{x}", "history", group="genre_profile") for x in GENRES],
        Feature("hist_len", "history"),
        *[Feature(f"hist_{k}", "history", "sequence") for k in range(N_HIST)],
        Feature("genre_match", "cross"),
        *[Feature(f"noise_{k}", "item", group=f"noise_{k}") for k in range(extra_features)],
    ]
    return RecData(
        name="toy", interactions=inter, users=users, items=items, schema=FeatureSchema(feats),
        train=train, test=test, featurizer=_featurizer, describer=_describer, params={"seed": seed},
        description="synthetic toy data for plugin tests", history_length=N_HIST,
    )
