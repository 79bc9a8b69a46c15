"""The e2e run as logged by whyrec-mlflow to a real MLflow file store during the run, read back
with MlflowClient: params, per-model metrics (AUC recomputed with scikit-learn), explanation,
causal, compression and feedback summaries, tags, and the artifacts (report.html, the
explanations, the causal graph, the models) byte for byte."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import e2e_pipeline as E
from test_e2e_pipeline import EXPLANATIONS, read_json

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def logged(e2e):
    import os

    from mlflow.tracking import MlflowClient

    had = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 reads its file store only with this set
    try:
        client = MlflowClient(e2e.mlflow_uri)
        exp = client.get_experiment_by_name(E.EXPERIMENT)
        assert exp is not None, f"no experiment {E.EXPERIMENT!r} at {e2e.mlflow_uri}"
        runs = client.search_runs([exp.experiment_id])
        assert len(runs) == 1, [r.info.run_name for r in runs]
        yield client, runs[0]
    finally:
        if had is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = had


def artifact_files(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for a in client.list_artifacts(run_id, path):
        out |= artifact_files(client, run_id, a.path) if a.is_dir else {a.path}
    return out


def test_run_status_tags_and_params(e2e, logged):
    _, run = logged
    m = e2e.manifest
    assert run.info.status == "FINISHED" and run.info.run_name == e2e.path.name
    tags = run.data.tags
    assert tags["whyrec.pipeline"] == E.PIPELINE and tags["whyrec.status"] == "complete"
    assert tags["whyrec.run_dir"] == str(e2e.path.resolve()) and tags["whyrec.data_hash"] == m["data_hash"]
    p = run.data.params
    assert p["pipeline"] == E.PIPELINE and p["seed"] == str(m["seed"])
    assert p["settings.top_k"] == str(E.TOP_K) and p["settings.sample_users"] == str(E.SAMPLE_USERS)
    assert p["dataset.rows"] == str(E.N_USERS * E.PER_USER) and p["dataset.name"] == "table"
    assert json.loads(p["dataset.table.context_features"]) == ["device", "hour"]
    assert p["model.lightgbm.n_estimators"] == "40" and p["model.torch-attention.epochs"] == "3"
    assert p["causal.causalnex-bn.ci"] == str(E.CAUSAL_CI)
    assert p["compressor.distill.teacher"] == "torch-attention" and p["compressor.distill.student"] == "mlp"


def test_metrics_per_model_with_auc_from_scikit_learn(e2e, logged):
    from sklearn.metrics import roc_auc_score

    _, run = logged
    metrics = run.data.metrics
    data = e2e.run.load_data()
    for model, want in e2e.manifest["metrics"].items():
        for key in ("auc", "ndcg@10", "hr@10"):
            assert metrics[f"{model}/{key.replace('@', '_at_')}"] == want[key], (model, key)
        m = e2e.run.load_model(model)
        assert metrics[f"{model}/auc"] == pytest.approx(roc_auc_score(data.test["label"], m.score(data.test)), abs=1e-9)
    assert set(e2e.manifest["metrics"]) == {"lightgbm", "torch-attention"}


def test_stage_summaries_are_metrics(e2e, logged):
    _, run = logged
    metrics = run.data.metrics
    for name in EXPLANATIONS:
        method, model = name.split("__")
        expl = read_json(e2e.path / "explanations" / name / "explanation.json")
        assert metrics[f"explain/{method}/{model}/max_additivity_error"] == expl["max_additivity_error"], name
        assert metrics[f"explain/{method}/{model}/n_pairs"] == E.SAMPLE_USERS * E.TOP_K, name
    causal = read_json(e2e.path / "causal" / "causalnex-bn" / "summary.json")
    graph = read_json(e2e.path / "causal" / "causalnex-bn" / "graph.json")
    assert metrics["causal/causalnex-bn/edges"] == causal["edges"] == len(graph["edges"])
    assert metrics["causal/causalnex-bn/predictive_quality/auc"] == causal["predictive_quality"]["auc"]
    fid = read_json(e2e.path / "compressors" / "distill" / "summary.json")
    assert metrics["compressor/distill/models/student/jaccard_at_10"] == fid["models"]["student"]["jaccard@10"]
    ab = read_json(e2e.path / "feedback" / "ab-test" / "summary.json")
    assert metrics["feedback/ab-test/per_arm/bts/clicks"] == ab["per_arm"]["bts"]["clicks"]
    ope = read_json(e2e.path / "feedback" / "uniform-from-bts" / "summary.json")
    assert metrics["feedback/uniform-from-bts/estimates/IPS/value"] == ope["estimates"]["IPS"]["value"]
    stages = {s["name"]: s for s in e2e.manifest["stages"]}
    assert metrics["seconds/compressor/distill"] == stages["compressor:distill"]["seconds"]


def test_artifacts_are_the_run_directorys_files(e2e, logged, tmp_path):
    client, run = logged
    files = artifact_files(client, run.info.run_id)
    want = {"report.html", "manifest.json", "causal/causalnex-bn/graph.json", "causal/causalnex-bn/effects.parquet",
            "causal/causalnex-bn/causal_vs_attribution.parquet", "compressors/distill/fidelity.parquet",
            "feedback/ab-test/summary.json", "feedback/uniform-from-bts/estimates.parquet",
            "models/lightgbm/model.json", "models/torch-attention/weights.safetensors",
            "models/distill__torch-attention/model.json"}
    for name in EXPLANATIONS:
        want |= {f"explanations/{name}/pairs.parquet", f"explanations/{name}/explanation.json"}
    assert want <= files, sorted(want - files)
    for rel in ("report.html", "causal/causalnex-bn/graph.json", "explanations/tree-shap__lightgbm/attributions.parquet"):
        local = client.download_artifacts(run.info.run_id, rel, str(tmp_path / "dl"))
        assert Path(local).read_bytes() == (e2e.path / rel).read_bytes(), rel
