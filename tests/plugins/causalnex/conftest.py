"""Fixtures of the whyrec-causalnex tests: the toy click SCM (cnx_toyscm.py) and a fitted learner."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from cnx_toyscm import make_sim  # noqa: E402


@pytest.fixture(scope="session")
def sim():
    return make_sim()


@pytest.fixture(scope="session")
def fitted(sim):
    """A learner run end to end on the toy SCM (shared: fitting is the slow part).

    Domain knowledge "the shop prices by quality" orients the quality-price pair, which
    observational data cannot (see test_learner.test_recovers_the_skeleton_and_flags_the_orientation)."""
    from whyrec_causalnex.learner import CausalNexLearner

    learner = CausalNexLearner(bootstrap=8, effect_bootstrap=20, seed=0, bins=3, required_edges=[["quality", "price"]])
    graph = learner.learn(sim)
    learner.fit(sim, graph)
    return learner
