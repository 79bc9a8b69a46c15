"""`feedback record` on a full disk: the event is written whole or not at all."""
from __future__ import annotations

import errno
import os

import pytest

from whyrec.errors import StorageError
from whyrec_feedback import store


def test_a_full_disk_leaves_no_fragment_and_names_the_bytes(tmp_path, monkeypatch):
    log = tmp_path / "feedback.jsonl"
    store.append_event(log, {"event": "click", "user": 1, "item": 2})
    before = log.read_bytes()
    real_write = os.write
    calls = {"n": 0}

    def half_then_full(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:2]))  # '{"' reaches the file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    event = {"event": "click", "user": 3, "item": 4}
    with pytest.raises(StorageError) as info:
        store.append_event(log, event)
    monkeypatch.setattr(os, "write", real_write)
    size = len((__import__("json").dumps(event, separators=(",", ":")) + "\n").encode())
    assert str(info.value) == (f"no space left on {tmp_path} ({size:,} bytes needed); the event was not written: "
                               "free space and run the command again")
    assert log.read_bytes() == before  # no '{"' fragment
    store.append_event(log, event)  # space again: the next append is a whole line
    assert log.read_bytes().count(b"\n") == 2
