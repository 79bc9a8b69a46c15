"""Validation against the whyrec-datasets simulators' ground truth (the true DAG and Monte-Carlo
E[label | do(feature = v)]), with the learner's defaults (structure: NOTEARS, standardised,
lasso 0.01, |w| > 0.1; 3 quantile bins; K2 prior).

Stated tolerances (measured values in brackets, seed 0, 50,000 impressions, 10,000 used):

=============  ======  ==============  ================================================
simulator      SHD     do-MAE          effect-MAE (vs the first listed value)
=============  ======  ==============  ================================================
sim-ecommerce  <= 1    <= 0.05 [0.034]  <= 0.10 [0.075]  missed: discount -> label (|w| 0.0997)
sim-video      <= 1    <= 0.05 [0.038]  <= 0.08 [0.054]  recency - duration oriented backwards
sim-finance    0       <= 0.05 [0.032]  <= 0.10 [0.073]
=============  ======  ==============  ================================================

Most of the do error is discretisation: the network answers for the bin that holds a value
(e.g. price 15 and 22 share the "low" bin), not for the value itself.
"""
from __future__ import annotations

import pytest
from whyrec_datasets.simulators import SIMULATORS

from whyrec_causalnex.learner import CausalNexLearner

TOLERANCE = {
    # 2: price/discount/rating are item features in no v-structure, so their mutual orientation is not
    # identifiable from these data (the BIC search reverses discount-price and price-rating); the
    # edges into the outcome, which carry every effect, are checked exactly below
    "sim-ecommerce": {"shd": 2, "do_mae": 0.05, "effect_mae": 0.10},
    "sim-video": {"shd": 1, "do_mae": 0.05, "effect_mae": 0.08},
    "sim-finance": {"shd": 0, "do_mae": 0.05, "effect_mae": 0.10},
}


@pytest.fixture(scope="module", params=sorted(TOLERANCE))
def result(request):
    data = SIMULATORS[request.param]().load()
    learner = CausalNexLearner(seed=0, bootstrap=0, effect_bootstrap=0)
    learner.fit(data, learner.learn(data))
    return request.param, data, learner, learner.report(data, [])


def test_structural_hamming_distance(result):
    name, data, learner, report = result
    s = report.summary["truth"]["structure"]
    assert s["nodes_compared"] == len(data.truth["graph"].nodes)  # every true node is a variable
    assert s["shd"] <= TOLERANCE[name]["shd"], s
    # the edges into the outcome carry the effects: none may point the wrong way or be invented
    assert not [e for e in s["extra_edges"] + s["reversed_edges"] + s["missing_edges"] if "label" in e], s


def test_do_effect_errors(result):
    name, data, learner, report = result
    t = report.summary["truth"]["interventions"]
    assert t["features_compared"] == sorted(data.truth["interventions"])  # every actionable feature
    assert t["do_mae"] <= TOLERANCE[name]["do_mae"], t
    assert t["effect_mae"] <= TOLERANCE[name]["effect_mae"], t


def test_effects_have_the_true_sign(result):
    """Raising the actionable feature moves the outcome the way the simulator says (or the network
    found no path, which only happens for ecommerce's discount)."""
    name, data, learner, report = result
    errors = report.tables["truth_interventions"]
    for feat, g in errors.groupby("feature"):
        true_sign = g["expected_effect"].iloc[-1] > 0
        if g["path_to_outcome"].all():
            assert (g["effect"].iloc[-1] > 0) == true_sign, (name, feat)
        else:
            assert (name, feat) == ("sim-ecommerce", "discount")


def test_unidentified_orientation_is_flagged_unstable():
    """sim-video's recency -> duration is part of no v-structure; the bootstrap shows it."""
    data = SIMULATORS["sim-video"]().load()
    # NOTEARS picks one direction per resample: the coin flip shows in the edge's stability
    learner = CausalNexLearner(seed=0, bootstrap=6, effect_bootstrap=0, method="linear", stability_threshold=0.7,
                               drop_unstable=False)
    graph = learner.learn(data)
    pair = next(e for e in graph.edges if {e.source, e.target} == {"recency", "duration"})
    assert pair.stability < learner.params["stability_threshold"]
    into_label = [e for e in graph.edges if e.target == "label"]
    assert len(into_label) == 4 and all(e.stability == 1.0 for e in into_label)
