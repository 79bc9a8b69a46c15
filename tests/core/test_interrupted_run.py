"""A run whose process is killed (SIGKILL, the OOM killer) is reported as interrupted, never
as "running" forever, and commands that read it say so."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from whyrec.rundir import Run, writer_alive, writer_identity

from core_helpers import HERE, TOY

SLEEPER = '''
import time
import whyrec

@whyrec.hookimpl
def before_stage(stage, context):
    if stage.startswith("explainer"):
        time.sleep(120)  # the test kills the run here, after the model stage finished
'''


def test_a_killed_run_is_interrupted_and_explain_warns(tmp_path):
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    (tmp_path / "registry.toml").write_text(TOY + "report = { enabled = false }\n")
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{tmp_path}", "WHYREC_PLUGINS": "toyplugin,sleeper",
           "WHYREC_PROGRESS": "0"}
    exe = str(Path(sys.executable).parent / "whyrec")
    proc = subprocess.Popen([exe, "run", "toy", "--registry", str(tmp_path / "registry.toml"), "--out", str(tmp_path / "runs")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        run_dir = None
        while time.time() < deadline:
            dirs = list((tmp_path / "runs").glob("toy-*")) if (tmp_path / "runs").exists() else []
            if dirs and (dirs[0] / "manifest.json").exists():
                m = json.loads((dirs[0] / "manifest.json").read_text())
                if any(s.get("kind") == "model" and s.get("status") == "complete" for s in m["stages"]):
                    run_dir = dirs[0]
                    break
            time.sleep(0.2)
        assert run_dir is not None, "the run never finished its model stage"
        assert Run(run_dir).status == "running"  # its writer is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    run = Run(run_dir)
    assert run.manifest["status"] == "running" and run.status == "interrupted"
    assert f"was interrupted: its process (pid {proc.pid} on " in run.incomplete_warning()
    res = subprocess.run([exe, "explain", str(run_dir), "--user", "2", "-k", "3"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "was interrupted" in res.stderr and "finished stage(s) are used" in res.stderr
    assert "Top 3 for user 2" in res.stdout


def test_writer_identity_tells_a_live_process_from_a_reused_pid():
    me = writer_identity()
    assert writer_alive(me) is True
    assert writer_alive({**me, "start": "0"}) is False  # same pid, another process start: not our writer
    assert writer_alive({**me, "host": "another-host"}) is None  # cannot be told from here
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert writer_alive({"pid": dead.pid, "host": me["host"], "start": None}) is False
