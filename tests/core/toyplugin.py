"""A tiny dataset for core tests (loaded with WHYREC_PLUGINS=toyplugin or host.add)."""
from __future__ import annotations

import numpy as np
import pandas as pd

import whyrec
from whyrec import Feature, FeatureSchema, RecData


class ToyDataset:
    """Small random users x items with a planted preference; seeded."""

    def __init__(self, n_users: int = 30, n_items: int = 40, seed: int = 0, fail: bool = False) -> None:
        self.n_users, self.n_items, self.seed, self.fail = n_users, n_items, seed, fail

    def load(self) -> RecData:
        if self.fail:
            raise whyrec.DataError("toy dataset: asked to fail (fail = true); set fail = false")
        rng = np.random.default_rng(self.seed)
        users = pd.DataFrame({"age": rng.integers(18, 70, self.n_users).astype(float)}, index=pd.RangeIndex(1, self.n_users + 1, name="user"))
        items = pd.DataFrame({"quality": rng.normal(size=self.n_items), "title": [f"Item {i}" for i in range(1, self.n_items + 1)]},
                             index=pd.RangeIndex(1, self.n_items + 1, name="item"))
        rows = []
        for u in users.index:
            its = rng.choice(items.index, 12, replace=False)
            for t, it in enumerate(its):
                p = 1 / (1 + np.exp(-(2 * items.at[it, "quality"])))
                rows.append((u, it, int(rng.random() < p), t))
        inter = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
        train = inter[inter["timestamp"] < 9].reset_index(drop=True)
        test = inter[inter["timestamp"] >= 9].reset_index(drop=True)
        schema = FeatureSchema([Feature("age", "user"), Feature("quality", "item", actionable=True)])
        return RecData("toy", inter, users, items, schema, train=train, test=test, params={"seed": self.seed})


@whyrec.hookimpl
def register_datasets(register):
    register("toy", ToyDataset)
