"""A run directory: runs/<pipeline>-<timestamp>/ with manifest.json and each stage's artifacts.

``Run`` reads one back (the CLI's explain/report commands and platforms use it); the runner
writes the manifest through ``Run.write_manifest`` after every stage, atomically.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_json
from .errors import RunDirError

if TYPE_CHECKING:
    from .data import RecData
    from .explanation import Explanation


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a live writer
    from another process that got its pid later; None where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 overall; the name before ")" may hold spaces


def writer_identity() -> dict:
    """Who writes a run: pid, host and (Linux) process start time, saved in the manifest."""
    import os
    import socket

    return {"pid": os.getpid(), "host": socket.gethostname(), "start": _proc_start(os.getpid())}


def writer_alive(writer: dict | None) -> bool | None:
    """True/False when it can be told (same host), None when it cannot (another host)."""
    import os
    import socket

    if not isinstance(writer, dict) or writer.get("host") != socket.gethostname() or not isinstance(writer.get("pid"), int):
        return None
    try:
        os.kill(writer["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    start = writer.get("start")
    return start is None or _proc_start(writer["pid"]) == start


class Run:
    """A whyrec run directory (complete, failed, still running, or interrupted: its writer
    died without finishing, e.g. killed with SIGKILL or by the out-of-memory killer)."""

    def __init__(self, path: str | Path, host: Any = None) -> None:
        self.path = Path(path)
        mf = self.path / "manifest.json"
        if not self.path.is_dir():
            what = "is a file, not a run directory" if self.path.exists() else "no such run directory"
            raise RunDirError(f"{self.path}: {what}; pass a directory under runs/ written by `whyrec run`")
        if not mf.exists():
            raise RunDirError(f"{self.path}: not a whyrec run (no manifest.json); pass a directory under runs/ written by `whyrec run`")
        try:
            self.manifest = json.loads(mf.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{mf}: manifest is not valid JSON ({exc}); the run is corrupted, rerun `whyrec run`") from exc
        if not isinstance(self.manifest, dict) or "stages" not in self.manifest or "pipeline" not in self.manifest:
            raise RunDirError(f"{mf}: not a whyrec manifest (no pipeline/stages); rerun `whyrec run`")
        self._host = host
        self._data: RecData | None = None
        self._models: dict[str, Any] = {}

    @classmethod
    def create(cls, manifest: dict, path: Path) -> "Run":
        path.mkdir(parents=True, exist_ok=False)
        write_json(path / "manifest.json", manifest)
        return cls(path)

    def write_manifest(self) -> None:
        write_json(self.path / "manifest.json", self.manifest)

    # -- reading --------------------------------------------------------------------------
    @property
    def pipeline(self) -> str:
        return self.manifest["pipeline"]

    @property
    def status(self) -> str:
        """"complete", "failed", "running", or "interrupted" (marked running, but its writer
        process on this host is gone)."""
        status = self.manifest.get("status", "unknown")
        if status == "running" and writer_alive(self.manifest.get("writer")) is False:
            return "interrupted"
        return status

    def incomplete_warning(self) -> str | None:
        """One line for commands that read a run which did not finish (None when complete)."""
        status = self.status
        if status == "complete":
            return None
        done = [s["name"] for s in self.stages() if s.get("status") == "complete"]
        what = {"interrupted": "was interrupted: its process ({pid} on {host}) ended without finishing",
                "running": "is still running ({pid} on {host})",
                "failed": "failed" + (f" ({self.manifest.get('error')})" if self.manifest.get("error") else "")}
        w = self.manifest.get("writer") or {}
        text = what.get(status, f"has status {status!r}").format(pid=f"pid {w.get('pid', '?')}", host=w.get("host", "?"))
        return (f"warning: run {self.path} {text}; only its {len(done)} finished stage(s) are used"
                f"{' (' + ', '.join(done[:6]) + (', ...' if len(done) > 6 else '') + ')' if done else ''}")

    @property
    def host(self) -> Any:
        if self._host is None:
            from .plugins import get_host

            self._host = get_host()
        return self._host

    def stages(self, kind: str | None = None) -> list[dict]:
        return [s for s in self.manifest["stages"] if kind is None or s.get("kind") == kind]

    def stage_dirs(self, kind: str) -> list[tuple[dict, Path]]:
        return [(s, self.path / s["dir"]) for s in self.stages(kind) if s.get("dir")]

    def spec(self, stage: str) -> list[dict]:
        """Resolved component entries of a stage, as written into the manifest."""
        return self.manifest.get("spec", {}).get(stage, [])

    def require_stage(self, stage: str, command: str) -> list[dict]:
        entries = self.spec(stage)
        if not entries:
            raise RunDirError(f"{self.path}: pipeline {self.pipeline!r} ran no {stage!r} stage, which `{command}` needs; add it to the pipeline and rerun")
        return entries

    def load_data(self) -> "RecData":
        """Rebuild the dataset from the manifest's parameters and check it is the same data."""
        if self._data is None:
            (entry,) = self.require_stage("dataset", "loading the run's data")
            from .privacy import for_run, protect

            priv = for_run(self.manifest, str(self.path))
            data = protect(self.host.create("datasets", entry["use"], entry["params"]).load(), priv, where=f"{self.path}: privacy")
            want = self.manifest.get("data_hash")
            if want and data.data_hash() != want:
                raise RunDirError(f"{self.path}: dataset {entry['use']!r} no longer matches the run's data (hash {data.data_hash()[:12]} != {want[:12]}); rerun the pipeline")
            self._data = data
        return self._data

    def model_names(self) -> list[str]:
        return [s["model"] for s in self.stages("model") if s.get("status") == "complete"] + \
            [s["model"] for s in self.stages("compressor") if s.get("status") == "complete" and s.get("model")]

    def load_model(self, name: str | None = None) -> Any:
        names = self.model_names()
        if not names:
            raise RunDirError(f"{self.path}: the run has no fitted model; rerun a pipeline with a model stage")
        name = name or names[0]
        if name not in names:
            raise RunDirError(f"{self.path}: no model {name!r} in this run (models: {', '.join(names)})")
        if name not in self._models:
            stage = next(s for s in self.stages() if s.get("model") == name)
            model_dir = self.path / stage["model_dir"]
            if not (model_dir / "model.json").exists():
                raise RunDirError(f"{model_dir}: saved model is missing; rerun the pipeline")
            comp = self.host.get("models", stage["model_component"])
            from .plugins import resolve_factory

            cls = resolve_factory(comp.factory)
            self._models[name] = cls.load(model_dir, self.load_data())
        return self._models[name]

    def explanations(self) -> list["Explanation"]:
        from .explanation import Explanation

        return [Explanation.load(d) for s, d in self.stage_dirs("explainer") if s.get("status") == "complete"]

    def _repr_html_(self) -> str:
        try:
            from .report import run_repr_html

            return run_repr_html(self)
        except ImportError:
            rows = "".join(f"<tr><td>{s['name']}</td><td>{s['status']}</td><td>{s.get('seconds', 0):.1f}s</td></tr>" for s in self.stages())
            return f"<div><b>whyrec run {self.pipeline}</b> ({self.status})<table>{rows}</table></div>"


def open_run(path: str | Path) -> Run:
    return Run(path)
