"""``feedback-log``: a feedback log (JSON lines, Parquet or CSV) as a whyrec dataset, so that a
pipeline's feedback stage can read it: ``logs = { use = "feedback-log", path = "feedback.jsonl" }``."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
from whyrec.data import RecData
from whyrec.errors import DataError
from whyrec.schema import FeatureSchema

from .store import read_events


class FeedbackLog:
    """Logged feedback events (impressions, clicks, ratings, explanation feedback) from a file."""

    def __init__(self, path: str | Path, strict: bool = False) -> None:
        """path: a .jsonl log written by `whyrec feedback record`, or a .parquet / .csv table.
        strict: fail on a malformed JSON line instead of skipping it (skipped lines become
        warnings, which the runner records in the manifest)."""
        self.path, self.strict = path, strict

    def load(self) -> RecData:
        log = read_events(self.path, strict=self.strict)
        for p in log.problems:
            warnings.warn(f"{self.path}: {p} (line skipped, the other lines are kept)", stacklevel=2)
        ev = log.events
        for col in ("user", "item"):
            if col not in ev.columns:
                raise DataError(f"{self.path}: events have no {col!r} column (columns: {list(ev.columns)[:20]})")
        users = pd.DataFrame(index=pd.Index(pd.unique(ev["user"]), name="user"))
        items = pd.DataFrame(index=pd.Index(pd.unique(ev["item"]), name="item"))
        kinds = ev["event"].value_counts().to_dict() if "event" in ev.columns else {"impression": len(ev)}
        return RecData(name="feedback-log", interactions=ev, users=users, items=items, schema=FeatureSchema([]),
                       params={"path": str(self.path), "malformed_lines": [p.line for p in log.problems]},
                       description=f"feedback log {self.path}: {len(ev):,} events ({', '.join(f'{v} {k}' for k, v in kinds.items())})")
