"""The report never overstates (issue 15, items 1-7, 9, 10): units from the explanation,
cautions next to reasons of unfaithful methods, numbers rounded for people, one name per
model, verdicts for explanation quality, the interactive graph, instance names and summaries."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

import whyrec
from whyrec.explain import format_text
from whyrec.explanation import Explanation
from whyrec.report import build_report, fmt_value, interactive_graph, model_label, round_text
from whyrec.report.html import explanation_label
from whyrec.report.sections import _unit
from whyrec.report.verdicts import caution_for, verdict
from whyrec.schema import Feature, FeatureSchema

import test_report_plugin as kit  # noqa: E402  (tests/core is on sys.path: see conftest.py)
from test_report import parse  # noqa: E402


# -- numbers and names ---------------------------------------------------------------------
@pytest.mark.parametrize("value, shown", [(4.292613636363637, "4.29"), (0.7234, "0.723"), (0.012345, "0.0123"),
                                          (999.7, "1000"), (12.345, "12.3"), (3.0, "3"), (123456, "123\u2009456")])
def test_numbers_are_rounded_for_people(value, shown):
    assert fmt_value(value) == shown


def test_long_decimals_in_sentences_are_rounded_but_versions_and_hashes_are_not():
    assert round_text("p = 0.04312345, mean 4.292613636363637") == "p = 0.0431, mean 4.29"
    assert round_text("lightgbm 4.6.0, hash 1a2b3c4d5e, 1.5 s") == "lightgbm 4.6.0, hash 1a2b3c4d5e, 1.5 s"


def test_one_display_name_per_model():
    assert model_label("distill__torch-attention") == model_label("distill:torch-attention") == "distill:torch-attention"
    assert explanation_label("tree-shap__distill__torch-attention", "tree-shap") == ("tree-shap", "distill:torch-attention")
    assert explanation_label("fast__lightgbm", "tree-shap") == ("fast (tree-shap)", "lightgbm")


# -- units ---------------------------------------------------------------------------------
def _expl(method="m", additive=True, summary=None, params=None):
    schema = FeatureSchema([Feature("a", "user"), Feature("b", "item")])
    pairs = pd.DataFrame({"user": [1, 2], "item": [3, 4], "output_value": [1.0, 2.0], "base_value": [0.0, 0.0]})
    attr = pd.DataFrame({"a": [0.5, 1.0], "b": [0.5, 1.0]})
    return Explanation(method=method, model="x", pairs=pairs, schema=schema, attributions=attr, additive=additive,
                       summary=summary or {}, params=params or {})


def test_units_come_from_the_explanation():
    att = _expl("attention-map", additive=False, summary={"attribution_units": "attention weight (sums to 1)"})
    assert _unit(att) == "attention weight (sums to 1)"
    flags = _expl("history-counterfactual", additive=False)
    assert "model output" not in _unit(flags)  # a non-additive method is never labelled in model-output units
    assert _unit(_expl(summary={"output_units": "log-odds"})) == "model output, log-odds"


# -- verdicts and cautions -----------------------------------------------------------------
def test_verdicts():
    bad = verdict({"kind": "faithfulness", "faithful": "no", "verdict": "attention disagrees with leave-one-out",
                   "kendall_tau_attention_loo_median": -0.02})
    assert bad.level == "unfaithful" and "attention disagrees" in bad.caution
    good = verdict({"kind": "explanation-quality", "deletion_gain_over_random": 0.24, "insertion_gain_over_random": 0.23,
                    "seed_spearman_mean": 0.95, "sanity_passed": True})
    assert good.level == "ok" and good.caution is None
    chance = verdict({"kind": "explanation-quality", "deletion_gain_over_random": -0.01, "insertion_gain_over_random": 0.2})
    assert chance.level == "unfaithful"
    shaky = verdict({"kind": "explanation-quality", "deletion_gain_over_random": 0.2, "insertion_gain_over_random": 0.2,
                     "seed_spearman_mean": 0.4})
    assert shaky.level == "care" and shaky.caution is None


def test_explain_text_prints_the_base_value_and_the_caution():
    out = {"user": 1, "model": "lightgbm", "recommendations": [{"rank": 1, "title": "Toy Story", "item": 5, "score": 1.11,
           "explanations": [
               {"method": "tree-shap", "base_value": -3.044, "output_value": 1.11, "additive": True, "caution": None,
                "field_attributions": {"item": 4.154, "user": 0.0}, "reasons": ["it is an Adventure film"]},
               {"method": "attention-map", "base_value": None, "output_value": 1.11, "additive": False,
                "caution": "judged unfaithful on this model: it disagrees with leave-one-out",
                "field_attributions": {"history": 1.0}, "reasons": ["because you watched Fluke (1995)"]}]}]}
    text = format_text(out)
    assert "base value -3.044" in text and "item +4.154" in text and "-> 1.110" in text
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if "[attention-map]" in line)
    assert "not additive" in lines[i]
    assert lines[i + 1].strip().startswith("caution: judged unfaithful") and "Fluke" in lines[i + 2]


# -- the interactive graph -----------------------------------------------------------------
def test_interactive_graph_is_offline_svg_with_weights_and_stability():
    html = interactive_graph(["a", "b", "c", "label"],
                             [{"source": "a", "target": "b", "weight": 0.5, "stability": 1.0},
                              {"source": "a", "target": "label", "weight": -0.25, "stability": 0.3},
                              {"source": "b", "target": "label", "weight": 0.1}], outcome="label")
    assert "<svg" in html and "<script>" in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert 'data-info="a → label: weight -0.25, stability 30% of refits"' in html
    assert html.count('class="wr-edge"') == 3 and 'stroke-dasharray' in html  # the unstable edge is dashed
    assert "<title>a → b: weight 0.5, stability 100% of refits</title>" in html  # the fallback without scripts


# -- a run: two instances of one method, summaries, cautions -----------------------------------
CLAIMS = """
[pipelines.claims]
seed = 3
sample_users = 2
top_k = 3
dataset = { use = "toy", n_users = 12 }
model = { use = "linear" }
explainers = [ { use = "linear-shap", name = "shap-fast" }, { use = "linear-shap", name = "shap-slow" },
               { use = "history-attention" } ]
"""


@pytest.fixture(scope="module")
def claims_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("claims")
    (tmp / "registry.toml").write_text(CLAIMS)
    return whyrec.run("claims", registry=tmp / "registry.toml", out=tmp / "runs", host=kit.make_host())


def test_two_instances_keep_their_names_and_summaries_reach_the_manifest(claims_run):
    m = json.loads((claims_run.path / "manifest.json").read_text())
    expl = {s["instance"]: s for s in m["stages"] if s["kind"] == "explainer"}
    assert set(expl) >= {"shap-fast", "shap-slow"}
    assert expl["shap-fast"]["method"] == "linear-shap"
    assert expl["shap-fast"]["summary"] == {"output_units": "log-odds"}  # the explanation's own summary
    secs = parse(claims_run.path / "report.html")
    text = secs["global-importance"]["text"]
    assert "shap-fast (linear-shap) on linear" in text and "shap-slow (linear-shap) on linear" in text
    assert "reasons (history-attention)" in secs["users"]["text"]


def test_reasons_of_an_unfaithful_method_carry_the_caution(claims_run, tmp_path):
    import shutil

    d = tmp_path / claims_run.path.name
    shutil.copytree(claims_run.path, d)
    q = d / "explanations" / "history-attention__linear" / "quality"
    q.mkdir(parents=True)
    (q / "summary.json").write_text(json.dumps({"kind": "faithfulness", "faithful": "no",
                                               "verdict": "attention does not follow leave-one-out effects",
                                               "kendall_tau_attention_loo_median": -0.02}))
    assert caution_for(d, "history-attention", "linear").startswith("judged unfaithful")
    assert caution_for(d, "shap-fast", "linear") is None
    secs = parse(build_report(d, host=kit.make_host()))
    users = secs["users"]["html"]
    # every cell of the method's reasons carries the caution, next to the reasons themselves
    cells = re.findall(r"<td>(<span class=\"wr-caution\".*?)</td>", users, re.S)
    assert cells and all("attention does not follow" in c and "because you liked" in c for c in cells)
    quality = secs["explanation-quality"]
    assert "unfaithful on this model" in quality["text"] and "<details>" in quality["html"]
