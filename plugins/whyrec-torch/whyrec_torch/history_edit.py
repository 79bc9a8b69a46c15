"""Removing history items from encoded rows, and ranking a user's candidates afterwards.

A history item is removed by masking its position in the sequence input (its id becomes
padding and the attention renormalises over the rest). The aggregate history features that a
dataset may derive from the same history (genre shares, ``hist_len``, ``genre_match``) are
held at their values: these edits ask what the *sequence channel* — the part attention,
Grad-CAM and the history counterfactual talk about — contributes. Working on encoded rows
means a user's candidates are featurised once, however many edits are scored.
"""
from __future__ import annotations

from dataclasses import dataclass
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
    """One user's candidate items, encoded once, with ranks computed for history edits."""

    user: Any
    items: np.ndarray
    enc: Encoded

    @classmethod
    def build(cls, model: Any, data: RecData, user: Any) -> "UserCandidates":
        cands = data.candidates(user)
        pairs = pd.DataFrame({USER: np.repeat(user, len(cands)), ITEM: cands})
        X = data.features(pairs)[model.feature_names]
        return cls(user, cands, model.encode(X))

    def index_of(self, item: Any) -> int | None:
        hit = np.flatnonzero(self.items == item)
        return int(hit[0]) if len(hit) else None

    def ranks(self, model: Any, removals: list[Iterable[int]], targets: list[int], uniform: bool = False) -> np.ndarray:
        """Rank (1 = best) of candidate ``targets[j]`` after removing ``removals[j]``; all
        variants are scored in one batched call. Ties are broken by candidate order, as
        ``recommend`` does (a stable sort)."""
        if not removals:
            return np.zeros(0, dtype=np.int64)
        stacked = stack([remove_positions(self.enc, r) for r in removals])
        scores = model.forward_encoded(stacked, uniform_attention=uniform).reshape(len(removals), len(self.items))
        t = np.asarray(targets, dtype=np.int64)
        own = scores[np.arange(len(t)), t]
        earlier = np.arange(len(self.items))[None, :] < t[:, None]
        above = (scores > own[:, None]) | ((scores == own[:, None]) & earlier)
        return 1 + above.sum(axis=1)
