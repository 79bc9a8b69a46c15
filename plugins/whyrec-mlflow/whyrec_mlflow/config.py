"""Where and how to log: the ``[pipelines.<name>.tracking]`` table or MLFLOW_TRACKING_URI.

Read without importing MLflow, so a run without tracking configured pays nothing for the
plugin being installed.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from whyrec.errors import PluginError

# Keys of the pipeline's tracking table this plugin reads (the table may hold other plugins' keys).
KEYS = {
    "mlflow_uri": str, "mlflow_experiment": str, "mlflow_run_name": str, "mlflow_artifacts": bool,
    "mlflow_models": bool, "mlflow_tags": dict, "mlflow_timeout": (int, float), "mlflow_enabled": bool,
}


@dataclass
class MlflowConfig:
    """uri: tracking URI (``file:///abs/path``, ``http(s)://server``, ...).
    experiment: experiment name (default ``whyrec-<pipeline>``).
    run_name: MLflow run name (default: the run directory's name).
    artifacts: log stage artifacts (explanations Parquet, causal graph, report, results).
    models: also log the saved model directories.
    tags: extra tags on the MLflow run.
    timeout: seconds to wait for an HTTP tracking server before declaring it unreachable.
    """

    uri: str
    experiment: str | None = None
    run_name: str | None = None
    artifacts: bool = True
    models: bool = True
    tags: dict = field(default_factory=dict)
    timeout: float = 10.0
    source: str = "registry"  # "registry", "env" or "option" (--uri): where the URI came from (for messages)
    pipeline: str | None = None  # the pipeline whose tracking table gave the URI (for messages)

    @property
    def where(self) -> str:
        """Where the URI came from, as the user would look for it."""
        if self.source == "env":
            return "MLFLOW_TRACKING_URI"
        if self.source == "option":
            return "--uri"
        return f"[pipelines.{self.pipeline or '<name>'}.tracking] mlflow_uri"


def _unknown_key_message(key: str) -> str:
    # compare what follows "mlflow_": the shared prefix would make every key look close
    close = difflib.get_close_matches(key.removeprefix("mlflow_"), [k.removeprefix("mlflow_") for k in KEYS], n=1)
    return f"{key} (did you mean 'mlflow_{close[0]}'?)" if close else key


def config_from_settings(settings: Mapping[str, Any] | None, env: Mapping[str, str] | None = None,
                         pipeline: str | None = None) -> MlflowConfig | None:
    """The MLflow configuration of a pipeline, or None when tracking is not asked for.

    ``pipeline`` only names the table in messages (``[pipelines.<pipeline>.tracking]``).
    """
    env = os.environ if env is None else env
    table_name = f"[pipelines.{pipeline}.tracking]" if pipeline else "[tracking]"
    table = dict((settings or {}).get("tracking") or {})
    ours = {k: v for k, v in table.items() if k.startswith("mlflow_")}
    unknown = sorted(set(ours) - set(KEYS))
    if unknown:
        raise PluginError(f"{table_name} {', '.join(_unknown_key_message(k) for k in unknown)}: unknown MLflow key(s); "
                          f"the whyrec-mlflow plugin reads {', '.join(KEYS)}")
    for k, v in ours.items():
        if not isinstance(v, KEYS[k]) or (KEYS[k] is not bool and isinstance(v, bool)):
            want = KEYS[k].__name__ if isinstance(KEYS[k], type) else "number"
            raise PluginError(f"{table_name} {k} = {v!r}: expected a {want}")
    if ours.get("mlflow_enabled") is False:
        return None
    uri, source = ours.get("mlflow_uri"), "registry"
    if not uri:
        uri, source = env.get("MLFLOW_TRACKING_URI"), "env"
    if not uri:
        return None
    return MlflowConfig(
        uri=uri, experiment=ours.get("mlflow_experiment"), run_name=ours.get("mlflow_run_name"),
        artifacts=ours.get("mlflow_artifacts", True), models=ours.get("mlflow_models", True),
        tags={str(k): str(v) for k, v in (ours.get("mlflow_tags") or {}).items()},
        timeout=float(ours.get("mlflow_timeout", 10.0)), source=source, pipeline=pipeline,
    )
