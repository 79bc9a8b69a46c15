from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import toyplugin  # noqa: E402
import whyrec_example_plugin  # noqa: E402

from whyrec import builtins  # noqa: E402
from whyrec.plugins import PluginHost  # noqa: E402
from core_helpers import TOY  # noqa: E402


@pytest.fixture
def host() -> PluginHost:
    """A fresh host with the built-ins, the sample third-party plugin and the toy dataset."""
    h = PluginHost()
    h.add(builtins, "whyrec.builtins")
    h.add(whyrec_example_plugin, "example")
    h.add(toyplugin, "toyplugin")
    h.check()
    return h


@pytest.fixture
def toy_registry(tmp_path: Path) -> Path:
    p = tmp_path / "registry.toml"
    p.write_text(TOY)
    return p
