"""registry.toml validation: every error names the file, the pipeline and the key."""
from __future__ import annotations

import pytest

from whyrec.errors import RegistryError
from whyrec.registry import load_registry


def write(tmp_path, text):
    p = tmp_path / "registry.toml"
    p.write_text(text)
    return p


def test_valid_registry_loads(toy_registry, host):
    reg = load_registry(toy_registry)
    reg.validate(host)
    spec = reg.pipeline()
    assert spec.name == "toy" and spec.settings == {"seed": 3, "sample_users": 4, "top_k": 5}
    assert [c.use for c in spec.stage("model")] == ["popularity"]
    assert spec.stage("dataset")[0].params == {"n_users": 20}


def test_missing_file(tmp_path):
    with pytest.raises(RegistryError, match=r"nope\.toml: registry file not found; pass --registry"):
        load_registry(tmp_path / "nope.toml")


def test_not_toml(tmp_path):
    with pytest.raises(RegistryError, match=r"registry\.toml: not valid TOML .*line 1"):
        load_registry(write(tmp_path, "this is = = not toml"))


def test_unknown_pipeline_suggests(toy_registry):
    with pytest.raises(RegistryError, match=r"unknown pipeline 'tyo'; did you mean 'toy'\? \(pipelines: toy\)"):
        load_registry(toy_registry).pipeline("tyo")


def test_unknown_component_names_the_key(tmp_path, host):
    reg = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\nmodel = { use = "populariti" }\n'))
    with pytest.raises(RegistryError) as err:
        reg.validate(host)
    msg = str(err.value)
    assert "registry.toml: pipelines.p.model.use: unknown model 'populariti'; did you mean 'popularity'?" in msg
    assert "(registered models: feature-net, logistic, popularity)" in msg


def test_wrong_parameter_type(tmp_path, host):
    reg = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy", n_users = "many" }\n'))
    with pytest.raises(RegistryError, match=r"pipelines\.p\.dataset\.n_users: expected int, got str 'many'"):
        reg.validate(host)


def test_float_parameter_accepts_int(tmp_path, host):
    reg = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\nmodel = { use = "popularity", user_weight = 1 }\n'))
    reg.validate(host)


def test_unknown_parameter_suggests(tmp_path, host):
    reg = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy", n_user = 3 }\n'))
    with pytest.raises(RegistryError, match=r"'toy' has no parameter 'n_user'; did you mean 'n_users'\?"):
        reg.validate(host)


def test_unknown_stage_key_suggests(tmp_path):
    with pytest.raises(RegistryError, match=r"pipelines\.p: unknown key 'explainer'; did you mean 'explainers'\?"):
        load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\nexplainer = { use = "x" }\n'))


def test_setting_of_wrong_type(tmp_path):
    with pytest.raises(RegistryError, match=r"pipelines\.p\.seed: expected int, got str"):
        load_registry(write(tmp_path, '[pipelines.p]\nseed = "1"\ndataset = { use = "toy" }\n'))


@pytest.mark.parametrize("key", ["sample_users", "top_k", "eval_users"])
def test_sizes_of_a_run_must_be_positive(tmp_path, key):
    with pytest.raises(RegistryError, match=rf"pipelines\.p\.{key}: must be >= 1, got 0"):
        load_registry(write(tmp_path, f'[pipelines.p]\n{key} = 0\ndataset = {{ use = "toy" }}\n'))
    assert load_registry(write(tmp_path, '[pipelines.p]\nseed = 0\ndataset = { use = "toy" }\n')).pipelines["p"]


def test_default_pipeline_must_exist(tmp_path):
    with pytest.raises(RegistryError, match=r"defaults\.pipeline = 'b' is not a pipeline"):
        load_registry(write(tmp_path, '[defaults]\npipeline = "b"\n[pipelines.a]\ndataset = { use = "toy" }\n'))


def test_component_without_use(tmp_path):
    with pytest.raises(RegistryError, match=r"pipelines\.p\.model: missing `use ="):
        load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\nmodel = { n = 1 }\n'))


def test_compressor_teacher_must_be_a_model(tmp_path, host):
    reg = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\nmodel = { use = "popularity" }\n'
                                        'explainers = [{ use = "popularity-reason", models = ["popularty"] }]\n'))
    with pytest.raises(RegistryError, match=r"explainers\[0\]\.models: 'popularty' is not a model of this pipeline; did you mean 'popularity'\?"):
        reg.validate(host)


def test_stage_a_command_needs(toy_registry):
    spec = load_registry(toy_registry).pipeline()
    with pytest.raises(RegistryError, match=r"pipeline 'toy' has no 'causal' stage, which `whyrec causal` needs"):
        spec.require("causal", "whyrec causal")


def test_plugins_validate_their_pipeline_settings(tmp_path, host, capsys):
    import types

    import whyrec

    seen = []

    def validate_pipeline(pipeline, settings):
        seen.append((pipeline, settings.get("tracking")))
        return [f"[pipelines.{pipeline}.tracking] colour = 'red': expected a number"] if "colour" in settings.get("tracking", {}) else None

    def broken(pipeline, settings):
        raise KeyError("oops")

    host.add(types.SimpleNamespace(validate_pipeline=whyrec.hookimpl(validate_pipeline)), "checker")
    ok = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\n[pipelines.p.tracking]\nshade = 1\n'))
    ok.validate(host)
    assert seen == [("p", {"shade": 1})]
    bad = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\n[pipelines.p.tracking]\ncolour = "red"\n'))
    assert bad.problems(host) == [f"{bad.path}: [pipelines.p.tracking] colour = 'red': expected a number"]
    host.add(types.SimpleNamespace(validate_pipeline=whyrec.hookimpl(broken)), "broken-checker")
    host.add(types.SimpleNamespace(validate_pipeline=whyrec.hookimpl(lambda settings: None)), "settings-only")  # a subset of the arguments
    assert bad.problems(host) == [f"{bad.path}: [pipelines.p.tracking] colour = 'red': expected a number"]  # the crash hides nothing
    ok.validate(host)  # ... and blocks nothing: it is a warning
    assert "the validate_pipeline hook of plugin 'broken-checker' failed: KeyError: 'oops'; its settings were not checked" in capsys.readouterr().err


@pytest.mark.parametrize("table, message", [
    ('{ langs = ["zh"] }', "pipelines.p.report: unknown key 'langs'; did you mean 'lang'?"),
    ('{ lang = ["en", "fr"] }', "pipelines.p.report.lang: no sentence catalogue for language 'fr' (languages: en, zh"),
    ('{ lang = "ZH" }', "no sentence catalogue for language 'ZH'"),
    ('{ users = 0 }', "pipelines.p.report.users: expected a number of users >= 1, got 0"),
    ('{ enabled = "no" }', "pipelines.p.report.enabled: expected true or false, got 'no'"),
])
def test_report_settings_are_checked(tmp_path, table, message):
    with pytest.raises(RegistryError) as err:
        load_registry(write(tmp_path, f'[pipelines.p]\ndataset = {{ use = "toy" }}\nreport = {table}\n'))
    assert message in str(err.value)


def test_good_report_settings_load(tmp_path):
    reg = load_registry(write(tmp_path, '[pipelines.p]\ndataset = { use = "toy" }\nreport = { lang = ["en", "zh"], users = 2, enabled = true }\n'))
    assert reg.pipeline("p").settings["report"] == {"lang": ["en", "zh"], "users": 2, "enabled": True}
