"""Fixtures for the whyrec-lime tests: toy data, a fixed linear model, a small LightGBM model."""
from __future__ import annotations

import pandas as pd
import pytest

from lime_testkit import SMALL, FixedLinear, Interacting, toy


@pytest.fixture(scope="session")
def lime_toy():
    return toy.make_toy_data()


@pytest.fixture(scope="session")
def fixed_linear(lime_toy):
    m = FixedLinear(seed=3)
    m.fit(lime_toy)
    return m


@pytest.fixture(scope="session")
def interacting(lime_toy):
    m = Interacting(seed=3)
    m.fit(lime_toy)
    return m


@pytest.fixture(scope="session")
def lime_lgb(lime_toy):
    from whyrec_lightgbm.model import LightGBMModel

    m = LightGBMModel(**SMALL)
    m.fit(lime_toy)
    return m


@pytest.fixture(scope="session")
def lime_pairs(lime_lgb):
    return pd.concat([lime_lgb.recommend(u, 2) for u in (1, 2, 5)], ignore_index=True)
