"""Fixtures for the datasets plugin tests.

MovieLens and Open Bandit come from the real registry wheels: the data cache ($WHYREC_CACHE,
filled by `make data` / `whyrec datasets fetch`) or, when it is empty, a fetch at first use.
Tests that damage a cache work on a private copy under tmp_path.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from whyrec_datasets import cache


@pytest.fixture(scope="session")
def movielens():
    from whyrec_datasets.movielens import MovieLens100K

    return MovieLens100K().load()


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """The two data wheels, downloaded once with pip (as `whyrec datasets fetch` does)."""
    d = tmp_path_factory.mktemp("wheels")
    for src in cache.SOURCES.values():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(d), src.requirement],
                       check=True, capture_output=True)
    return d


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A copy of the verified MovieLens + OBD cache in tmp_path, used as $WHYREC_CACHE."""
    for key in cache.SOURCES:
        src = cache.ensure(key, [])
        shutil.copytree(src, tmp_path / "cache" / key)
    monkeypatch.setenv("WHYREC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
