"""Helpers shared by the core tests (a module name no other test directory uses)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

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


def whyrec_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `whyrec` executable with the toy plugin available."""
    e = {**os.environ, "PYTHONPATH": str(HERE), "WHYREC_PLUGINS": "toyplugin", "WHYREC_PROGRESS": "0", **(env or {})}
    exe = Path(sys.executable).parent / "whyrec"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=e, timeout=300)
