"""Fixtures for the kg-paths tests: the toy table with a triples file (kg_toy.py)."""
from __future__ import annotations

import warnings

import pytest

from kg_toy import HistoryWeights, toy_table


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the toy graph places every id: no warning may fire
        return toy_table(tmp_path_factory.mktemp("kg-toy"))


@pytest.fixture(scope="session")
def weights_model(toy):
    m = HistoryWeights()
    m.fit(toy)
    return m
