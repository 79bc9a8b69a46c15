"""Reading a run directory for the report: stage directories, JSON, tables, figures.

Every reader raises ArtifactError with the file's run-relative path, so a section can say
exactly what is missing. Works with ``whyrec.rundir.Run`` or any object with ``path`` and
``manifest`` (tests, or a run whose manifest could not be read).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .html import ArtifactError

# Run-directory folder -> the manifest stage kinds that write into it.
GROUP_KINDS = {
    "models": ("model", "models"),
    "explanations": ("explainer", "explainers", "explanation", "explanations"),
    "causal": ("causal",),
    "compressors": ("compressor", "compressors"),
    "feedback": ("feedback",),
}
OK_STATUSES = ("ok", "complete", "completed", "done", "success", "succeeded")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")


def run_path(run: Any) -> Path:
    return Path(getattr(run, "path"))


def manifest(run: Any) -> dict:
    m = getattr(run, "manifest", None)
    return m if isinstance(m, dict) else {}


def pipeline_name(run: Any) -> str:
    return str(manifest(run).get("pipeline") or "<pipeline>")


def regen_hint(run: Any) -> str:
    """How to regenerate the run's artifacts."""
    return f"rerun `whyrec run {pipeline_name(run)}` to regenerate it"


def rel(run: Any, path: Path) -> str:
    try:
        return Path(path).relative_to(run_path(run)).as_posix()
    except ValueError:
        return str(path)


def stage_status(stage: dict | None) -> str:
    return str((stage or {}).get("status") or "unknown")


def stage_ok(stage: dict | None) -> bool:
    return stage is None or stage_status(stage).lower() in OK_STATUSES


# -- stage directories -----------------------------------------------------------------
@dataclass
class StageDir:
    """One stage output directory of a group (e.g. causal/causalnex-bn)."""

    name: str
    path: Path
    stage: dict | None = None
    expected: list[Path] = field(default_factory=list)  # artifacts the manifest lists in it

    @property
    def exists(self) -> bool:
        return self.path.is_dir()

    def missing_files(self) -> list[Path]:
        return [p for p in self.expected if not p.exists()]


def _artifact_paths(run: Any, stage: dict) -> list[Path]:
    out = []
    for a in stage.get("artifacts") or []:
        if isinstance(a, dict):
            a = a.get("path")
        if not a:
            continue
        p = Path(a)
        out.append(p if p.is_absolute() else run_path(run) / p)
    return out


def _stage_kind(stage: dict) -> str:
    kind = str(stage.get("kind") or "")
    if not kind and ":" in str(stage.get("name", "")):
        kind = str(stage["name"]).split(":", 1)[0]
    return kind.lower()


def stage_dirs(run: Any, group: str) -> list[StageDir]:
    """Every output directory of ``group`` ("models", "explanations", "causal", ...).

    Directories on disk, plus those the manifest's stages list artifacts in (which may be
    gone), plus ``run.stage_dirs(kind)`` when the run object has it. Sorted by name.
    """
    base = run_path(run) / group
    found: dict[Path, StageDir] = {}
    if base.is_dir():
        for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found[d] = StageDir(d.name, d)
    kinds = GROUP_KINDS.get(group, (group,))
    stages = [s for s in manifest(run).get("stages") or [] if isinstance(s, dict)]
    for stage in stages:
        if _stage_kind(stage) not in kinds:
            continue
        if stage.get("dir"):  # the runner records each stage's directory
            d = run_path(run) / str(stage["dir"])
            if d.parent == base:
                entry = found.setdefault(d, StageDir(d.name, d))
                entry.stage = entry.stage or stage
        for p in _artifact_paths(run, stage):
            try:
                sub = p.relative_to(base)
            except ValueError:
                continue
            if not sub.parts:
                continue
            d = base / sub.parts[0]
            entry = found.setdefault(d, StageDir(d.name, d))
            entry.stage = entry.stage or stage
            if len(sub.parts) > 1:
                entry.expected.append(p)
    getter = getattr(run, "stage_dirs", None)
    if callable(getter):
        for kind in kinds[:1]:
            try:
                pairs = list(getter(kind) or [])
            except Exception:  # noqa: BLE001  (the report reads what it can)
                pairs = []
            for stage, d in pairs:
                d = Path(d)
                if d.parent != base:
                    continue
                entry = found.setdefault(d, StageDir(d.name, d))
                entry.stage = entry.stage or (stage if isinstance(stage, dict) else None)
    return [found[k] for k in sorted(found, key=lambda p: p.name)]


def stages_without_dir(run: Any, group: str, dirs: list[StageDir]) -> list[dict]:
    """Successful manifest stages of ``group`` for which no directory was found."""
    kinds = GROUP_KINDS.get(group, (group,))
    matched = {id(d.stage) for d in dirs if d.stage is not None}
    out = []
    for stage in manifest(run).get("stages") or []:
        if not isinstance(stage, dict) or _stage_kind(stage) not in kinds or id(stage) in matched:
            continue
        short = str(stage.get("name", "")).split(":", 1)[-1]
        if any(d.name == short or d.name.startswith(short + "__") for d in dirs):
            continue
        out.append(stage)
    return out


def failed_stages(run: Any) -> list[dict]:
    return [s for s in manifest(run).get("stages") or [] if isinstance(s, dict) and not stage_ok(s)]


# -- files -----------------------------------------------------------------------------
def read_json(run: Any, path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{rel(run, path)} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{rel(run, path)} is corrupted ({type(exc).__name__}: {exc})") from exc


def read_table(run: Any, path: Path):
    """A Parquet or CSV table; ArtifactError when missing or unreadable."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{rel(run, path)} is missing")
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001  (pyarrow/pandas raise many types on bad files)
        raise ArtifactError(f"{rel(run, path)} is corrupted ({type(exc).__name__}: {str(exc)[:160]})") from exc


def files(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))


# Elements that load what their src/href names (an <a href> is a link, not a load).
_LOADS = re.compile(r"""<(?:script|img|iframe|link|source|video|audio|embed|object)\b[^>]*?\b(?:src|href|data)\s*=\s*["']?\s*((?:https?:)?//[^"'>\s]+)""", re.I)
_CSS_URL = re.compile(r"""(?:url\(|@import)\s*["']?\s*((?:https?:)?//[^"')\s]+)""", re.I)


def remote_references(html_text: str) -> list[str]:
    """URLs an HTML document would load from the network (scripts, styles, images)."""
    return sorted(set(_LOADS.findall(html_text)) | set(_CSS_URL.findall(html_text)))


@lru_cache(maxsize=64)
def _load_explanation(path: str, mtime_ns: int):
    from ..explanation import Explanation

    return Explanation.load(path)


def load_explanation(run: Any, directory: Path):
    """Explanation.load with a small cache (sections share it); ArtifactError on failure."""
    directory = Path(directory)
    side = directory / "explanation.json"
    if not side.exists():
        raise ArtifactError(f"{rel(run, side)} is missing")
    try:
        return _load_explanation(str(directory), side.stat().st_mtime_ns)
    except ArtifactError:
        raise
    except Exception as exc:  # noqa: BLE001
        msg = str(exc).replace(str(directory), rel(run, directory))
        raise ArtifactError(f"{rel(run, directory)}: cannot read the explanation ({msg[:300]})") from exc


def stage_dirs_section(run: Any, group: str, title: str, ours: Any, render_dir: Any) -> Any:
    """One Section over the complete stage directories of ``group`` that ``ours(sd)`` accepts
    (a plugin's own section, which then "covers" them in place of the generic view).

    ``render_dir(sd, name)`` returns the HTML of one directory; one that raises is shown as a
    notice saying how to regenerate it, and the others still render. None when nothing is ours.
    """
    from .html import Section, esc, notice

    mine = [sd for sd in stage_dirs(run, group) if stage_ok(sd.stage) and ours(sd)]
    if not mine:
        return None
    bodies, missing, covers = [], [], []
    for sd in mine:
        covers.append(rel(run, sd.path))
        name = (sd.stage or {}).get("name") or f"{group}:{sd.name}"
        try:
            bodies.append(render_dir(sd, name))
        except Exception as exc:  # noqa: BLE001  (a broken artifact must not lose the others)
            msg = f"{rel(run, sd.path)}: {exc}; {regen_hint(run)}"
            missing.append(msg)
            bodies.append(f"<h3>{esc(name)}</h3>" + notice(msg))
    body = "".join(bodies)
    if missing:
        return Section.missing(title, "; ".join(missing), body=body, covers=tuple(covers))
    return Section(title=title, body=body, covers=tuple(covers))


def parquet_or_none(path: Path):
    """A stage's optional table: None when absent, ArtifactError when unreadable."""
    if not path.exists():
        return None
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001
        raise ArtifactError(f"{path}: unreadable table ({type(exc).__name__})") from exc
