"""Removing history items from encoded rows, and ranking a user's candidates afterwards.

A history item is removed by masking its position in the sequence input (its id becomes
padding and the attention renormalises over the rest). What happens to the aggregate history
features a dataset derives from the same history (genre shares, ``hist_len``, ``genre_match``)
is the editor's choice:

- ``hold`` keeps their values: the edit asks what the *sequence channel* contributes — what
  attention and Grad-CAM talk about, so the faithfulness checks use it;
- ``rederive`` rebuilds them through the dataset's ``history_deriver`` from the edited
  sequence: the edit asks what the recommendation would be had the user not watched the
  item, every feature it fed included — what the history counterfactual tells a user.

A user's candidates are featurised once; ``hold`` edits work on the encoded rows alone,
``rederive`` edits re-encode the edited feature rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from whyrec.data import RecData

from .encoding import MISSING, Encoded

EDIT_MODES = ("rederive", "hold")


def remove_positions(enc: Encoded, positions: Iterable[int]) -> Encoded:
    """A copy of ``enc`` with the given history positions emptied in every row."""
    pos = np.asarray(list(positions), dtype=np.int64)
    items = enc.items.copy()
    mask = enc.mask.copy()
    if len(pos):
        items[:, 1 + pos] = MISSING
        mask[:, pos] = False
    return Encoded(items, enc.cat, enc.num, mask)


@dataclass
class HistoryEditor:
    """Applies a removal of history positions to encoded rows (and their feature rows)."""

    model: Any
    data: RecData | None = None
    mode: str = "hold"

    @classmethod
    def choose(cls, model: Any, data: RecData, mode: str = "auto") -> "HistoryEditor":
        """``auto``: rederive when the dataset can rebuild its history features, else hold."""
        from whyrec.errors import UnsupportedError, WhyrecError

        if mode not in ("auto", *EDIT_MODES):
            raise WhyrecError(f"history_features={mode!r} must be one of 'auto', 'rederive', 'hold'")
        if mode == "auto":
            mode = "rederive" if data.history_deriver is not None else "hold"
        if mode == "rederive" and data.history_deriver is None:
            raise UnsupportedError(f"history_features='rederive': dataset {data.name!r} sets no history_deriver, "
                                   "so its history features cannot follow an edit; use history_features='hold'")
        return cls(model, data, mode)

    def apply(self, enc: Encoded, X: pd.DataFrame | None, positions: Iterable[int]) -> Encoded:
        """``enc`` with ``positions`` removed; ``X`` holds the same rows' features, every schema
        column (needed by ``rederive`` only)."""
        return self.apply_many(enc, X, [positions])

    def apply_many(self, enc: Encoded, X: pd.DataFrame | None, removals: list[Iterable[int]]) -> Encoded:
        """Every removal applied to all rows of ``enc``, stacked in order (removal-major): one
        re-derivation and one encoding for the lot, since per-edit DataFrame work costs more
        than the arithmetic."""
        removals = [sorted(int(p) for p in r) for r in removals]
        if self.mode == "hold" or not any(removals):
            return stack([remove_positions(enc, r) for r in removals])
        n, seq = len(X), list(self.model.sequence_features)
        big = X.iloc[np.tile(np.arange(n), len(removals))].reset_index(drop=True)
        block = big[seq].to_numpy(dtype=float, na_value=np.nan, copy=True)
        for j, r in enumerate(removals):
            if r:
                block[j * n:(j + 1) * n, r] = np.nan
        for c, col in zip(seq, block.T):
            big[c] = col
        return self.model.encode(self.data.rederive_history(big)[list(self.model.feature_names)])


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
    X: pd.DataFrame | None = None  # all feature columns of the rows, for editors that re-derive features
    editor: HistoryEditor | None = None  # None: hold (mask the sequence only)
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, model: Any, data: RecData, user: Any, editor: HistoryEditor | None = None,
              context: dict | None = None) -> "UserCandidates":
        """The user's candidates scored in ``context`` (the explained row's; default the user's latest)."""
        cands = data.candidates(user)
        pairs = data.user_pairs(user, cands, context)
        full = data.features(pairs)  # every schema column: a deriver may read ones the model does not use
        keep_rows = editor is not None and editor.mode != "hold"
        return cls(user, cands, model.encode(full[model.feature_names]), full.reset_index(drop=True) if keep_rows else None, editor)

    def index_of(self, item: Any) -> int | None:
        hit = np.flatnonzero(self.items == item)
        return int(hit[0]) if len(hit) else None

    def scores(self, model: Any, removals: list[Iterable[int]], uniform: bool = False) -> np.ndarray:
        """(len(removals), candidates) logits; edits not scored before go in one batched call."""
        keys = [(frozenset(int(p) for p in r), uniform) for r in removals]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            edits = [sorted(k[0]) for k in todo]
            stacked = (stack([remove_positions(self.enc, r) for r in edits]) if self.editor is None
                       else self.editor.apply_many(self.enc, self.X, edits))
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
        X = None if self.X is None else self.X.iloc[idx].reset_index(drop=True)
        out = (UserCandidates(self.user, self.items[idx], self.enc.take(idx), X, self.editor), where)
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
