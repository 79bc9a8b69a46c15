"""The lime plugin: registration, and every bad input as one clear error."""
from __future__ import annotations

import inspect
import sys

import pandas as pd
import pytest

import whyrec_lime
from lime_testkit import RowsOnly
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.plugins import PluginHost, resolve_factory


def _host():
    host = PluginHost()
    host.add(whyrec_lime, "whyrec-lime")
    return host


def test_registers_lime_with_typed_parameters():
    pytest.importorskip("lime")
    host = _host()
    assert host.names("explainers") == ["lime"]
    sig = inspect.signature(resolve_factory(host.get("explainers", "lime").factory))
    for p in sig.parameters.values():
        assert p.annotation is not inspect.Parameter.empty and p.default is not inspect.Parameter.empty, p.name
    x = host.create("explainers", "lime", {"units": "features", "num_samples": 200})
    assert x.params["units"] == "features" and x.params["num_samples"] == 200


def test_missing_lime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lime", None)
    monkeypatch.setitem(sys.modules, "lime.lime_base", None)
    from whyrec_lime.explainer import LimeExplainer

    with pytest.raises(UnsupportedError) as err:
        LimeExplainer()
    assert str(err.value) == ("explainer 'lime' needs lime, which is not installed; "
                              "install the extra: pip install 'whyrec-lime[lime]'")


def test_model_that_cannot_score_feature_rows_is_refused_naming_the_capability(lime_toy):
    pytest.importorskip("lime")
    from whyrec_lime.explainer import LimeExplainer

    m = RowsOnly()
    m.fit(lime_toy)
    x = LimeExplainer()
    assert not x.supports(m)
    with pytest.raises(UnsupportedError) as err:
        x.explain(m, lime_toy, pd.DataFrame({"user": [1], "item": [101]}))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("explainer 'lime' does not support model 'rows-only': it needs the capability score_features")


@pytest.mark.parametrize("params, words", [
    ({"units": "items"}, "units 'items' is not one of ['fields', 'features']"),
    ({"sampler": "kde"}, "sampler 'kde' is not one of ['mask', 'tabular']"),
    ({"num_samples": 5}, "num_samples=5 must be an integer >= 10"),
    ({"num_samples": 100.5}, "num_samples=100.5 must be an integer >= 10"),
    ({"background_size": 0}, "background_size=0 must be an integer >= 1"),
    ({"top_k": 0}, "top_k=0 must be an integer >= 1"),
    ({"stability_seeds": 0}, "stability_seeds=0 must be an integer >= 1"),
    ({"seed": -1}, "seed=-1 must be an integer >= 0"),
    ({"kernel_width": 0.0}, "kernel_width=0.0 must be a number > 0"),
    ({"kernel_width": float("nan")}, "kernel_width=nan must be a number > 0"),
    ({"alpha": -1.0}, "alpha=-1.0 (the surrogate's ridge penalty) must be a number >= 0"),
    ({"min_fidelity": 1.5}, "min_fidelity=1.5 must be a number in [0, 1]"),
])
def test_bad_parameters(params, words):
    pytest.importorskip("lime")
    with pytest.raises(RegistryError) as err:
        _host().create("explainers", "lime", params)
    assert str(err.value) == f"explainer 'lime': {words}" or str(err.value).startswith(f"explainer 'lime': {words}")


def test_background_larger_than_the_data(lime_toy, fixed_linear):
    pytest.importorskip("lime")
    from whyrec_lime.explainer import LimeExplainer

    n = len(lime_toy.train)
    with pytest.raises(DataError, match=rf"background_size={n + 1} is larger than the data: dataset 'toy' has {n} training rows .* use background_size <= {n}"):
        LimeExplainer(background_size=n + 1).explain(fixed_linear, lime_toy, pd.DataFrame({"user": [1], "item": [101]}))


def test_unknown_users_and_empty_pairs(lime_toy, fixed_linear):
    pytest.importorskip("lime")
    from whyrec_lime.explainer import LimeExplainer

    x = LimeExplainer()
    with pytest.raises(DataError, match=r"users \[999\] are not in dataset 'toy'"):
        x.explain(fixed_linear, lime_toy, pd.DataFrame({"user": [999], "item": [101]}))
    with pytest.raises(DataError, match="no pairs to explain"):
        x.explain(fixed_linear, lime_toy, pd.DataFrame({"user": [], "item": []}))
    with pytest.raises(DataError, match="pairs to explain have no 'item' column"):
        x.explain(fixed_linear, lime_toy, pd.DataFrame({"user": [1]}))


def test_validate_refuses_bad_parameters_before_anything_loads():
    """`whyrec validate` (the plugin's validate_pipeline hook) names each bad lime parameter, in plain Python."""
    stages = {"explainers": [
        {"use": "lime", "name": "lime", "where": "pipelines.p.explainers[0]", "params": {"units": "feature", "num_samples": 5}},
        {"use": "lime", "name": "lime2", "where": "pipelines.p.explainers[1]", "params": {"sampler": "tabular", "alpha": 1.0}},
        {"use": "tree-shap", "name": "tree-shap", "where": "pipelines.p.explainers[2]", "params": {"units": "x"}},
    ]}
    assert whyrec_lime.validate_pipeline(stages=stages) == [
        "pipelines.p.explainers[0]: explainer 'lime': units 'feature' is not one of ['fields', 'features']",
        "pipelines.p.explainers[0]: explainer 'lime': num_samples=5 must be an integer >= 10",
    ]
    assert whyrec_lime.validate_pipeline(stages={"explainers": stages["explainers"][1:]}) is None


@pytest.mark.parametrize("value, line", [
    ('"300"', "pipelines.p.explainers[0].num_samples: expected int, got str '300'"),
    ("300.5", "pipelines.p.explainers[0].num_samples: expected int, got float 300.5"),
    ('"x"', "pipelines.p.explainers[0].kernel_width: expected float | None, got str 'x'"),
])
def test_validate_says_a_wrongly_typed_parameter_once(tmp_path, capsys, value, line):
    """The registry refuses a wrongly typed value against the signature; the plugin's hook does
    not repeat it in its own words (it checked "num_samples = '300'" twice before)."""
    from whyrec.cli import main

    key = "kernel_width" if value == '"x"' else "num_samples"
    reg = tmp_path / "registry.toml"
    reg.write_text(f'[pipelines.p]\ndataset = {{ use = "sim-video" }}\nmodel = {{ use = "lightgbm" }}\n'
                   f'explainers = [ {{ use = "lime", {key} = {value} }} ]\n')
    with pytest.raises(SystemExit) as e:
        main(["validate", "--registry", str(reg)])
    assert e.value.code == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert err == [f"error: {reg}: {line}"]
    # the hook alone still names a wrongly typed value (whyrec.component and the explainer use it unfiltered)
    from whyrec_lime.params import problems

    assert problems({"num_samples": "300"}) == ["num_samples='300' must be an integer >= 10"]
    assert problems({"num_samples": "300", "top_k": 0}, types_checked=True) == ["top_k=0 must be an integer >= 1"]


def test_loading_the_plugin_imports_no_heavy_library():
    import subprocess

    code = ("import sys, whyrec_lime; from whyrec.plugins import PluginHost; h = PluginHost(); h.add(whyrec_lime, 'whyrec-lime'); "
            "h.collect(); print(sorted(m for m in ('lime', 'sklearn', 'numpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_too_few_samples_for_an_unpenalised_fit(lime_toy, fixed_linear):
    pytest.importorskip("lime")
    from whyrec_lime.explainer import LimeExplainer

    pairs = pd.DataFrame({"user": [1], "item": [101]})
    with pytest.raises(RegistryError, match=r"num_samples=12 cannot determine 16 weights and an intercept without a penalty "
                                            r"\(alpha = 0\); use num_samples > 16 or alpha > 0"):
        LimeExplainer(units="features", num_samples=12).explain(fixed_linear, lime_toy, pairs)
    e = LimeExplainer(units="features", num_samples=12, alpha=1.0, stability_seeds=1).explain(fixed_linear, lime_toy, pairs)
    assert e.attributions.shape == (1, 16)
