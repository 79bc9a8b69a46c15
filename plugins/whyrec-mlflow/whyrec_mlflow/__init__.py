"""whyrec-mlflow: log every whyrec pipeline run to MLflow.

Implements the lifecycle hooks: ``before_run`` creates an MLflow run and logs the pipeline's
parameters; ``after_stage`` logs the stage's metrics (model metrics, explanation quality,
causal/compression/feedback summaries) and its artifacts (explanations Parquet, causal graph,
models, report); ``on_stage_error`` tags the failure; ``after_run`` logs the manifest and closes
the MLflow run. Also adds ``whyrec mlflow log RUN`` to log a run directory after the fact.

Tracking is on when the pipeline has ``[pipelines.<name>.tracking] mlflow_uri = "..."`` or the
environment sets MLFLOW_TRACKING_URI; otherwise the hooks do nothing (and MLflow is not imported).
"""
from __future__ import annotations

import whyrec

__version__ = "0.1.0"


@whyrec.hookimpl
def validate_pipeline(pipeline, settings):
    # the tracking table is checked with the registry: a typo is caught by `whyrec validate`,
    # not discovered after training (config reads no MLflow and reaches no server)
    from whyrec.errors import PluginError

    from .config import config_from_settings

    try:
        config_from_settings(settings, env={}, pipeline=pipeline)
    except PluginError as exc:
        return [str(exc)]
    return None


@whyrec.hookimpl
def before_run(run):
    from . import tracker

    tracker.before_run(run)


@whyrec.hookimpl
def after_stage(stage, context, artifacts):
    from . import tracker

    tracker.after_stage(stage, context, artifacts)


@whyrec.hookimpl
def on_stage_error(stage, context, error):
    from . import tracker

    tracker.on_stage_error(stage, context, error)


@whyrec.hookimpl
def after_run(run):
    from . import tracker

    tracker.after_run(run)


@whyrec.hookimpl
def register_commands(cli):
    from .cli import mlflow_group

    cli.add_command(mlflow_group)
