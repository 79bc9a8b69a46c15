"""Fixtures of the feedback plugin tests: the real Open Bandit sample (random and BTS logs,
from whyrec-datasets' open-bandit loader) and small simulated logs with a known truth."""
from __future__ import annotations

import pytest

from whyrec_feedback.simulate import simulate_events


@pytest.fixture(scope="session")
def obd():
    """OBD 'all' campaign: 10,000 impressions logged by uniform random, 10,000 by BTS."""
    from whyrec_datasets.openbandit import OpenBandit

    return OpenBandit(policy="both").load().interactions


@pytest.fixture(scope="session")
def sim():
    return simulate_events(60_000, seed=3)
