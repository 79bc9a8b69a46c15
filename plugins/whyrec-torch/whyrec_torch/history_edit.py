"""Removing history items from encoded rows, and ranking a user's candidates afterwards.

A history item is removed by masking its position in the sequence input (its id becomes
padding and the attention renormalises over the rest). The aggregate history features that a
dataset may derive from the same history (genre shares, ``hist_len``, ``genre_match``) are
held at their values: these edits ask what the *sequence channel* — the part attention,
Grad-CAM and the history counterfactual talk about — contributes. Working on encoded rows
means a user's candidates are featurised once, however many edits are scored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData

from .encoding import MISSING, Encoded


def remove_positions(enc: Encoded, positions: Iterable[int]) -> Encoded:
    """A copy of ``enc`` with the given history positions emptied in every row."""
    pos = np.asarray(list(positions), dtype=np.int64)
    items = enc.items.copy()
    mask = enc.mask.copy()
    if len(pos):
        items[:, 1 + pos] = MISSING
        mask[:, pos] = False
    return Encoded(items, enc.cat, enc.num, mask)


def stack(parts: list[Encoded]) -> Encoded:
    """Concatenate encoded batches row-wise (one scoring call for many edits)."""
    return Encoded(np.concatenate([p.items for p in parts]), np.concatenate([p.cat for p in parts]),
                   np.concatenate([p.num for p in parts]), np.concatenate([p.mask for p in parts]))


@dataclass
class UserCandidates:
    """One user's candidate items, encoded once; scores after history edits are cached by the
    set of removed positions, so the explained items of one user share every ranking."""

    user: Any
    items: np.ndarray
    enc: Encoded
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, model: Any, data: RecData, user: Any) -> "UserCandidates":
        cands = data.candidates(user)
        pairs = pd.DataFrame({USER: np.repeat(user, len(cands)), ITEM: cands})
        X = data.features(pairs)[model.feature_names]
        return cls(user, cands, model.encode(X))

    def index_of(self, item: Any) -> int | None:
        hit = np.flatnonzero(self.items == item)
        return int(hit[0]) if len(hit) else None

    def scores(self, model: Any, removals: list[Iterable[int]], uniform: bool = False) -> np.ndarray:
        """(len(removals), candidates) logits; edits not scored before go in one batched call."""
        keys = [(frozenset(int(p) for p in r), uniform) for r in removals]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            stacked = stack([remove_positions(self.enc, sorted(k[0])) for k in todo])
            got = model.forward_encoded(stacked, uniform_attention=uniform).reshape(len(todo), len(self.items))
            self._cache.update(zip(todo, got))
        if not keys:
            return np.zeros((0, len(self.items)))
        return np.stack([self._cache[k] for k in keys])

    def head(self, model: Any, n: int, keep: Iterable[int] = ()) -> tuple["UserCandidates", np.ndarray]:
        """The ``n`` best candidates under the unedited history (plus ``keep``), as their own
        UserCandidates, and the map from full to head index (-1 where absent). A rank among a
        subset of the candidates is a lower bound of the rank among all of them: when the head
        says an item fell out of the top-k, it did."""
        base = self.scores(model, [[]])[0]
        idx = np.argsort(-base, kind="stable")[:n]
        extra = np.setdiff1d(np.asarray(list(keep), dtype=np.int64), idx)
        key = ("head", n, tuple(extra.tolist()))  # usually no extra: heads are shared by a user's items
        if key in self._cache:
            return self._cache[key]
        idx = np.sort(np.concatenate([idx, extra]))
        where = np.full(len(self.items), -1, dtype=np.int64)
        where[idx] = np.arange(len(idx))
        out = (UserCandidates(self.user, self.items[idx], self.enc.take(idx)), where)
        self._cache[key] = out
        return out

    @property
    def scored(self) -> int:
        """How many candidate rankings were computed (for cost reports)."""
        return sum(1 for k in self._cache if k[0] != "head")

    def ranks(self, model: Any, removals: list[Iterable[int]], targets: list[int], uniform: bool = False) -> np.ndarray:
        """Rank (1 = best) of candidate ``targets[j]`` after removing ``removals[j]``. Ties are
        broken by candidate order, as ``recommend`` does (a stable sort)."""
        if not removals:
            return np.zeros(0, dtype=np.int64)
        scores = self.scores(model, removals, uniform)
        t = np.asarray(targets, dtype=np.int64)
        own = scores[np.arange(len(t)), t]
        earlier = np.arange(len(self.items))[None, :] < t[:, None]
        above = (scores > own[:, None]) | ((scores == own[:, None]) & earlier)
        return 1 + above.sum(axis=1)
