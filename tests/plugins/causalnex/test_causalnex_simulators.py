"""Validation against the whyrec-datasets simulators' ground truth (the true DAG and Monte-Carlo
E[label | do(feature = v)]), with the learner's defaults (BIC search, do() by the g-formula at
the value) but no bootstrap (bootstrap = 0: one search on all rows, for speed).

Stated tolerances (measured values in brackets, seed 0, 50,000 impressions, 10,000 used; the
Bayesian network's answer for the state, do_estimator = "bn", in braces):

=============  ======  ===========================  ============================================
simulator      SHD     do-MAE                       effect-MAE (vs the first listed value)
=============  ======  ===========================  ============================================
sim-ecommerce  <= 2    <= 0.03 [0.023] {0.034}      <= 0.05 [0.043] {0.075}
sim-video      <= 1    <= 0.07 [0.056] {0.038}      <= 0.12 [0.110] {0.054}
sim-finance    0       <= 0.01 [0.003] {0.032}      <= 0.01 [0.004] {0.073}
=============  ======  ===========================  ============================================

sim-video is the g-formula's bad case here: without a bootstrap the search orients recency ->
duration backwards (no v-structure identifies it), so do(duration) moves recency and, through
recency -> label, the outcome; the BN blurs that path inside its bins. With the default 20
bootstraps the bagged graph has the right orientation (SHD 0) and the g-formula's effect MAE is
0.006 (the BN's 0.109); ecommerce 0.016 (BN 0.066), finance 0.004 (BN 0.075). The BN's error is
mostly discretisation: it answers for the bin that holds a value (price 15 and 22 share the
"low" bin), not for the value itself.
"""
from __future__ import annotations

import pytest
from whyrec_datasets.simulators import SIMULATORS

from whyrec_causalnex.learner import CausalNexLearner

TOLERANCE = {
    # 2: price/discount/rating are item features in no v-structure, so their mutual orientation is not
    # identifiable from these data (the BIC search reverses discount-price and price-rating); the
    # edges into the outcome, which carry every effect, are checked exactly below
    "sim-ecommerce": {"shd": 2, "do_mae": 0.03, "effect_mae": 0.05},
    "sim-video": {"shd": 1, "do_mae": 0.07, "effect_mae": 0.12},
    "sim-finance": {"shd": 0, "do_mae": 0.01, "effect_mae": 0.01},
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
