"""A small synthetic RecData with a history sequence and a planted "sequel" effect.

Used by the tests, the docs' examples and bench/gpu_check.py (which must run where no dataset
is cached). Items come in genres; each user prefers one genre; item ``j + 1`` is the sequel of
item ``j`` (same genre), and a user who watched ``j`` very likely watches its sequel next. So
the right explanation of "why the sequel" is one specific history item: a model whose
attention is faithful should put its weight there.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from whyrec.data import ITEM, LABEL, TIMESTAMP, USER, RecData
from whyrec.schema import Feature, FeatureSchema


def make_toy_data(n_users: int = 60, n_items: int = 40, n_genres: int = 4, history_length: int = 5,
                  per_user: int = 8, negatives: int = 2, cold_users: int = 1, seed: int = 0) -> RecData:
    """Users 1..n_users (the last ``cold_users`` have no interactions), items 1..n_items."""
    rng = np.random.default_rng(seed)
    item_ids = np.arange(1, n_items + 1)
    genre = (item_ids - 1) // 2 % n_genres  # sequels (2k+1, 2k+2) share a genre
    items = pd.DataFrame({"genre": genre, "title": [f"Film {i} (G{g})" for i, g in zip(item_ids, genre)]},
                         index=pd.Index(item_ids, name="item"))
    user_ids = np.arange(1, n_users + 1)
    fav = rng.integers(0, n_genres, n_users)
    users = pd.DataFrame({"age": rng.integers(18, 70, n_users).astype(float), "fav": fav}, index=pd.Index(user_ids, name="user"))

    rows = []
    active = user_ids[: n_users - cold_users]
    for u in active:
        g = fav[u - 1]
        liked: list[int] = []
        t = 0
        while len(liked) < per_user:
            prev = liked[-1] if liked else None
            if prev is not None and prev % 2 == 1 and prev + 1 not in liked and rng.random() < 0.8:
                it = prev + 1  # the sequel of what they just watched
            else:
                pool = item_ids[(genre == g) if rng.random() < 0.75 else np.ones(n_items, bool)]
                pool = [i for i in pool if i not in liked]
                if not pool:
                    pool = [i for i in item_ids if i not in liked]
                it = int(rng.choice(pool))
            liked.append(int(it))
            rows.append((u, int(it), 1, t))
            unseen = np.setdiff1d(item_ids, liked)
            for neg in rng.choice(unseen, size=min(negatives, len(unseen)), replace=False):
                rows.append((u, int(neg), 0, t))
            t += 1
    inter = pd.DataFrame(rows, columns=[USER, ITEM, LABEL, TIMESTAMP])
    last = inter.groupby(USER)[TIMESTAMP].transform("max")
    is_test = inter[TIMESTAMP] >= last - 1  # the last two positives (with their negatives) are the test set
    train = inter[~is_test].reset_index(drop=True)
    test = inter[is_test].reset_index(drop=True)
    # a test negative must not be an item the user liked in training
    liked_train = set(zip(train.loc[train[LABEL] > 0, USER], train.loc[train[LABEL] > 0, ITEM]))
    test = test[[(u, i) not in liked_train or y > 0 for u, i, y in zip(test[USER], test[ITEM], test[LABEL])]].reset_index(drop=True)
    pop = train[train[LABEL] > 0].groupby(ITEM).size().reindex(item_ids, fill_value=0).astype(float)
    items["item_popularity"] = pop.to_numpy()

    seq = [f"hist_{k}" for k in range(history_length)]
    schema = FeatureSchema([
        Feature("user_id", "user", "categorical", description="user id"),
        Feature("age", "user", "numeric", description="age in years"),
        Feature("item_id", "item", "categorical", description="item id"),
        Feature("genre", "item", "categorical", description="the item's genre"),
        Feature("item_popularity", "item", "numeric", description="positives in training"),
        *[Feature(c, "history", "sequence", description=f"item watched {k + 1} back") for k, c in enumerate(seq)],
        Feature("hist_len", "history", "numeric", description="number of history items"),
        Feature("genre_match", "cross", "numeric", description="history items sharing the item's genre"),
    ])

    def featurize(data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
        # Point in time: a training row sees only the positives before its own timestamp.
        pos = data.train[data.train[LABEL] > 0].sort_values([USER, TIMESTAMP], kind="stable")
        by_user = {u: (g[ITEM].to_numpy(), g[TIMESTAMP].to_numpy()) for u, g in pos.groupby(USER)}
        ts = pairs[TIMESTAMP].to_numpy() if TIMESTAMP in pairs.columns else None
        H = np.full((len(pairs), history_length), np.nan)
        for r, u in enumerate(pairs[USER].to_numpy()):
            its, tss = by_user.get(u, (np.array([], int), np.array([], int)))
            if ts is not None:
                its = its[tss < ts[r]]
            recent = its[::-1][:history_length]
            H[r, : len(recent)] = recent
        it = pairs[ITEM].to_numpy()
        g_item = items["genre"].reindex(it).to_numpy(dtype=float)
        hist_genre = np.where(np.isnan(H), np.nan, items["genre"].reindex(np.nan_to_num(H, nan=1).astype(int).ravel()).to_numpy(dtype=float).reshape(H.shape))
        out = pd.DataFrame({
            "user_id": pairs[USER].to_numpy(),
            "age": users["age"].reindex(pairs[USER].to_numpy()).to_numpy(dtype=float),
            "item_id": it,
            "genre": g_item,
            "item_popularity": items["item_popularity"].reindex(it).to_numpy(dtype=float),
            **{c: H[:, k] for k, c in enumerate(seq)},
            "hist_len": (~np.isnan(H)).sum(axis=1).astype(float),
            "genre_match": (hist_genre == g_item[:, None]).sum(axis=1).astype(float),
        })
        return out

    def rederive(X: pd.DataFrame) -> pd.DataFrame:
        """hist_len and genre_match recomputed from the sequence columns (NaN = removed)."""
        H = X[seq].to_numpy(dtype=float, na_value=np.nan)
        g_item = pd.to_numeric(pd.Series(np.asarray(X["genre"], dtype=object))).to_numpy(dtype=float)
        hist_genre = np.where(np.isnan(H), np.nan, items["genre"].reindex(np.nan_to_num(H, nan=1).astype(int).ravel()).to_numpy(dtype=float).reshape(H.shape))
        out = X.copy()
        out["hist_len"] = (~np.isnan(H)).sum(axis=1).astype(float)
        out["genre_match"] = (hist_genre == g_item[:, None]).sum(axis=1).astype(float)
        return out

    def describe(name: str, value, row) -> str | None:
        if name == "genre_match":
            return f"{int(value)} of your recent films share its genre"
        if name == "genre":
            return f"genre G{int(value)}"
        return None

    return RecData(
        name="toy-sequels", interactions=inter, users=users[["age"]], items=items, schema=schema,
        train=train, test=test, featurizer=featurize, describer=describe, history_deriver=rederive,
        history_length=history_length,
        description="synthetic: genre preferences and sequels (item 2k+2 follows 2k+1)", params={"seed": seed},
    )
