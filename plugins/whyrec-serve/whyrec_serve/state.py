"""One served run: its warm ``ExplainSession``, the live history and the event log.

A ``ServeState`` is built for a run directory (refused unless the run completed), warmed once
(data, models, the explainers that support each model) and then answers every request under
one lock: explainers keep caches, and on a CPU-bound service one request at a time per worker
is also the fastest order. A hot swap builds and warms a new state beside the old one and then
replaces it; requests already running finish on the old one.

Events: every accepted interaction is appended to the JSON-lines log first (durable, fsync)
and then folded into the warm data. Before each request the log is read from where this
process stopped, so events written by another worker (``--workers N``) or before a restart
are applied too, each once (by ``event_id``).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from whyrec.errors import DataError, RunDirError
from whyrec.rundir import Run

from . import eventlog

EVENTS_FILE = Path("plugins") / "whyrec-serve" / "events.jsonl"
RANKINGS = 10_000  # (model, user) rankings kept by default: ~25 KB each for 1,600 candidates


def open_complete_run(run_dir: str | Path) -> Run:
    """The run, refused (RunDirError, one line) unless it completed: a server must not answer
    from a run whose stages did not all finish."""
    run = Run(run_dir)
    if run.status != "complete":
        raise RunDirError(f"{run.path}: the run is {run.status!r}, not complete; `whyrec serve` answers only from a complete "
                          "run: rerun `whyrec run`, or serve another run")
    if not run.model_names():
        raise RunDirError(f"{run.path}: the run has no fitted model to serve; rerun a pipeline with a model stage")
    return run


class ServeState:
    """A warm run behind the API (see the module docstring)."""

    def __init__(self, run_dir: str | Path, events: str | Path | None = None, cache_size: int = 0,
                 rankings: int = RANKINGS, precompute: bool = False) -> None:
        from whyrec.session import ExplainSession

        self.run = open_complete_run(run_dir)
        self.events_path = Path(events) if events else self.run.path / EVENTS_FILE
        self.session = ExplainSession(self.run)
        # ranked candidates kept per (model, user) while the user's history is unchanged; with
        # ``precompute`` every user's are ranked at start-up, in batches (no request scores candidates)
        self.session.ranking_cache = int(rankings)
        self.precompute = bool(precompute)
        self.ranked_at_start = 0
        self.prefilled = 0  # answers computed at start-up (--warm-request)
        self.lock = threading.RLock()
        self.ready = threading.Event()
        self.error: str | None = None
        self.methods: dict[str, list[str]] = {}
        self.offset = 0
        self.applied: set[str] = set()
        self.skipped = 0  # log lines that name a user or item this run does not know, or are malformed
        self.loaded_at: float | None = None
        self.warm_seconds: float | None = None
        # answers by request, while the user's history is unchanged (an event moves its version)
        self.cache_size = int(cache_size)
        self.answers: OrderedDict[tuple, str] = OrderedDict()
        self.hits = self.misses = 0

    # -- start-up ---------------------------------------------------------------------------
    def warm(self, prefill: Any = None) -> None:
        """Load everything once, replay the event log, rank every user's candidates when asked
        (``precompute``) and call ``prefill()``; then sets ``ready`` (or ``error``)."""
        t = time.perf_counter()
        try:
            with self.lock:
                from whyrec.session import LiveHistory

                self.methods = self.session.warm()
                self.session.live = LiveHistory(self.session.data)
                for name in self.methods:  # each model's answer path once, so the first request is warm too
                    self._prime(name)
                self.sync()
                if self.precompute:
                    self.ranked_at_start = sum(self.session.rank_all(name) for name in self.methods)
            if prefill is not None:  # outside the lock: it takes it per answer
                prefill()
            import gc

            gc.collect()
            gc.freeze()  # what start-up built is kept for good: full collections no longer walk it (pauses)
        except Exception as exc:  # noqa: BLE001  (reported by /readyz, and by the command that waits for it)
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.warm_seconds = time.perf_counter() - t
            self.loaded_at = time.time()
            self.ready.set()

    def _prime(self, model: str) -> None:
        data = self.session.data
        try:
            self.session.explain(data.user_ids[0], 1, model=model)
        except Exception:  # noqa: BLE001  (priming is an optimisation; the request path reports errors)
            pass

    # -- events -----------------------------------------------------------------------------
    def sync(self) -> int:
        """Apply events other processes appended since the last read; returns how many."""
        try:
            size = self.events_path.stat().st_size
        except FileNotFoundError:
            return 0
        if size <= self.offset:
            return 0
        events, self.offset, bad = eventlog.read_from(self.events_path, self.offset)
        self.skipped += bad
        live = self.session.live
        n = 0
        for ev in events:
            eid = ev.get("event_id")
            if eid in self.applied:
                continue
            try:
                row = live.check(eventlog.to_interaction(ev, live.columns()))
            except DataError:
                self.skipped += 1  # another run's user or item (a swapped run), or a hand-edited line
                continue
            live.add(row)
            if eid:
                self.applied.add(eid)
            n += 1
        return n

    def record(self, body: Any) -> dict:
        """Check one interaction, append it to the log, fold it in; DataError: nothing written."""
        if not isinstance(body, dict):
            raise DataError(f"the event body must be a JSON object of the dataset's columns, got {type(body).__name__}")
        live = self.session.live
        row = live.check(body)
        ev = eventlog.to_event(row)
        eventlog.append(self.events_path, ev)
        self.sync()  # reads its own line back (and any other worker's before it), applies each once
        if ev["event_id"] not in self.applied:  # pragma: no cover - the line was just written
            live.add(row)
            self.applied.add(ev["event_id"])
        return ev

    def _answer_key(self, key: tuple, user: Any) -> tuple:
        return (user, self.session.live.versions.get(user, 0) if self.session.live else 0) + key

    def kept(self, key: tuple, user: Any) -> str | None:
        """The kept answer of ``answer(key, user, ...)``, or None (counted as a hit only when found)."""
        if self.cache_size <= 0:
            return None
        key = self._answer_key(key, user)
        hit = self.answers.get(key)
        if hit is not None:
            self.answers.move_to_end(key)
            self.hits += 1
        return hit

    def answer(self, key: tuple, user: Any, build: Any) -> str:
        """``build()`` (a JSON string), or the same answer kept from an earlier identical request
        while the user's history has not changed since (``cache_size`` answers, least recently used out)."""
        if self.cache_size <= 0:
            return build()
        hit = self.kept(key, user)
        if hit is not None:
            return hit
        self.misses += 1
        out = self.answers[self._answer_key(key, user)] = build()
        if len(self.answers) > self.cache_size:
            self.answers.popitem(last=False)
        return out

    def info(self) -> dict:
        live = self.session.live
        return {"run": str(self.run.path), "pipeline": self.run.pipeline, "models": self.methods,
                "events_log": str(self.events_path), "events_applied": len(self.applied), "events_skipped": self.skipped,
                "sequence_updates": bool(live and live.updates_sequence), "warm_seconds": self.warm_seconds,
                "answer_cache": {"size": self.cache_size, "hits": self.hits, "misses": self.misses},
                "rankings": {"size": self.session.ranking_cache, "kept": len(self.session._rankings),
                             "ranked_at_start": self.ranked_at_start},
                "prefilled_answers": self.prefilled}
