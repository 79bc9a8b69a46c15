"""table's opt-in id features (`id_features = true`): categorical user_id / item_id, as MovieLens has."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError
from whyrec_datasets.table import Table


def _write(tmp_path, string_ids: bool, n: int = 2400, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 60, n)
    i = rng.integers(0, 40, n)
    inter = pd.DataFrame({
        "uid": [f"u{k}" for k in u] if string_ids else u,
        "iid": [f"sku-{k}" for k in i] if string_ids else i + 100,
        "clicked": (rng.random(n) < 0.2 + 0.5 * (i % 3 == 0)).astype(int),
        "ts": rng.uniform(0, 1e6, n).round(),
        "price": (i % 7).astype(float),
    })
    inter.to_parquet(tmp_path / "inter.parquet")
    return tmp_path / "inter.parquet"


def _table(path, **kw):
    return Table(interactions=str(path), user_col="uid", item_col="iid", label_col="clicked", timestamp_col="ts",
                 item_features=["price"], **kw)


def test_id_features_are_opt_in_and_first_of_their_field(tmp_path):
    path = _write(tmp_path, string_ids=False)
    assert _table(path).load().schema.names == ["price"]  # the default schema is unchanged
    data = _table(path, id_features=True, history_length=2).load()
    s = data.schema
    assert s.names == ["user_id", "item_id", "price", "hist_len", "hist_0", "hist_1"]
    assert (s["user_id"].field, s["user_id"].kind) == ("user", "categorical")
    assert (s["item_id"].field, s["item_id"].kind) == ("item", "categorical")
    assert data.params["id_features"] is True
    rows = data.test.head(50)
    X = data.features(rows)
    # numeric ids: the features are the ids themselves, as the history features hold them
    assert list(X["user_id"].astype(int)) == list(rows["user"])
    assert list(X["item_id"].astype(int)) == list(rows["item"])
    hist = X[["hist_0", "hist_1"]].stack().dropna().astype(int)
    assert len(hist) and hist.isin(data.item_ids).all()


def test_string_ids_item_id_matches_the_history_encoding(tmp_path):
    data = _table(_write(tmp_path, string_ids=True), id_features=True, history_length=3).load()
    X = data.features(data.train)
    codes = data.items.index.get_indexer(data.train["item"])
    # item_id holds the item's code, the same value the hist_j features hold for that item
    assert (X["item_id"].astype(int).to_numpy() == codes).all()
    assert set(X["user_id"].astype(str)) == set(data.train["user"])
    # a positive training row of a user shows up (by the same value) in a later row's history
    pos = data.train[data.train["label"] == 1].sort_values("timestamp")
    first = pos.iloc[0]
    later = data.train[(data.train["user"] == first["user"]) & (data.train["timestamp"] > first["timestamp"])]
    assert len(later)
    nxt = later.sort_values("timestamp").head(1)  # the user's next row: their latest positive is `first`
    assert data.features(nxt)["hist_0"].iloc[0] == float(X.loc[first.name, "item_id"])
    # reasons name the item, not its code
    assert data.describe_feature("item_id", X.loc[first.name, "item_id"]) == f"this particular item: {first['item']}"
    assert data.describe_feature("user_id", "u3") == "your own taste (user u3)"


def test_a_feature_column_named_like_an_id_feature_is_refused(tmp_path):
    path = _write(tmp_path, string_ids=False)
    df = pd.read_parquet(path).assign(item_id=1.0)
    df.to_parquet(path)
    t = Table(interactions=str(path), user_col="uid", item_col="iid", label_col="clicked", item_features=["item_id"],
              id_features=True)
    with pytest.raises(DataError, match="feature column 'item_id' clashes with the id feature id_features = true adds"):
        t.load()
    # without id features the column is an ordinary feature
    t2 = Table(interactions=str(path), user_col="uid", item_col="iid", label_col="clicked", item_features=["item_id"])
    assert t2.load().schema.names == ["item_id"]


def test_torch_attention_trains_on_a_table_with_id_features_and_history(tmp_path):
    pytest.importorskip("torch")
    from whyrec_torch.model import TorchAttentionModel

    path = _write(tmp_path, string_ids=True)
    params = dict(epochs=1, batch_size=256, embedding_dim=4, attention_hidden=4, hidden=[8], device="cpu", amp=False)
    without = _table(path, history_length=3).load()
    with pytest.raises(DataError, match="item_feature='item_id' is not a feature"):
        TorchAttentionModel(**params).fit(without)
    data = _table(path, id_features=True, history_length=3).load()
    model = TorchAttentionModel(**params)
    model.fit(data)
    assert model.sequence_features == ["hist_0", "hist_1", "hist_2"]
    # one vocabulary for candidates and history: an item is one token wherever it appears
    assert model.encoder.item_vocab.size <= len(data.item_ids) + 2
    enc = model.encode(data.features(data.train))
    cand = enc.items[:, 0]
    assert set(enc.items[:, 1:][enc.mask].tolist()) <= set(cand.tolist())
    recs = model.recommend(data.user_ids[0], 5)
    assert len(recs) == 5 and np.isfinite(recs["score"]).all()
