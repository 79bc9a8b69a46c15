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


@pytest.fixture
def host() -> PluginHost:
    """A fresh host with the built-ins, the sample third-party plugin and the toy dataset."""
    h = PluginHost()
    h.add(builtins, "whyrec.builtins")
    h.add(whyrec_example_plugin, "example")
    h.add(toyplugin, "toyplugin")
    h.check()
    return h


TOY = """
[defaults]
pipeline = "toy"

[pipelines.toy]
seed = 3
sample_users = 4
top_k = 5
dataset = { use = "toy", n_users = 20 }
model = { use = "popularity" }
explainers = [ { use = "popularity-reason" } ]
"""


@pytest.fixture
def toy_registry(tmp_path: Path) -> Path:
    p = tmp_path / "registry.toml"
    p.write_text(TOY)
    return p


def whyrec_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `whyrec` executable with the toy plugin available."""
    e = {**os.environ, "PYTHONPATH": str(HERE), "WHYREC_PLUGINS": "toyplugin", "WHYREC_PROGRESS": "0", **(env or {})}
    exe = Path(sys.executable).parent / "whyrec"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=e, timeout=300)
