"""Fixtures of the example plugin's own tests: a fresh plugin host, and a small RecData built
by hand, so the tests need no other plugin and no data download (copy this for your plugin).

`make test` runs this folder (see the Makefile's test target); alone:
`python -m pytest docs/examples/whyrec-example-plugin/tests`.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("WHYREC_PROGRESS", "0")  # no progress bars in test output
os.environ.setdefault("MPLBACKEND", "Agg")

import whyrec_example_plugin  # noqa: E402
from whyrec import RecData  # noqa: E402
from whyrec.plugins import PluginHost  # noqa: E402

from example_data import make_data  # noqa: E402


@pytest.fixture(scope="session")
def data() -> RecData:
    return make_data()


@pytest.fixture
def host() -> PluginHost:
    """Only this plugin: the tests do not depend on what else is installed."""
    h = PluginHost()
    h.add(whyrec_example_plugin, "example")  # a misspelt hook or hook argument raises here
    h.check()
    return h
