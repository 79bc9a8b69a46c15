"""A full disk ends in one clear line naming the folder, and never in a half-written artifact."""
from __future__ import annotations

import errno
import os

import pytest

from whyrec import atomic
from whyrec.errors import StorageError


def test_atomic_write_on_a_full_disk_leaves_nothing_and_says_where(tmp_path, monkeypatch):
    target = tmp_path / "out" / "table.json"
    target.parent.mkdir()
    target.write_text("old")

    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError) as info:
        with atomic.atomic_path(target) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"x" * 10)
            monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    monkeypatch.setattr(os, "write", real_write)
    assert str(info.value) == (f"no space left on {target.parent}; table.json (stopped at 10 bytes) was not written: "
                               "free space and run the command again")
    assert target.read_text() == "old"  # the previous artifact is untouched
    assert [p.name for p in target.parent.iterdir()] == ["table.json"]  # no temp file left behind


def test_other_os_errors_of_the_caller_are_not_disguised(tmp_path):
    with pytest.raises(NotADirectoryError):
        with atomic.atomic_path(tmp_path / "t.txt") as tmp:
            open(tmp / "nope", "rb")
