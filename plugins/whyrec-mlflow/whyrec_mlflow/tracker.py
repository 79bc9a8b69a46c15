"""The lifecycle hooks' state: one RunLogger per whyrec run directory being written.

A failure talking to MLflow, or a bad ``[tracking]`` table, raises once (the runner records it as a warning in the manifest and
the run goes on); MLflow logging then stops for that run, so a dead server costs one timeout,
not one per stage. The run directory never depends on MLflow.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from whyrec.errors import PluginError

from .config import config_from_settings

# run directory -> RunLogger, or the message of the failure that stopped logging for that run
_runs: dict[str, Any] = {}


def _key(path: Any) -> str:
    return str(Path(path).resolve())


def _config(run_dir: Path, settings: dict | None, pipeline: str | None) -> Any:
    """The run's MlflowConfig (None: not tracking); a bad tracking table is reported once.

    A configuration error is remembered like an unreachable server: the first hook raises it,
    the run's later hooks stay quiet (one warning in the manifest, not one per stage).
    """
    try:
        return config_from_settings(settings, pipeline=pipeline)
    except PluginError as exc:
        msg = f"{exc}; nothing of this run is logged to MLflow"
        _runs[_key(run_dir)] = msg
        raise PluginError(msg) from None


def _start(run_dir: Path, manifest: dict) -> Any:
    cfg = _config(run_dir, manifest.get("settings"), manifest.get("pipeline"))
    if cfg is None:
        return None
    from .logger import RunLogger

    logger = RunLogger(cfg, run_dir, manifest.get("pipeline", "pipeline"))
    _runs[_key(run_dir)] = logger
    try:
        logger.start(manifest)
    except PluginError as exc:
        _runs[_key(run_dir)] = str(exc)
        raise
    return logger


def _manifest(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "manifest.json").read_text())


def _logger(run_dir: Path, settings: dict | None = None) -> Any:
    """The run's logger (started now if before_run did not run); None when not tracking."""
    state = _runs.get(_key(run_dir))
    if isinstance(state, str):
        return None  # already failed and reported
    if state is not None:
        return state
    if (settings or {}).get("tracking") is None and not os.environ.get("MLFLOW_TRACKING_URI"):
        return None  # not tracking: no manifest to read, nothing to fail
    manifest = _manifest(run_dir)
    if _config(Path(run_dir), settings, manifest.get("pipeline")) is None:
        return None
    return _start(Path(run_dir), manifest)


def _do(run_dir: Path, logger: Any, fn: Any) -> None:
    try:
        fn()
    except PluginError as exc:
        logger.abandon()
        _runs[_key(run_dir)] = str(exc)
        raise PluginError(f"{exc} (MLflow logging is off for the rest of this run)") from exc


def before_run(run: Any) -> None:
    _runs.pop(_key(run.path), None)
    _start(run.path, run.manifest)


def after_stage(stage: str, context: Any, artifacts: list) -> None:
    logger = _logger(context.run_dir, context.settings)
    if logger is None:
        return
    manifest = _manifest(context.run_dir)
    recs = [s for s in manifest.get("stages", []) if s.get("name") == stage]
    if recs:
        _do(context.run_dir, logger, lambda: logger.log_stage(recs[-1], manifest))


def on_stage_error(stage: str, context: Any, error: BaseException) -> None:
    logger = _logger(context.run_dir, context.settings)
    if logger is not None:
        _do(context.run_dir, logger, lambda: logger.log_error(stage, f"{type(error).__name__}: {error}"))


def after_run(run: Any) -> None:
    state = _runs.pop(_key(run.path), None)
    if state is None or isinstance(state, str):
        return
    state.finish(run.manifest)


def mlflow_run_id(run_dir: Any) -> str | None:
    """The MLflow run id logging ``run_dir`` right now (None when not tracking)."""
    state = _runs.get(_key(run_dir))
    return None if state is None or isinstance(state, str) else state.run_id
