"""The served events as a durable JSON-lines log in the feedback store's documented format.

One line per event, the schema of the whyrec-feedback store (docs/feedback.md: ``event_id``,
``event``, ``user``, ``item``, ``timestamp``, ``label``, ``value`` ...), so `whyrec feedback
analyze` reads the same file. Lines are appended through the core's ``whyrec.atomic.append_line``,
as the feedback store's are: one write under an exclusive lock, then fsync.

An interaction maps to an event as: a ``rating`` column -> a ``rating`` event with ``value``;
else ``label`` 1 -> ``click``, ``label`` 0 -> ``impression`` with its label. Every other column
of the interaction (context, timestamp) is kept under its own name, so a replay rebuilds it.
"""
from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from whyrec.data import ITEM, LABEL, RATING, TIMESTAMP, USER
from whyrec.atomic import append_line

SOURCE = "whyrec-serve"


def to_event(row: dict) -> dict:
    """The feedback-store event of one checked interaction."""
    ev: dict[str, Any] = {"event_id": uuid.uuid4().hex}
    if row.get(RATING) is not None:
        ev["event"], ev["value"] = "rating", float(row[RATING])
    else:
        ev["event"] = "click" if float(row.get(LABEL, 1.0)) > 0 else "impression"
    ev[USER], ev[ITEM] = _plain(row[USER]), _plain(row[ITEM])
    if row.get(TIMESTAMP) is None:
        ev[TIMESTAMP] = datetime.now(timezone.utc).timestamp()
    for k, v in row.items():
        if k not in (USER, ITEM, RATING) and v is not None:
            ev[k] = _plain(v)
    ev["source"] = SOURCE
    return ev


def to_interaction(ev: dict, columns: list[str]) -> dict:
    """The interaction an event of this log stands for (the inverse of ``to_event``)."""
    row = {k: v for k, v in ev.items() if k in columns}
    if ev.get("event") == "rating" and RATING in columns and "value" in ev:
        row[RATING] = ev["value"]
    if LABEL in columns and LABEL not in row:
        row[LABEL] = 1.0 if ev.get("event") in ("click", "rating") else 0.0
    return row


def append(path: Path, event: dict) -> None:
    """Append one event, durably and whole or not at all (``whyrec.atomic.append_line``)."""
    append_line(path, json.dumps(event, ensure_ascii=False, allow_nan=False, separators=(",", ":")), "the event")


def read_from(path: Path, offset: int) -> tuple[list[dict], int, int]:
    """Events of complete lines from byte ``offset`` on: (events, new offset, malformed lines).
    A last line without its newline (a write in progress) is left for the next read."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except FileNotFoundError:
        return [], offset, 0
    end = chunk.rfind(b"\n") + 1
    events, bad = [], 0
    for raw in chunk[:end].splitlines():
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            bad += 1
            continue
        if isinstance(obj, dict):
            events.append(obj)
        else:
            bad += 1
    return events, offset + end, bad


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
