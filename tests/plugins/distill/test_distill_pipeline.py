"""The plugin inside whyrec: registration, a pipeline run with a compressor stage, and
`whyrec compress` on the finished run (in process and as the real executable)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import whyrec_distill
from whyrec import builtins
from whyrec.errors import RegistryError, RunDirError, UnsupportedError
from whyrec.plugins import PluginHost
from whyrec.rundir import Run


REGISTRY = """
[defaults]
pipeline = "toy"

[pipelines.toy]
seed = 1
sample_users = 3
top_k = 3
eval_users = 10
dataset = { use = "distill-toy", n_users = 30 }
model = [ { use = "torch-attention", epochs = 2, embedding_dim = 8, attention_hidden = 16, hidden = [16, 8] },
          { use = "lightgbm", n_estimators = 20, num_leaves = 7, min_child_samples = 5, num_threads = 1 } ]
compressor = { use = "quantize", teacher = "torch-attention", eval_users = 8, explain_users = 2, explain_k = 2, explainer = "occlusion", repeats = 1 }
"""


def make_host() -> PluginHost:
    import distill_toyplugin
    import whyrec_lightgbm
    import whyrec_torch

    h = PluginHost()
    h.add(builtins, "whyrec.builtins")
    h.add(whyrec_distill, "whyrec-distill")
    h.add(whyrec_torch, "whyrec-torch")
    h.add(whyrec_lightgbm, "whyrec-lightgbm")
    h.add(distill_toyplugin, "distill-toy")
    h.check()
    return h


def test_registers_every_component_lazily():
    h = PluginHost()
    h.add(whyrec_distill, "whyrec-distill")
    assert h.names("compressors") == ["distill", "distill-network", "prune", "prune-structured", "quantize"]
    assert h.names("models") == ["mlp", "pruned-mlp", "pruned-torch", "quantized-mlp", "quantized-torch", "tree-student"]
    out = subprocess.run([sys.executable, "-c", "import sys, whyrec_distill, whyrec_distill.cli; "
                          "print([m for m in ('torch', 'lightgbm', 'shap', 'pandas') if m in sys.modules])"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from whyrec.runner import run

    d = tmp_path_factory.mktemp("pipeline")
    (d / "registry.toml").write_text(REGISTRY)
    return run(registry=d / "registry.toml", out=d / "runs", host=make_host())


def test_pipeline_compressor_stage(toy_run):
    stage = next(s for s in toy_run.manifest["stages"] if s["kind"] == "compressor")
    assert stage["status"] == "complete" and stage["model"] == "quantize:torch-attention"
    assert stage["model_component"] == "quantized-torch"
    assert stage["summary"]["method"] == "quantize" and "jaccard@10" in stage["summary"]["models"]["student"]
    assert (toy_run.path / "compressors" / "quantize" / "fidelity.csv").exists()
    assert (toy_run.path / "models" / "quantize__torch-attention" / "weights.int8.safetensors").exists()
    # the compressed model comes back from the run directory
    m = toy_run.load_model("quantize:torch-attention")
    # an instance of the base model's own class, found through the registry, not an import
    assert type(m).__name__ == "TorchAttentionModel" and m.component_name == "quantized-torch"
    assert {"attention", "sequence", "quantized", "torch-network"} == set(m.capabilities)
    data = toy_run.load_data()
    X = data.features(data.test[["user", "item"]])
    assert np.isfinite(m.score_features(X[m.feature_names])).all()
    assert "Compression fidelity" in (toy_run.path / "report.html").read_text()


def test_compress_command_in_process(toy_run, monkeypatch):
    from whyrec_distill.runstage import compress_run

    monkeypatch.setattr(Run, "host", property(lambda self: make_host()))
    res = compress_run(toy_run.path, method="distill", student="mlp", teacher="lightgbm",
                       params={"student_params": {"hidden": [8], "epochs": 3}, "candidates_per_user": 10, "eval_users": 8,
                               "explain_users": 2, "explainer": "occlusion", "repeats": 1})
    assert "Jaccard@10" in res["text"] and "baseline" in res["text"]
    run = Run(toy_run.path)
    stage = [s for s in run.manifest["stages"] if s["name"] == "compressor:distill"][-1]
    assert stage["status"] == "complete" and stage["model"] == "distill:lightgbm" and stage["model_component"] == "mlp"
    student = run.load_model("distill:lightgbm")
    assert type(student).__name__ == "MLPStudent"
    # a second run of the same stage needs --overwrite
    with pytest.raises(RunDirError, match="--overwrite"):
        compress_run(toy_run.path, method="distill", teacher="lightgbm")
    # the same method on another teacher gets its own name instead of overwriting that report
    fast = {"student_params": {"hidden": [8], "epochs": 2}, "baseline": False, "eval_users": 5, "explain_users": 0, "repeats": 1}
    res2 = compress_run(toy_run.path, method="distill", teacher="torch-attention", params=fast)
    assert res2["stage"]["name"] == "compressor:distill-torch-attention"
    assert res2["stage"]["model"] == "distill-torch-attention:torch-attention"
    assert json.loads((toy_run.path / "compressors" / "distill" / "summary.json").read_text())["teacher"] == "lightgbm"
    with pytest.raises(RunDirError, match="already holds the report of 'distill:lightgbm'"):
        compress_run(toy_run.path, method="distill", name="distill", teacher="torch-attention", params=fast)
    # bad inputs, each a clear error
    with pytest.raises(UnsupportedError, match="methods that apply to 'lightgbm': distill"):
        compress_run(toy_run.path, method="prune", teacher="lightgbm", params={"eval_users": 5})
    with pytest.raises(RegistryError, match="strictly between 0 and 1"):
        compress_run(toy_run.path, method="prune", teacher="torch-attention", params={"sparsity": 1.5})
    with pytest.raises(RegistryError, match="no parameter 'sparsty'"):
        compress_run(toy_run.path, method="prune", params={"sparsty": 0.5})
    assert not [s for s in Run(toy_run.path).manifest["stages"] if s["name"] == "compressor:prune"]  # refused up front
    # a failure during compression is recorded as a failed stage and leaves no half-written directory
    with pytest.raises(RegistryError, match="explainer 'no-such' for explanation agreement is not registered"):
        compress_run(toy_run.path, method="quantize", name="q2", teacher="torch-attention",
                     params={"explainer": "no-such", "eval_users": 5, "repeats": 1})
    failed = [s for s in Run(toy_run.path).manifest["stages"] if s["name"] == "compressor:q2"]
    assert failed and failed[-1]["status"] == "failed" and "no-such" in failed[-1]["error"]
    assert not (toy_run.path / "compressors" / "q2").exists() and not (toy_run.path / "models" / "q2__torch-attention").exists()


def test_compress_command(toy_run, monkeypatch, capsys):
    from importlib.metadata import entry_points

    from whyrec.cli import main

    (ep,) = [e for e in entry_points(group="whyrec") if e.name == "whyrec-distill"]
    assert ep.value == "whyrec_distill"
    monkeypatch.setattr(Run, "host", property(lambda self: make_host()))
    main(["compress", str(toy_run.path), "--method", "prune", "--teacher", "torch-attention", "-p", "sparsity=0.6",
          "-p", "eval_users=6", "-p", "explain_users=0", "-p", "repeats=1", "--no-report"])
    out = capsys.readouterr().out
    assert "prune: torch-attention -> prune:torch-attention" in out and "size ratio" in out
    manifest = json.loads((toy_run.path / "manifest.json").read_text())
    stage = [s for s in manifest["stages"] if s["name"] == "compressor:prune"][-1]
    assert stage["status"] == "complete" and stage["model_component"] == "pruned-torch"
    assert stage["summary"]["pruning"]["sparsity"] == pytest.approx(0.6, abs=0.01)
    back = Run(toy_run.path).load_model("prune:torch-attention")
    assert type(back).__name__ == "TorchAttentionModel" and "pruned" in back.capabilities


def test_compress_command_errors_are_one_line(toy_run, monkeypatch, capsys):
    from whyrec.cli import main

    monkeypatch.setattr(Run, "host", property(lambda self: make_host()))
    for args, fragment in (
        (["--method", "quantize", "--teacher", "lightgbm"], "methods that apply to 'lightgbm': distill"),
        (["--method", "prune", "-p", "sparsity=0"], "strictly between 0 and 1"),
        (["--method", "prune", "--student", "mlp"], "--student applies to --method distill only"),
        (["--teacher", "nope"], "no model 'nope' in this run"),
    ):
        with pytest.raises(SystemExit) as ex:
            main(["compress", str(toy_run.path), *args])
        err = capsys.readouterr().err.strip()
        assert ex.value.code == 2 and "Traceback" not in err
        assert len(err.splitlines()) == 1 and fragment in err, err
