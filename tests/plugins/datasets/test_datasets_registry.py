"""The datasets validate as registry.toml entries (constructor signatures are the schema)."""
from __future__ import annotations

import pytest

import whyrec_datasets
from whyrec.errors import RegistryError
from whyrec.plugins import PluginHost
from whyrec.registry import load_registry

REGISTRY = """
[defaults]
pipeline = "movielens"

[pipelines.movielens]
dataset = { use = "movielens-100k", positive_rating = 4, negatives = 4, history_length = 10 }

[pipelines.obd]
dataset = { use = "open-bandit", policy = "bts", campaign = "men", test_fraction = 0.0 }

[pipelines.shop]
dataset = { use = "sim-ecommerce", n_users = 500, n_items = 200, n_rows = 20000, seed = 1 }

[pipelines.video]
dataset = { use = "sim-video", n_rows = 5000 }

[pipelines.finance]
dataset = { use = "sim-finance", n_rows = 5000, test_fraction = 0.25 }

[pipelines.mine.dataset]
use = "table"
interactions = "events.parquet"
user_col = "uid"
item_col = "sku"
rating_col = "stars"
positive_rating = 4
timestamp_col = "ts"
context_features = ["device"]
categorical = ["device"]
split = "global"
history_length = 5
"""


@pytest.fixture
def host():
    h = PluginHost()
    h.add(whyrec_datasets, "whyrec-datasets")
    return h


def test_every_dataset_validates(tmp_path, host):
    p = tmp_path / "registry.toml"
    p.write_text(REGISTRY)
    load_registry(p).validate(host)


@pytest.mark.parametrize("entry, message", [
    ('{ use = "open-bandit", policy = "greedy" }', "policy: expected one of 'random', 'bts', 'both'"),
    ('{ use = "movielens-100k", negatives = "four" }', "negatives: expected int"),
    ('{ use = "sim-video", n_row = 10 }', "has no parameter 'n_row'; did you mean 'n_rows'"),
    ('{ use = "table", user_col = "u" }', "needs parameter(s) interactions"),
])
def test_bad_entries(tmp_path, host, entry, message):
    p = tmp_path / "registry.toml"
    p.write_text(f"[pipelines.x]\ndataset = {entry}\n")
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_registry(p).validate(host)
