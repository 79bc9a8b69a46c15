"""Random shop logs with context columns, for tests and benchmarks of the ``table`` dataset.

A new user's data has context columns (device, hour, delivery time) that drive the outcome.
``random_table`` writes such a family at random (a random schema: how many user, item and
context columns, numeric or categorical, which of them move the click and how strongly) as
Parquet files a ``table`` dataset reads, and returns what it wrote: the registry parameters,
and the true logit weights, so a test can check that a model sees context and an explainer
credits it. Nothing here is tuned to whyrec's own simulators.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class RandomTable:
    """What ``random_table`` wrote: ``params`` are the ``table`` dataset's keys (paths included);
    ``weights`` the true effect of each feature on the click logit (per category for
    categoricals); ``context`` / ``user`` / ``item`` the feature names per field."""

    params: dict[str, Any]
    weights: dict[str, Any] = field(default_factory=dict)
    user: list[str] = field(default_factory=list)
    item: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)


def random_table(directory: str | Path, seed: int = 0, n_rows: int = 6000, n_users: int = 150, n_items: int = 80,
                 n_user: int | None = None, n_item: int | None = None, n_context: int | None = None,
                 context_strength: float = 1.5, fmt: str = "parquet") -> RandomTable:
    """Write interactions/users/items files under ``directory`` and return their description.

    The click is Bernoulli(sigmoid(sum of feature effects)). Context effects have size
    ``context_strength`` (per standard deviation, or between categories) so the label depends
    on context columns: a model that drops them loses AUC, an explainer that never credits them
    is wrong. Column counts are drawn at random unless given.
    """
    rng = np.random.default_rng(seed)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    n_user = int(rng.integers(1, 4)) if n_user is None else n_user
    n_item = int(rng.integers(1, 4)) if n_item is None else n_item
    n_context = int(rng.integers(1, 4)) if n_context is None else n_context
    if n_context < 1:
        raise ValueError("random_table needs at least one context column (n_context >= 1)")

    out = RandomTable(params={})
    logit = np.full(n_rows, -0.3)
    u = rng.integers(0, n_users, n_rows)
    i = rng.integers(0, n_items, n_rows)

    def column(n: int, prefix: str, strength: float, k: int) -> tuple[np.ndarray, Any, bool]:
        categorical = bool(rng.random() < 0.4)
        if categorical:
            levels = [f"{prefix}{k}_{c}" for c in range(int(rng.integers(2, 5)))]
            values = rng.choice(levels, n)
            effect = {lv: float(rng.uniform(-1, 1) * strength) for lv in levels}
            return values, effect, True
        values = rng.normal(0, 1, n) * float(rng.uniform(0.5, 3)) + float(rng.uniform(-5, 5))
        return values, float(rng.choice([-1, 1]) * rng.uniform(0.5, 1) * strength), False

    def effect_of(values: np.ndarray, effect: Any, categorical: bool) -> np.ndarray:
        if categorical:
            return np.array([effect[v] for v in values])
        return effect * (values - values.mean()) / (values.std() or 1.0)

    users = pd.DataFrame({"uid": np.arange(n_users)})
    items = pd.DataFrame({"iid": np.arange(n_items)})
    inter = pd.DataFrame({"uid": u, "iid": i, "ts": np.sort(rng.uniform(0, 1e7, n_rows)).round()})
    for side, table, count, codes in (("user", users, n_user, u), ("item", items, n_item, i)):
        for k in range(count):
            vals, eff, cat = column(len(table), side[0], 0.6, k)
            name = f"{side}_f{k}"
            table[name] = vals
            logit += effect_of(vals, eff, cat)[codes]
            getattr(out, side).append(name)
            out.weights[name] = eff
            if cat:
                out.categorical.append(name)
    for k in range(n_context):
        vals, eff, cat = column(n_rows, "c", context_strength, k)
        name = f"ctx_f{k}"
        inter[name] = vals
        logit += effect_of(vals, eff, cat)
        out.context.append(name)
        out.weights[name] = eff
        if cat:
            out.categorical.append(name)
    inter["clicked"] = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)

    ext = "parquet" if fmt == "parquet" else "csv"
    paths = {}
    for name, df in (("interactions", inter), ("users", users), ("items", items)):
        p = d / f"{name}.{ext}"
        df.to_parquet(p, index=False) if ext == "parquet" else df.to_csv(p, index=False)
        paths[name] = str(p)
    out.params = {**paths, "user_col": "uid", "item_col": "iid", "label_col": "clicked", "timestamp_col": "ts",
                  "user_features": out.user, "item_features": out.item, "context_features": out.context,
                  "categorical": out.categorical}
    return out
