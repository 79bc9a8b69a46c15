"""The user's recent history as of a point in time, vectorised over millions of pairs.

Why point in time: a training positive must not see itself (or later items) in its own history,
or a sequence model learns "the target is in the history" and fails at recommendation time,
when candidates are by definition unseen. So a pair that is a training event gets the history
strictly before that event; every other pair (test, candidates) gets the user's whole training
history. Sampled negatives carry the timestamp of their positive, so both get the same history
and the history cannot leak the label.
"""
from __future__ import annotations

import numpy as np


class HistoryIndex:
    """Training positives sorted by (user, time), with per-user offsets.

    user / item are integer codes (0..n_users-1, 0..n_items-1); time is any orderable numeric.
    """

    def __init__(self, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_users: int, length: int) -> None:
        order = np.lexsort((time, user))
        self.user = np.asarray(user)[order].astype(np.int64)
        self.item = np.asarray(item)[order].astype(np.int64)
        self.time = np.asarray(time)[order].astype(np.float64)
        self.n_users = n_users
        self.length = length
        users = np.arange(n_users)
        self.start = np.searchsorted(self.user, users, side="left")
        self.end = np.searchsorted(self.user, users, side="right")
        self._times, rank = np.unique(self.time, return_inverse=True)
        self._span = np.int64(2 * len(self._times) + 2)
        self._keys = self.user * self._span + 2 * rank.astype(np.int64)  # sorted: same (user, time) order

    def cut_before(self, user: np.ndarray, time: np.ndarray) -> np.ndarray:
        """Index one past the user's last positive strictly earlier than ``time`` (per pair).

        One global searchsorted on an integer key: ``user * span + 2 * rank`` for the known
        positives (rank among their distinct times) and ``user * span + 2 * k - 1`` for a query,
        where k = how many distinct known times are < its time; so a query key sits just below
        the user's first positive at or after its time.
        """
        user = np.asarray(user, dtype=np.int64)
        time = np.asarray(time, dtype=np.float64)
        finite = np.isfinite(time)
        out = self.end[user].copy()  # +inf / NaN time: the whole training history
        if finite.any():
            k = np.searchsorted(self._times, time[finite], side="left").astype(np.int64)
            out[finite] = np.searchsorted(self._keys, user[finite] * self._span + 2 * k - 1, side="left")
        return out

    def matrix(self, user: np.ndarray, cut: np.ndarray) -> np.ndarray:
        """(pairs, length) item codes of the last ``length`` positives before ``cut``, most recent
        first, -1 where the history is shorter."""
        user = np.asarray(user, dtype=np.int64)
        if self.length == 0 or len(self.item) == 0:
            return np.full((len(user), self.length), -1, dtype=np.int64)
        idx = cut[:, None] - 1 - np.arange(self.length)[None, :]
        valid = idx >= self.start[user][:, None]
        return np.where(valid, self.item[np.clip(idx, 0, len(self.item) - 1)], -1)


class PairLookup:
    """Find which (user, item) pairs are training events, and their event time."""

    def __init__(self, user: np.ndarray, item: np.ndarray, time: np.ndarray, n_items: int) -> None:
        keys = np.asarray(user, dtype=np.int64) * n_items + np.asarray(item, dtype=np.int64)
        order = np.lexsort((np.asarray(time, dtype=np.float64), keys))  # earliest event first
        keys, time = keys[order], np.asarray(time, dtype=np.float64)[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        self.keys, self.time, self.n_items = keys[first], time[first], n_items

    def time_of(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Event time of each pair in training (its earliest), +inf for pairs not in training."""
        q = np.asarray(user, dtype=np.int64) * self.n_items + np.asarray(item, dtype=np.int64)
        pos = np.searchsorted(self.keys, q)
        pos_c = np.minimum(pos, max(len(self.keys) - 1, 0))
        found = (pos < len(self.keys)) & (self.keys[pos_c] == q) if len(self.keys) else np.zeros(len(q), bool)
        return np.where(found, self.time[pos_c] if len(self.keys) else np.inf, np.inf)
