"""Fixtures for the whyrec-lightgbm tests: the in-memory toy RecData and a fitted model."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def load_toy():
    """tests/plugins/lightgbm/toy.py, loaded by path (the shap tests share it)."""
    spec = importlib.util.spec_from_file_location("whyrec_test_toy", Path(__file__).with_name("toy.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


toy = load_toy()

SMALL = dict(n_estimators=60, num_leaves=7, min_child_samples=5, num_threads=1, learning_rate=0.1)


@pytest.fixture(scope="session")
def toy_data():
    return toy.make_toy_data()


@pytest.fixture(scope="session")
def lgb_model(toy_data):
    from whyrec_lightgbm.model import LightGBMModel

    m = LightGBMModel(**SMALL)
    m.fit(toy_data)
    return m
