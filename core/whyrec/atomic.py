"""Atomic file writes: temp file in the same directory, fsync, rename.

A run that dies mid-write leaves a stray ``.tmp`` file, never a truncated artifact under its
real name.
"""
from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts get normal file modes
    try:
        try:
            yield Path(tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
                raise  # not the disk refusing bytes: the caller's own error, shown as it is
            from .errors import storage_error

            written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
            raise storage_error(exc, path.parent, None, f"{path.name} (stopped at {written:,} bytes)") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def append_line(path: str | os.PathLike, line: str, what: str = "the line") -> None:
    """Append one line to an append-only log, durably and whole or not at all: a single write
    under an exclusive lock, then fsync (the folder too when the file is new), so an
    acknowledged line survives a crash and concurrent writers never interleave within a line.
    A line a dead writer left unfinished is ended first; a failed write is cut back off and
    raised as a one-line ``StorageError`` naming ``what``. (The feedback store and the server's
    event log both append through here.)"""
    import fcntl

    from .errors import storage_error

    path = Path(path)
    data = (line + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)  # read: to check the last byte
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a writer died mid-line: start on a new one
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise storage_error(exc, path.parent, len(data), what) from exc
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    if created:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def plain(v: Any) -> Any:
    """A numpy scalar as the plain Python value JSON and messages show (anything else as is)."""
    return v.item() if hasattr(v, "item") else v


def _default(o: Any) -> Any:
    # numpy scalars/arrays and paths appear in results; JSON gets plain values.
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (Path, set, frozenset)):
        return str(o) if isinstance(o, Path) else sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(o: Any) -> Any:
    """NaN and infinities as null: strict JSON (what every JSON parser reads), not Python's
    ``NaN`` tokens."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if hasattr(o, "dtype") and hasattr(o, "tolist"):  # numpy scalars and arrays
        return _finite(o.tolist())
    return o


def to_json(obj: Any, indent: int | None = 2, fallback: Any = None) -> str:
    """Strict JSON (NaN/inf -> null); ``fallback`` (e.g. ``str``) renders otherwise unknown types."""
    def default(o: Any) -> Any:
        try:
            return _finite(_default(o))
        except TypeError:
            if fallback is None:
                raise
            return fallback(o)

    return json.dumps(_finite(obj), indent=indent, default=default, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, to_json(obj) + "\n")


def write_parquet(path: str | os.PathLike, df) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def write_figure(path: str | os.PathLike, fig, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically (format from the suffix) and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
