"""The CLI as a user meets it: exit codes, one-line errors, JSON contracts."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core_helpers import TOY, whyrec_cli


def assert_user_error(res, *fragments):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip()
    assert "Traceback" not in res.stderr
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "registry.toml").write_text(TOY)
    res = whyrec_cli("run", "--out", str(d / "runs"), cwd=d)
    assert res.returncode == 0, res.stderr
    assert "report:" in res.stdout or "run complete" in res.stdout
    (run_dir,) = (d / "runs").iterdir()
    return d, run_dir


def test_help_is_fast_and_lists_commands():
    res = whyrec_cli("--help")
    assert res.returncode == 0
    for cmd in ("run", "validate", "plugins", "explain", "report"):
        assert cmd in res.stdout


HEAVY = "('torch', 'lightgbm', 'shap', 'causalnex', 'ray', 'mlflow', 'captum', 'sklearn', 'pgmpy')"


def _loaded(code: str) -> list:
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print(sorted(m for m in {HEAVY} + ('pandas',) if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.replace("'", '"'))


def test_import_whyrec_loads_nothing_heavy():
    assert _loaded("import whyrec, whyrec.cli") == []


def test_loading_every_installed_plugin_imports_no_heavy_library():
    # whyrec --help loads every plugin (for their commands): plugins must register lazily.
    assert _loaded("import whyrec.cli, whyrec.plugins; whyrec.cli.cli._load(); whyrec.plugins.get_host().collect()") == []


def test_validate_ok_and_bad(tmp_path):
    (tmp_path / "registry.toml").write_text(TOY)
    ok = whyrec_cli("validate", cwd=tmp_path)
    assert ok.returncode == 0 and "1 pipeline(s) valid: toy" in ok.stdout
    (tmp_path / "bad.toml").write_text(TOY.replace('use = "popularity"', 'use = "popularty"'))
    assert_user_error(whyrec_cli("validate", "--registry", "bad.toml", cwd=tmp_path), "bad.toml: pipelines.toy.model.use: unknown model 'popularty'; did you mean 'popularity'?")
    # several problems: validate lists every one (run and the Python API give the first and a count)
    (tmp_path / "two.toml").write_text(TOY.replace('use = "popularity"', 'use = "popularty"').replace("n_users = 20", 'n_users = "20"'))
    res = whyrec_cli("validate", "--registry", "two.toml", cwd=tmp_path)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 3 and "Traceback" not in res.stderr
    assert lines[0] == "error: two.toml: pipelines.toy.dataset.n_users: expected int, got str '20'"
    assert lines[1].startswith("error: two.toml: pipelines.toy.model.use: unknown model 'popularty'")
    assert lines[2] == "error: two.toml: 2 problems (above)"
    run = whyrec_cli("run", "--registry", "two.toml", cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.strip().endswith("(and 1 more problem(s); `whyrec validate` lists them all)")


def test_missing_registry(tmp_path):
    assert_user_error(whyrec_cli("run", cwd=tmp_path), "registry.toml: registry file not found")


def test_non_toml_registry(tmp_path):
    (tmp_path / "registry.toml").write_text("[pipelines\n")
    assert_user_error(whyrec_cli("validate", cwd=tmp_path), "not valid TOML")


def test_unknown_pipeline(tmp_path):
    (tmp_path / "registry.toml").write_text(TOY)
    assert_user_error(whyrec_cli("run", "toys", cwd=tmp_path), "unknown pipeline 'toys'; did you mean 'toy'?")
    assert not (tmp_path / "runs").exists()


def test_wrong_parameter_type(tmp_path):
    (tmp_path / "registry.toml").write_text(TOY.replace("n_users = 20", 'n_users = "20"'))
    assert_user_error(whyrec_cli("run", cwd=tmp_path), "pipelines.toy.dataset.n_users: expected int, got str '20'")


def test_debug_shows_traceback(tmp_path):
    res = whyrec_cli("--debug", "run", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" in res.stderr


def test_not_a_run_directory(tmp_path):
    assert_user_error(whyrec_cli("explain", str(tmp_path), "--user", "1"), "not a whyrec run (no manifest.json)")
    assert_user_error(whyrec_cli("report", str(tmp_path / "nope")), "no such run directory")


def test_explain_json_contract(toy_run):
    _, run_dir = toy_run
    res = whyrec_cli("explain", str(run_dir), "--user", "2", "-k", "3", "--format", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["user"] == 2 and [r["rank"] for r in out["recommendations"]] == [1, 2, 3]
    scores = [r["score"] for r in out["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    for rec in out["recommendations"]:
        assert set(rec) >= {"item", "rank", "score", "explanations"}
        (e,) = rec["explanations"]
        assert set(e) >= {"method", "output_value", "base_value", "attributions", "field_attributions", "additivity_error", "reasons"}
        assert abs(e["base_value"] + sum(e["attributions"].values()) - e["output_value"]) == pytest.approx(e["additivity_error"], abs=1e-12)
        assert e["output_value"] == pytest.approx(rec["score"])


def test_explain_bad_user_and_k(toy_run):
    _, run_dir = toy_run
    assert_user_error(whyrec_cli("explain", str(run_dir), "--user", "999"), "user '999' is not in dataset 'toy'")
    assert_user_error(whyrec_cli("explain", str(run_dir), "--user", "2", "-k", "1000"), "k=1000 but user 2 has")


def test_explain_needs_an_explainers_stage(toy_run, tmp_path):
    d, _ = toy_run
    (tmp_path / "registry.toml").write_text(TOY.replace('explainers = [ { use = "popularity-reason" } ]', ""))
    assert whyrec_cli("run", "--out", "runs", cwd=tmp_path).returncode == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert_user_error(whyrec_cli("explain", str(run_dir), "--user", "2"), "ran no 'explainers' stage, which `whyrec explain` needs")


def test_why_above(toy_run):
    _, run_dir = toy_run
    out = json.loads(whyrec_cli("explain", str(run_dir), "--user", "2", "--why-above", "5", "6", "--format", "json").stdout)
    assert sum(out["difference"].values()) + out["base_gap"] == pytest.approx(out["score_gap"], abs=1e-9)


def test_why_above_names_items_the_user_already_has_and_non_additive_methods(toy_run, host):
    from whyrec.explain import why_above_json, why_above_text
    from whyrec.rundir import Run

    _, run_dir = toy_run
    run = Run(run_dir, host=host)
    seen = sorted(run.load_data().seen(2))
    unseen = [i for i in run.load_data().item_ids if i not in set(seen)]
    out = why_above_json(run, 2, seen[0], unseen[0])
    assert out["seen_a"] and not out["seen_b"] and out["rank_a"] is None
    assert out["counterfactual"]["found"] is False and "already interacted with" in out["counterfactual"]["reason"]
    text = why_above_text(out)
    assert "(already interacted with, not ranked" in text and "is already in the top-k" not in text
    flat = why_above_text({**out, "additive": False, "method": "attention-map"})
    assert "attention-map is not additive, so the differences below are in its own units and do not sum to the gap" in flat
    assert "= differences below" not in flat


def test_a_file_given_as_run_directory_is_named_as_a_file(tmp_path):
    (tmp_path / "registry.toml").write_text(TOY)
    assert_user_error(whyrec_cli("explain", str(tmp_path / "registry.toml"), "--user", "1"),
                      f"{tmp_path / 'registry.toml'}: is a file, not a run directory")
