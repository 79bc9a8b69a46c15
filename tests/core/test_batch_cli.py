"""`whyrec explain-batch RUN ...`: the command on a real run directory (toy pipeline)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import toyplugin
import whyrec.plugins
import whyrec_example_plugin
from whyrec import builtins
from whyrec.batch import dir_sha256, explain_batch_command, read_batch_output
from whyrec.errors import DataError, RegistryError, RunDirError, WhyrecError
from whyrec.plugins import PluginHost
from whyrec.rundir import Run
from whyrec.runner import run as run_pipeline

from core_helpers import TOY


REGISTRY = TOY + "report = { enabled = false }\n"  # the core tests' toy pipeline, without the report


@pytest.fixture(scope="module")
def _toy_run(tmp_path_factory):
    """One finished toy pipeline run (popularity model, popularity-reason explainer), shared:
    the commands only read it."""
    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_example_plugin, "example")
    host.add(toyplugin, "toyplugin")
    host.check()
    d = tmp_path_factory.mktemp("toyrun")
    (d / "registry.toml").write_text(REGISTRY)
    return run_pipeline("toy", registry=d / "registry.toml", out=d / "runs", host=host)


@pytest.fixture
def toy_run(_toy_run, monkeypatch):
    """The command resolves components through the process-wide host: point it at the test's."""
    monkeypatch.setattr(whyrec.plugins, "_host", _toy_run.host)
    return _toy_run


def pairs_file(tmp_path, n=120, unknown=0):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(1, 21, n), "item": rng.integers(1, 41, n)})
    df.loc[: unknown - 1, "user"] = 999
    df.to_parquet(tmp_path / "pairs.parquet", index=False)
    return df


def invoke(*args):
    return CliRunner().invoke(explain_batch_command, [str(a) for a in args])


def test_explain_batch_on_a_run_directory(toy_run, tmp_path):
    df = pairs_file(tmp_path, unknown=5)
    res = invoke(toy_run.path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out",
                 "--explainer", "popularity-reason", "--chunk-rows", 50)
    assert res.exit_code == 0, res.output + repr(res.exception)
    lines = res.output.splitlines()
    assert lines[0] == f"explained 120 pairs with popularity-reason on popularity into {tmp_path / 'out'} (3 parts: 3 written, 0 already done)"
    assert lines[1] == "  explained 115, cold start 0, skipped 5 (rows with unknown user 5, unknown item 0)"
    assert lines[2].startswith("  120 rows in ") and lines[2].endswith(" rows/s)")
    assert "rerun into a new --out with --cold-start explain" in lines[3]

    got = read_batch_output(tmp_path / "out")
    model, data = Run(toy_run.path).load_model("popularity"), Run(toy_run.path).load_data()
    want = model.terms(df.iloc[5:].reset_index(drop=True))
    np.testing.assert_array_equal(got.loc[5:, "attr__item_popularity"], want["item_popularity"])
    job = json.loads((tmp_path / "out" / "_job.json").read_text())
    # the model is identified by the bytes of its saved directory
    assert job["model"] == {"name": "popularity", "fingerprint": dir_sha256(toy_run.path / "models" / "popularity")}

    again = invoke(toy_run.path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out",
                   "--explainer", "popularity-reason", "--chunk-rows", 50)
    assert again.exit_code == 0 and "(3 parts: 0 written, 3 already done)" in again.output


def test_cold_start_explain_and_executor_options(toy_run, tmp_path):
    pairs_file(tmp_path, unknown=3)
    res = invoke(toy_run.path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out", "--explainer", "popularity-reason",
                 "--cold-start", "explain", "--executor", "local", "--executor-opt", "workers=2")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "explained 117, cold start 3, skipped 0" in res.output


def test_ray_executor_without_the_plugin_names_it(toy_run, tmp_path, monkeypatch):
    bare = PluginHost()
    bare.add(builtins, "whyrec.builtins")
    for name in ("example", "toyplugin"):
        bare.add(toy_run.host.pm.get_plugin(name), name)
    monkeypatch.setattr(whyrec.plugins, "_host", bare)
    pairs_file(tmp_path)
    res = invoke(toy_run.path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out",
                 "--explainer", "popularity-reason", "--executor", "ray")
    assert isinstance(res.exception, RegistryError)
    assert str(res.exception).startswith("--executor: unknown executor 'ray'; it is provided by the plugin whyrec-ray: pip install -e plugins/whyrec-ray")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, error, message", [
    (["--model", "nope"], RunDirError, r"no model 'nope' in this run \(models: popularity\)"),
    (["--explainer", "tree-shapp"], RegistryError, r"--explainer: unknown explainer 'tree-shapp'"),
    (["--executor-opt", "workers"], DataError, r"--executor-opt 'workers': expected KEY=VALUE"),
    (["--executor-opt", "workers=0"], RegistryError, r"--executor local: executor 'local': workers must be >= 1, got 0"),
    (["--executor-opt", "threads=2"], RegistryError, r"^--executor local: --executor-opt: 'local' has no parameter 'threads' \(parameters: workers\)$"),
    (["--executor-opt", "worker=2"], RegistryError, r"'local' has no parameter 'worker'; did you mean 'workers'\?"),
    (["--executor-opt", "workers=abc"], RegistryError, r"^--executor local: --executor-opt workers: expected int, got str 'abc'$"),
    (["--executor-opt", "workers=1.5"], RegistryError, r"^--executor local: --executor-opt workers: expected int, got float 1\.5$"),
    (["--explainer-opt", "n=abc"], RegistryError, r"^--explainer popularity-reason: --explainer-opt: 'popularity-reason' takes no parameters, got 'n'$"),
])
def test_bad_arguments_are_one_line_errors(toy_run, tmp_path, args, error, message):
    pairs_file(tmp_path)
    res = invoke(toy_run.path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out",
                 *(["--explainer", "popularity-reason"] if "--explainer" not in args else []), *args)
    assert isinstance(res.exception, error), res.output + repr(res.exception)
    assert __import__("re").search(message, str(res.exception))
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_cold_start_failure_then_following_the_advice_into_the_same_out(toy_run, tmp_path, monkeypatch):
    from whyrec_example_plugin.popularity import PopularityReason

    def strict_explain(self, model, data, pairs):
        for u in pairs["user"]:
            data.check_user(u)  # an explainer that refuses unknown users
        return original(self, model, data, pairs)

    original = PopularityReason.explain
    monkeypatch.setattr(PopularityReason, "explain", strict_explain)
    pairs_file(tmp_path, unknown=3)
    args = [toy_run.path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out", "--explainer", "popularity-reason"]
    res = invoke(*args, "--cold-start", "explain")
    assert isinstance(res.exception, WhyrecError), repr(res.exception)
    assert "use cold_start = skip (--cold-start skip)" in str(res.exception)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_job.lock"]  # no claim left
    res = invoke(*args, "--cold-start", "skip")
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "explained 117, cold start 0, skipped 3" in res.output


def test_every_pair_skipped_warns(toy_run, tmp_path):
    pd.DataFrame({"user": [42.5, 1.5], "item": [1.0, 2.0]}).to_parquet(tmp_path / "pairs.parquet", index=False)
    res = CliRunner().invoke(explain_batch_command, [str(a) for a in (toy_run.path, "--pairs", tmp_path / "pairs.parquet",
                             "--out", tmp_path / "out", "--explainer", "popularity-reason")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "  explained 0, cold start 0, skipped 2 (rows with unknown user 2, unknown item 0)" in res.output
    assert "warning: every pair (2) was skipped: none names a user and an item of the run's dataset" in res.stderr


def test_default_explainer_tree_shap_that_supports_no_model_says_so(toy_run, tmp_path):
    pairs_file(tmp_path)
    res = invoke(toy_run.path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out")
    # the toy host has no whyrec-shap: the default explainer is named with the plugin to install
    assert isinstance(res.exception, RegistryError)
    assert "unknown explainer 'tree-shap'; it is provided by the plugin whyrec-shap" in str(res.exception)


def test_not_a_run_directory(tmp_path):
    pairs_file(tmp_path)
    res = invoke(tmp_path, "--pairs", tmp_path / "pairs.parquet", "--out", tmp_path / "out")
    assert isinstance(res.exception, RunDirError) and "not a whyrec run (no manifest.json)" in str(res.exception)


class _RefusesUnknownIds:
    """An explainer that, like tree-shap on a model without the id, cannot explain unknown ids."""

    def explain(self, model, data, pairs):
        from whyrec.errors import DataError

        raise DataError(f"user {pairs['user'].iloc[0]} is not in dataset {data.name!r}")


def test_skipped_pairs_get_advice_the_explainer_can_follow(toy_run, tmp_path):
    from whyrec.batch import _cold_start_advice

    data = Run(toy_run.path).load_data()
    model = Run(toy_run.path).load_model("popularity")
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame({"user": [3, 999], "item": [1, 2], "status": ["explained", "skipped"]}).to_parquet(out / "part-00000.parquet")
    refused = _cold_start_advice(_RefusesUnknownIds(), "tree-shap", model, data, out, {})
    assert refused.startswith("tree-shap cannot explain pairs whose user or item the dataset does not know (user 999 is not in")
    assert "--cold-start explain" not in refused
    from whyrec_example_plugin.popularity import PopularityReason

    assert _cold_start_advice(PopularityReason(), "popularity-reason", model, data, out, {}) == \
        "rerun into a new --out with --cold-start explain to explain them"
    pd.DataFrame({"user": [None], "item": [2], "status": ["skipped"]}).to_parquet(out / "part-00000.parquet")
    assert "no user or no item id" in _cold_start_advice(PopularityReason(), "popularity-reason", model, data, out, {})
