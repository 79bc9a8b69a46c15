"""lime in a pipeline: the runner saves its explanation and its fidelity verdict, and a run
whose surrogates fit poorly carries the caution the report shows next to the reasons."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("lime")

from whyrec.explanation import Explanation
from whyrec.plugins import get_host
from whyrec.report.verdicts import caution_for
from whyrec.runner import run as run_pipeline

REGISTRY = """
[pipelines.p]
seed = 1
sample_users = 2
top_k = 2
dataset = { use = "sim-ecommerce", n_rows = 1500 }
model = { use = "lightgbm", n_estimators = 20, num_leaves = 7, num_threads = 1 }
explainers = [ { use = "lime", num_samples = 200, background_size = 20, stability_seeds = 2, min_fidelity = 1.0 } ]

"""


def test_pipeline_saves_lime_and_flags_low_fidelity(tmp_path):
    """min_fidelity = 1: no linear surrogate of a tree model fits exactly, so every pair is flagged."""
    (tmp_path / "r.toml").write_text(REGISTRY)
    run = run_pipeline("p", registry=tmp_path / "r.toml", out=tmp_path / "runs", host=get_host(fresh=True))
    d = run.path / "explanations" / "lime__lightgbm"
    e = Explanation.load(d)
    assert e.method == "lime" and len(e.pairs) == 4 and e.pairs["fidelity"].between(-1, 1).all()
    q = json.loads((d / "quality" / "summary.json").read_text())
    assert q["kind"] == "lime-fidelity"
    assert e.pairs["low_fidelity"].all() and all(r[0].startswith("Caution: low local fidelity") for r in e.reasons)
    assert q["faithful"] == "no" and "fits the model poorly" in caution_for(run.path, "lime", "lightgbm")
    html = (run.path / "report.html").read_text()
    assert "caution: unfaithful on this model" in html and "low local fidelity" in html
