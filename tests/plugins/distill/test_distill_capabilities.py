"""The compressors reach models only through declared capabilities: a third party's torch
model (the example plugin's ``feature-net``, which offers "torch-network") is pruned and
quantised like torch-attention and still explained; whyrec-distill imports no other plugin;
and `compress` shows its progress in logs."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_toy import FAST
from torch import nn

import whyrec_distill
import whyrec_example_plugin
from whyrec import builtins
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.plugins import PluginHost
from whyrec_distill.common import model_family
from whyrec_distill.network import PrunedNetwork, QuantizedNetwork
from whyrec_distill.prune import Pruner
from whyrec_distill.quantize import Quantizer
from whyrec_example_plugin.feature_net import FeatureNetModel

QUIET = {**FAST, "explain_users": 0}


@pytest.fixture(scope="module")
def host() -> PluginHost:
    h = PluginHost()
    h.add(builtins, "whyrec.builtins")
    h.add(whyrec_distill, "whyrec-distill")
    h.add(whyrec_example_plugin, "example")  # the third party; no whyrec-torch in this host
    h.check()
    return h


@pytest.fixture(scope="module")
def third_party(host, data):
    model = host.create("models", "feature-net", {"hidden": 16, "epochs": 8})
    model.fit(data)
    return model


def _linear_weights(model) -> list[torch.Tensor]:
    return [m.weight for m in model.torch_module().modules() if type(m) is nn.Linear]


def test_the_family_comes_from_declared_capabilities(third_party, lgb_teacher, torch_teacher):
    assert model_family(third_party) == "torch" and model_family(torch_teacher) == "torch"
    assert model_family(lgb_teacher) == "tree"

    class Undeclared:  # a network without the capability is not taken for one
        capabilities = frozenset({"differentiable"})
        net = nn.Linear(2, 1)
        name = "undeclared"

    assert model_family(Undeclared()) == "other"
    with pytest.raises(UnsupportedError, match="teacher 'undeclared' is not a torch network.*torch-network"):
        Pruner().check_teacher(Undeclared())

    class Declared(Undeclared):  # declares it, but lacks the methods
        capabilities = frozenset({"torch-network"})

    with pytest.raises(UnsupportedError, match="model 'undeclared' does not offer the 'torch-network' capability "
                                               r"\(it lacks torch_module, torch_inputs, with_module\)"):
        Quantizer().check_teacher(Declared())


def test_a_third_party_torch_model_is_pruned_saved_and_explained(third_party, data, host, tmp_path):
    from whyrec_shap.exact import ExactFieldShapley

    student, rep = Pruner(sparsity=0.5, finetune_epochs=1, **QUIET).compress(third_party, data)
    # the model's own class, with its capabilities plus "pruned", registered as pruned-torch
    assert type(student) is FeatureNetModel and student.component_name == "pruned-torch"
    assert student.capabilities == frozenset({"differentiable", "torch-network", "pruned"})
    w = _linear_weights(student)
    n = sum(t.numel() for t in w)
    assert sum(int((t == 0).sum()) for t in w) == round(0.5 * n)  # global L1 pruning, kept through fine-tuning
    assert all(int((t == 0).sum()) == 0 for t in _linear_weights(third_party))  # the teacher is untouched
    assert rep.summary["pruning"]["sparsity"] == pytest.approx(0.5, abs=1 / n)
    assert student.compression["base_model"] == "feature-net"
    # saved compactly, and rebuilt through the registry's feature-net (no import of its class)
    student.save(tmp_path / "p")
    assert not (tmp_path / "p" / "weights.safetensors").exists() and (tmp_path / "p" / "weights.sparse.safetensors").exists()
    back = PrunedNetwork.load(tmp_path / "p", data, host=host)
    assert type(back) is FeatureNetModel and back.capabilities == student.capabilities
    # a copy (an executor may ship the model to a worker) saves itself, not the original
    import copy
    import pickle

    for twin in (copy.deepcopy(student), pickle.loads(pickle.dumps(student))):
        twin.save(tmp_path / "twin")
        assert twin.save.model is twin and (tmp_path / "twin" / "weights.sparse.safetensors").exists()
    X = data.features(data.test[["user", "item"]])
    np.testing.assert_array_equal(back.score_features(X[back.feature_names]), student.score_features(X[student.feature_names]))
    # an explainer of the base model explains the compressed one, exactly
    recs = back.recommend(data.user_ids[0], 3)
    expl = ExactFieldShapley(background_size=20).explain(back, data, recs)
    assert expl.max_additivity_error < 1e-6
    np.testing.assert_allclose(expl.pairs["output_value"], recs["score"])


def test_a_third_party_torch_model_is_quantised_saved_and_explained(third_party, data, host, tmp_path):
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    from whyrec_shap.exact import ExactFieldShapley

    student, rep = Quantizer(tolerance=0, **QUIET).compress(third_party, data)
    assert type(student) is FeatureNetModel and student.component_name == "quantized-torch"
    assert student.capabilities == frozenset({"torch-network", "quantized"})  # int8 layers have no gradients
    assert [n for n, m in student.torch_module().named_modules() if isinstance(m, QLinear)] == ["hidden", "out"]
    assert student.compression["quantized_layers"] == ["hidden", "out"]
    assert rep.summary["models"]["student"]["parameters"] == third_party.n_parameters()
    X = data.features(data.test[["user", "item"]])
    diff = np.abs(student.score_features(X[student.feature_names]) - third_party.score_features(X[third_party.feature_names]))
    assert 0 < diff.max() < 0.1  # int8 rounding: close, not equal
    student.save(tmp_path / "q")
    back = QuantizedNetwork.load(tmp_path / "q", data, host=host)
    np.testing.assert_array_equal(back.score_features(X[back.feature_names]), student.score_features(X[student.feature_names]))
    expl = ExactFieldShapley(background_size=20).explain(back, data, back.recommend(data.user_ids[1], 2))
    assert expl.max_additivity_error < 1e-6
    with pytest.raises(UnsupportedError, match="already quantised"):
        Pruner(**QUIET).compress(back, data)


def test_a_compressed_model_whose_base_is_not_installed(third_party, data, tmp_path):
    student, _ = Pruner(sparsity=0.5, finetune_epochs=0, **QUIET).compress(third_party, data)
    student.save(tmp_path / "p")
    bare = PluginHost()
    bare.add(whyrec_distill, "whyrec-distill")
    with pytest.raises(RegistryError, match=r"compression.json: base_model: unknown model 'feature-net'"):
        PrunedNetwork.load(tmp_path / "p", data, host=bare)
    with pytest.raises(DataError, match="holds a 'prune' model, not 'quantize'"):
        QuantizedNetwork.load(tmp_path / "p", data)
    with pytest.raises(UnsupportedError, match="made by the prune compressor"):
        PrunedNetwork()


def test_whyrec_distill_imports_no_other_plugin():
    """Neither in its source (every import statement, in functions too) nor at run time:
    prune (with its report), load, int8 and a tree student with no other whyrec plugin loaded."""
    src = Path(whyrec_distill.__file__).parent
    for path in src.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad = [n for n in names if n.split(".")[0].startswith("whyrec_") and n.split(".")[0] != "whyrec_distill"]
            assert not bad, f"{path.name} imports {bad}"
    code = """
import sys
sys.path.insert(0, {here!r})
import torch
torch.set_num_threads(1)
import whyrec_distill, whyrec_example_plugin
from whyrec.plugins import PluginHost
from distill_toy import make_toy_data
from whyrec_distill.network import PrunedNetwork, quantized_copy
from whyrec_distill.prune import Pruner
from whyrec_distill.tree import TreeStudent
h = PluginHost(); h.add(whyrec_distill, "whyrec-distill"); h.add(whyrec_example_plugin, "example")
data = make_toy_data(n_users=20)
m = h.create("models", "feature-net", {{"epochs": 1}}); m.fit(data)
p, _ = Pruner(sparsity=0.5, finetune_epochs=1, eval_users=3, explain_users=0, repeats=1).compress(m, data)
p.save({out!r}); PrunedNetwork.load({out!r}, data, host=h)
quantized_copy(p, ["hidden", "out"], [])
TreeStudent(n_estimators=2).fit(data)
print(sorted(n for n in sys.modules if n.startswith(("whyrec_torch", "whyrec_lightgbm"))))
"""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code.format(here=str(Path(__file__).parent), out=f"{tmp}/p")],
                             capture_output=True, text=True, env={**_env(), "WHYREC_PROGRESS": "0"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "WHYREC_PLUGINS"}


def test_compress_prints_progress_lines_in_logs(third_party, data, capfd, monkeypatch):
    """Not a terminal: one whole line per finished step, never a carriage-return bar."""
    from whyrec_distill.distill import Distiller

    monkeypatch.delenv("WHYREC_PROGRESS", raising=False)
    capfd.readouterr()
    Pruner(sparsity=0.5, finetune_epochs=2, **QUIET).compress(third_party, data)
    Distiller(student="mlp", student_params={"hidden": [8], "epochs": 2}, baseline=False, **QUIET).compress(third_party, data)
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err
    for expected in ("[whyrec]   prune: fine-tuning epochs: 2 epochs in ",
                     "[whyrec]   prune: scoring ", "[whyrec]   prune: size and speed: 2 models in ",
                     "[whyrec] distill: training the student (mlp) on ", "[whyrec]   mlp student epochs (listnet): 2 epochs in ",
                     "[whyrec]   teacher scores of "):
        assert any(line.startswith(expected) for line in lines), (expected, lines)


def test_the_contract_is_documented_in_the_plugin_guide():
    """docs/plugins.md names every method of whyrec.contracts.TorchNetwork and its weight file."""
    import inspect

    from whyrec.contracts import TORCH_NETWORK, TORCH_NETWORK_WEIGHTS, TorchNetwork

    doc = (Path(__file__).parents[3] / "docs" / "plugins.md").read_text()
    section = doc.split("#### The `torch-network` capability", 1)[1].split("\n### ", 1)[0]
    methods = [n for n, v in vars(TorchNetwork).items() if inspect.isfunction(v) and not n.startswith("_") and n != "save"]
    assert sorted(methods) == ["torch_inputs", "torch_module", "with_module"]
    for name in methods:
        params = [p for p in inspect.signature(getattr(TorchNetwork, name)).parameters if p != "self"]
        assert f"def {name}(self{''.join(', ' + p for p in params)})" in section, name
    assert f'"{TORCH_NETWORK}"' in section and f"`dir/{TORCH_NETWORK_WEIGHTS}`" in section
