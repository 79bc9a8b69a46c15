"""causalnex-bn as a pipeline stage (the real runner) and `whyrec causal RUN --do ...`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import whyrec
import whyrec_causalnex
from whyrec import builtins
from whyrec.plugins import PluginHost

HERE = Path(__file__).parent

REGISTRY = """
[defaults]
pipeline = "toy"

[pipelines.toy]
seed = 0
sample_users = 12
top_k = 5
dataset = { use = "toy-scm", n_pairs = 4000 }
model = { use = "toy-logit" }
explainers = [ { use = "linear-shap" } ]
# quality - reviews is in no v-structure: observational data cannot orient it, domain knowledge does
causal = { use = "causalnex-bn", bootstrap = 4, effect_bootstrap = 20, required_edges = [["quality", "reviews"]] }
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    import cnx_toy_plugin

    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_causalnex, "whyrec-causalnex")
    host.add(cnx_toy_plugin, "cnx-toy")
    host.check()
    tmp = tmp_path_factory.mktemp("cnx-run")
    reg = tmp / "registry.toml"
    reg.write_text(REGISTRY)
    run = whyrec.run(registry=reg, out=tmp / "runs", host=host)
    assert run.manifest["status"] == "complete"
    return run.path


def test_stage_artifacts(run_dir):
    d = run_dir / "causal" / "causalnex-bn"
    for name in ("summary.json", "graph.json", "graph.png", "graph.svg", "graph.html", "bn.json", "effects.csv",
                 "effects.json", "feature_effects.csv", "edge_stability.csv", "causal_vs_attribution.csv",
                 "states.parquet"):
        assert (d / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stage = next(s for s in manifest["stages"] if s["name"] == "causal:causalnex-bn")
    assert stage["status"] == "complete" and stage["component"] == "causalnex-bn"
    assert stage["summary"]["standardise"] is True
    params = manifest["spec"]["causal"][0]["params"]
    assert params["bootstrap"] == 4 and params["w_threshold"] == 0.1  # defaults are recorded


def test_causal_vs_attribution_flags_the_proxy(run_dir):
    """The model sees reviews (a child of quality) instead of quality: it leans on a variable that
    causes nothing, and misses the real cause."""
    t = pd.read_csv(run_dir / "causal" / "causalnex-bn" / "causal_vs_attribution.csv").set_index("feature")
    assert t.loc["reviews", "flag"] == ("model leans on it more than its shown causal effect supports"
                                        " (a proxy or confounded, or an effect the learned graph misses)")
    assert t.loc["reviews", "attribution_share"] > 0.1 and t.loc["reviews", "causal_effect"] == 0.0
    assert t.loc["quality", "flag"] == "causal effect but the model ignores it (not a model input)"
    assert t.loc["price", "flag"] == "both agree" and t.loc["discount", "flag"] == "both agree"
    # directions: the model scores higher for a cheaper item, and do(high price) lowers clicks
    assert t.loc["price", "attribution_sign"] == -1 and t.loc["price", "causal_sign"] == -1
    assert set(t["model"]) == {"toy-logit"} and set(t["method"]) == {"linear-shap"}


def test_report_section(run_dir):
    html = (run_dir / "report.html").read_text()
    assert "What drives the outcome causally (CausalNex)" in html
    assert ("<b>reviews</b> (toy-logit, linear-shap): model leans on it more than its shown causal effect supports"
            " (a proxy or confounded, or an effect the learned graph misses) — ") in html
    # no path is reported as what the graph shows, never as "no effect"
    assert "That is what the learned graph shows, not proof of no effect: a cause the structure search missed" in html
    assert "Interactive graph" in html and "srcdoc=" in html  # the pyvis page is embedded: it loads nothing remote
    assert "P(outcome | do(feature = level))" in html and "structural Hamming distance" in html
    # the core's generic causal section does not repeat what ours shows
    assert html.count("edge_stability.csv") <= 1 and html.count("id=\"causalnex\"") == 1


def test_report_section_survives_a_broken_artifact(run_dir, tmp_path):
    import shutil

    from whyrec.rundir import Run

    from whyrec_causalnex.report import render_causal

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "causal" / "causalnex-bn" / "summary.json").write_text("{not json")
    sec = render_causal(Run(copy))
    assert sec.status == "missing" and "summary.json is not valid JSON" in sec.message
    assert "rerun `whyrec run toy`" in sec.message


def test_report_flags_estimates_outside_their_interval(run_dir, tmp_path):
    import shutil

    import pandas as pd
    from whyrec.rundir import Run

    from whyrec_causalnex.report import render_causal

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    d = copy / "causal" / "causalnex-bn"
    path = d / "effects.parquet"  # what the section reads
    eff = pd.read_parquet(path)
    assert "estimate_in_interval" in eff.columns and "fall outside their own bootstrap interval" not in render_causal(Run(copy)).body
    eff["estimate_in_interval"] = [False] + [True] * (len(eff) - 1)
    eff.to_parquet(path)
    html = render_causal(Run(copy)).body
    assert "<b>1 estimate(s) fall outside their own bootstrap interval</b>" in html and eff["description"].iloc[0] in html


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "whyrec"
    env = {**os.environ, "WHYREC_PROGRESS": "0"}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_do(run_dir):
    from whyrec_causalnex.learner import CausalNexLearner

    out = _cli("causal", str(run_dir), "--do", "price=low")
    assert out.returncode == 0, out.stderr
    want = CausalNexLearner.load(run_dir / "causal" / "causalnex-bn").intervene({"price": "low"})
    p = want["p_do"].iloc[1]
    line = out.stdout.strip()
    interval = CausalNexLearner.load(run_dir / "causal" / "causalnex-bn").states["price"].interval(0)
    assert line.startswith(f"P(label = 1 | do(price = low {interval})) = {p:.4f} (observed P(label = 1) = ")
    assert "bootstrap interval of the run [" in line
    assert out.stdout.splitlines()[-1] == "estimator: g-formula at the value (do_estimator = gformula)"
    # a value inside the bin is answered at the value: the state's interval (at its median) is not quoted
    st = CausalNexLearner.load(run_dir / "causal" / "causalnex-bn").states["price"]
    inside = _cli("causal", str(run_dir), "--do", f"price={st.support[0]}", "--format", "json")
    assert inside.returncode == 0, inside.stderr
    got = json.loads(inside.stdout)
    assert got["estimator"].startswith("g-formula") and got["ci"] is None


def test_cli_json_and_errors(run_dir):
    from whyrec.cli import main

    def call(*args):
        try:
            main(list(args))
        except SystemExit as exc:
            return exc.code
        return 0

    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert call("causal", str(run_dir), "--do", "discount=1", "--do", "price=high", "--format", "json") == 0
    out = json.loads(buf.getvalue())
    assert out["intervention"].startswith("do(discount = 1, price = high [") and out["ci"] is None
    assert [s["variable"] for s in out["set"]] == ["discount", "price"]
    assert out["set"][1]["states"][0]["state"] == "high" and out["set"][1]["states"][0]["weight"] == 1.0
    assert sum(r["p_do"] for r in out["distribution"]) == pytest.approx(1.0)
    for args, msg in [
        (("--do", "price=cheap"), "error: unknown state in the intervention: 'price' has no state 'cheap'"),
        (("--do", "prize=low"), "error: unknown node 'prize' in the intervention (did you mean 'price'?)"),
        (("--do", "price"), "error: --do 'price': expected FEATURE=VALUE, e.g. --do price=4.5"),
        (("--do", "colour=red"), "error: 'colour' is not connected to 'label' in the learned graph"),
        (("--name", "other", "--do", "price=low"), "error: "),
    ]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert call("causal", str(run_dir), *args) == 2
        assert err.getvalue().startswith(msg) and err.getvalue().count("\n") == 1, err.getvalue()


def test_cli_without_do_lists_the_effects(run_dir):
    from whyrec.cli import main

    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(["causal", str(run_dir)])
        except SystemExit as exc:
            assert exc.code in (0, None)
    text = buf.getvalue()
    assert text.startswith("P(label = 1) observed: ")
    assert "do(price: low): " in text and "do(discount: 1): " in text


def test_cli_on_a_run_without_the_stage(tmp_path):
    from whyrec.rundir import Run

    Run.create({"pipeline": "x", "stages": [], "status": "complete"}, tmp_path / "r")
    out = _cli("causal", str(tmp_path / "r"), "--do", "price=low")
    assert out.returncode == 2
    assert out.stderr.strip() == (f"error: {tmp_path / 'r'}: pipeline 'x' ran no causalnex-bn causal stage; add "
                                  "`causal = { use = \"causalnex-bn\" }` to it and rerun")


def test_cli_compare_text_and_json(run_dir):
    out = _cli("causal", str(run_dir), "--compare")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("toy-logit / linear-shap: causal effect on label vs attribution\n")
    proxy = ("model leans on it more than its shown causal effect supports"
             " (a proxy or confounded, or an effect the learned graph misses)")
    assert f"  ! reviews: {proxy}: " in text
    line = next(ln for ln in text.splitlines() if ln.startswith("  reviews "))
    assert line.endswith(proxy) and "0.000" in line
    out = _cli("causal", str(run_dir), "--compare", "--format", "json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    t = pd.read_csv(run_dir / "causal" / "causalnex-bn" / "causal_vs_attribution.csv")
    assert got["outcome"] == "label" and len(got["rows"]) == len(t)
    rows = {r["feature"]: r for r in got["rows"]}
    assert rows["reviews"]["flag"] == proxy and rows["price"]["flag"] == "both agree"
    assert rows["price"]["attribution_direction"] == pytest.approx(-1.0)
    assert [r["feature"] for r in got["flagged"]] == [f for f in t["feature"] if t.set_index("feature").loc[f, "flag"].startswith(
        ("sign of", "model leans", "causal effect but"))]
    bad = _cli("causal", str(run_dir), "--compare", "--do", "price=low")
    assert bad.returncode == 2 and bad.stderr == "error: --compare and --do ask different questions; give one of them\n"


def test_cli_do_in_data_units_and_not_actionable(run_dir):
    from whyrec_causalnex.learner import CausalNexLearner

    learner = CausalNexLearner.load(run_dir / "causal" / "causalnex-bn")
    hi = learner.states["price"].support[1]
    out = _cli("causal", str(run_dir), "--do", f"price={hi + 100}")
    assert out.returncode == 2 and out.stderr.startswith(f"error: intervention: price = {hi + 100} is outside the data: ")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    # quality is not actionable in the toy schema: answered, and labelled
    out = _cli("causal", str(run_dir), "--do", "quality=high")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1] == ("note: not actionable: quality is observed, not set by the business "
                                          "(actionable: price, discount); this is a what-if on the learned graph, "
                                          "unsupported as a decision")
    out = _cli("causal", str(run_dir), "--do", "quality=high", "--format", "json")
    got = json.loads(out.stdout)
    assert got["actionable"] is False and got["label"].startswith("not actionable: quality")
