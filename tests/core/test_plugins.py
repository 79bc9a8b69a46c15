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
    assert info["example"].components == {"models": ["popularity"], "explainers": ["popularity-reason"]}
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

    h.add(_plugin(register_model=register_model), "typo")
    with pytest.raises(PluginError, match="register_model"):
        h.check()


def test_unknown_component_suggests_and_lists(host):
    with pytest.raises(RegistryError) as err:
        host.get("models", "populrity")
    msg = str(err.value)
    assert "did you mean 'popularity'?" in msg and "registered models: popularity" in msg


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
    assert res.returncode != 0
    assert "boom at import" in res.stderr
