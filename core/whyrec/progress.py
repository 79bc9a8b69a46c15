"""Progress bars and progress lines for long stages: one mechanism that knows where it writes.

On a terminal, tqdm bars on stderr, and ``log`` lines printed through tqdm so that a line never
lands in the middle of a bar. Into a file or a pipe (CI logs, `2> run.log`), no carriage-return
bars: each bar becomes one line when it finishes ("top-10 for lightgbm: 10 it in 3.2s"), so log
lines stay whole. ``WHYREC_PROGRESS=0`` silences bars (lines still print); ``WHYREC_PROGRESS=1``
forces bars even when stderr is not a terminal.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator


def _bars() -> bool:
    setting = os.environ.get("WHYREC_PROGRESS")
    if setting == "0":
        return False
    if setting == "1":
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def log(message: str) -> None:
    """One ``[whyrec]`` line on stderr, never interleaved with a progress bar."""
    line = f"[whyrec] {message}"
    if _bars():
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


class _Lines:
    """A progress stand-in for logs: iterates, counts, and prints one line at the end."""

    def __init__(self, iterable: Iterable[Any] | None, desc: str, total: int | None, unit: str) -> None:
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.n, self.t0, self.closed = 0, time.perf_counter(), False

    def __iter__(self) -> Iterator[Any]:
        try:
            for x in self.iterable if self.iterable is not None else ():
                yield x
                self.n += 1
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *a: Any, **k: Any) -> None:
        pass

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or self.desc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.desc and os.environ.get("WHYREC_PROGRESS") != "0":
            print(f"[whyrec]   {self.desc}: {self.n:,} {self.unit} in {time.perf_counter() - self.t0:.1f}s",
                  file=sys.stderr, flush=True)

    def __enter__(self) -> "_Lines":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(iterable: Iterable[Any] | None = None, desc: str = "", total: int | None = None, unit: str = "it", **kw: Any):
    if not _bars():
        return _Lines(iterable, desc, total, unit)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True, **kw)
