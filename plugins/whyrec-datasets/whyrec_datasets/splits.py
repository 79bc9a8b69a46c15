"""Time-based train/test splits and sampled negatives (vectorised, seeded)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from whyrec.errors import DataError


@dataclass
class SplitReport:
    """What a split did, kept in ``RecData.params["split"]`` and shown by ``datasets describe``."""

    kind: str
    test_fraction: float
    train_rows: int = 0
    test_rows: int = 0
    users_without_train: int = 0
    dropped_test_rows: int = 0
    examples: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def message(self) -> str | None:
        if not self.users_without_train:
            return None
        action = (f"their {self.dropped_test_rows} test rows were dropped (cold start)"
                  if self.dropped_test_rows else "they are kept in test as cold-start users")
        return (f"time split: {self.users_without_train} users have no training interactions "
                f"(e.g. {self.examples[:3]}); {action}")


def time_split(user: np.ndarray, time: np.ndarray, test_fraction: float, kind: str = "user",
               keep_cold_start: bool = False, quiet: bool = False,
               names: np.ndarray | None = None, n_users: int | None = None) -> tuple[np.ndarray, np.ndarray, SplitReport]:
    """``(is_test, keep, report)``: booleans per row, and what happened.

    kind "user": each user's latest ``floor(n * test_fraction)`` interactions go to test, and
    only those strictly later than the user's last training interaction (ties at the boundary
    stay in training), so every test interaction is later than all of that user's training ones.
    kind "global": one cut-off time at the (1 - test_fraction) quantile for everyone; users whose
    interactions all fall after it have no training data: reported, and their test rows dropped
    unless ``keep_cold_start``. ``user`` holds user ids, or integer codes 0..n_users-1 when
    ``n_users`` is given; ``names`` maps codes to the ids shown in the report.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction={test_fraction} must be in [0, 1)")
    time = np.asarray(time, dtype=np.float64)
    n = len(time)
    if n_users is None:  # ids, not codes yet
        codes, uniq = pd.factorize(np.asarray(user))
        n_users, names = len(uniq), np.asarray(uniq)
    else:
        codes = np.asarray(user, dtype=np.int64)
    report = SplitReport(kind=kind, test_fraction=test_fraction)
    if test_fraction == 0 or n == 0:
        is_test = np.zeros(n, dtype=bool)
    elif kind == "user":
        # Each user's cut-off is an order statistic of their times: one sort of the int64 key
        # user * n + (rank of the time), no lexsort and no per-user loop.
        order_t = np.argsort(time, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order_t] = np.arange(n, dtype=np.int64)
        key = codes * np.int64(n) + rank
        key.sort()
        counts = np.bincount(codes, minlength=n_users)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        n_test = np.floor(counts * test_fraction).astype(np.int64)
        last_train = np.clip(start + counts - n_test - 1, 0, max(n - 1, 0))  # sorted position
        cutoff = time[order_t[key[last_train] % n]]
        is_test = (n_test[codes] > 0) & (time > cutoff[codes])
    elif kind == "global":
        cutoff = np.quantile(time, 1.0 - test_fraction, method="lower")
        is_test = time > cutoff
    else:
        raise DataError(f"split={kind!r} is not 'user' or 'global'")
    # Users with no training row at all (only possible with the global split).
    train_count = np.bincount(codes[~is_test], minlength=n_users)
    cold = is_test & (train_count[codes] == 0)
    if cold.any():
        cold_users = np.flatnonzero(np.bincount(codes[cold], minlength=n_users))
        report.users_without_train = int(len(cold_users))
        shown = names[cold_users[:5]] if names is not None else cold_users[:5]
        report.examples = [x.item() if hasattr(x, "item") else x for x in shown]
        if not keep_cold_start:
            report.dropped_test_rows = int(cold.sum())
    keep = ~cold if not keep_cold_start else np.ones(n, dtype=bool)
    report.train_rows = int((~is_test).sum())
    report.test_rows = int((is_test & keep).sum())
    msg = report.message()
    if msg and not quiet:
        print(f"whyrec: {msg}", file=sys.stderr)
    return is_test, keep, report


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    # np.unique hashes in numpy 2.x and is slow on int64 keys; sort + mask is several times faster.
    a = np.sort(a)
    if len(a) == 0:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


def _isin_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    return sorted_keys[np.minimum(pos, len(sorted_keys) - 1)] == keys


def sample_negatives(user: np.ndarray, n_items: int, exclude_keys: np.ndarray, per_row: int,
                     rng: np.random.Generator, rounds: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """For each row (a positive), ``per_row`` random items the user never interacted with.

    user: user codes of the positives; exclude_keys: sorted unique ``user * n_items + item`` of
    every observed interaction. Returns (row index of the positive, item code), each
    (user, item) sampled at most once. Rejection sampling: a user gets at most half of the items
    they have not interacted with (so rejection stays cheap); heavy users therefore may get
    fewer than ``per_row`` negatives per positive.
    """
    if per_row <= 0 or len(user) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    user = np.asarray(user, dtype=np.int64)
    n_users = int(max(user.max(), (exclude_keys.max() // n_items) if len(exclude_keys) else 0)) + 1
    rated = np.bincount(exclude_keys // n_items, minlength=n_users)
    cap = (n_items - rated) // 2
    parent = np.repeat(np.arange(len(user), dtype=np.int64), per_row)
    u = user[parent]
    # keep each user's first cap[u] slots
    order = np.argsort(u, kind="stable")
    counts = np.bincount(u, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(u), dtype=np.int64)
    rank[order] = np.arange(len(u)) - start[u[order]]
    ok = rank < cap[u]
    parent, u = parent[ok], u[ok]
    item = rng.integers(0, n_items, size=len(parent), dtype=np.int64)
    todo = np.ones(len(parent), dtype=bool)
    taken = np.zeros(0, dtype=np.int64)
    for _ in range(rounds):
        idx = np.flatnonzero(todo)
        if len(idx) == 0:
            break
        key = u[idx] * n_items + item[idx]
        hit = _isin_sorted(key, exclude_keys) | _isin_sorted(key, taken)
        ok_idx, k = idx[~hit], key[~hit]
        # duplicates among this round's draws: keep the first of each (user, item)
        o = np.argsort(k, kind="stable")
        first = np.ones(len(k), dtype=bool)
        first[o[1:]] = k[o[1:]] != k[o[:-1]]
        accepted = ok_idx[first]
        todo[accepted] = False
        taken = np.sort(np.concatenate([taken, k[first]]))
        redo = np.concatenate([idx[hit], ok_idx[~first]])
        item[redo] = rng.integers(0, n_items, size=len(redo), dtype=np.int64)
    done = ~todo
    return parent[done], item[done]
