"""table: the user's own data, and every bad input the issue lists."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError
from whyrec_datasets.table import Table


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    inter = pd.DataFrame({
        "uid": rng.integers(0, 60, n), "iid": rng.integers(0, 40, n), "clicked": rng.integers(0, 2, n),
        "stars": rng.integers(1, 6, n).astype(float), "ts": rng.uniform(0, 1e6, n).round(),
        "device": rng.choice(["ios", "android", "web"], n), "hour": rng.integers(0, 24, n),
        "pos": rng.integers(1, 4, n), "prop": rng.uniform(0.1, 1, n),
    })
    inter.to_parquet(tmp_path / "inter.parquet")
    inter.to_csv(tmp_path / "inter.csv", index=False)
    pd.DataFrame({"uid": np.arange(60), "age": rng.integers(18, 70, 60),
                  "country": rng.choice(["fr", "de"], 60)}).to_csv(tmp_path / "users.csv", index=False)
    pd.DataFrame({"iid": np.arange(45), "price": rng.uniform(1, 100, 45), "cat": rng.integers(0, 5, 45),
                  "name": [f"thing {k}" for k in range(45)]}).to_parquet(tmp_path / "items.parquet")
    return tmp_path


def _table(files, **kw):
    base = dict(interactions=str(files / "inter.parquet"), users=str(files / "users.csv"),
                items=str(files / "items.parquet"), user_col="uid", item_col="iid", label_col="clicked",
                timestamp_col="ts")
    base.update(kw)
    return Table(**base)


def test_declared_columns_fields_and_kinds(files):
    data = _table(files, context_features=["device", "hour"], categorical=["cat"], title_col="name",
                  position_col="pos", propensity_col="prop").load()
    s = data.schema
    assert s.names == ["age", "country", "price", "cat", "device", "hour"]
    assert [s[n].field for n in s.names] == ["user", "user", "item", "item", "context", "context"]
    assert [s[n].kind for n in s.names] == ["numeric", "categorical", "numeric", "categorical", "categorical", "numeric"]
    ev = data.interactions
    assert {"user", "item", "label", "timestamp", "position", "propensity", "device"} <= set(ev.columns)
    assert "clicked" not in ev.columns and ev["label"].dtype == np.int8
    assert len(data.items) == 45  # items file rows without interactions are still candidates
    assert data.item_title(3) == "thing 3"
    X = data.features(data.train)
    assert str(X["country"].dtype) == "category" and str(X["cat"].dtype) == "category"
    assert X["device"].astype(str).isin(["ios", "android", "web"]).all()
    raw = pd.read_parquet(files / "inter.parquet")
    r = data.train.iloc[10]
    assert X["price"].iloc[10] == pd.read_parquet(files / "items.parquet").set_index("iid").loc[r["item"], "price"]
    # a pair outside the logs has no context: refused, never featurized with it missing ...
    with pytest.raises(DataError, match=r"lack context column\(s\) \['device', 'hour'\].*--context device="):
        data.features(pd.DataFrame({"user": [1], "item": [44]}))
    # ... unless stated, or taken from the user's latest logged row (and said so)
    rows = data.with_context(pd.DataFrame({"user": [1], "item": [44]}), {"device": "web"})
    last = data.interactions[data.interactions["user"] == 1].sort_values("timestamp").iloc[-1]
    assert rows.attrs["context"] == {"device": "explicit", "hour": "user-latest"}
    Xc = data.features(rows)
    assert Xc["device"].iloc[0] == "web" and Xc["hour"].iloc[0] == float(last["hour"])
    assert len(raw) == len(ev)


def test_csv_and_parquet_give_the_same_data(files):
    a = _table(files).load()
    b = _table(files, interactions=str(files / "inter.csv")).load()
    pd.testing.assert_frame_equal(a.train, b.train, check_dtype=False)


def test_rating_threshold_negatives_and_history(files):
    data = _table(files, label_col=None, rating_col="stars", positive_rating=4, history_length=3, negatives=2).load()
    ev = data.interactions
    assert (ev["label"] == (ev["rating"] >= 4)).all()
    assert data.params["sampled_negatives"] > 0
    assert set(data.schema.of_kind("sequence")) == {"hist_0", "hist_1", "hist_2"}
    X = data.features(pd.DataFrame({"user": [5], "item": [data.candidates(5)[0]]}))
    assert X["hist_len"].iloc[0] == min(3, len(data.history(5)))
    assert X["hist_0"].iloc[0] == data.history(5)[-1]
    # an edited history: hist_len follows the removal, nothing else moves
    rows = data.features(data.test[["user", "item"]].head(20))
    assert data.rederive_history(rows).equals(rows)
    edited = rows.assign(hist_0=np.nan)
    got = data.rederive_history(edited)
    assert (got["hist_len"] == rows["hist_len"] - rows["hist_0"].notna()).all()
    assert got.drop(columns="hist_len").equals(edited.drop(columns="hist_len"))
    assert _table(files).load().history_deriver is None  # no history features, nothing to rebuild


def test_per_user_split_has_no_leakage(files):
    data = _table(files).load()
    last = data.train.groupby("user")["timestamp"].max()
    first = data.test.groupby("user")["timestamp"].min()
    assert (first > last.reindex(first.index)).all()


# -- bad input ------------------------------------------------------------------------------
def test_missing_file(files):
    with pytest.raises(DataError, match=r"interactions file .*nope.parquet not found"):
        _table(files, interactions=str(files / "nope.parquet")).load()
    with pytest.raises(DataError, match=r"users file .*gone.csv not found"):
        _table(files, users=str(files / "gone.csv")).load()


def test_declared_column_absent_names_it_and_lists_the_columns(files):
    with pytest.raises(DataError) as err:
        _table(files, timestamp_col="time").load()
    msg = str(err.value)
    assert "column 'time' (declared by timestamp_col) is not in it" in msg
    assert "its columns are: uid, iid, clicked, stars, ts, device, hour, pos, prop" in msg
    with pytest.raises(DataError, match=r"column 'weight' \(declared by item_features\)"):
        _table(files, item_features=["price", "weight"]).load()


def test_label_of_the_wrong_kind(files, tmp_path):
    with pytest.raises(DataError, match=r"label column 'stars' is declared binary but holds \[2.0, 3.0, 4.0\]"):
        _table(files, label_col="stars").load()
    with pytest.raises(DataError, match=r"binary label column 'device' holds non-numeric values"):
        _table(files, label_col="device").load()


def test_id_column_with_nulls(files, tmp_path):
    df = pd.read_parquet(files / "inter.parquet")
    df["uid"] = df["uid"].astype(float)
    df.loc[[4, 9], "uid"] = np.nan
    df.to_parquet(tmp_path / "nulls.parquet")
    with pytest.raises(DataError, match=r"id column 'uid' has 2 null values \(first at rows \[4, 9\]\); drop or fill"):
        _table(files, interactions=str(tmp_path / "nulls.parquet")).load()


def test_empty_tables(files, tmp_path):
    df = pd.read_parquet(files / "inter.parquet").head(0)
    df.to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataError, match=r"interactions file .*empty.parquet has no rows"):
        _table(files, interactions=str(tmp_path / "empty.parquet")).load()
    (tmp_path / "header.csv").write_text("uid,iid,clicked,ts\n")
    with pytest.raises(DataError, match=r"header.csv has no rows"):
        _table(files, interactions=str(tmp_path / "header.csv"), users=None, items=None).load()
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match=r"blank.csv: the file is empty"):
        _table(files, interactions=str(tmp_path / "blank.csv")).load()


def test_time_split_leaving_users_without_training_data_is_reported(files, tmp_path, capsys):
    df = pd.read_parquet(files / "inter.parquet")
    late = pd.DataFrame({"uid": [900, 900, 901], "iid": [1, 2, 3], "clicked": [1, 0, 1],
                         "stars": 5.0, "ts": 2e6, "device": "web", "hour": 1, "pos": 1, "prop": 0.5})
    pd.concat([df, late]).to_parquet(tmp_path / "late.parquet")
    data = _table(files, interactions=str(tmp_path / "late.parquet"), users=None, split="global").load()
    rep = data.params["split_report"]
    assert rep["users_without_train"] == 2 and sorted(rep["examples"]) == [900, 901]
    assert rep["dropped_test_rows"] == 3 and not data.test["user"].isin([900, 901]).any()
    assert "users have no training interactions" in capsys.readouterr().err
    kept = _table(files, interactions=str(tmp_path / "late.parquet"), users=None, split="global",
                  keep_cold_start=True).load()
    assert kept.test["user"].isin([900, 901]).sum() == 3
    X = kept.features(kept.test)  # cold-start users still get features
    assert len(X) == len(kept.test)


def test_other_declaration_errors(files):
    with pytest.raises(DataError, match="declare the outcome"):
        Table(interactions="x.parquet")
    with pytest.raises(DataError, match="needs positive_rating"):
        Table(interactions="x.parquet", rating_col="stars")
    with pytest.raises(DataError, match=r"\['cat'\] are declared both categorical and numeric"):
        Table(interactions="x.parquet", label_col="y", categorical=["cat"], numeric=["cat"])
    with pytest.raises(DataError, match=r"feature 'country' is declared numeric but holds 'de'"):
        _table(files, numeric=["country"]).load()
    with pytest.raises(DataError, match=r"unknown format; use .parquet or .csv"):
        (files / "inter.json").write_text("{}")
        _table(files, interactions=str(files / "inter.json")).load()
    dup = pd.read_csv(files / "users.csv")
    pd.concat([dup, dup.head(1)]).to_csv(files / "dup.csv", index=False)
    with pytest.raises(DataError, match=r"1 duplicate ids in 'uid' \(e.g. 0\); each user needs one row"):
        _table(files, users=str(files / "dup.csv")).load()
    pd.read_csv(files / "users.csv").assign(uid=lambda d: "u" + d["uid"].astype(str)).to_csv(files / "u2.csv", index=False)
    with pytest.raises(DataError, match=r"users file .*u2.csv: none of its 'uid' ids matches an id of the interactions "
                                        r"\(file: 'u0' \(str\), interactions: 0 \(int\)\)"):
        _table(files, users=str(files / "u2.csv")).load()
    with pytest.raises(DataError, match="user 'nobody' is not in the data"):
        _table(files).load().features(pd.DataFrame({"user": ["nobody"], "item": [1]}))
