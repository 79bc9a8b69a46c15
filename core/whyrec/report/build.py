"""Build report.html from a run directory, and the run's HTML repr for Jupyter."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..atomic import write_text
from . import sections as core_sections
from .artifacts import manifest, regen_hint, run_path, stage_ok
from .html import Section, esc, fmt_value, kv_table, slug, table_html
from .page import render_page

REPORT_NAME = "report.html"


class _RunView:
    """A run directory read without ``whyrec.rundir`` (or whose manifest is unreadable)."""

    def __init__(self, path: Path, manifest_: dict | None = None, error: str | None = None) -> None:
        self.path = Path(path)
        self.manifest = manifest_ or {}
        self.manifest_error = error

    def __repr__(self) -> str:
        return f"<whyrec run {self.path}>"


def open_for_report(run_or_path: Any) -> Any:
    """A run object for the sections: the given Run, ``whyrec.rundir.Run(path)``, or a plain
    view of the directory when its manifest is missing or corrupt (the report still builds
    and says so)."""
    from ..errors import RunDirError

    if not isinstance(run_or_path, (str, Path)):
        return run_or_path
    path = Path(run_or_path)
    if not path.is_dir():
        raise RunDirError(f"{path}: not a directory; pass a run directory (runs/<pipeline>-<timestamp>/)")
    try:
        from ..rundir import Run

        return Run(path)
    except ImportError:
        pass
    except Exception:  # noqa: BLE001  (e.g. a corrupt manifest: read what we can below)
        pass
    mpath = path / "manifest.json"
    if not mpath.exists():
        return _RunView(path, error="manifest.json is missing, so the pipeline, seed and stages are unknown")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return _RunView(path, error=f"manifest.json is corrupted ({exc}), so the pipeline, seed and stages are unknown")
    return _RunView(path, data)


def collect_sections(host: Any = None) -> dict[str, tuple[Callable, int, str]]:
    """name -> (render, order, plugin): the core sections, then every plugin's (which may
    replace a core one by registering the same name)."""
    found: dict[str, tuple[Callable, int, str]] = {}

    def reg(name: str, render: Callable, *, order: int = 50) -> None:
        found[name] = (render, order, "whyrec")

    core_sections.register_report_sections(register=reg)
    if host is None:
        from ..plugins import get_host

        host = get_host()
    host.collect()  # components; a plugin whose section hook raises is recorded, not raised
    # asked one plugin at a time so a broken section hook shows as a "missing" section
    plugin_sections = _collect_guarded(host)
    for name, (render, order, plugin) in plugin_sections.items():
        if plugin == core_sections.__name__ and name in found:
            continue  # the core sections, when registered through BUILTINS too
        found[name] = (render, order, plugin)
    return found


def _collect_guarded(host: Any) -> dict[str, tuple[Callable, int, str]]:
    """Ask each plugin for its sections one at a time; a plugin whose hook raises gets a
    section saying so."""
    out: dict[str, tuple[Callable, int, str]] = {}
    for impl in reversed(host.pm.hook.register_report_sections.get_hookimpls()):
        plugin = impl.plugin_name

        def reg(name: str, render: Callable, *, order: int = 50, _p: str = plugin) -> None:
            out[name] = (render, order, _p)

        try:
            impl.function(register=reg)
        except Exception as exc:  # noqa: BLE001
            def failed(run: Any, _p: str = plugin, _e: str = f"{type(exc).__name__}: {exc}") -> Section:
                return Section.missing(f"Sections of {_p}", f"plugin {_p} failed to register its report sections "
                                       f"({_e}); fix or reinstall the plugin, then `whyrec report {run_path(run)}`")

            out[f"{plugin}-sections"] = (failed, 90, plugin)
    return out


def _render_one(name: str, render: Callable, order: int, plugin: str, run: Any) -> Section | None:
    try:
        sec = render(run)
    except Exception as exc:  # noqa: BLE001  (a failing section must not lose the report)
        where = "" if plugin == "whyrec" else f" (from plugin {plugin})"
        sec = Section.missing(
            name.replace("-", " ").capitalize(),
            f"section {name!r}{where} could not be built from the run's artifacts: {type(exc).__name__}: "
            f"{str(exc)[:300]}. To regenerate: {regen_hint(run)}, then `whyrec report {run_path(run)}`.")
    if sec is None:
        return None
    if not isinstance(sec, Section):
        sec = Section.missing(name.replace("-", " ").capitalize(),
                              f"section {name!r} from plugin {plugin} returned {type(sec).__name__}, not a Section "
                              "(whyrec.report.Section or None); fix the plugin's render function")
    if sec.order is None:
        sec.order = order
    if not sec.anchor:
        sec.anchor = slug(name)
    return sec


def render_sections(run: Any, host: Any = None) -> list[tuple[str, Section, str | None]]:
    """Every section for ``run``, in page order: (name, Section, plugin or None for core)."""
    registered = collect_sections(host)
    done: dict[str, tuple[Section, str]] = {}
    specific = {n: v for n, v in registered.items() if not getattr(v[0], "whyrec_generic", False)}
    generic = {n: v for n, v in registered.items() if n not in specific}
    for name, (render, order, plugin) in specific.items():
        sec = _render_one(name, render, order, plugin, run)
        if sec is not None:
            done[name] = (sec, plugin)
    covered = {c.strip("/"): (s.title, s.anchor) for s, _ in done.values() for c in s.covers}
    token = core_sections.COVERED.set(covered)
    try:
        for name, (render, order, plugin) in generic.items():
            sec = _render_one(name, render, order, plugin, run)
            if sec is not None:
                done[name] = (sec, plugin)
    finally:
        core_sections.COVERED.reset(token)
    seen: set[str] = set()
    out = []
    for name, (sec, plugin) in sorted(done.items(), key=lambda kv: (kv[1][0].order, kv[0])):
        anchor = sec.anchor
        n = 2
        while anchor in seen:  # two sections with one anchor: keep links unambiguous
            anchor = f"{sec.anchor}-{n}"
            n += 1
        sec.anchor = anchor
        seen.add(anchor)
        out.append((name, sec, None if plugin in ("whyrec", core_sections.__name__) else plugin))
    return out


def build_report(run: Any, host: Any = None, output: str | Path | None = None) -> Path:
    """Write ``report.html`` for a run (a ``whyrec.rundir.Run`` or its directory) and return its path.

    Built from the run directory's artifacts alone; sections whose artifacts are missing or
    corrupt say so (and how to regenerate them) instead of failing the report. The file is
    written atomically. ``host`` defaults to the process-wide plugin host.
    """
    return build_report_checked(run, host, output)[0]


def build_report_checked(run: Any, host: Any = None, output: str | Path | None = None) -> tuple[Path, list[str]]:
    """``build_report``, also returning the titles of the sections that are incomplete (their
    artifacts missing or corrupt), so a command can say so and exit non-zero."""
    t0 = time.perf_counter()
    run = open_for_report(run)
    if host is None:
        host = getattr(run, "_host", None)  # the runner's host (its plugins wrote the artifacts)
    secs = render_sections(run, host)
    m = manifest(run)
    pipeline = m.get("pipeline") or run_path(run).name
    status = str(m.get("status") or "unknown")
    missing = [s.title for _, s, _ in secs if s.status == "missing"]
    subtitle = (f"Pipeline <strong>{esc(pipeline)}</strong> · status <strong>{esc(status)}</strong> · "
                f"run <code>{esc(run_path(run).name)}</code>")
    if missing:
        subtitle += f' · <span class="wr-badge missing">{len(missing)} section(s) incomplete</span>'
    from .. import __version__

    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = (f"Built by whyrec {esc(__version__)} on {esc(built)} in {time.perf_counter() - t0:.1f} s from the files in "
              f"<code>{esc(run_path(run))}</code>; rebuild with <code>whyrec report {esc(run_path(run))}</code>. "
              "Self-contained: no network access.")
    page = render_page(f"whyrec report: {pipeline}", subtitle, secs, footer)
    target = Path(output) if output is not None else run_path(run) / REPORT_NAME
    return write_text(target, page), missing


def run_repr_html(run: Any) -> str:
    """A compact HTML summary of a run for Jupyter (``Run._repr_html_``): status, stages,
    metrics and a link to report.html. No scripts, no images."""
    m = manifest(run)
    path = run_path(run)
    info = {"pipeline": m.get("pipeline"), "status": m.get("status"), "seed": m.get("seed"),
            "data hash": (str(m["data_hash"])[:16] + "…") if m.get("data_hash") else None, "directory": str(path)}
    parts = [f"<div><strong>whyrec run</strong> {esc(path.name)}",
             kv_table({k: v for k, v in info.items() if v is not None})]
    stages = [s for s in m.get("stages") or [] if isinstance(s, dict)]
    if stages:
        rows = [{"stage": s.get("name"), "status": s.get("status"), "seconds": s.get("seconds"),
                 "error": (str(s["error"])[:120] if s.get("error") else "")} for s in stages]
        if not any(r["error"] for r in rows):
            for r in rows:
                del r["error"]
        parts.append(table_html(rows, sortable=False, caption=f"{sum(stage_ok(s) for s in stages)} of {len(stages)} stages succeeded"))
    metrics = m.get("metrics")
    if isinstance(metrics, dict) and metrics:
        df = core_sections.metrics_frame(metrics)
        parts.append(table_html(df.reset_index(), sortable=False, caption="metrics"))
    report = path / REPORT_NAME
    if report.exists():
        parts.append(f'<p>Report: <a href="{esc(report.as_uri())}" target="_blank">{esc(report)}</a></p>')
    else:
        parts.append(f"<p>No report yet: <code>whyrec report {esc(path)}</code></p>")
    parts.append("</div>")
    return "".join(parts)


__all__ = ["build_report", "run_repr_html", "render_sections", "collect_sections", "open_for_report", "fmt_value"]
