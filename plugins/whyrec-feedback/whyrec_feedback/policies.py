"""Target policies for off-policy evaluation.

The action space is (item, position): in each logged event the logging policy put ``item`` at
``position`` with probability ``propensity``. A target policy says, for the same context
(user, position), with which probability it would have put each item there.

- ``uniform``: every item of the action space with probability 1 / n_items, at every position.
- ``ranking``: a fixed list of items; position k (in ascending order of the logged positions)
  shows the k-th item with probability 1.
- ``model:<name>``: a whyrec model turned into a policy: for each user it ranks the candidate
  items by score and position k shows the k-th best item (top-1 per position).

Items the target can choose that never appear in the logs have no logged propensity: the
estimate cannot see them (it is biased), which the report states ("unsupported").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from whyrec.errors import DataError, UnsupportedError


@dataclass
class ItemSpace:
    """Integer codes for items: logged items first, then items only the target knows."""

    items: list            # code -> item id
    n_logged: int
    index: dict = field(default_factory=dict)

    @classmethod
    def build(cls, logged: pd.Series) -> "ItemSpace":
        uniq = pd.unique(logged)
        return cls(list(uniq), len(uniq), {_key(v): i for i, v in enumerate(uniq)})

    def code(self, item: Any, add: bool = True) -> int:
        k = _key(item)
        if k not in self.index:
            if not add:
                return -1
            self.index[k] = len(self.items)
            self.items.append(item)
        return self.index[k]

    @property
    def n(self) -> int:
        return len(self.items)


def _key(v: Any) -> Any:
    # 7, 7.0, np.int64(7) and "7" name the same item; strings stay strings
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


@dataclass
class Target:
    """A target policy evaluated on the logged contexts.

    kind "uniform": ``support`` holds the item codes it spreads its probability over.
    kind "deterministic": ``choice`` holds, per logged event, the item code it would show.
    """

    name: str
    description: str
    kind: str
    support: np.ndarray | None = None
    choice: np.ndarray | None = None

    def prob_of_logged(self, item_code: np.ndarray) -> np.ndarray:
        if self.kind == "uniform":
            member = np.zeros(int(max(self.support.max(), item_code.max())) + 1, dtype=bool)
            member[self.support] = True
            return np.where(member[item_code], 1.0 / len(self.support), 0.0)
        return (self.choice == item_code).astype(float)

    def unsupported_mass(self, n_logged: int) -> float:
        """Mean probability, over the logged contexts, the target puts on items never logged."""
        if self.kind == "uniform":
            return float(np.mean(self.support >= n_logged))
        return float(np.mean(self.choice >= n_logged))

    def chosen_codes(self) -> np.ndarray:
        return np.unique(self.support if self.kind == "uniform" else self.choice)


def position_slots(position: pd.Series | None, n: int) -> tuple[np.ndarray, list]:
    """Slot index 0, 1, ... of each event in ascending order of its position value."""
    if position is None:
        return np.zeros(n, dtype=np.int64), [None]
    if position.isna().any():
        raise DataError(f"off-policy: {int(position.isna().sum())} logged event(s) have no position; every event needs one")
    codes, uniq = pd.factorize(position, sort=True)
    return codes.astype(np.int64), list(uniq)


def uniform(space: ItemSpace, items: list | None) -> Target:
    if items is None:
        codes = np.arange(space.n_logged)
        desc = f"uniformly random over the {space.n_logged} logged items at every position"
    else:
        if not len(items):
            raise DataError("off-policy: items = [] leaves the uniform policy nothing to choose")
        codes = np.unique([space.code(i) for i in items])
        desc = f"uniformly random over {len(codes)} given items at every position"
    return Target("uniform", desc, "uniform", support=codes)


def ranking(space: ItemSpace, items: list | None, slots: np.ndarray, positions: list) -> Target:
    if not items:
        raise DataError("off-policy: target \"ranking\" needs ranking = [item, item, ...] (best first)")
    if len(items) < len(positions):
        raise DataError(f"off-policy: ranking has {len(items)} item(s) but the logs have {len(positions)} positions {positions}; "
                        "give at least one item per position")
    per_slot = np.array([space.code(i) for i in items[: len(positions)]], dtype=np.int64)
    return Target("ranking", f"fixed ranking, position k shows item k of {list(items[:len(positions)])}",
                  "deterministic", choice=per_slot[slots])


def from_model(name: str, ctx: Any, space: ItemSpace, users: pd.Series, slots: np.ndarray, n_slots: int,
               batch_users: int = 2000) -> Target:
    """Top-1 per position of a registered whyrec model (``ctx.models[name]``)."""
    models = getattr(ctx, "models", None) or {}
    if name not in models:
        have = ", ".join(models) or "none"
        where = "this pipeline" if ctx is not None else "no pipeline (analysing a file from the CLI: pass --run RUN_DIR)"
        raise DataError(f"off-policy: target model {name!r} is not a fitted model of {where} (models: {have})")
    model = models[name]
    data = getattr(model, "data", None)
    if data is not None and hasattr(data, "items") and len(data.items):
        cand = np.asarray(data.item_ids)
    else:
        cand = np.asarray(space.items[: space.n_logged])
    u_codes, u_vals = pd.factorize(users)
    if data is not None and hasattr(data, "users"):
        known = pd.Index(data.users.index)
        unknown = [u for u in u_vals if u not in known]
        if unknown:
            raise UnsupportedError(f"off-policy: model {name!r} cannot score {len(unknown)} logged user(s) it was not trained on "
                                   f"(e.g. {unknown[:3]}); evaluate it on logs of the dataset it was trained on")
    if len(cand) < n_slots:
        raise DataError(f"off-policy: model {name!r} ranks {len(cand)} items but the logs have {n_slots} positions")
    cand_codes = np.array([space.code(i) for i in cand], dtype=np.int64)
    top = np.empty((len(u_vals), n_slots), dtype=np.int64)
    for start in range(0, len(u_vals), batch_users):
        us = np.asarray(u_vals[start:start + batch_users])
        pairs = pd.DataFrame({"user": np.repeat(us, len(cand)), "item": np.tile(cand, len(us))})
        mdata = getattr(model, "data", None)
        if getattr(mdata, "context_names", None):  # one ranking per user: in the user's latest context
            pairs = mdata.with_context(pairs)
        scores = np.asarray(model.score(pairs), dtype=float).reshape(len(us), len(cand))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :n_slots]
        top[start:start + len(us)] = cand_codes[order]
    return Target(f"model:{name}", f"whyrec model {name!r}: position k shows the user's k-th highest-scored item",
                  "deterministic", choice=top[u_codes, slots])
