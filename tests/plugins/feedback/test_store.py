"""The feedback store: durable append-only JSON-lines log, readers, normalising, click matching."""
from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np
import pandas as pd
import pytest
from whyrec.errors import DataError

from whyrec_feedback.store import (append_event, exposures, make_event, normalise, read_events, read_jsonl,
                                   record_event)


def test_record_appends_one_event_per_line(tmp_path):
    log = tmp_path / "sub" / "events.jsonl"
    a = record_event(log, "impression", 1, 10, position=1, variant="A", propensity=0.25, event_id="e1")
    b = record_event(log, "click", 1, 10, variant="A", impression_id="e1")
    c = record_event(log, "explanation_feedback", 1, 10, explanation_method="tree-shap", explanation_format="text", helpful=True)
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    assert [json.loads(x) for x in lines] == [a, b, c]
    assert a["event_id"] == "e1" and len(b["event_id"]) == 32  # uuid4 hex when not given
    assert "timestamp" in b and "label" not in b  # None fields are left out


def _writer(path: str, k: int) -> None:
    for i in range(40):
        record_event(path, "impression", k, i, variant=f"v{k}", event_id=f"{k}-{i}", label=i % 2)


def test_concurrent_writers_never_interleave(tmp_path):
    log = tmp_path / "events.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(str(log), k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    got = read_jsonl(log)
    assert got.problems == []
    assert len(got.events) == 160
    assert got.events["event_id"].nunique() == 160


def test_partial_last_line_is_reported_and_next_event_starts_a_new_line(tmp_path):
    log = tmp_path / "events.jsonl"
    record_event(log, "impression", 1, 1, event_id="a")
    with open(log, "ab") as fh:  # a writer that died mid-line
        fh.write(b'{"event_id": "b", "event": "impr')
    record_event(log, "impression", 2, 2, event_id="c")
    got = read_jsonl(log)
    assert got.events["event_id"].tolist() == ["a", "c"]
    assert [p.line for p in got.problems] == [2]


def test_malformed_jsonl_lines_reported_with_line_numbers_others_kept(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join([
        json.dumps({"event_id": 1, "event": "impression", "user": 1, "item": 5, "label": 0}),
        "{not json",
        json.dumps({"event_id": 2, "event": "impression", "user": 2, "item": 5, "label": 1}),
        "[1, 2]",
        "",
        json.dumps({"event_id": 3, "event": "purchase", "user": 2, "item": 5}),
        json.dumps({"event_id": 4, "event": "impression", "user": 3, "item": 6, "label": 0}),
    ]) + "\n")
    got = read_events(log)
    assert got.events["event_id"].tolist() == [1, 2, 4]
    assert [p.line for p in got.problems] == [2, 4, 6]
    assert "expected a JSON object" in got.problems[1].error
    assert "'purchase' is not one of" in got.problems[2].error
    assert got.input_summary()["malformed_lines"][0]["line"] == 2
    with pytest.raises(DataError, match=r"line 2 is not a valid event"):
        read_events(log, strict=True)


def test_duplicate_event_ids_are_counted_once():
    df = pd.DataFrame({"event_id": [1, 2, 2, 3, 3, 3], "user": [1, 2, 2, 3, 3, 3], "item": 1,
                       "label": [0, 1, 1, 0, 0, 0], "variant": "A"})
    ev = normalise(df)
    assert len(ev.table) == 3 and ev.duplicates == 3
    imp, _ = exposures(ev)
    assert imp["label"].sum() == 1
    assert ev.info()["duplicate_event_ids"] == 3


def test_csv_and_parquet_readers(tmp_path):
    df = pd.DataFrame({"event_id": [1, 2], "user": [1, 2], "item": [3, 4], "label": [1, 0], "variant": ["a", "b"],
                       "timestamp": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]})
    df.to_csv(tmp_path / "e.csv")  # with the pandas index column, as OBD's CSVs have
    df.to_parquet(tmp_path / "e.parquet")
    for name in ("e.csv", "e.parquet"):
        got = read_events(tmp_path / name).events
        assert got.columns.tolist() == df.columns.tolist()
        ev = normalise(got)
        assert str(ev.table["timestamp"].dtype).startswith("datetime64")
    with pytest.raises(DataError, match="no such events file"):
        read_events(tmp_path / "missing.parquet")
    (tmp_path / "e.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown events format '.xlsx'"):
        read_events(tmp_path / "e.xlsx")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="bad.parquet: cannot read events"):
        read_events(tmp_path / "bad.parquet")


def test_clicks_mark_their_impressions():
    t = pd.Timestamp("2024-01-01", tz="UTC")
    rows = [
        {"event_id": "i1", "event": "impression", "user": 1, "item": 7, "variant": "A", "timestamp": t},
        {"event_id": "i2", "event": "impression", "user": 1, "item": 7, "variant": "A", "timestamp": t + pd.Timedelta("1h")},
        {"event_id": "i3", "event": "impression", "user": 2, "item": 8, "variant": "B", "timestamp": t},
        {"event_id": "i4", "event": "impression", "user": 3, "item": 9, "variant": "B", "timestamp": t},
        # by time: the latest impression of (1, 7, A) before the click is i2
        {"event_id": "c1", "event": "click", "user": 1, "item": 7, "variant": "A", "timestamp": t + pd.Timedelta("2h")},
        # by id
        {"event_id": "c2", "event": "click", "user": 2, "item": 8, "variant": "B", "timestamp": t, "impression_id": "i3"},
        # no impression of this item: counted as unmatched
        {"event_id": "c3", "event": "click", "user": 3, "item": 1, "variant": "B", "timestamp": t},
    ]
    imp, info = exposures(normalise(pd.DataFrame(rows)))
    assert dict(zip(imp["event_id"], imp["label"])) == {"i1": 0.0, "i2": 1.0, "i3": 1.0, "i4": 0.0}
    assert info == {"impressions": 4, "click_events": 3, "unmatched_clicks": 1}


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_propensity_out_of_range_is_refused(bad):
    df = pd.DataFrame({"event_id": [1, 2], "user": [1, 2], "item": [1, 2], "label": [0, 1], "propensity": [0.5, bad]})
    with pytest.raises(DataError, match=r"1 propensity value\(s\) are outside \(0, 1\].*at event 2"):
        normalise(df)
    with pytest.raises(DataError, match="not a probability in"):
        make_event("impression", 1, 2, propensity=bad)


def test_bad_events_are_refused():
    with pytest.raises(DataError, match="event type 'view' is not one of"):
        make_event("view", 1, 2)
    with pytest.raises(DataError, match="needs helpful"):
        make_event("explanation_feedback", 1, 2, explanation_method="tree-shap")
    with pytest.raises(DataError, match="needs the explanation_method"):
        make_event("explanation_feedback", 1, 2, helpful=False)
    with pytest.raises(DataError, match="needs a value"):
        make_event("rating", 1, 2)
    with pytest.raises(DataError, match="needs a user"):
        make_event("click", "", 2)
    with pytest.raises(DataError, match="finite number"):
        append_event("/dev/null", make_event("rating", 1, 2, value=float("nan")))
    with pytest.raises(DataError, match=r"unknown event type \['view'\]"):
        normalise(pd.DataFrame({"event": ["view"], "user": [1], "item": [1]}))
    with pytest.raises(DataError, match="no 'event' column and no 'label' column"):
        normalise(pd.DataFrame({"user": [1], "item": [1]}))
    with pytest.raises(DataError, match="'helpful': 1 value"):
        normalise(pd.DataFrame({"event": ["explanation_feedback"], "user": [1], "item": [1], "helpful": ["maybe"]}))
    with pytest.raises(DataError, match="'label': 1 value"):
        normalise(pd.DataFrame({"user": [1], "item": [1], "label": ["x"]}))
    with pytest.raises(DataError, match="impression label"):
        exposures(normalise(pd.DataFrame({"user": [1], "item": [1], "label": [3]})))


def test_logged_bandit_table_is_read_without_copying_labels(obd):
    ev = normalise(obd)
    assert ev.only_impressions and ev.duplicates == 0
    imp, info = exposures(ev)
    assert imp is obd  # 20,000 impressions, label = click, no copy
    assert info["impressions"] == 20_000
    assert int(np.asarray(imp["label"]).sum()) == 80
