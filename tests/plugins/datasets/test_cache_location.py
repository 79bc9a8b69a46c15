"""One cache location for `make` and for `whyrec` run by hand."""
from __future__ import annotations

from pathlib import Path

from whyrec_datasets.cache import cache_dir


def test_cache_location_order(monkeypatch, tmp_path):
    monkeypatch.delenv("WHYREC_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "whyrec"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "whyrec"
    monkeypatch.setenv("WHYREC_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"


def test_the_makefile_sets_no_cache_of_its_own():
    makefile = (Path(__file__).parents[3] / "Makefile").read_text()
    assert "WHYREC_CACHE ?=" not in makefile and "WHYREC_CACHE :=" not in makefile and "WHYREC_CACHE =" not in makefile
