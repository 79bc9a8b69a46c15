"""`table` accepts but warns about data that is probably not what the user meant: exact
duplicate rows, and ids written two ways in one column ("u5" next to "5")."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from whyrec.cli import main
from whyrec.errors import DataWarning
from whyrec_datasets.table import Table


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "uid": [f"u{k}" for k in rng.integers(0, 40, n)],
        "iid": rng.integers(100, 140, n),
        "clicked": (rng.random(n) < 0.3).astype(int),
        "ts": np.arange(n, dtype=float),
    })


def _load(path):
    return Table(interactions=str(path), user_col="uid", item_col="iid", label_col="clicked",
                 timestamp_col="ts").load()


def _data_warnings(path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = _load(path)
    return data, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_clean_data_gives_no_warning(tmp_path):
    _frame().to_csv(tmp_path / "i.csv", index=False)
    _, msgs = _data_warnings(tmp_path / "i.csv")
    assert msgs == []


def test_duplicate_rows_are_counted_named_and_kept(tmp_path):
    df = _frame()
    dup = pd.concat([df, df.iloc[10:510]], ignore_index=True)  # 500 exact duplicates, first at row 600
    dup.to_csv(tmp_path / "i.csv", index=False)
    data, msgs = _data_warnings(tmp_path / "i.csv")
    assert len(msgs) == 1, msgs
    assert "500 rows repeat the user ('uid'), item ('iid') and time ('ts') of an earlier row" in msgs[0]
    assert "first at row 600" in msgs[0]
    assert str(tmp_path / "i.csv") in msgs[0]
    assert len(data.interactions) == len(dup)  # kept: a repeated interaction is data


def test_the_same_user_item_and_time_with_another_label_is_a_duplicate_log(tmp_path):
    df = _frame()
    again = df.iloc[:3].copy()
    again["clicked"] = 1 - again["clicked"]  # contradicting copies: the worst kind of duplicate
    pd.concat([df, again], ignore_index=True).to_csv(tmp_path / "i.csv", index=False)
    _, msgs = _data_warnings(tmp_path / "i.csv")
    assert len(msgs) == 1 and "3 rows repeat" in msgs[0], msgs


def test_rows_differing_in_time_are_not_duplicates(tmp_path):
    df = _frame()
    again = df.iloc[:50].copy()
    again["ts"] += 10_000  # the same user and item again, later: a real repeat, not a copy
    pd.concat([df, again], ignore_index=True).to_csv(tmp_path / "i.csv", index=False)
    _, msgs = _data_warnings(tmp_path / "i.csv")
    assert msgs == []


def test_without_a_time_column_identical_rows_are_repeats(tmp_path):
    df = _frame().drop(columns="ts")
    pd.concat([df, df.iloc[:30]], ignore_index=True).to_csv(tmp_path / "i.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Table(interactions=str(tmp_path / "i.csv"), user_col="uid", item_col="iid", label_col="clicked").load()
    assert [w for w in caught if issubclass(w.category, DataWarning)] == []


def test_mixed_id_spellings_are_named(tmp_path):
    df = _frame()
    df.loc[df.index[::7], "uid"] = [str(k) for k in range(len(df.index[::7]))]  # "5" next to "u5"
    df.to_csv(tmp_path / "i.csv", index=False)
    _, msgs = _data_warnings(tmp_path / "i.csv")
    assert len(msgs) == 1, msgs
    assert "id column 'uid' mixes numeric ids" in msgs[0] and "'u" in msgs[0]


def test_mixed_user_ids_are_shown_by_their_shape_only(tmp_path):
    """A run records its warnings in manifest.json, where privacy promises no raw user id: the
    user column's examples are shapes; item ids (never pseudonymised) are quoted as they are."""
    df = _frame()
    df["uid"] = df["uid"].str.replace("u", "cust-", regex=False) + "-zq"
    df.loc[df.index[:2], "uid"] = ["5", "6"]
    df["iid"] = df["iid"].astype(str)
    df.loc[df.index[:1], "iid"] = ["sku7"]
    df.to_csv(tmp_path / "i.csv", index=False)
    _, msgs = _data_warnings(tmp_path / "i.csv")
    assert msgs[0] == (f"interactions file {tmp_path / 'i.csv'}: id column 'uid' mixes numeric ids (2, e.g. shaped '9') and "
                       "other ids (40, e.g. shaped 'aaaa-99-aa') (user ids by their shape: 9 a digit, a a letter); if e.g. "
                       "'u5' and '5' are one id, write them the same way")
    assert not any("cust-" in m for m in msgs)
    assert "id column 'iid' mixes numeric ids" in msgs[1] and "e.g. 'sku7'" in msgs[1]


def test_numeric_ids_alone_are_not_mixed(tmp_path):
    df = _frame()
    df["uid"] = df["uid"].str[1:]  # all "5"-style text ids: one spelling
    df.to_csv(tmp_path / "i.csv", index=False)
    _, msgs = _data_warnings(tmp_path / "i.csv")
    assert msgs == []


def test_cli_prints_a_data_warning_as_one_line(tmp_path, capsys):
    df = _frame()
    pd.concat([df, df.iloc[:20]], ignore_index=True).to_csv(tmp_path / "i.csv", index=False)
    main(["datasets", "describe", "table", "-p", f"interactions={tmp_path / 'i.csv'}", "-p", "user_col=uid",
          "-p", "item_col=iid", "-p", "label_col=clicked", "-p", "timestamp_col=ts"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "repeat" in ln]
    assert lines == [f"warning: interactions file {tmp_path / 'i.csv'}: 20 rows repeat the user ('uid'), item ('iid') and "
                     "time ('ts') of an earlier row (first at row 600); they are kept as repeated interactions: drop them first (e.g. pandas "
                     "drop_duplicates) if they are logging artefacts"]
    assert "UserWarning" not in err and "frames.py" not in err


def test_domain_is_declared_and_checked(tmp_path):
    from whyrec.errors import DataError

    _frame().to_csv(tmp_path / "i.csv", index=False)
    data = Table(interactions=str(tmp_path / "i.csv"), user_col="uid", item_col="iid", label_col="clicked",
                 timestamp_col="ts", domain="finance").load()
    assert data.params["domain"] == "finance" and data.summary()["domain"] == "finance"
    assert _load(tmp_path / "i.csv").summary()["domain"] == "default"
    with pytest.raises(DataError, match="domain='space' is not one of video, ecommerce, finance, default"):
        Table(interactions=str(tmp_path / "i.csv"), user_col="uid", item_col="iid", label_col="clicked", domain="space")


def test_a_run_says_the_warning_on_the_console_and_records_it(tmp_path, capsys):
    from whyrec.runner import run

    df = _frame()
    pd.concat([df, df.iloc[:30]], ignore_index=True).to_csv(tmp_path / "i.csv", index=False)
    (tmp_path / "registry.toml").write_text(
        '[pipelines.p]\ndataset = { use = "table", interactions = "i.csv", user_col = "uid", item_col = "iid", '
        'label_col = "clicked", timestamp_col = "ts" }\nreport = { enabled = false }\n')
    r = run("p", registry=tmp_path / "registry.toml", out=tmp_path / "runs")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "rows repeat" in ln]
    assert len(lines) == 1 and lines[0].startswith("[whyrec] warning: interactions file ") and "30 rows repeat" in lines[0]
    (stage,) = [s for s in r.manifest["stages"] if s["name"] == "dataset"]
    assert any("30 rows repeat" in w for w in stage["warnings"])
