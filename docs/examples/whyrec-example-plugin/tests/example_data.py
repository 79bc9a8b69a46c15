"""A small RecData built by hand for the example plugin's tests (a module name no other test
folder uses: pytest puts every test folder on sys.path, so a shared name like `helpers` or
`conftest` would import another folder's module)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from whyrec import Feature, FeatureSchema, RecData

# The planted click model: logit = QUALITY * quality + PRICE * (price - 50) / 20 (age plays no part).
QUALITY, PRICE = 1.5, -1.0


def make_data(n_users: int = 60, n_items: int = 40, per_user: int = 20, seed: int = 0) -> RecData:
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"age": rng.integers(18, 70, n_users).astype(float)},
                         index=pd.RangeIndex(1, n_users + 1, name="user"))
    items = pd.DataFrame({
        "price": rng.uniform(10, 90, n_items),
        "quality": rng.normal(size=n_items),
        "category": pd.Categorical(rng.choice(["book", "film", "game"], n_items)),
        "title": [f"Item {i}" for i in range(1, n_items + 1)],
    }, index=pd.RangeIndex(101, 101 + n_items, name="item"))
    rows = []
    for u in users.index:
        for t, it in enumerate(rng.choice(items.index, per_user, replace=False)):
            logit = QUALITY * items.at[it, "quality"] + PRICE * (items.at[it, "price"] - 50) / 20
            rows.append((u, it, int(rng.random() < 1 / (1 + np.exp(-logit))), float(t)))
    inter = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
    cut = int(per_user * 0.75)
    schema = FeatureSchema([
        Feature("age", "user", description="age in years"),
        Feature("category", "item", "categorical", description="book, film or game"),
        Feature("price", "item", description="price in $", actionable=True),
        Feature("quality", "item", description="editorial quality score"),
    ])
    return RecData("example-shop", inter, users, items, schema,
                   train=inter[inter["timestamp"] < cut].reset_index(drop=True),
                   test=inter[inter["timestamp"] >= cut].reset_index(drop=True))
