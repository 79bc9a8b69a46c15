"""Where and how to log: the ``[pipelines.<name>.tracking]`` table or MLFLOW_TRACKING_URI.

Read without importing MLflow, so a run without tracking configured pays nothing for the
plugin being installed.
"""
from __future__ import annotations

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
    source: str = "registry"  # "registry" or "env": where the URI came from (for messages)

    @property
    def where(self) -> str:
        return "MLFLOW_TRACKING_URI" if self.source == "env" else "[pipelines.<name>.tracking] mlflow_uri"


def config_from_settings(settings: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> MlflowConfig | None:
    """The MLflow configuration of a pipeline, or None when tracking is not asked for."""
    env = os.environ if env is None else env
    table = dict((settings or {}).get("tracking") or {})
    ours = {k: v for k, v in table.items() if k.startswith("mlflow_")}
    unknown = sorted(set(ours) - set(KEYS))
    if unknown:
        raise PluginError(f"[tracking] {', '.join(unknown)}: unknown MLflow key(s); the whyrec-mlflow plugin reads {', '.join(KEYS)}")
    for k, v in ours.items():
        if not isinstance(v, KEYS[k]) or (KEYS[k] is not bool and isinstance(v, bool)):
            want = KEYS[k].__name__ if isinstance(KEYS[k], type) else "number"
            raise PluginError(f"[tracking] {k} = {v!r}: expected a {want}")
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
        timeout=float(ours.get("mlflow_timeout", 10.0)), source=source,
    )
