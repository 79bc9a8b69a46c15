"""``whyrec mlflow log RUN``: log an existing run directory to MLflow (after the fact)."""
from __future__ import annotations

from pathlib import Path

import click


@click.group("mlflow")
def mlflow_group() -> None:
    """MLflow tracking (whyrec-mlflow plugin)."""


@mlflow_group.command("log")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--uri", default=None, help="Tracking URI (default: the pipeline's [tracking] mlflow_uri, then MLFLOW_TRACKING_URI).")
@click.option("--experiment", default=None, help="Experiment name (default: the pipeline's, then whyrec-<pipeline>).")
def log_cmd(run_dir: Path, uri: str | None, experiment: str | None) -> None:
    """Log the run directory RUN_DIR (parameters, metrics, artifacts) as a new MLflow run."""
    from whyrec.errors import PluginError
    from whyrec.rundir import Run

    from .config import MlflowConfig, config_from_settings

    run = Run(run_dir)
    try:
        cfg = config_from_settings(run.manifest.get("settings"), pipeline=run.pipeline)
    except PluginError as exc:
        if not uri:
            raise
        # the run's table cannot be fixed after the fact; --uri still lets it be logged
        click.echo(f"warning: {exc}; ignoring the run's tracking table, logging with --uri and defaults", err=True)
        cfg = None
    if uri:  # --uri wins; messages then name --uri as the URI's source
        cfg = MlflowConfig(uri=uri) if cfg is None else cfg
        cfg.uri, cfg.source = uri, "option"
    if cfg is None:
        raise PluginError(f"{run_dir}: no tracking URI; pass --uri, set [pipelines.{run.pipeline}.tracking] mlflow_uri or MLFLOW_TRACKING_URI")
    if experiment:
        cfg.experiment = experiment
    from .logger import log_run_directory

    logger = log_run_directory(run, cfg)
    click.echo(f"logged {run_dir} to MLflow at {cfg.uri}: experiment {logger.experiment_id}, run {logger.run_id}")
