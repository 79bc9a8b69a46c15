"""whyrec-shap as a plugin: registration, parameters, support declarations."""
from __future__ import annotations

import inspect

import whyrec_lightgbm
import whyrec_shap
from whyrec.plugins import resolve_factory
from whyrec.plugins import PluginHost


def _host():
    host = PluginHost()
    host.add(whyrec_shap, "whyrec-shap")
    host.add(whyrec_lightgbm, "whyrec-lightgbm")
    return host


def test_registers_four_explainers():
    host = _host()
    assert host.names("explainers") == ["exact-field-shapley", "kernel-shap", "permutation-shap", "tree-shap"]
    for name in host.names("explainers"):
        obj = host.create("explainers", name)
        assert obj.name == name and callable(obj.figures) and callable(obj.quality)


def test_supports_declarations(lgb_model, linear_model):
    host = _host()
    sup = {n: host.create("explainers", n).supports(lgb_model) for n in host.names("explainers")}
    assert all(sup.values())
    sup = {n: host.create("explainers", n).supports(linear_model) for n in host.names("explainers")}
    assert sup == {"exact-field-shapley": True, "kernel-shap": True, "permutation-shap": True, "tree-shap": False}


def test_parameters_are_typed_keywords():
    """The registry validator reads constructor type hints: every parameter has one and a default."""
    host = _host()
    for name in host.names("explainers"):
        sig = inspect.signature(resolve_factory(host.get("explainers", name).factory))
        for p in sig.parameters.values():
            assert p.annotation is not inspect.Parameter.empty and p.default is not inspect.Parameter.empty, (name, p.name)
    obj = host.create("explainers", "tree-shap", {"feature_perturbation": "interventional", "background_size": 30})
    assert obj.params["background_size"] == 30


def test_public_api():
    assert whyrec_shap.why_above.__module__ == "whyrec_shap.rank"
    assert whyrec_shap.explanation_quality.__module__ == "whyrec_shap.quality"
