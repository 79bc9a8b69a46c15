"""The runner: stages in order, lifecycle hooks, manifest contract, reproducibility, failure."""
from __future__ import annotations

import json
import types

import pandas as pd
import pytest

import whyrec
from whyrec.errors import DataError, RegistryError


def test_run_writes_manifest_and_artifacts(toy_registry, host, tmp_path):
    run = whyrec.run(registry=toy_registry, out=tmp_path / "runs", host=host)
    m = json.loads((run.path / "manifest.json").read_text())
    assert run.path.name.startswith("toy-") and m["status"] == "complete" and m["seed"] == 3
    names = [s["name"] for s in m["stages"]]
    assert names[:3] == ["dataset", "model:popularity", "explainer:popularity-reason@popularity"]
    for s in m["stages"]:
        assert {"name", "component", "status", "seconds", "artifacts"} <= set(s)
        assert s["status"] == "complete"
        for a in s["artifacts"]:
            assert (run.path / a).is_file() and not a.startswith("/")
    assert m["spec"]["model"][0]["params"] == {"user_weight": 0.1}  # defaults resolved
    assert m["spec"]["dataset"][0]["params"]["seed"] == 3  # pipeline seed injected
    assert m["data_hash"] and len(m["data_hash"]) == 64
    assert {p["name"] for p in m["plugins"]} >= {"example", "toyplugin", "whyrec.builtins"}
    assert set(m["metrics"]["popularity"]) >= {"auc", "ndcg@10", "hr@10"}
    expl = run.explanations()[0]
    assert len(expl.pairs) == 4 * 5
    assert expl.max_additivity_error < 1e-12


def test_same_seed_same_artifacts(toy_registry, host, tmp_path):
    a = whyrec.run(registry=toy_registry, out=tmp_path / "a", host=host)
    b = whyrec.run(registry=toy_registry, out=tmp_path / "b", host=host)
    c = whyrec.run(registry=toy_registry, out=tmp_path / "c", host=host, seed=11)
    rel = "explanations/popularity-reason__popularity/attributions.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(a.path / rel), pd.read_parquet(b.path / rel))
    assert a.manifest["data_hash"] == b.manifest["data_hash"] != c.manifest["data_hash"]


def test_lifecycle_hooks_are_called_in_order(toy_registry, host, tmp_path):
    calls = []

    def before_stage(stage, context):
        calls.append(("before", stage))

    def after_stage(stage, context, artifacts):
        calls.append(("after", stage, all(p.exists() for p in artifacts)))

    plugin = types.SimpleNamespace(before_stage=whyrec.hookimpl(before_stage), after_stage=whyrec.hookimpl(after_stage))
    host.add(plugin, "watcher")
    whyrec.run(registry=toy_registry, out=tmp_path, host=host)
    assert calls[:4] == [("before", "dataset"), ("after", "dataset", True), ("before", "model:popularity"), ("after", "model:popularity", True)]


def test_failing_stage_marks_manifest_failed_and_calls_error_hook(tmp_path, host):
    errors = []
    plugin = types.SimpleNamespace(on_stage_error=whyrec.hookimpl(lambda stage, context, error: errors.append((stage, type(error).__name__))))
    host.add(plugin, "watcher")
    reg = tmp_path / "r.toml"
    reg.write_text('[pipelines.p]\ndataset = { use = "toy", fail = true }\nmodel = { use = "popularity" }\n')
    with pytest.raises(DataError, match="asked to fail"):
        whyrec.run(registry=reg, out=tmp_path / "runs", host=host)
    (run_dir,) = (tmp_path / "runs").iterdir()
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["status"] == "failed"
    assert m["stages"][0]["status"] == "failed" and "asked to fail" in m["stages"][0]["error"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["manifest.json"]  # nothing half-written
    assert errors == [("dataset", "DataError")]


def test_a_bug_in_a_component_names_the_stage_plugin_and_run(tmp_path, host):
    """A component that raises a non-whyrec exception (a plugin bug, not a user error) fails
    its stage with a StageError naming the stage, the plugin and the run directory."""
    from whyrec.errors import StageError

    class Buggy:
        def supports(self, model):
            return True

        def explain(self, model, data, pairs):
            return [][1]  # IndexError

    plugin = types.SimpleNamespace(register_explainers=whyrec.hookimpl(lambda register: register("buggy", Buggy)))
    host.add(plugin, "whyrec-buggy")
    reg = tmp_path / "r.toml"
    reg.write_text('[pipelines.p]\nsample_users = 2\ndataset = { use = "toy" }\nmodel = { use = "popularity" }\n'
                   'explainers = [ { use = "buggy" } ]\n')
    with pytest.raises(StageError) as err:
        whyrec.run(registry=reg, out=tmp_path / "runs", host=host)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert str(err.value) == (f"stage explainer:buggy@popularity failed: IndexError: list index out of range (component 'buggy' "
                              f"of plugin 'whyrec-buggy'; the run {run_dir} is marked failed, its manifest.json holds the "
                              "traceback; --debug prints it)")
    assert err.value.exit_code == 1 and isinstance(err.value.__cause__, IndexError)
    stage = json.loads((run_dir / "manifest.json").read_text())["stages"][-1]
    assert stage["status"] == "failed" and "IndexError" in stage["traceback"]


def test_a_failing_lifecycle_hook_does_not_skip_other_plugins_hooks(toy_registry, host, tmp_path):
    seen = []

    def broken(stage, context, artifacts):
        raise RuntimeError("disk full")

    host.add(types.SimpleNamespace(after_stage=whyrec.hookimpl(broken)), "whyrec-broken-hook")
    host.add(types.SimpleNamespace(after_stage=whyrec.hookimpl(lambda stage, context, artifacts: seen.append(stage))), "watcher")
    run = whyrec.run(registry=toy_registry, out=tmp_path, host=host)
    assert run.manifest["status"] == "complete"
    assert "dataset" in seen and len(seen) == len(run.manifest["stages"])  # called for every stage despite the other
    assert run.manifest["warnings"][0] == "after_stage hook of plugin 'whyrec-broken-hook' failed: RuntimeError: disk full"


def test_invalid_registry_writes_no_run(tmp_path, host):
    reg = tmp_path / "r.toml"
    reg.write_text('[pipelines.p]\ndataset = { use = "toy" }\nmodel = { use = "nosuch" }\n')
    with pytest.raises(RegistryError):
        whyrec.run(registry=reg, out=tmp_path / "runs", host=host)
    assert not (tmp_path / "runs").exists()


def test_failing_after_stage_hook_keeps_the_run(toy_registry, host, tmp_path):
    def after_stage(stage, context, artifacts):
        raise ConnectionError("tracking server unreachable")

    host.add(types.SimpleNamespace(after_stage=whyrec.hookimpl(after_stage)), "tracker")
    run = whyrec.run(registry=toy_registry, out=tmp_path, host=host)
    assert run.manifest["status"] == "complete"
    assert any("tracking server unreachable" in w for w in run.manifest["warnings"])


def test_run_can_be_reloaded(toy_registry, host, tmp_path):
    run = whyrec.run(registry=toy_registry, out=tmp_path, host=host)
    again = whyrec.Run(run.path, host=host)
    model = again.load_model()
    recs = model.recommend(again.load_data().user_ids[0], 3)
    assert list(recs["rank"]) == [1, 2, 3] and recs["score"].is_monotonic_decreasing


def test_direct_component_use_without_registry(host):
    data = host.create("datasets", "toy", {"n_users": 10}).load()
    model = host.create("models", "popularity", {})
    model.fit(data)
    assert model.recommend(1, 2).shape[0] == 2


def test_python_api_checks_parameters_as_the_registry_does():
    # the example plugin (installed by `make`) registers "popularity" with user_weight: float
    with pytest.raises(RegistryError, match=r"whyrec.component\('models', 'popularity'\).user_weight: expected float, got str 'x'"):
        whyrec.component("models", "popularity", user_weight="x")
    with pytest.raises(RegistryError, match="has no parameter 'user_wieght'; did you mean 'user_weight'"):
        whyrec.component("models", "popularity", user_wieght=0.5)
    assert whyrec.component("models", "popularity", user_weight=1).name == "popularity"  # an int is a fine float


def test_a_lifecycle_hook_wrapper_is_reported_not_silently_skipped(toy_registry, host, tmp_path):
    def before_run(run):
        yield

    host.add(types.SimpleNamespace(before_run=whyrec.hookimpl(wrapper=True)(before_run)), "wrapping")
    run = whyrec.run(registry=toy_registry, out=tmp_path, host=host)
    assert run.manifest["warnings"] == ["before_run hook of plugin 'wrapping' is a hook wrapper, which lifecycle hooks do not support; it was not called"]
