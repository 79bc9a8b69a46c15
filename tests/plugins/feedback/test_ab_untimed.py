"""One event without a timestamp must not abort the A/B analysis: counted, reported, kept."""
from __future__ import annotations

import json

import numpy as np

import whyrec
from whyrec_feedback.store import read_events


def _log(tmp_path, drop_time_of=(7,)):
    rng = np.random.default_rng(0)
    lines = []
    for k in range(400):
        ev = {"event": "impression", "user": int(rng.integers(0, 50)), "item": int(rng.integers(0, 20)),
              "variant": "AB"[k % 2], "timestamp": f"2026-11-{1 + k % 20:02d}T10:00:00Z",
              "label": int(rng.random() < 0.2 + 0.1 * (k % 2))}
        if k in drop_time_of:
            del ev["timestamp"]
        lines.append(ev)
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    return p


def test_an_event_without_timestamp_is_counted_and_the_test_goes_on(tmp_path):
    events = read_events(_log(tmp_path)).events
    rep = whyrec.component("feedback_analyzers", "ab-test", control="A").analyze(events)
    seq = rep.summary["sequential"]
    assert seq["events_without_timestamp"] == 1 and "1 event(s) have no timestamp" in seq["note"]
    assert seq["look_every"] == "10 equal slices of the events"
    # every event still counts: 200 exposures per arm
    assert rep.tables["arms"].set_index("arm")["exposures"].to_dict() == {"A": 200, "B": 200}
    full = whyrec.component("feedback_analyzers", "ab-test", control="A").analyze(read_events(_log(tmp_path, ())).events)
    assert "events_without_timestamp" not in full.summary["sequential"]
    assert full.summary["comparisons"] == rep.summary["comparisons"]  # the fixed-horizon test is unchanged
