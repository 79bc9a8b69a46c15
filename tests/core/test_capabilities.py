"""Capabilities declared at registration: the core matches explainers to models, and finds
"what moves this item into the top-k", without knowing (or importing) any plugin."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import toyplugin
import whyrec
import whyrec_example_plugin
from whyrec import builtins
from whyrec.errors import PluginError
from whyrec.plugins import PluginHost, get_host, resolve_factory
from whyrec.registry import load_registry
from whyrec.runner import run as run_pipeline

from core_helpers import TOY


def test_each_installed_model_declares_what_its_instances_carry():
    """`provides` at registration is the class's `capabilities`: one fact, checked, not two."""
    host = get_host()
    checked = 0
    for name in host.names("models"):
        comp = host.get("models", name)
        if not comp.provides:
            continue
        cls = resolve_factory(comp.factory)
        assert frozenset(cls.capabilities) == comp.provides, name
        checked += 1
    assert checked >= 8  # lightgbm, torch-attention, the distill students, the example's popularity


def test_register_refuses_a_capability_string_instead_of_a_list():
    class Bad:
        @whyrec.hookimpl
        def register_explainers(self, register):
            register("x", object, requires="tree")

    host = PluginHost()
    host.add(Bad(), "bad")
    with pytest.raises(PluginError, match="plugin 'bad': explainer 'x': requires must be a list of capability names, got 'tree'"):
        host.collect()


def _registry(tmp_path: Path, model: str, explainers: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(f'[pipelines.p]\ndataset = {{ use = "sim-ecommerce", n_rows = 2000 }}\nmodel = {model}\n'
                 f"explainers = {explainers}\n")
    return p


def test_validate_refuses_an_explainer_that_supports_no_model_of_the_pipeline(tmp_path):
    reg = load_registry(_registry(tmp_path, '{ use = "lightgbm" }', '[ { use = "tree-shap" }, { use = "attention-map" } ]'))
    problems = reg.problems(get_host())
    assert len(problems) == 1
    assert "explainers[1]" in problems[0] or "attention-map" in problems[0]
    assert "supports none of this pipeline's models: it needs a model with attention, sequence" in problems[0]
    assert "lightgbm: categorical, lightgbm, tree" in problems[0]
    # the same explainer next to a model it explains is fine
    ok = load_registry(_registry(tmp_path, '[ { use = "lightgbm" }, { use = "torch-attention" } ]', '[ { use = "attention-map" } ]'))
    assert ok.problems(get_host()) == []


class _CounterfactualPlugin:
    """A third party's explainer that declares the top-k-counterfactual capability."""

    class Explainer:
        def supports(self, model):
            return True

        def explain(self, model, data, pairs):  # pragma: no cover - not used here
            raise NotImplementedError

        def into_top_k(self, model, data, user, item, k=10, context=None):
            return {"found": True, "changes": [{"feature": "quality", "from": 0, "to": 1}], "by": "third-party", "k": k}

    @whyrec.hookimpl
    def register_explainers(self, register):
        register("third-party-cf", self.Explainer, provides=["top-k-counterfactual"])


def test_why_above_finds_the_counterfactual_through_the_capability(tmp_path):
    from whyrec.explain import why_above_json
    from whyrec.rundir import Run

    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_example_plugin, "example")
    host.add(toyplugin, "toyplugin")
    (tmp_path / "registry.toml").write_text(TOY + "report = { enabled = false }\n")
    run = run_pipeline("toy", registry=tmp_path / "registry.toml", out=tmp_path / "runs", host=host)
    data = run.load_data()
    unseen = [i for i in data.item_ids if i not in data.seen(2)]
    # no installed explainer provides it: no counterfactual, and nothing breaks
    assert why_above_json(Run(run.path, host=host), 2, unseen[0], unseen[1])["counterfactual"] is None
    host.add(_CounterfactualPlugin(), "third-party")
    out = why_above_json(Run(run.path, host=host), 2, unseen[0], unseen[1], k=3)
    assert out["counterfactual"] == {"found": True, "changes": [{"feature": "quality", "from": 0, "to": 1}],
                                     "by": "third-party", "k": 3}


def test_explain_on_a_lightgbm_model_never_imports_torch(tmp_path):
    """A run with both a LightGBM and a torch model: explaining the LightGBM one skips the
    torch explainers by their declared needs, so torch is never imported."""
    rng = np.random.default_rng(0)
    n = 1500
    inter = pd.DataFrame({"uid": rng.integers(0, 40, n), "iid": rng.integers(0, 60, n), "ts": np.arange(n, dtype=float),
                          "clicked": rng.integers(0, 2, n)})
    inter.to_parquet(tmp_path / "inter.parquet", index=False)
    pd.DataFrame({"iid": np.arange(60), "item_id": np.arange(60), "price": rng.uniform(1, 9, 60)}).to_parquet(
        tmp_path / "items.parquet", index=False)
    (tmp_path / "r.toml").write_text(f"""
[pipelines.p]
sample_users = 2
top_k = 3
model = [ {{ use = "lightgbm", n_estimators = 10 }}, {{ use = "torch-attention", epochs = 1 }} ]
explainers = [ {{ use = "tree-shap" }}, {{ use = "attention-map" }}, {{ use = "integrated-gradients", steps = 4 }} ]
report = {{ enabled = false }}
[pipelines.p.dataset]
use = "table"
interactions = "{tmp_path / 'inter.parquet'}"
items = "{tmp_path / 'items.parquet'}"
user_col = "uid"
item_col = "iid"
label_col = "clicked"
timestamp_col = "ts"
categorical = ["item_id"]
history_length = 2
""")
    run = whyrec.run("p", registry=tmp_path / "r.toml", out=tmp_path / "runs")
    code = ("import sys, json; from whyrec.rundir import Run; from whyrec.explain import explain_user; "
            f"out = explain_user(Run({str(run.path)!r}), 1, 3, model='lightgbm'); "
            "print(json.dumps({'torch': 'torch' in sys.modules, "
            "'methods': sorted({e['method'] for r in out['recommendations'] for e in r['explanations']})}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got == {"torch": False, "methods": ["tree-shap"]}


class _PickyPlugin:
    """An explainer that declares no needs but, asked, supports no model (as lime does for a
    model without score_features)."""

    class Explainer:
        def supports(self, model):
            return False

        def explain(self, model, data, pairs):  # pragma: no cover - never asked
            raise AssertionError("explain on an unsupported model")

    @whyrec.hookimpl
    def register_explainers(self, register):
        register("picky", self.Explainer)


def test_an_explainer_that_supports_no_model_is_said_on_the_console(tmp_path, capsys):
    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_example_plugin, "example")
    host.add(toyplugin, "toyplugin")
    host.add(_PickyPlugin(), "picky-plugin")
    (tmp_path / "registry.toml").write_text(TOY.replace('{ use = "popularity-reason" }', '{ use = "picky" }')
                                            + "report = { enabled = false }\n")
    run = run_pipeline("toy", registry=tmp_path / "registry.toml", out=tmp_path / "runs", host=host)
    msg = "explainer 'picky' supports none of the models ['popularity']; explainers that do: {'popularity': []}"
    assert msg in run.manifest["warnings"]
    assert f"[whyrec] warning: {msg}" in capsys.readouterr().err.splitlines()
