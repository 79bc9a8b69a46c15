"""The feedback stage of a pipeline on the Open Bandit logs, and its report section."""
from __future__ import annotations

import json

import pytest
import whyrec_datasets
from whyrec import builtins
from whyrec.plugins import PluginHost
from whyrec.rundir import Run

import whyrec_feedback
from whyrec_feedback.report import render_feedback

REGISTRY = """
[pipelines.obd-feedback]
seed = 1
dataset = { use = "open-bandit", test_fraction = 0.0 }
feedback = [
  { use = "ab-test", control = "random", logs = { use = "open-bandit" } },
  { use = "off-policy", name = "uniform-from-bts", logging_variant = "bts", reference_variant = "random", bootstrap = 300, logs = { use = "open-bandit" } },
]
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from whyrec.runner import run

    tmp = tmp_path_factory.mktemp("pipeline")
    reg = tmp / "registry.toml"
    reg.write_text(REGISTRY)
    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_datasets, "whyrec-datasets")
    host.add(whyrec_feedback, "whyrec-feedback")
    host.check()
    return run("obd-feedback", registry=reg, out=tmp / "runs", host=host).path


def test_feedback_stages_write_their_reports(run_dir):
    man = json.loads((run_dir / "manifest.json").read_text())
    assert man["status"] == "complete"
    stages = {s["name"]: s for s in man["stages"]}
    ab = stages["feedback:ab-test"]
    assert ab["status"] == "complete" and ab["summary"]["per_arm"]["bts"]["clicks"] == 42
    ope = json.loads((run_dir / "feedback" / "uniform-from-bts" / "summary.json").read_text())
    assert ope["estimates"]["IPS"]["covers_reference"] and ope["reference"]["ctr"] == 0.0038
    assert (run_dir / "feedback" / "ab-test" / "arms.csv").exists()
    assert (run_dir / "feedback" / "uniform-from-bts" / "estimates.png").exists()


def test_report_section(run_dir):
    sec = render_feedback(Run(run_dir))
    assert sec.status == "ok"
    assert set(sec.covers) == {"feedback/ab-test", "feedback/uniform-from-bts"}
    assert "Sequential test: mSPRT" in sec.body and "Johari" in sec.body
    assert "on-policy CTR of &#x27;random&#x27; = 0.0038" in sec.body
    assert sec.body.count("<img") >= 4
    html = (run_dir / "report.html").read_text()
    assert "Feedback analysis: A/B tests and off-policy estimates" in html


def test_report_section_says_what_is_missing(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "feedback" / "ab-test" / "summary.json").write_text("{broken")
    sec = render_feedback(Run(copy))
    assert sec.status == "missing"
    assert "feedback/ab-test" in sec.message and "rerun `whyrec run obd-feedback`" in sec.message
    assert "uniform-from-bts" in sec.body  # the other stage still shows


def test_explanation_ab_test_from_a_feedback_log_in_a_pipeline(tmp_path):
    """A pipeline reads a recorded feedback log (one malformed line) through the feedback-log dataset."""
    from whyrec.runner import run

    from whyrec_feedback.store import record_event

    log = tmp_path / "feedback.jsonl"
    for k in range(60):
        method = ("attention-map", "tree-shap")[k % 2]
        record_event(log, "impression", k, k % 5, variant="explained", explanation_method=method, label=int(k % 3 == 0))
        record_event(log, "explanation_feedback", k, k % 5, explanation_method=method, helpful=k % 2 == 1 or k % 5 == 0)
        if k == 10:
            with open(log, "a") as fh:
                fh.write("not json\n")
    reg = tmp_path / "registry.toml"
    reg.write_text(f"""
[pipelines.explanations]
dataset = {{ use = "feedback-log", path = "{log}" }}
feedback = {{ use = "ab-test", arm = "explanation_method", metric = "helpful", control = "attention-map", min_exposures = 5, logs = {{ use = "feedback-log", path = "{log}" }} }}
""")
    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.add(whyrec_feedback, "whyrec-feedback")
    out = run("explanations", registry=reg, out=tmp_path / "runs", host=host)
    stage = next(s for s in out.manifest["stages"] if s["name"] == "feedback:ab-test")
    assert any("line 23: " in w and "line skipped" in w for w in stage["warnings"])
    s = stage["summary"]
    assert s["per_arm"]["tree-shap"] == {"exposures": 30, "helpful": 30, "helpful_rate": 1.0,
                                         "ci_low": pytest.approx(s["per_arm"]["tree-shap"]["ci_low"]), "ci_high": 1.0}
    assert s["per_arm"]["attention-map"]["helpful"] == 6
    assert s["explanations"]["most_helpful"] == "tree-shap"
    with pytest.raises(Exception, match="no such events file"):
        from whyrec_feedback.dataset import FeedbackLog

        FeedbackLog(str(tmp_path / "missing.jsonl")).load()
