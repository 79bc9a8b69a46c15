"""Fixtures for the whyrec-lightgbm tests: the in-memory toy RecData and a fitted model."""
from __future__ import annotations

import pytest

import lgb_toy_data as toy

SMALL = toy.SMALL


@pytest.fixture(scope="session")
def toy_data():
    return toy.make_toy_data()


@pytest.fixture(scope="session")
def lgb_model(toy_data):
    from whyrec_lightgbm.model import LightGBMModel

    m = LightGBMModel(**SMALL)
    m.fit(toy_data)
    return m
