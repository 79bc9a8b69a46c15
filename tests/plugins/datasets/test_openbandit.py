"""open-bandit: real logged feedback from the obp wheel."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError
from whyrec_datasets import cache
from whyrec_datasets.openbandit import OpenBandit


@pytest.fixture(scope="module")
def obd():
    return OpenBandit().load()


def test_both_policies_with_clicks_positions_and_propensities(obd):
    ev = obd.interactions
    for col in ("event_id", "user", "item", "label", "position", "propensity", "variant", "timestamp",
                "user_feature_0", "user_feature_3"):
        assert col in ev.columns
    assert len(ev) == 20_000
    assert ev["variant"].value_counts().to_dict() == {"random": 10_000, "bts": 10_000}
    clicks = ev.groupby("variant", observed=True)["label"].sum().to_dict()
    assert clicks == {"random": 38, "bts": 42}
    rnd = ev[ev["variant"] == "random"]
    assert np.allclose(rnd["propensity"], 1 / 80)  # uniform over 80 items
    assert set(ev["position"]) == {1, 2, 3}
    assert (np.diff(ev["timestamp"].to_numpy()) >= 0).all()
    assert ev["event_id"].is_unique and (ev["user"] == ev["event_id"]).all()


def test_items_and_schema(obd):
    assert len(obd.items) == 80 and list(obd.items.index) == list(range(80))
    assert obd.schema.fields == ["user", "item", "cross"]
    assert obd.schema["item_feature_0"].kind == "numeric"
    assert obd.schema["item_feature_1"].kind == "categorical"
    X = obd.features(obd.interactions[["user", "item"]].head(200))
    assert list(X.columns) == obd.schema.names
    assert np.allclose(X["user_item_affinity"], obd.interactions["user_item_affinity"].head(200))


def test_affinity_is_the_logged_column_of_the_shown_item():
    data = OpenBandit(policy="random").load()
    raw = pd.read_csv(cache.ensure("obd", []) / "random/all/all.csv", index_col=0)
    raw["ts"] = pd.to_datetime(raw["timestamp"])
    hit = raw[raw["user-item_affinity_0"] > 0].iloc[0]
    ev = data.interactions
    row = ev[np.abs(ev["timestamp"] - hit["ts"].timestamp()) < 1e-3].iloc[0]
    assert row["item"] == hit["item_id"]
    assert row["user_item_affinity"] == pytest.approx(hit[f"user-item_affinity_{hit['item_id']}"])


def test_policy_and_campaign_choice():
    men = OpenBandit(policy="bts", campaign="men").load()
    assert len(men.interactions) == 10_000 and len(men.items) == 34
    assert list(men.interactions["variant"].cat.categories) == ["bts"]
    assert (men.interactions["propensity"] < 1).all()


def test_time_split_is_global(obd):
    assert len(obd.train) == 16_000 and len(obd.test) == 4_000
    assert obd.test["timestamp"].min() >= obd.train["timestamp"].max()
    none = OpenBandit(test_fraction=0.0).load()
    assert none.test is None or len(none.test) == 0


def test_path_to_an_obd_folder(tmp_path):
    root = tmp_path / "obd"
    shutil.copytree(cache.ensure("obd", []), root)
    data = OpenBandit(policy="random", campaign="women", path=str(root)).load()
    assert len(data.items) == 46
    (root / "bts" / "all" / "all.csv").unlink()
    with pytest.raises(DataError, match=r"Open Bandit Dataset file .*bts/all/all.csv not found"):
        OpenBandit(path=str(root)).load()


def test_bad_parameters():
    with pytest.raises(DataError, match="policy='greedy'"):
        OpenBandit(policy="greedy")
    with pytest.raises(DataError, match="campaign='kids'"):
        OpenBandit(campaign="kids")
