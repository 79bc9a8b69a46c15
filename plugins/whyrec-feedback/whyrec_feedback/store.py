"""The feedback store: the event schema, a durable append-only JSON-lines log, and readers.

An event is one thing a user did or was shown::

    event_id            unique id (duplicates are counted once)
    event               impression | click | rating | explanation_feedback
    user, item          who, and which recommended item
    position            slot the item was shown in (optional)
    variant             the experiment arm the user was in (optional)
    timestamp           when (ISO 8601 string, datetime, or a number used only for ordering)
    label               outcome of an impression (1 = clicked) when it is already known
    value               the rating of a rating event
    propensity          probability the logging policy had of showing this item here (0 < p <= 1)
    explanation_method  which explainer produced the explanation the user saw (optional)
    explanation_format  how it was shown, e.g. "text" or "bar chart" (optional)
    helpful             explanation_feedback: did the user find the explanation helpful (true/false)
    impression_id       optional: the event_id of the impression a click or feedback refers to

Logged bandit data (e.g. the Open Bandit Dataset) has no ``event`` column: every row is an
impression whose ``label`` is the click. Such tables are read as they are.
"""
from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from whyrec.atomic import append_line
from whyrec.errors import DataError

EVENT_TYPES = ("impression", "click", "rating", "explanation_feedback")
COLUMNS = (
    "event_id", "event", "user", "item", "position", "variant", "timestamp", "label", "value",
    "propensity", "explanation_method", "explanation_format", "helpful", "impression_id",
)
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".log", ".json")
_TRUE = {"1", "true", "yes", "y", "helpful", "t"}
_FALSE = {"0", "false", "no", "n", "not helpful", "not_helpful", "f"}


@dataclass
class LineProblem:
    """A line of a JSON-lines log that was skipped, with why."""

    line: int
    error: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.error}"


@dataclass
class EventLog:
    """Events read from a file, and what was wrong with the lines that were skipped."""

    events: pd.DataFrame
    source: str
    problems: list[LineProblem] = field(default_factory=list)

    def input_summary(self) -> dict:
        return {"source": self.source, "rows_read": int(len(self.events)),
                "malformed_lines": [{"line": p.line, "error": p.error} for p in self.problems]}


# -- writing ------------------------------------------------------------------------------
def make_event(event: str, user: Any, item: Any, *, position: Any = None, variant: str | None = None,
               timestamp: Any = None, label: float | None = None, value: float | None = None,
               propensity: float | None = None, explanation_method: str | None = None,
               explanation_format: str | None = None, helpful: bool | None = None,
               event_id: str | None = None, impression_id: str | None = None, **extra: Any) -> dict:
    """Validate one event and fill in its id (uuid4) and timestamp (now, UTC) when missing."""
    if event not in EVENT_TYPES:
        raise DataError(f"event type {event!r} is not one of {', '.join(EVENT_TYPES)}")
    if user is None or user == "":
        raise DataError(f"a {event} event needs a user")
    if item is None or item == "":
        raise DataError(f"a {event} event needs an item")
    if propensity is not None:
        propensity = float(propensity)
        if not (0.0 < propensity <= 1.0):
            raise DataError(f"propensity {propensity} is not a probability in (0, 1]; it is the logging policy's chance of showing this item")
    if event == "rating" and value is None:
        raise DataError("a rating event needs a value (--value)")
    if event == "explanation_feedback":
        if helpful is None:
            raise DataError("an explanation_feedback event needs helpful = true/false (--helpful / --not-helpful)")
        if not explanation_method:
            raise DataError("an explanation_feedback event needs the explanation_method the user saw (--explanation-method)")
    if label is not None and event == "impression" and float(label) not in (0.0, 1.0):
        raise DataError(f"an impression's label is 1 (clicked) or 0, not {label!r}")
    if position is not None:
        if isinstance(position, bool) or not isinstance(position, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(position)) or float(position) != int(position) or position < 0:
            raise DataError(f"position {position!r} is not a slot number: positions are whole numbers from 0 "
                            f"(0 or 1 for the first slot, as your logs count); leave it out when unknown")
        position = int(position)
    ts = _check_timestamp(timestamp) if timestamp is not None else datetime.now(timezone.utc).isoformat()
    out = {
        "event_id": str(event_id) if event_id is not None else uuid.uuid4().hex,
        "event": event, "user": user, "item": item, "position": position, "variant": variant,
        "timestamp": ts, "label": label, "value": value, "propensity": propensity,
        "explanation_method": explanation_method, "explanation_format": explanation_format,
        "helpful": helpful, "impression_id": impression_id, **extra,
    }
    for k, v in out.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise DataError(f"event field {k!r} is {v}; use a finite number or leave it out")
    return {k: v for k, v in out.items() if v is not None}


TIMESTAMP_FORMATS = "ISO 8601 (e.g. 2026-11-29T10:00:00Z or 2026-11-29) or seconds since the epoch (e.g. 1764410400)"


def _check_timestamp(ts: Any) -> Any:
    """A timestamp every later analysis can read; refused (nothing written) otherwise.

    An epoch-seconds string (from the command line) is stored as ISO 8601 UTC, like the default
    "now"; numbers passed through the Python API are kept as numbers (analysis reads both)."""
    if isinstance(ts, datetime):
        return ts
    if isinstance(ts, (int, float, np.integer, np.floating)) and not isinstance(ts, bool):
        if not math.isfinite(float(ts)):
            raise DataError(f"timestamp {ts!r} is not a time; use {TIMESTAMP_FORMATS}")
        return ts
    if isinstance(ts, str):
        text = ts.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = None
        if seconds is not None:
            if not math.isfinite(seconds):
                raise DataError(f"timestamp {ts!r} is not a time; use {TIMESTAMP_FORMATS}")
            try:
                return datetime.fromtimestamp(seconds, timezone.utc).isoformat()
            except (OverflowError, OSError, ValueError) as exc:
                raise DataError(f"timestamp {ts!r} is out of range ({exc}); use {TIMESTAMP_FORMATS}") from exc
        try:
            datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise DataError(f"timestamp {ts!r} is not a time; use {TIMESTAMP_FORMATS}") from None
        return text
    raise DataError(f"timestamp {ts!r} ({type(ts).__name__}) is not a time; use {TIMESTAMP_FORMATS}")


def append_event(path: str | os.PathLike, event: dict) -> dict:
    """Append one event as one JSON line, durably and whole or not at all
    (``whyrec.atomic.append_line``: one write under a lock, then fsync)."""
    line = json.dumps(event, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default)
    append_line(path, line, "the event")
    return event


def record_event(path: str | os.PathLike, event: str, user: Any, item: Any, **fields: Any) -> dict:
    """Validate an event and append it to the JSON-lines log at ``path``; returns the event."""
    return append_event(path, make_event(event, user, item, **fields))


def _show(v: Any) -> str:
    """repr of a value for messages: numpy scalars as plain Python values."""
    return repr(v.item() if hasattr(v, "item") else v)


def _json_default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# -- reading ------------------------------------------------------------------------------
def read_jsonl(path: str | os.PathLike, strict: bool = False) -> EventLog:
    """Read a JSON-lines log. A line that is not a JSON object, or names an unknown event
    type, is skipped and reported with its (1-based) line number; the other lines are kept.
    ``strict=True`` raises DataError at the first such line instead."""
    path = Path(path)
    records: list[dict] = []
    problems: list[LineProblem] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
                ev = obj.get("event", "impression")
                if ev not in EVENT_TYPES:
                    raise ValueError(f"event type {ev!r} is not one of {', '.join(EVENT_TYPES)}")
            except (ValueError, UnicodeDecodeError) as exc:
                msg = str(exc).splitlines()[0]
                if strict:
                    raise DataError(f"{path}: line {lineno} is not a valid event ({msg}); fix or delete that line") from exc
                problems.append(LineProblem(lineno, msg))
                continue
            records.append(obj)
    events = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["event_id", "event", "user", "item"])
    return EventLog(events, str(path), problems)


def read_events(path: str | os.PathLike, strict: bool = False) -> EventLog:
    """Read events from Parquet, CSV or a JSON-lines log (chosen by the file's suffix)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such events file; pass a .parquet, .csv or .jsonl file (`whyrec feedback record` writes .jsonl)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
            if df.columns[0].startswith("Unnamed: 0"):
                df = df.drop(columns=df.columns[0])
        elif suffix in JSONL_SUFFIXES:
            return read_jsonl(path, strict=strict)
        else:
            raise DataError(f"{path}: unknown events format {suffix!r}; use .parquet, .csv or .jsonl")
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001  (pyarrow/pandas raise many types for a bad file)
        raise DataError(f"{path}: cannot read events ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    return EventLog(df, str(path), [])


# -- normalising ----------------------------------------------------------------------------
@dataclass
class Events:
    """Validated events: the deduplicated table plus what normalising found."""

    table: pd.DataFrame
    duplicates: int = 0
    rows_in: int = 0
    notes: list[str] = field(default_factory=list)
    only_impressions: bool = False  # logged bandit data: no event column, every row an impression

    def of(self, kind: str) -> pd.DataFrame:
        if self.only_impressions:  # no 10M-row copy for the common case
            return self.table if kind == "impression" else self.table.iloc[:0]
        return self.table[(self.table["event"] == kind).to_numpy()]

    def info(self) -> dict:
        if self.only_impressions:
            counts = {"impression": len(self.table)}
        else:
            counts = self.table["event"].value_counts()
        return {"rows": self.rows_in, "duplicate_event_ids": self.duplicates,
                "events": {k: int(counts.get(k, 0)) for k in EVENT_TYPES}, "notes": list(self.notes)}


def _to_bool(s: pd.Series, col: str) -> pd.Series:
    """true/false, 1/0, yes/no (any case) -> 1.0/0.0; missing stays NaN."""
    present = s.notna()
    if pd.api.types.is_numeric_dtype(s):
        out = s.astype(float)
        bad = present & ~out.isin([0.0, 1.0])
    else:
        txt = s.astype(str).str.strip().str.lower()
        out = pd.Series(np.nan, index=s.index, dtype=float)
        out[present & txt.isin(_TRUE)] = 1.0
        out[present & txt.isin(_FALSE)] = 0.0
        bad = present & ~txt.isin(_TRUE | _FALSE)
    if bad.any():
        raise DataError(f"column {col!r}: {int(bad.sum())} value(s) are not true/false (e.g. {_show(s[bad].iloc[0])})")
    return out


def _numeric(s: pd.Series, col: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s) and s.dtype != bool:
        return s
    out = pd.to_numeric(s, errors="coerce")
    bad = out.isna() & s.notna()
    if bad.any():
        raise DataError(f"column {col!r}: {int(bad.sum())} value(s) are not numbers (e.g. {_show(s[bad].iloc[0])})")
    return out


def normalise(events: pd.DataFrame, where: str = "events") -> Events:
    """Check an events table, coerce its columns and count duplicate event ids once.

    A table without an ``event`` column is logged bandit data: every row is an impression
    and ``label`` is its click.
    """
    if not isinstance(events, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame of events, got {type(events).__name__}")
    rows_in = len(events)
    df = events
    notes: list[str] = []
    only_impressions = "event" not in df.columns
    if only_impressions:
        if "label" not in df.columns:
            raise DataError(f"{where}: no 'event' column and no 'label' column; a logged-impressions table needs label (1 = clicked). Columns: {list(df.columns)[:20]}")
    else:
        ev = df["event"]
        bad = ~ev.isin(EVENT_TYPES)
        if bad.any():
            vals = sorted(map(str, ev[bad].unique()))[:5]
            raise DataError(f"{where}: {int(bad.sum())} row(s) have an unknown event type {vals}; use one of {', '.join(EVENT_TYPES)}")
    for col in ("user", "item"):
        if col not in df.columns:
            raise DataError(f"{where}: no {col!r} column (columns: {list(df.columns)[:20]})")
    duplicates = 0
    if "event_id" in df.columns:
        dup = df["event_id"].duplicated(keep="first") & df["event_id"].notna()
        duplicates = int(dup.sum())
        if duplicates:
            df = df[~dup.to_numpy()]
            notes.append(f"{duplicates} duplicate event id(s) counted once")
    else:
        notes.append("no event_id column: duplicates cannot be detected, every row is counted")
    updates: dict[str, pd.Series] = {}
    for col in ("label", "value", "propensity", "position"):
        if col in df.columns:
            orig = df[col]
            v = _numeric(orig, col)
            if v is not orig:  # only changed columns are reassigned: no copy of a large clean log
                updates[col] = v
    if "helpful" in df.columns:
        updates["helpful"] = _to_bool(df["helpful"], "helpful")
    if "propensity" in df.columns:
        p = updates.get("propensity", df["propensity"])
        bad = p.notna() & ((p <= 0) | (p > 1))
        if bad.any():
            ex = df.loc[bad, "event_id"].iloc[0] if "event_id" in df.columns else df.index[bad][0]
            raise DataError(
                f"{where}: {int(bad.sum())} propensity value(s) are outside (0, 1] (e.g. {float(p[bad].iloc[0])!r} at event {_show(ex)}); "
                "a propensity is the logging policy's probability of the logged action: must be > 0 and <= 1"
            )
    if "timestamp" in df.columns and not pd.api.types.is_numeric_dtype(df["timestamp"]) \
            and not isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype):
        try:
            updates["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise DataError(f"{where}: column 'timestamp' has values that are not dates ({str(exc).splitlines()[0]}); use ISO 8601 strings or numbers") from exc
    if updates:
        df = df.assign(**updates)
    return Events(df, duplicates, rows_in, notes, only_impressions)


def exposures(ev: Events, where: str = "events") -> tuple[pd.DataFrame, dict]:
    """Impressions with their click outcome in ``label``.

    An impression's label comes from the row itself (logged bandit data) or from click events:
    a click with ``impression_id`` marks that impression; otherwise it marks the latest
    impression of the same (user, item, variant) at or before it. Clicks that match no
    impression are counted and left out.
    """
    imp = ev.of("impression")
    clicks = ev.of("click")
    info = {"impressions": int(len(imp)), "click_events": int(len(clicks)), "unmatched_clicks": 0}
    if "label" in imp.columns:
        label = imp["label"].fillna(0.0).to_numpy(dtype=float, copy=True)
        bad = ~np.isin(label, (0.0, 1.0))
        if bad.any():
            raise DataError(f"{where}: {int(bad.sum())} impression label(s) are not 0/1 (e.g. {_show(label[bad][0])}); label is the click")
    else:
        label = np.zeros(len(imp))
    if len(clicks):
        hit = np.zeros(len(imp), dtype=bool)
        matched = np.zeros(len(clicks), dtype=bool)
        if "impression_id" in clicks.columns and "event_id" in imp.columns:
            ref = clicks["impression_id"]
            has = ref.notna().to_numpy()
            where_in = ref[has].map(pd.Series(np.arange(len(imp)), index=imp["event_id"].to_numpy()))
            ok = where_in.notna().to_numpy()
            hit[where_in[ok].astype(int).to_numpy()] = True
            m = np.flatnonzero(has)
            matched[m[ok]] = True
        rest = clicks[~matched]
        if len(rest):
            keys = [c for c in ("user", "item", "variant") if c in imp.columns and c in rest.columns]
            if "timestamp" in imp.columns and "timestamp" in rest.columns:
                left = rest[keys + ["timestamp"]].assign(_c=np.flatnonzero(~matched)).sort_values("timestamp", kind="stable")
                right = imp[keys + ["timestamp"]].assign(_i=np.arange(len(imp))).sort_values("timestamp", kind="stable")
                left, right = _align_keys(left, right, keys)
                j = pd.merge_asof(left, right, on="timestamp", by=keys, direction="backward")
                ok = j["_i"].notna().to_numpy()
                hit[j.loc[ok, "_i"].astype(int).to_numpy()] = True
                matched[j.loc[ok, "_c"].to_numpy()] = True
            else:  # no times: a click marks the last impression of the same key
                right = imp[keys].assign(_i=np.arange(len(imp))).drop_duplicates(keys, keep="last")
                left = rest[keys].assign(_c=np.flatnonzero(~matched))
                left, right = _align_keys(left, right, keys)
                j = left.merge(right, on=keys, how="left")
                ok = j["_i"].notna().to_numpy()
                hit[j.loc[ok, "_i"].astype(int).to_numpy()] = True
                matched[j.loc[ok, "_c"].to_numpy()] = True
        label = np.where(hit, 1.0, label)
        info["unmatched_clicks"] = int((~matched).sum())
    if not len(clicks) and "label" in imp.columns and not imp["label"].isna().any():
        return imp, info  # labels already complete: no copy of a large log
    return imp.assign(label=label), info


def _align_keys(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    # merge keys must share a dtype: ids read from JSON may be ints in one table, strings in another
    for k in keys:
        if left[k].dtype != right[k].dtype:
            left = left.assign(**{k: left[k].astype(str)})
            right = right.assign(**{k: right[k].astype(str)})
    return left, right
