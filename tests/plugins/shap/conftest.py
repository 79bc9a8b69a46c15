"""Fixtures for the whyrec-shap tests: toy data, fitted LightGBM models and a real linear model."""
from __future__ import annotations

import pandas as pd
import pytest

from shap_testkit import SMALL, LinearModel, toy


@pytest.fixture(scope="session")
def toy_data():
    return toy.make_toy_data()


@pytest.fixture(scope="session")
def lgb_model(toy_data):
    from whyrec_lightgbm.model import LightGBMModel

    m = LightGBMModel(**SMALL)
    m.fit(toy_data)
    return m


@pytest.fixture(scope="session")
def numeric_lgb(toy_data):
    """No categorical features: shap's own interventional TreeSHAP applies."""
    from whyrec_lightgbm.model import LightGBMModel

    m = LightGBMModel(**SMALL, features=["age", "price", "genre_A", "genre_B", "genre_C", "hist_genre_A", "hist_len", "genre_match"])
    m.fit(toy_data)
    return m


@pytest.fixture(scope="session")
def linear_model(toy_data):
    m = LinearModel()
    m.fit(toy_data)
    return m


@pytest.fixture(scope="session")
def top_pairs(lgb_model):
    return pd.concat([lgb_model.recommend(u, 4) for u in (1, 2, 5)], ignore_index=True)
