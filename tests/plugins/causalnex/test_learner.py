"""The causalnex-bn learner end to end on the toy click SCM (cnx_toyscm.py), whose true graph and
interventional effects are known."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cnx_toyscm import TRUE_EDGES
from whyrec.causal import CausalGraph
from whyrec.errors import RunDirError
from whyrec_causalnex.learner import CausalNexLearner


@pytest.fixture(scope="module")
def report(fitted, sim):
    return fitted.report(sim, [])


def test_recovers_the_skeleton_and_flags_the_orientation(sim):
    """Defaults only: every true edge is found; the edges into the outcome are oriented (the
    outcome causes nothing); quality-price is part of no v-structure, so observational data
    cannot orient it: NOTEARS picks one direction and the bootstrap shows the coin flip."""
    learner = CausalNexLearner(bootstrap=8, effect_bootstrap=0, seed=0, method="linear", stability_threshold=0.7,
                               drop_unstable=False)
    g = learner.learn(sim)
    skeleton = {frozenset(e) for e in g.edge_set()}
    assert skeleton == {frozenset(e) for e in TRUE_EDGES}
    assert {(s, t) for s, t in g.edge_set() if t == "label"} == {e for e in TRUE_EDGES if e[1] == "label"}
    assert set(g.nodes) == {"age", "quality", "price", "discount", "colour", "label"}  # ids are not variables
    stab = learner.structure.stability
    assert all(stab[e] >= 0.8 for e in TRUE_EDGES if e[1] == "label")
    assert stab.get(("quality", "price"), 0) + stab.get(("price", "quality"), 0) == 1.0  # always linked
    assert 0 < stab.get(("quality", "price"), 0) < 1  # ... in both directions
    pair = next(e for e in g.edges if {e.source, e.target} == {"quality", "price"})
    assert pair.stability < 0.7  # reported as unstable


def test_recovers_the_true_graph_with_domain_knowledge(fitted):
    g = fitted.graph
    assert g.edge_set() == set(TRUE_EDGES)  # SHD 0: every edge, every direction
    w = {(e.source, e.target): e.weight for e in g.edges}
    assert w[("quality", "price")] > 0 and w[("price", "label")] < 0 and w[("discount", "label")] > 0
    assert all(e.stability >= 0.8 for e in g.edges if e.target == "label")


def test_constraints_and_standardisation_are_recorded(fitted):
    c = fitted.graph.constraints
    assert c["required_edges"] == [["quality", "price"]]
    assert c["tabu_parents"] == ["label"]  # the outcome causes nothing
    assert c["tabu_children"] == ["age"]  # nothing causes user features
    assert c["field_rules"]["item"] == ["item"]
    m = fitted.graph.method
    assert m["standardise"] is True and m["preprocessing"] == "columns centred and scaled to unit variance"
    assert m["algorithm"] == "BIC search over DAGs (whyrec structure_select), bagged over bootstraps"  # the default


def test_network_excludes_variables_not_connected_to_the_outcome(fitted):
    assert fitted.net.variables == ["age", "quality", "price", "discount", "label"]  # colour has no edge


def test_do_effects(report, fitted):
    eff = report.tables["effects"]
    price = eff[eff.feature == "price"].set_index("state")
    assert list(price.index) == ["low", "medium", "high"]
    assert price.loc["low", "p_do"] > price.loc["medium", "p_do"] > price.loc["high", "p_do"]
    assert price.loc["high", "effect_vs_first"] < 0 and price.loc["high", "effect_high"] < 0  # interval below 0
    assert (price["p_do_low"] <= price["p_do_high"]).all()
    disc = eff[eff.feature == "discount"].set_index("state")
    assert disc.loc["1", "p_do"] - disc.loc["0", "p_do"] > 0.2
    assert disc.loc["1", "effect_low"] > 0.2
    # price is confounded by quality: conditioning is not intervening
    assert price.loc["low", "p_do"] - price.loc["low", "p_observed"] > 0.02
    # only the actionable features are intervention targets; every feature gets a point effect
    fx = report.tables["feature_effects"].set_index("feature")
    assert set(fx.index[fx.intervention_target]) == {"price", "discount"}
    assert fx.loc["colour", "effect"] == 0.0 and not fx.loc["colour", "path_to_outcome"]
    assert np.isnan(fx.loc["quality", "effect_low"])  # no bootstrap for non-targets: interval unknown
    assert fx.loc["quality", "effect"] > 0.1


def test_effects_match_the_true_interventions(report):
    """Validation against the SCM's Monte-Carlo E[label | do(x = v)] (stated tolerances)."""
    truth = report.summary["truth"]
    assert truth["structure"]["shd"] == 0
    t = report.tables["truth_interventions"].set_index(["feature", "value"])
    # discount is binary: no discretisation error, only estimation error
    assert t.loc[("discount", 0.0), "abs_error"] < 0.03 and t.loc[("discount", 1.0), "abs_error"] < 0.03
    assert t.loc[("discount", 1.0), "effect_abs_error"] < 0.03
    # price 10 is the middle of its bin; 7 and 13 lie in the tails of the outer bins, whose
    # do-probability averages the whole bin (measured 0.14 and 0.22): the price of 3 bins
    assert t.loc[("price", 10.0), "abs_error"] < 0.03
    assert truth["interventions"]["do_mae"] < 0.1


def test_predictive_quality_on_the_test_split(report):
    q = report.summary["predictive_quality"]
    assert q["test_rows"] == 1000
    assert q["auc"] > 0.7
    assert q["log_loss"] < q["log_loss_base_rate"] and q["brier"] < q["brier_base_rate"]
    assert q["predictors"] == ["age", "discount", "price", "quality"]  # the outcome's parents


def test_predict_proba_is_the_cpd_of_the_outcome(fitted):
    parents, arr = fitted.net.cpd_arrays()["label"]
    row = {v: 0 for v in fitted.net.variables}
    row.update({"price": 2, "discount": 1})
    p = fitted.net.predict_proba(pd.DataFrame([row]))[0]
    idx = tuple([slice(None)] + [row[q] for q in parents])
    np.testing.assert_allclose(p, arr[idx], atol=1e-12)


def test_intervene(fitted, report):
    res = fitted.intervene({"price": "high"})
    assert list(res.columns) == ["outcome", "state", "p_do", "p_observed", "change", "intervention", "actionable"]
    assert res["intervention"].iloc[0] == f"do(price = high {fitted.states['price'].interval(2)})"
    assert res["actionable"].all()  # price is an actionable feature of the schema
    eff = report.tables["effects"]
    p_high = eff[(eff.feature == "price") & (eff.state == "high")]["p_do"].iloc[0]
    assert res["p_do"].iloc[1] == pytest.approx(p_high, abs=1e-12)
    assert res["p_do"].sum() == pytest.approx(1.0)
    assert res["change"].iloc[1] == pytest.approx(res["p_do"].iloc[1] - res["p_observed"].iloc[1])
    # levels by interval, by a value in the data's units (never a state code); several variables at once.
    # A value is answered at the value itself (the g-formula), a state at its training median
    top = fitted.states["price"].support[1]
    at_top = fitted.intervene({"price": top})
    assert at_top["p_do"].iloc[1] == pytest.approx(fitted.do_model.gf.mean_outcome({"price": top}), abs=1e-12)
    assert at_top["p_do"].iloc[1] != pytest.approx(p_high, abs=1e-6)  # not the state's answer
    assert at_top.attrs["estimator"].startswith("g-formula at the value")
    assert fitted.intervene({"price": fitted.states["price"].interval(2)})["p_do"].iloc[1] == pytest.approx(p_high, abs=1e-12)
    both = fitted.intervene({"price": "low", "discount": "1"})
    only_price = fitted.intervene({"price": "low"})
    assert both["p_do"].iloc[1] > only_price["p_do"].iloc[1]
    # an intervention on a variable with no path to the outcome changes nothing... age has one
    assert fitted.intervene({"age": "high"})["p_do"].iloc[1] > fitted.intervene({"age": "low"})["p_do"].iloc[1]


def test_bn_json_round_trip_answers_without_refitting(fitted, tmp_path):
    fitted.save(tmp_path)
    loaded = CausalNexLearner.load(tmp_path)
    assert loaded.net.edges == fitted.net.edges
    for var, (parents, arr) in fitted.net.cpd_arrays().items():
        p2, a2 = loaded.net.cpd_arrays()[var]
        assert p2 == parents
        np.testing.assert_allclose(a2, arr, atol=1e-12)
    for do in ({"price": "low"}, {"discount": "1", "age": "medium"}):
        pd.testing.assert_frame_equal(loaded.intervene(do), fitted.intervene(do))
    text = (tmp_path / "bn.json").read_text()
    assert json.loads(text)["network"]["format"] == "whyrec-causalnex-bn/1"
    # do() at a value is answered by the saved g-formula (gformula.json), identically
    top = fitted.states["price"].support[1]
    assert loaded.intervene({"price": top})["p_do"].tolist() == fitted.intervene({"price": top})["p_do"].tolist()
    (tmp_path / "gformula.json").unlink()
    with pytest.raises(RunDirError, match=r"gformula.json: missing; do_estimator = 'gformula' answers do\(\) from it"):
        CausalNexLearner.load(tmp_path)


def test_report_artifacts(report):
    assert set(report.files) == {"graph.json", "graph.svg", "graph.html", "bn.json", "effects.json", "gformula.json"}
    assert report.summary["do_estimator"] == "gformula"
    assert report.tables["effects"]["do_value"].notna().all()
    assert set(report.tables) >= {"effects", "feature_effects", "edge_stability", "causal_vs_attribution", "states",
                                  "truth_interventions"}
    assert set(report.csv_tables) == {"effects", "feature_effects", "edge_stability", "causal_vs_attribution"}
    assert "graph" in report.figures
    g = CausalGraph.from_dict(json.loads(report.files["graph.json"]))
    assert g.edge_set() == set(TRUE_EDGES)
    assert report.files["graph.svg"].lstrip().startswith("<?xml") and "<svg" in report.files["graph.svg"]
    s = report.summary
    assert s["standardise"] is True and "unit variance" in s["standardisation"]
    assert s["unstable_edges"] == [] and "bootstrap" in s["caution"]
    assert s["interventions"] == ["price", "discount"] and s["interventions_from"] == "the schema's actionable features"
    stab = report.tables["edge_stability"]
    assert stab[stab.in_graph & (stab.target == "label")].stability.min() >= 0.8
    assert not stab[~stab.in_graph].stable.any()  # edges outside the graph are rare in the resamples
    assert bool(stab.set_index(["source", "target"]).loc[("quality", "price"), "required"]) is True


def test_interactive_html_loads_nothing_from_the_network(report):
    from whyrec.report.artifacts import remote_references

    page = report.files["graph.html"]
    assert remote_references(page) == []
    assert "cdn.jsdelivr" not in page and "<script src" not in page
    assert "vis-network" in page or "vis.Network" in page  # the library is inlined
    assert '"price"' in page and "stability" in page


def test_report_saves_into_a_directory(report, tmp_path):
    written = report.save(tmp_path)
    names = {p.name for p in written}
    assert {"graph.png", "graph.svg", "graph.html", "graph.json", "bn.json", "effects.csv", "effects.json",
            "edge_stability.csv", "causal_vs_attribution.csv", "summary.json"} <= names
    assert (tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_supervised_discretisation_and_bdeu(sim):
    learner = CausalNexLearner(bootstrap=0, effect_bootstrap=0, discretiser="supervised", prior="BDeu",
                               equivalent_sample_size=5.0, seed=1, interventions=["price"])
    learner.fit(sim, learner.learn(sim))
    assert learner.states["price"].method == "supervised"
    rep = learner.report(sim, [])
    assert rep.summary["interventions"] == ["price"] and rep.summary["interventions_from"] == "the configured `interventions`"
    eff = rep.tables["effects"]
    assert set(eff[eff["intervention_target"]]["feature"]) == {"price"}
    eff = eff[eff["intervention_target"]]
    assert eff["p_do_low"].isna().all()  # no bootstrap asked: no interval
    assert rep.summary["unstable_edges"] == [] and "stability unknown" in rep.summary["caution"]
    p = eff["p_do"].to_numpy()
    assert p[0] > p[-1]  # cheaper converts better


def test_drop_unstable_and_required_edges(sim):
    learner = CausalNexLearner(bootstrap=4, effect_bootstrap=0, seed=0, required_edges=[["colour", "label"]],
                               drop_unstable=True)
    g = learner.learn(sim)
    assert ("colour", "label") in g.edge_set()  # required, though the data give it no weight
    stab = learner.stability_table().set_index(["source", "target"])
    assert bool(stab.loc[("colour", "label"), "required"]) is True
    assert g.constraints["required_edges"] == [["colour", "label"]]


def test_ancestral_network_gives_the_same_interventions(sim):
    """do-effects run on the outcome's ancestors only; the answer must equal the whole network's."""
    from whyrec.causal import Edge

    learner = CausalNexLearner(bootstrap=0, effect_bootstrap=0, seed=0)
    # colour hangs off quality without reaching the outcome: not an ancestor of label
    graph = CausalGraph(nodes=["quality", "price", "colour", "discount", "label"],
                        edges=[Edge("quality", "price"), Edge("quality", "label"), Edge("price", "label"),
                               Edge("quality", "colour"), Edge("discount", "label")])
    learner.fit(sim, graph)
    full = learner.net
    anc = full.ancestral()
    assert anc.variables == ["quality", "price", "discount", "label"]
    for var in ("quality", "price", "discount"):
        for lvl in range(full.states[var].n_states):
            np.testing.assert_allclose(anc.do_outcome({var: lvl}), full.do_outcome({var: lvl}), atol=1e-12)


def test_nonlinear_notears_end_to_end(sim):
    learner = CausalNexLearner(method="nonlinear", hidden_units=4, max_iter=10, max_rows=1500, bootstrap=0,
                               effect_bootstrap=0, seed=0, variables=["quality", "price", "discount"])
    g = learner.learn(sim)
    assert g.method["algorithm"] == "NOTEARS nonlinear (CausalNex 0.12.2)"
    assert g.is_acyclic() and all(e.source != "label" for e in g.edges)
    assert ("discount", "label") in g.edge_set()  # the clearest cause: independent of everything else
    learner.fit(sim, g)
    assert learner.intervene({"discount": "1"})["p_do"].iloc[1] > learner.intervene({"discount": "0"})["p_do"].iloc[1]
