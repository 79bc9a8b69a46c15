"""Command-line values outside their range are refused by the option, in one line."""
from __future__ import annotations

from core_helpers import whyrec_cli


def test_negative_seed_is_refused(tmp_path):
    res = whyrec_cli("run", "--seed", "-1", "--out", str(tmp_path))
    assert res.returncode == 2
    assert "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295" in res.stderr
    assert "Traceback" not in res.stderr and not list(tmp_path.iterdir())
