"""Log one whyrec run directory to one MLflow run.

Everything is read from the run directory (manifest.json and the stage artifacts), never from
live objects, so the same code logs a run while it happens (the lifecycle hooks) and after the
fact (``whyrec mlflow log RUN``, e.g. once an unreachable tracking server is back).

MLflow layout:
  params   pipeline, seed, settings.*, <stage>.<component>.<param> (the resolved registry
           entries), dataset.* (rows, users, items, ...)
  metrics  <model>/<metric> (AUC, NDCG@10 -> ndcg_at_10, ...; train info under <model>/train/),
           explain/<explainer>/<model>/max_additivity_error and .../quality/<metric>,
           causal|compressor|feedback/<name>/<summary value>, seconds/<stage>
  tags     whyrec.pipeline, whyrec.run_dir, whyrec.status, whyrec.data_hash, whyrec.version,
           whyrec.failed_stage / whyrec.error when a stage fails
  artifacts the run directory's layout: explanations/<explainer>__<model>/*.parquet,
           causal/<name>/ (the causal graph), models/<name>/, report.html, manifest.json
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from whyrec.errors import PluginError

from .config import MlflowConfig

MAX_KEY, MAX_VALUE, MAX_TAG = 250, 6000, 5000
BATCH = 100  # MLflow accepts at most 100 params / 1000 metrics per log_batch call


def clean_key(key: str) -> str:
    """MLflow keys allow letters, digits, _ - . / and space: "ndcg@10" -> "ndcg_at_10"."""
    key = re.sub(r"[^/\w.\- ]", "_", key.replace("@", "_at_"))
    return key[:MAX_KEY]


def numeric_leaves(d: Any, prefix: str = "") -> dict[str, float]:
    """Numbers in a nested dict, keyed by their path joined with "/" (booleans and text skipped)."""
    out: dict[str, float] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(numeric_leaves(v, f"{prefix}/{k}" if prefix else str(k)))
    elif isinstance(d, (int, float)) and not isinstance(d, bool) and d == d and abs(d) != float("inf"):
        out[prefix] = float(d)
    return out


def scalar_leaves(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(scalar_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, (str, int, float, bool)) or d is None:
        out[prefix] = str(d)
    elif isinstance(d, list) and all(isinstance(x, (str, int, float, bool)) for x in d):
        out[prefix] = json.dumps(d)
    return out


@contextmanager
def file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is set. A user who wrote
    a file: URI asked for it, so allow it while this plugin talks to that store, and only then."""
    if not (uri.startswith("file:") or "://" not in uri) or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


class RunLogger:
    """One MLflow run for one whyrec run directory."""

    def __init__(self, cfg: MlflowConfig, run_dir: str | os.PathLike, pipeline: str) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.pipeline = pipeline
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None

    # -- errors ---------------------------------------------------------------------------
    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Any failure talking to MLflow becomes one PluginError that says what survives."""
        try:
            with file_store_allowed(self.cfg.uri):
                yield
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001  (MLflow raises many types: HTTP, OS, its own)
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise PluginError(
                f"MLflow tracking at {self.cfg.uri!r} ({self.cfg.where}) failed to {action}: {type(exc).__name__}: {msg[:300]}; "
                f"the run directory {self.run_dir} is intact; log it later with `whyrec mlflow log {self.run_dir}`"
            ) from exc

    def preflight(self) -> None:
        """Fail fast (seconds, not minutes of retries) when an HTTP tracking server is unreachable."""
        if not self.cfg.uri.startswith(("http://", "https://")):
            return
        import requests

        try:
            requests.get(self.cfg.uri.rstrip("/") + "/health", timeout=self.cfg.timeout)
        except requests.RequestException as exc:  # any HTTP answer (even 404) means reachable
            raise PluginError(
                f"MLflow tracking server {self.cfg.uri!r} ({self.cfg.where}) is unreachable "
                f"({type(exc).__name__}); nothing of this run is logged to MLflow; the run directory "
                f"{self.run_dir} is intact; log it later with `whyrec mlflow log {self.run_dir}`"
            ) from None

    # -- the MLflow run -------------------------------------------------------------------
    def start(self, manifest: dict) -> str:
        """Create the MLflow run and log the run's parameters; returns the MLflow run id."""
        self.preflight()
        with self.guard("create the MLflow run"):
            import whyrec

            self.client = MlflowClient(tracking_uri=self.cfg.uri)
            name = self.cfg.experiment or f"whyrec-{self.pipeline}"
            exp = self.client.get_experiment_by_name(name)
            self.experiment_id = exp.experiment_id if exp is not None else self.client.create_experiment(name)
            tags = {"whyrec.pipeline": self.pipeline, "whyrec.run_dir": str(self.run_dir.resolve()),
                    "whyrec.status": manifest.get("status", "running"), "whyrec.version": whyrec.__version__,
                    "whyrec.registry": str(manifest.get("registry", "")), **self.cfg.tags}
            parent = _active_fluent_run()
            if parent is not None:  # a platform's own run is active: nest under it
                tags["mlflow.parentRunId"] = parent.info.run_id
                self.experiment_id = parent.info.experiment_id
            run = self.client.create_run(self.experiment_id, run_name=self.cfg.run_name or self.run_dir.name, tags=tags)
            self.run_id = run.info.run_id
            self.log_params(self.params_of(manifest))
        return self.run_id

    def params_of(self, manifest: dict) -> dict[str, str]:
        params = {"pipeline": manifest.get("pipeline", self.pipeline), "seed": str(manifest.get("seed"))}
        settings = {k: v for k, v in (manifest.get("settings") or {}).items() if k != "tracking"}
        params.update({f"settings.{k}": v for k, v in scalar_leaves(settings).items()})
        for stage, entries in (manifest.get("spec") or {}).items():
            for e in entries:
                base = f"{stage}.{e.get('name') or e.get('use')}"
                params[f"{base}.use"] = str(e.get("use"))
                params.update({f"{base}.{k}": v for k, v in scalar_leaves(e.get("params") or {}).items()})
                for extra in ("teacher", "models"):
                    if extra in e:
                        params[f"{base}.{extra}"] = json.dumps(e[extra]) if not isinstance(e[extra], str) else e[extra]
        return params

    def log_params(self, params: dict[str, str]) -> None:
        items = [Param(clean_key(k), str(v)[:MAX_VALUE]) for k, v in params.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + BATCH])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        items = [Metric(clean_key(k), float(v), now, 0) for k, v in metrics.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, metrics=items[i:i + BATCH])

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, str(value)[:MAX_TAG])

    # -- stages ---------------------------------------------------------------------------
    def log_stage(self, rec: dict, manifest: dict) -> None:
        """Log one finished stage record of the manifest: its metrics and its artifacts."""
        with self.guard(f"log stage {rec['name']!r}"):
            kind, name = rec.get("kind"), rec["name"]
            metrics: dict[str, float] = {}
            if rec.get("seconds") is not None:
                metrics[f"seconds/{name.replace(':', '/').replace('@', '/')}"] = rec["seconds"]
            if kind == "dataset":
                summary = rec.get("summary") or {}
                keep = ("name", "rows", "users", "items", "positive_rate", "train_rows", "test_rows")
                self.log_params({f"dataset.{k}": summary[k] for k in keep if k in summary})
                if summary.get("data_hash"):
                    self.set_tag("whyrec.data_hash", summary["data_hash"])
            elif kind == "model" or (kind == "compressor" and rec.get("model")):
                model = rec.get("model")
                metrics.update({f"{model}/{k}": v for k, v in numeric_leaves((manifest.get("metrics") or {}).get(model, {})).items()})
                if kind == "compressor":
                    metrics.update({f"compressor/{name.split(':', 1)[-1]}/{k}": v for k, v in numeric_leaves(rec.get("summary") or {}).items()})
            elif kind == "explainer":
                explainer = name.split(":", 1)[-1].split("@", 1)[0]
                model = rec.get("explained_model") or name.rsplit("@", 1)[-1]
                prefix = f"explain/{explainer}/{model}"
                d = self.run_dir / (rec.get("dir") or "")
                if (d / "explanation.json").exists():
                    meta = json.loads((d / "explanation.json").read_text())
                    metrics.update({f"{prefix}/{k}": meta[k] for k in ("n_pairs", "max_additivity_error")
                                    if isinstance(meta.get(k), (int, float)) and not isinstance(meta.get(k), bool)})
                if (d / "quality" / "summary.json").exists():
                    q = json.loads((d / "quality" / "summary.json").read_text())
                    metrics.update({f"{prefix}/quality/{k}": v for k, v in numeric_leaves(q).items()})
            elif kind in ("causal", "feedback"):
                metrics.update({f"{kind}/{name.split(':', 1)[-1]}/{k}": v for k, v in numeric_leaves(rec.get("summary") or {}).items()})
            if metrics:
                self.log_metrics(metrics)
            if self.cfg.artifacts:
                for rel in rec.get("artifacts") or []:
                    if not self.cfg.models and Path(rel).parts[:1] == ("models",):
                        continue
                    path = self.run_dir / rel
                    if path.is_file():
                        parent = str(Path(rel).parent)
                        self.client.log_artifact(self.run_id, str(path), None if parent == "." else parent)

    def log_error(self, stage: str, error: str) -> None:
        with self.guard(f"record the failure of stage {stage!r}"):
            self.set_tag("whyrec.failed_stage", stage)
            self.set_tag("whyrec.error", error)

    def finish(self, manifest: dict) -> None:
        """Log the manifest, the final status and warnings, and close the MLflow run."""
        with self.guard("finish the MLflow run"):
            status = manifest.get("status", "unknown")
            self.set_tag("whyrec.status", status)
            warnings = manifest.get("warnings") or []
            if warnings:
                self.set_tag("whyrec.warnings", "\n".join(warnings))
            mf = self.run_dir / "manifest.json"
            if self.cfg.artifacts and mf.exists():
                self.client.log_artifact(self.run_id, str(mf))
            self.client.set_terminated(self.run_id, "FINISHED" if status == "complete" else "FAILED")

    def abandon(self) -> None:
        """Best effort after a failure: mark the MLflow run failed if MLflow still answers."""
        if self.client is None or self.run_id is None:
            return
        try:
            with file_store_allowed(self.cfg.uri):
                self.client.set_terminated(self.run_id, "FAILED")
        except Exception:  # noqa: BLE001  (the failure that brought us here was already reported)
            pass


def _active_fluent_run() -> Any:
    mlflow = sys.modules.get("mlflow")
    return mlflow.active_run() if mlflow is not None else None


def log_run_directory(run: Any, cfg: MlflowConfig) -> RunLogger:
    """Log a finished (or failed) run directory after the fact; returns the logger (run id)."""
    manifest = run.manifest
    logger = RunLogger(cfg, run.path, manifest["pipeline"])
    logger.start(manifest)
    for rec in manifest.get("stages", []):
        if rec.get("status") == "complete":
            logger.log_stage(rec, manifest)
        elif rec.get("status") == "failed":
            logger.log_error(rec["name"], rec.get("error") or "failed")
    logger.finish(manifest)
    return logger
