"""A small served run: a shop table with context columns and a 3-item history, LightGBM,
tree-shap and exact-field-shapley (built once per test session, about 10 s)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N_USERS, N_ITEMS, N_ROWS = 40, 60, 1500
REGISTRY = """
[pipelines.shop]
seed = 3
sample_users = 2
top_k = 3
eval_users = 10
model = [ {{ use = "lightgbm", n_estimators = 30 }} ]
explainers = [ {{ use = "tree-shap" }}, {{ use = "exact-field-shapley", background_size = 20 }} ]
report = {{ enabled = false }}

[pipelines.shop.dataset]
use = "table"
interactions = "{d}/inter.parquet"
users = "{d}/users.parquet"
items = "{d}/items.parquet"
user_col = "uid"
item_col = "iid"
label_col = "clicked"
timestamp_col = "ts"
context_features = ["evening", "device"]
categorical = ["item_id"]
history_length = 3
"""


def shop_files(d: Path) -> Path:
    """Clicks driven by the evening and the device, a little by price and age."""
    rng = np.random.default_rng(5)
    u, i = rng.integers(0, N_USERS, N_ROWS), rng.integers(0, N_ITEMS, N_ROWS)
    evening = rng.integers(0, 2, N_ROWS).astype(float)
    device = rng.choice(["ios", "android", "web"], N_ROWS)
    price, age = rng.uniform(1, 50, N_ITEMS), rng.integers(18, 70, N_USERS).astype(float)
    logit = -1.0 + 2.5 * evening + np.select([device == "ios", device == "web"], [1.5, -1.5], 0.0) - 0.02 * (price[i] - 25) \
        + 0.01 * (age[u] - 40)
    clicked = (rng.random(N_ROWS) < 1 / (1 + np.exp(-logit))).astype(int)
    pd.DataFrame({"uid": u, "iid": i, "ts": np.arange(N_ROWS, dtype=float), "clicked": clicked, "evening": evening,
                  "device": device}).to_parquet(d / "inter.parquet", index=False)
    pd.DataFrame({"uid": np.arange(N_USERS), "age": age}).to_parquet(d / "users.parquet", index=False)
    pd.DataFrame({"iid": np.arange(N_ITEMS), "item_id": np.arange(N_ITEMS), "price": price,
                  "title": [f"Item {j}" for j in range(N_ITEMS)]}).to_parquet(d / "items.parquet", index=False)
    return d


@pytest.fixture(scope="session")
def served_run(tmp_path_factory) -> Path:
    import whyrec

    d = shop_files(tmp_path_factory.mktemp("serve-shop"))
    (d / "registry.toml").write_text(REGISTRY.format(d=d))
    return whyrec.run("shop", registry=d / "registry.toml", out=d / "runs").path


@pytest.fixture
def run_copy(served_run, tmp_path) -> Path:
    """A copy of the run a test may write events into."""
    dst = tmp_path / served_run.name
    shutil.copytree(served_run, dst)
    return dst


@pytest.fixture(scope="module")
def ro_client(served_run):
    """One warm app for tests that write nothing (bad input, reads)."""
    from fastapi.testclient import TestClient
    from whyrec_serve.app import create_app

    with TestClient(create_app(served_run, background_warm=False)) as c:
        yield c


@pytest.fixture
def client(run_copy):
    from fastapi.testclient import TestClient
    from whyrec_serve.app import create_app

    with TestClient(create_app(run_copy, background_warm=False)) as c:
        yield c
