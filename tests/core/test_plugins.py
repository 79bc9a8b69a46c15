"""Plugin loading: built-ins as plugins, broken plugins recorded, duplicates and typos refused."""
from __future__ import annotations

import json
import types

import pytest

import whyrec
from whyrec.errors import PluginError, RegistryError
from whyrec.plugins import PluginHost, lazy
from core_helpers import whyrec_cli


def _plugin(**hooks) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{k: whyrec.hookimpl(v) for k, v in hooks.items()})


def test_components_are_attributed_to_their_plugin(host):
    assert host.get("models", "popularity").plugin == "example"
    assert host.get("executors", "local").plugin == "whyrec.builtins"
    info = {i.name: i for i in host.plugin_infos()}
    assert info["example"].components == {"models": ["popularity", "logistic", "feature-net"], "explainers": ["popularity-reason"]}
    assert info["example"].hooks == ["register_explainers", "register_models"]


def test_duplicate_component_names_name_both_plugins(host):
    def register_models(register):
        register("popularity", object)

    host.add(_plugin(register_models=register_models), "copycat")
    with pytest.raises(PluginError, match=r"'popularity' is registered by two plugins: .*'example'.*'copycat'|'copycat'.*'example'"):
        host.collect()


def test_misspelt_hook_is_caught():
    h = PluginHost()

    def register_model(register):  # missing "s"
        pass

    with pytest.raises(PluginError, match=r"plugin 'typo' implements unknown hook 'register_model'; did you mean 'register_models'\?"):
        h.add(_plugin(register_model=register_model), "typo")
    assert "typo" not in h.infos and h.pm.get_plugin("typo") is None
    h.check()  # nothing of it was left registered


def test_hook_argument_that_is_not_in_the_spec_is_one_line():
    h = PluginHost()

    def after_stage(stage, ctx, artifacts):  # the spec says "context"
        pass

    with pytest.raises(PluginError) as err:
        h.add(_plugin(after_stage=after_stage), "argtypo")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("plugin 'argtypo': ") and "{'ctx'}" in msg


def test_lazy_target_that_does_not_exist_names_the_component_and_plugin():
    h = PluginHost()

    def register_models(register):
        register("knn", lazy("collections:NoSuchModel"))

    h.add(_plugin(register_models=register_models), "outsider")
    with pytest.raises(PluginError, match=r"model 'knn' of plugin 'outsider' cannot be loaded from 'collections:NoSuchModel' "
                                          r"\(AttributeError: .*reinstall the plugin"):
        h.create("models", "knn")


def test_unknown_component_suggests_and_lists(host):
    with pytest.raises(RegistryError) as err:
        host.get("models", "populrity")
    msg = str(err.value)
    assert "did you mean 'popularity'?" in msg and "registered models: feature-net, logistic, popularity" in msg


def test_unknown_first_party_component_names_its_package(host):
    with pytest.raises(RegistryError, match=r"provided by the plugin whyrec-ray"):
        host.get("executors", "ray")


def test_lazy_factory_imports_on_first_call():
    f = lazy("collections:OrderedDict", "ordered dict")
    assert f.__doc__ == "ordered dict" and f._obj is None
    assert f(a=1)["a"] == 1


BROKEN = '''
raise RuntimeError("boom at import")
'''


@pytest.fixture
def broken_plugin(tmp_path):
    """A real installed-looking plugin whose import raises, found through an entry point."""
    pkg = tmp_path / "site"
    (pkg / "brokenplug").mkdir(parents=True)
    (pkg / "brokenplug" / "__init__.py").write_text(BROKEN)
    dist = pkg / "brokenplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[whyrec]\nbrokenplug = brokenplug\n")
    return pkg


def test_plugin_that_raises_is_reported_and_cli_still_works(broken_plugin, tmp_path):
    env = {"PYTHONPATH": f"{broken_plugin}:{tmp_path}"}
    res = whyrec_cli("plugins", "--format", "json", env={**env, "PYTHONPATH": env["PYTHONPATH"] + ":" + str(__import__("pathlib").Path(__file__).parent)})
    assert res.returncode == 0, res.stderr
    infos = {p["name"]: p for p in json.loads(res.stdout)}
    assert infos["brokenplug"]["error"] == "RuntimeError: boom at import"
    assert infos["brokenplug"]["version"] == "1.0"
    assert "popularity" in infos["example"]["components"]["models"]
    assert set(infos["example"]) == {"name", "version", "hooks", "components", "error"}
    text = whyrec_cli("plugins", env={"PYTHONPATH": f"{broken_plugin}:{__import__('pathlib').Path(__file__).parent}"})
    assert "FAILED TO LOAD: RuntimeError: boom at import" in text.stdout


def test_strict_plugins_reraises(broken_plugin):
    res = whyrec_cli("plugins", env={"PYTHONPATH": f"{broken_plugin}:{__import__('pathlib').Path(__file__).parent}", "WHYREC_STRICT_PLUGINS": "1"})
    assert res.returncode == 2
    assert res.stderr.startswith("error: plugin 'brokenplug' (brokenplug) failed to import: RuntimeError: boom at import")
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr


TYPO_HOOK = '''
import whyrec

@whyrec.hookimpl
def after_stag(stage, context, artifacts):
    pass
'''


def test_installed_plugin_with_a_misspelt_hook_is_reported_and_cli_still_works(broken_plugin):
    (broken_plugin / "brokenplug" / "__init__.py").write_text(TYPO_HOOK)
    env = {"PYTHONPATH": f"{broken_plugin}:{__import__('pathlib').Path(__file__).parent}"}
    res = whyrec_cli("plugins", "--format", "json", env=env)
    assert res.returncode == 0, res.stderr
    infos = {p["name"]: p for p in json.loads(res.stdout)}
    assert infos["brokenplug"]["error"] == ("PluginError: plugin 'brokenplug' implements unknown hook 'after_stag'; "
                                            "did you mean 'after_stage'? (is the hook name misspelt? see docs/plugins.md)")
    assert "popularity" in infos["example"]["components"]["models"]  # the others load
    assert whyrec_cli("--help", env=env).returncode == 0


def test_unknown_component_mentions_plugins_that_failed_to_load(broken_plugin):
    env = {"PYTHONPATH": f"{broken_plugin}:{__import__('pathlib').Path(__file__).parent}"}
    res = whyrec_cli("explain-batch", "--help", env=env)  # any command works with a broken plugin
    assert res.returncode == 0
    from whyrec.plugins import unknown_component_message

    msg = unknown_component_message("models", "item-knn", ["popularity"], "", {"brokenplug": "RuntimeError: boom at import"})
    assert msg.endswith("(registered models: popularity); plugin(s) that failed to load: brokenplug (RuntimeError: boom at import) (see `whyrec plugins`)")
