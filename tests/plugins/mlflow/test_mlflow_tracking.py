"""whyrec-mlflow: a real pipeline run logged to a real local MLflow file store, read back
through MlflowClient."""
from __future__ import annotations

import json
import types
import re
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

import whyrec_example_plugin
import whyrec_mlflow
from whyrec import builtins
from whyrec.errors import DataError, PluginError
from whyrec.plugins import PluginHost
from whyrec.runner import run as run_pipeline
from whyrec_mlflow.cli import mlflow_group
from whyrec_mlflow.config import config_from_settings
from whyrec_mlflow.logger import clean_key, numeric_leaves

sys.path.insert(0, str(Path(__file__).parent))
import mlflow_toy  # noqa: E402

PIPELINE = """
[pipelines.mini]
seed = 1
sample_users = 3
top_k = 3
dataset = {{ use = "mini"{dataset_extra} }}
model = {{ use = "popularity" }}
explainers = [ {{ use = "popularity-checked" }} ]
causal = {{ use = "mini-causal" }}
{tracking}
{report}
"""


@pytest.fixture(autouse=True)
def _no_ambient_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the test's own client reads the file store
    yield


@pytest.fixture
def host() -> PluginHost:
    h = PluginHost()
    h.add(builtins, "whyrec.builtins")
    h.add(whyrec_example_plugin, "example")
    h.add(mlflow_toy, "mlflow-toy")
    h.add(whyrec_mlflow, "whyrec-mlflow")
    h.check()
    return h


def registry(tmp_path: Path, tracking: str = "", dataset_extra: str = "", report: bool = False) -> Path:
    """The mini pipeline; report.html (seconds of plotting) only where a test checks it."""
    p = tmp_path / "registry.toml"
    p.write_text(PIPELINE.format(tracking=tracking, dataset_extra=dataset_extra,
                                 report="" if report else "[pipelines.mini.report]\nenabled = false"))
    return p


def store(tmp_path: Path) -> str:
    return (tmp_path / "mlruns").as_uri()


def tracking(uri: str, **extra: str) -> str:
    lines = [f'mlflow_uri = "{uri}"', 'mlflow_experiment = "whyrec-tests"', *(f"{k} = {v}" for k, v in extra.items())]
    return "[pipelines.mini.tracking]\n" + "\n".join(lines)


def only_run(uri: str, experiment: str = "whyrec-tests"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} at {uri}"
    (run,) = client.search_runs([exp.experiment_id])
    return client, run


def artifact_files(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for a in client.list_artifacts(run_id, path):
        out |= artifact_files(client, run_id, a.path) if a.is_dir else {a.path}
    return out


def test_a_pipeline_run_is_logged_and_reads_back(host, tmp_path):
    uri = store(tmp_path)
    result = run_pipeline("mini", registry=registry(tmp_path, tracking(uri), report=True), out=tmp_path / "runs", host=host)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["warnings"] == []
    assert (result.path / "report.html").exists()
    client, run = only_run(uri)

    assert run.info.status == "FINISHED" and run.info.run_name == result.path.name
    tags = run.data.tags
    assert tags["whyrec.pipeline"] == "mini" and tags["whyrec.status"] == "complete"
    assert tags["whyrec.run_dir"] == str(result.path.resolve())
    assert tags["whyrec.data_hash"] == manifest["data_hash"]

    params = run.data.params
    assert params["pipeline"] == "mini" and params["seed"] == "1" and params["settings.top_k"] == "3"
    assert params["model.popularity.use"] == "popularity" and params["model.popularity.user_weight"] == "0.1"
    assert params["dataset.users"] == "25" and params["dataset.rows"] == str(manifest["dataset"]["rows"])

    # model metrics: exactly the manifest's, under <model>/ with MLflow-safe names (ndcg@10 -> ndcg_at_10)
    want = {clean_key(f"popularity/{k}"): v for k, v in numeric_leaves(manifest["metrics"]["popularity"]).items()}
    assert {"popularity/auc", "popularity/ndcg_at_10", "popularity/hr_at_10"} <= set(want)
    assert {k: run.data.metrics[k] for k in want} == want

    # explanation quality and additivity
    edir = result.path / "explanations" / "popularity-checked__popularity"
    quality = json.loads((edir / "quality" / "summary.json").read_text())
    prefix = "explain/popularity-checked/popularity"
    assert run.data.metrics[f"{prefix}/quality/positive_item_share"] == quality["positive_item_share"]
    assert run.data.metrics[f"{prefix}/quality/pairs"] == 9
    assert run.data.metrics[f"{prefix}/n_pairs"] == 9
    assert run.data.metrics[f"{prefix}/max_additivity_error"] == json.loads((edir / "explanation.json").read_text())["max_additivity_error"]

    # causal summary as metrics, the graph as an artifact
    graph = json.loads((result.path / "causal" / "mini-causal" / "graph.json").read_text())
    assert run.data.metrics["causal/mini-causal/quality_weight"] == graph["edges"][0]["weight"]
    assert run.data.metrics["causal/mini-causal/n_edges"] == 2

    files = artifact_files(client, run.info.run_id)
    assert {"manifest.json", "causal/mini-causal/graph.json",
            "explanations/popularity-checked__popularity/pairs.parquet",
            "explanations/popularity-checked__popularity/attributions.parquet",
            "explanations/popularity-checked__popularity/explanation.json",
            "explanations/popularity-checked__popularity/quality/summary.json",
            "models/popularity/model.json", "report.html"} <= files
    # artifacts are the run directory's bytes
    local = client.download_artifacts(run.info.run_id, "explanations/popularity-checked__popularity/pairs.parquet", str(tmp_path / "dl"))
    assert Path(local).read_bytes() == (edir / "pairs.parquet").read_bytes()
    local = client.download_artifacts(run.info.run_id, "causal/mini-causal/graph.json", str(tmp_path / "dl"))
    assert json.loads(Path(local).read_text()) == graph


def test_models_and_artifacts_can_be_left_out(host, tmp_path):
    uri = store(tmp_path)
    run_pipeline("mini", registry=registry(tmp_path, tracking(uri, mlflow_models="false")), out=tmp_path / "runs", host=host)
    client, run = only_run(uri)
    files = artifact_files(client, run.info.run_id)
    assert "causal/mini-causal/graph.json" in files and not any(f.startswith("models/") for f in files)
    assert "popularity/auc" in run.data.metrics


def test_tracking_uri_from_the_environment(host, tmp_path, monkeypatch):
    uri = store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = run_pipeline("mini", registry=registry(tmp_path), out=tmp_path / "runs", host=host)
    _, run = only_run(uri, experiment="whyrec-mini")
    assert run.data.tags["whyrec.run_dir"] == str(result.path.resolve())


def test_nothing_is_logged_without_a_tracking_uri(host, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_pipeline("mini", registry=registry(tmp_path), out=tmp_path / "runs", host=host)
    assert result.manifest["warnings"] == []
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


def test_plugin_load_and_untracked_runs_do_not_import_mlflow():
    code = ("import sys, whyrec_mlflow; from whyrec_mlflow.config import config_from_settings; "
            "assert config_from_settings({'seed': 1}, env={}) is None; print('mlflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_unreachable_server_fails_the_hook_clearly_and_the_run_survives(host, tmp_path):
    result = run_pipeline("mini", registry=registry(tmp_path, tracking("http://127.0.0.1:9", mlflow_timeout=2)),
                          out=tmp_path / "runs", host=host)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    (warning,) = manifest["warnings"]  # one warning, not one per stage
    assert warning.startswith("before_run hook of plugin 'whyrec-mlflow' failed: PluginError: MLflow tracking server 'http://127.0.0.1:9' "
                              "([pipelines.mini.tracking] mlflow_uri) is unreachable (ConnectionError)")
    assert f"the run directory {result.path} is intact; log it later with `whyrec mlflow log {result.path}`" in warning
    assert (result.path / "models" / "popularity" / "model.json").exists()
    assert (result.path / "explanations" / "popularity-checked__popularity" / "pairs.parquet").exists()

    # ... and it can be logged later, once a tracking store is there
    uri = store(tmp_path)
    res = CliRunner().invoke(mlflow_group, ["log", str(result.path), "--uri", uri], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    client, run = only_run(uri)
    assert res.output.strip().endswith(f"run {run.info.run_id}")
    assert run.info.status == "FINISHED" and run.data.tags["whyrec.status"] == "complete"
    want = {clean_key(f"popularity/{k}"): v for k, v in numeric_leaves(manifest["metrics"]["popularity"]).items()}
    assert {k: run.data.metrics[k] for k in want} == want
    assert "causal/mini-causal/graph.json" in artifact_files(client, run.info.run_id)


def test_unusable_file_store_fails_the_hook_clearly_and_the_run_survives(host, tmp_path):
    (tmp_path / "blocker").write_text("a file where the store's directory should be")
    uri = (tmp_path / "blocker" / "mlruns").as_uri()
    result = run_pipeline("mini", registry=registry(tmp_path, tracking(uri)), out=tmp_path / "runs", host=host)
    assert result.manifest["status"] == "complete"
    (warning,) = result.manifest["warnings"]
    assert warning.startswith(f"before_run hook of plugin 'whyrec-mlflow' failed: PluginError: MLflow tracking at '{uri}' ([pipelines.mini.tracking] mlflow_uri) "
                              "failed to create the MLflow run:")
    assert "is intact; log it later with `whyrec mlflow log" in warning


def test_a_failing_stage_is_tagged_and_the_mlflow_run_marked_failed(host, tmp_path):
    uri = store(tmp_path)
    with pytest.raises(DataError, match="asked to fail"):
        run_pipeline("mini", registry=registry(tmp_path, tracking(uri), dataset_extra=", fail = true"), out=tmp_path / "runs", host=host)
    _, run = only_run(uri)
    assert run.info.status == "FAILED"
    assert run.data.tags["whyrec.failed_stage"] == "dataset"
    assert run.data.tags["whyrec.error"] == "DataError: mini dataset: asked to fail (fail = true)"
    assert run.data.tags["whyrec.status"] == "failed"


def test_a_platforms_active_run_becomes_the_parent(host, tmp_path):
    uri = store(tmp_path)
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.set_experiment("platform")
        with mlflow.start_run(run_name="nightly") as parent:
            run_pipeline("mini", registry=registry(tmp_path, tracking(uri)), out=tmp_path / "runs", host=host)
    finally:
        mlflow.set_tracking_uri(None)
    client = MlflowClient(uri)
    children = client.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 1 and children[0].data.tags["whyrec.pipeline"] == "mini"


@pytest.mark.parametrize("table, message", [
    ({"mlflow_uri": 5}, r"\[tracking\] mlflow_uri = 5: expected a str"),
    ({"mlflow_uri": "file:///x", "mlflow_experimnt": "a"}, r"\[tracking\] mlflow_experimnt \(did you mean 'mlflow_experiment'\?\): unknown MLflow key"),
    ({"mlflow_uri": "file:///x", "mlflow_models": "no"}, r"mlflow_models = 'no': expected a bool"),
])
def test_bad_tracking_settings_name_the_key(table, message):
    with pytest.raises(PluginError, match=message):
        config_from_settings({"tracking": table}, env={})


def test_tracking_settings():
    assert config_from_settings({"tracking": {"other_tool": 1}}, env={}) is None
    assert config_from_settings({}, env={"MLFLOW_TRACKING_URI": "http://h:5000"}).source == "env"
    assert config_from_settings({"tracking": {"mlflow_enabled": False}}, env={"MLFLOW_TRACKING_URI": "http://h"}) is None
    cfg = config_from_settings({"tracking": {"mlflow_uri": "file:///m", "mlflow_tags": {"team": "recs"}, "mlflow_timeout": 3}}, env={})
    assert (cfg.uri, cfg.tags, cfg.timeout, cfg.artifacts, cfg.models) == ("file:///m", {"team": "recs"}, 3.0, True, True)
    assert clean_key("ndcg@10") == "ndcg_at_10" and clean_key("a:b(c)") == "a_b_c_"
    assert numeric_leaves({"a": 1, "b": {"c": 2.5, "d": "x", "e": True, "f": float("nan")}}) == {"a": 1.0, "b/c": 2.5}


def test_log_command_without_a_uri_says_how_to_give_one(host, tmp_path):
    result = run_pipeline("mini", registry=registry(tmp_path), out=tmp_path / "runs", host=host)
    res = CliRunner().invoke(mlflow_group, ["log", str(result.path)])
    assert isinstance(res.exception, PluginError)
    assert "no tracking URI; pass --uri, set [pipelines.mini.tracking] mlflow_uri or MLFLOW_TRACKING_URI" in str(res.exception)


@pytest.mark.parametrize("extra, message", [
    ({"mlflow_timout": "3"}, "[pipelines.mini.tracking] mlflow_timout (did you mean 'mlflow_timeout'?): unknown MLflow key(s)"),
    ({"mlflow_models": '"yes"'}, "[pipelines.mini.tracking] mlflow_models = 'yes': expected a bool"),
])
def test_a_bad_tracking_table_is_refused_before_the_run_starts(host, tmp_path, extra, message):
    """The plugin's validate_pipeline hook checks its keys with the registry: a typo stops
    `whyrec validate` / `whyrec run` before any training, with "did you mean"."""
    from whyrec.errors import RegistryError
    from whyrec.registry import load_registry

    uri = store(tmp_path)
    reg = registry(tmp_path, tracking(uri, **extra))
    with pytest.raises(RegistryError, match=re.escape(message)):
        load_registry(reg).validate(host)
    with pytest.raises(RegistryError, match=re.escape(message)):
        run_pipeline("mini", registry=reg, out=tmp_path / "runs", host=host)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlruns").exists()


def test_a_run_that_carries_a_bad_table_warns_once_and_can_still_be_logged(host, tmp_path):
    """A run whose manifest holds a bad table (made before the check above, or edited): the
    hooks warn once, and `whyrec mlflow log --uri` logs it with defaults."""
    from whyrec_mlflow import tracker

    uri = store(tmp_path)
    result = run_pipeline("mini", registry=registry(tmp_path), out=tmp_path / "runs", host=host)
    manifest = json.loads((result.path / "manifest.json").read_text())
    manifest["settings"]["tracking"] = {"mlflow_uri": uri, "mlflow_timout": 3}
    (result.path / "manifest.json").write_text(json.dumps(manifest))
    run = types.SimpleNamespace(path=result.path, manifest=manifest)
    with pytest.raises(PluginError, match=re.escape("mlflow_timout (did you mean 'mlflow_timeout'?)")):
        tracker.before_run(run)
    tracker.after_stage("dataset", types.SimpleNamespace(run_dir=result.path, pipeline="mini", settings=manifest["settings"]), [])  # quiet: reported once
    tracker.after_run(run)
    assert not (tmp_path / "mlruns").exists()
    res = CliRunner().invoke(mlflow_group, ["log", str(result.path), "--uri", uri, "--experiment", "whyrec-tests"])
    assert res.exit_code == 0, res.output
    assert "ignoring the run's tracking table" in res.output
    _, logged = only_run(uri)
    assert logged.info.status == "FINISHED"


def test_unknown_key_suggests_the_closest():
    with pytest.raises(PluginError, match=r"mlflow_timout \(did you mean 'mlflow_timeout'\?\)"):
        config_from_settings({"tracking": {"mlflow_uri": "file:///x", "mlflow_timout": 3}}, env={})
    with pytest.raises(PluginError) as err:
        config_from_settings({"tracking": {"mlflow_zzz": 3}}, env={})
    assert "did you mean" not in str(err.value)


@pytest.mark.parametrize("uri, source, env", [
    ("http://127.0.0.1:9", "--uri", {}),
    ("ftp://x", "--uri", {}),
])
def test_log_command_names_the_real_source_of_the_uri(host, tmp_path, monkeypatch, uri, source, env):
    result = run_pipeline("mini", registry=registry(tmp_path), out=tmp_path / "runs", host=host)
    res = CliRunner().invoke(mlflow_group, ["log", str(result.path), "--uri", uri, "--experiment", "x"])
    assert isinstance(res.exception, PluginError), res.output
    msg = str(res.exception)
    assert f"{uri!r} ({source})" in msg and "<name>" not in msg and "[pipelines." not in msg


def test_log_command_names_the_environment_or_the_pipeline_table(host, tmp_path, monkeypatch):
    result = run_pipeline("mini", registry=registry(tmp_path), out=tmp_path / "runs", host=host)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "ftp://x")
    res = CliRunner().invoke(mlflow_group, ["log", str(result.path)])
    assert "'ftp://x' (MLFLOW_TRACKING_URI)" in str(res.exception)
    cfg = config_from_settings({"tracking": {"mlflow_uri": "ftp://x"}}, env={}, pipeline="mini")
    assert cfg.where == "[pipelines.mini.tracking] mlflow_uri"
