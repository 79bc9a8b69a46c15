"""Small real data for the whyrec-ray tests (a module name unique across the test tree)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from whyrec import Feature, FeatureSchema, RecData


def make_data(n_users: int = 40, n_items: int = 30, seed: int = 0) -> RecData:
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"age": rng.integers(18, 70, n_users).astype(float)}, index=pd.RangeIndex(1, n_users + 1, name="user"))
    items = pd.DataFrame({"quality": rng.normal(size=n_items), "title": [f"Item {i}" for i in range(1, n_items + 1)]},
                         index=pd.RangeIndex(1, n_items + 1, name="item"))
    rows = [(u, it, int(rng.random() < 1 / (1 + np.exp(-2 * items.at[it, "quality"]))), t)
            for u in users.index for t, it in enumerate(rng.choice(items.index, 6, replace=False))]
    inter = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
    schema = FeatureSchema([Feature("age", "user"), Feature("quality", "item")])
    return RecData("ray-toy", inter, users, items, schema, train=inter, test=inter.iloc[:0])
