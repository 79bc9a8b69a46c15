"""Fixtures for the whyrec-distill tests: toy data, small fitted teachers, fast report settings."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from distill_toy import make_toy_data  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny networks on a shared 2-core machine: one thread is ~20x faster than two."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="session")
def data():
    return make_toy_data()


@pytest.fixture(scope="session")
def other_schema_data():
    """The same kind of data without the ``price`` feature: saved models must refuse it."""
    return make_toy_data(drop=("price",))


@pytest.fixture(scope="session")
def torch_teacher(data):
    from whyrec_torch.model import TorchAttentionModel

    m = TorchAttentionModel(epochs=3, embedding_dim=8, attention_hidden=8, hidden=[32], seed=0)
    m.fit(data)
    return m


@pytest.fixture(scope="session")
def lgb_teacher(data):
    from whyrec_lightgbm.model import LightGBMModel

    m = LightGBMModel(n_estimators=40, num_leaves=7, min_child_samples=5, num_threads=1, seed=0)
    m.fit(data)
    return m
