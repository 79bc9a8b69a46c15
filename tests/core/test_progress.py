"""Progress into a log file: whole lines, no carriage-return bars mixed with [whyrec] lines."""
from __future__ import annotations

import os
import subprocess
import sys

from whyrec.progress import progress


def test_progress_into_a_pipe_prints_one_line_per_bar(capsys, monkeypatch):
    monkeypatch.delenv("WHYREC_PROGRESS", raising=False)  # the automatic choice: stderr is not a terminal here
    assert sum(1 for _ in progress(range(5), desc="top-10 for m")) == 5
    bar = progress(total=3, desc="lightgbm", unit="trees")
    bar.update(3)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[whyrec]   top-10 for m: 5 it in ") and "lightgbm: 3 trees in" in lines[1]


def test_a_run_logged_to_a_file_has_whole_lines(tmp_path):
    from core_helpers import HERE, TOY

    (tmp_path / "registry.toml").write_text(TOY + "report = { enabled = false }\n")
    env = {k: v for k, v in os.environ.items() if k != "WHYREC_PROGRESS"}
    env.update(PYTHONPATH=str(HERE), WHYREC_PLUGINS="toyplugin")
    exe = os.path.join(os.path.dirname(sys.executable), "whyrec")
    res = subprocess.run([exe, "run", "toy", "--registry", str(tmp_path / "registry.toml"), "--out", str(tmp_path / "runs")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr
    assert all(line.startswith("[whyrec]") for line in res.stderr.splitlines() if line.strip()), res.stderr
