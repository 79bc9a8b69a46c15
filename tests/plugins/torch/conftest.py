"""Fixtures for whyrec-torch: a small synthetic RecData with a history sequence, and a model
trained on it once per session (CPU, one thread, seeded)."""
from __future__ import annotations

import pandas as pd
import pytest

from whyrec_torch.model import TorchAttentionModel
from whyrec_torch.toy import make_toy_data

from torch_fixtures import COLD_USER


@pytest.fixture(scope="session")
def toy():
    return make_toy_data(n_users=60, n_items=40, history_length=5, seed=0)


@pytest.fixture(scope="session")
def model(toy):
    m = TorchAttentionModel(epochs=12, device="cpu", num_threads=1, seed=0)
    m.fit(toy)
    return m


@pytest.fixture(scope="session")
def pairs(model):
    """Top-4 of three users with a history and of the cold-start user."""
    return pd.concat([model.recommend(u, 4) for u in (1, 2, 3, COLD_USER)], ignore_index=True)


@pytest.fixture(scope="session")
def seq_model(toy):
    """Without the genre features the history is the only route to the user's taste."""
    m = TorchAttentionModel(epochs=15, device="cpu", num_threads=1, seed=0, exclude=["genre_match", "genre"])
    m.fit(toy)
    return m
