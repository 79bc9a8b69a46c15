"""Small real data, model and explainer for the explain-batch tests.

The linear model is exact and vectorised (no per-row Python), so the memory test measures the
engine, not the explainer. The popularity model/explainer of the sample plugin is the other
real component used (it builds per-row reasons like a production explainer).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from whyrec import BaseModel, Explanation, Feature, FeatureSchema, RecData
from whyrec.errors import DataError


def make_data(n_users: int = 30, n_items: int = 40, seed: int = 0) -> RecData:
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"age": rng.integers(18, 70, n_users).astype(float)},
                         index=pd.RangeIndex(1, n_users + 1, name="user"))
    items = pd.DataFrame({"quality": rng.normal(size=n_items), "price": rng.uniform(1, 20, n_items),
                          "title": [f"Item {i}" for i in range(1, n_items + 1)]},
                         index=pd.RangeIndex(1, n_items + 1, name="item"))
    rows = [(u, it, int(rng.random() < 1 / (1 + np.exp(-2 * items.at[it, "quality"]))), t)
            for u in users.index for t, it in enumerate(rng.choice(items.index, 8, replace=False))]
    inter = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
    schema = FeatureSchema([Feature("age", "user"), Feature("quality", "item"), Feature("price", "item")])
    return RecData("batch-toy", inter, users, items, schema, train=inter, test=inter.iloc[:0])


class LinearToy(BaseModel):
    """score = w . x with fixed weights; NaN features (cold start) count as the training mean."""

    name = "linear-toy"
    capabilities = frozenset({"linear"})

    def __init__(self, weights: tuple[float, ...] = (0.02, 1.5, -0.1)) -> None:
        super().__init__(weights=list(weights))
        self.w = np.asarray(weights, float)

    def fit(self, data: RecData, ctx=None) -> dict:
        self.bind(data)
        self.mean = data.features(data.train).mean().to_numpy(float)
        return {}

    def filled(self, X: pd.DataFrame) -> np.ndarray:
        x = X.to_numpy(float)
        return np.where(np.isnan(x), self.mean, x)

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        return (self.filled(X) * self.w).sum(axis=1)  # per row: independent of the batch size

    def _save_weights(self, directory: Path) -> None:
        (directory / "mean.json").write_text(json.dumps(self.mean.tolist()))

    def _load_weights(self, directory: Path) -> None:
        self.mean = np.asarray(json.loads((directory / "mean.json").read_text()))


class LinearExplainer:
    """Exact attributions of LinearToy: w_i (x_i - mean_i); base = w . mean."""

    def __init__(self, delay: float = 0.0, strict: bool = False) -> None:
        self.delay = delay  # seconds per call: lets the kill test catch the job mid-way
        self.strict = strict  # refuse unknown users/items, as explainers needing real features do

    def supports(self, model) -> bool:
        return isinstance(model, LinearToy)

    def explain(self, model: LinearToy, data: RecData, pairs: pd.DataFrame) -> Explanation:
        if self.delay:
            time.sleep(self.delay)
        if self.strict and not pairs["user"].isin(data.users.index).all():
            raise DataError(f"users {sorted(set(pairs['user']) - set(data.users.index))[:3]} are not in dataset {data.name!r}")
        X = data.features(pairs)[model.feature_names]
        x = model.filled(X)
        attr = pd.DataFrame((x - model.mean) * model.w, columns=model.feature_names)
        out = pairs[["user", "item"]].reset_index(drop=True)
        out["output_value"] = (x * model.w).sum(axis=1)
        out["base_value"] = float(model.mean @ model.w)
        return Explanation(method="linear-exact", model=model.name, pairs=out,
                           schema=data.schema.select(model.feature_names), attributions=attr)


def fitted(seed: int = 0) -> tuple[RecData, LinearToy]:
    data = make_data(seed=seed)
    model = LinearToy()
    model.fit(data)
    return data, model


def write_pairs(path: Path, n: int, data: RecData, seed: int = 1, unknown_users: int = 0, unknown_items: int = 0,
                row_group_size: int | None = None) -> pd.DataFrame:
    """n random pairs of known ids (plus the given number of unknown ones) and a request id."""
    rng = np.random.default_rng(seed)
    users = rng.choice(data.user_ids, n)
    items = rng.choice(data.item_ids, n)
    users[:unknown_users] = 10_000 + np.arange(unknown_users)
    items[unknown_users:unknown_users + unknown_items] = 20_000 + np.arange(unknown_items)
    df = pd.DataFrame({"user": users.astype(np.int64), "item": items.astype(np.int64),
                       "request_id": [f"r{i}" for i in range(n)] if n <= 200_000 else np.arange(n)})
    df.to_parquet(path, index=False, row_group_size=row_group_size)
    return df
