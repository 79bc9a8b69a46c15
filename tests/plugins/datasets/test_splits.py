"""Time split and negative sampling, on hand-made examples with exact answers."""
from __future__ import annotations

import numpy as np
import pytest

from whyrec.errors import DataError
from whyrec_datasets.splits import sample_negatives, time_split


def test_per_user_split_exact():
    user = np.array(["a"] * 5 + ["b"] * 5 + ["c"] + ["d"] * 5)
    time = np.array([5, 1, 3, 2, 4, 1, 2, 2, 2, 3, 7, 5, 5, 5, 5, 5], dtype=float)
    is_test, keep, rep = time_split(user, time, 0.4)
    assert sorted(time[(user == "a") & is_test]) == [4, 5]
    assert list(time[(user == "b") & is_test]) == [3]  # ties at the boundary stay in training
    assert not is_test[user == "c"].any() and not is_test[user == "d"].any()
    assert keep.all() and rep.users_without_train == 0 and rep.test_rows == 3


def test_global_split_reports_users_without_training_data(capsys):
    user = np.array([1, 1, 2, 2, 3])
    time = np.array([1, 9, 2, 8, 10], dtype=float)
    is_test, keep, rep = time_split(user, time, 0.4, "global")
    assert list(is_test) == [False, True, False, False, True]
    assert rep.users_without_train == 1 and rep.examples == [3] and rep.dropped_test_rows == 1
    assert list(keep) == [True, True, True, True, False]
    assert "1 users have no training interactions (e.g. [3])" in capsys.readouterr().err
    _, keep2, rep2 = time_split(user, time, 0.4, "global", keep_cold_start=True, quiet=True)
    assert keep2.all() and rep2.dropped_test_rows == 0 and capsys.readouterr().err == ""


def test_split_parameters():
    with pytest.raises(DataError, match=r"test_fraction=1.0 must be in \[0, 1\)"):
        time_split(np.array([1]), np.array([1.0]), 1.0)
    with pytest.raises(DataError, match="split='random'"):
        time_split(np.array([1]), np.array([1.0]), 0.5, "random")


def test_sampled_negatives_avoid_seen_items_and_repeat_nothing():
    n_items = 20
    seen_user = np.array([0, 0, 0, 1, 1, 2])
    seen_item = np.array([1, 2, 3, 4, 5, 6])
    exclude = np.sort(seen_user * n_items + seen_item)
    pos_user = np.array([0, 0, 0, 1, 1, 2])
    parent, item = sample_negatives(pos_user, n_items, exclude, 2, np.random.default_rng(0))
    u = pos_user[parent]
    keys = u * n_items + item
    assert not np.isin(keys, exclude).any()
    assert len(np.unique(keys)) == len(keys) == 12
    assert np.bincount(parent).tolist() == [2] * 6
    # a user may get at most half of the items they have not seen: user 0 has 17 unseen -> 8
    parent, item = sample_negatives(np.zeros(10, int), n_items, exclude, 3, np.random.default_rng(1))
    assert len(item) == 8 and len(set(item)) == 8 and not set(item) & {1, 2, 3}
