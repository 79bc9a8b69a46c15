"""Open Bandit Dataset (ZOZOTOWN fashion e-commerce, CC BY 4.0): real logged bandit feedback.

The sample carried by the ``obp`` wheel has 10,000 impressions per behaviour policy
(``random``: uniform random; ``bts``: Bernoulli Thompson Sampling) and campaign (``all``,
``men``, ``women``): the item shown, its position (1-3), the click, the logging policy's
propensity of that item and hashed user features. OBD has no user id, so every impression is
its own user (``user`` = ``event_id``); user features are what identify a kind of user.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from whyrec.data import ITEM, LABEL, POSITION, PROPENSITY, TIMESTAMP, USER, VARIANT, RecData
from whyrec.errors import DataError
from whyrec.schema import Feature, FeatureSchema

from . import cache
from .frames import show, require_columns, require_file
from .splits import time_split

POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
USER_FEATURES = [f"user_feature_{k}" for k in range(4)]
ITEM_NUMERIC = ["item_feature_0"]
ITEM_CATEGORICAL = [f"item_feature_{k}" for k in range(1, 4)]


def _files(policy: str, campaign: str) -> list[str]:
    return [f"{policy}/{campaign}/{campaign}.csv", f"{policy}/{campaign}/item_context.csv"]


class OpenBandit:
    """Open Bandit Dataset logs: clicks, positions, propensities under random and BTS policies."""

    def __init__(self, policy: Literal["random", "bts", "both"] = "both",
                 campaign: Literal["all", "men", "women"] = "all", path: str | Path | None = None,
                 test_fraction: float = 0.2) -> None:
        if policy not in (*POLICIES, "both"):
            raise DataError(f"open-bandit: policy={policy!r} must be 'random', 'bts' or 'both'")
        if campaign not in CAMPAIGNS:
            raise DataError(f"open-bandit: campaign={campaign!r} must be one of {list(CAMPAIGNS)}")
        self.policy, self.campaign, self.path = policy, campaign, path
        self.test_fraction = float(test_fraction)

    def _folder(self, policies: list[str]) -> Path:
        files = [f for p in policies for f in _files(p, self.campaign)]
        if self.path is None:
            return cache.ensure("obd", files)
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise DataError(f"open-bandit path {root} is not a folder; pass the OBD folder holding "
                            f"random/ and bts/ (or leave path unset to use the cache)")
        for f in files:
            require_file(root / f, "Open Bandit Dataset")
        return root

    def load(self) -> RecData:
        policies = list(POLICIES) if self.policy == "both" else [self.policy]
        root = self._folder(policies)
        logs, item_ctx = [], None
        for pol in policies:
            csv_path = root / pol / self.campaign / f"{self.campaign}.csv"
            df = pd.read_csv(csv_path, index_col=0)
            require_columns(df.columns, ["timestamp", "item_id", "position", "click", "propensity_score",
                                         *USER_FEATURES], f"Open Bandit file {csv_path}")
            df[VARIANT] = pol
            logs.append(df)
            if item_ctx is None:
                ic_path = root / pol / self.campaign / "item_context.csv"
                item_ctx = pd.read_csv(ic_path, index_col=0)
                require_columns(item_ctx.columns, ["item_id", *ITEM_NUMERIC, *ITEM_CATEGORICAL],
                                f"Open Bandit file {ic_path}")
        raw = pd.concat(logs, ignore_index=True)
        ts = pd.to_datetime(raw["timestamp"], utc=True)
        # seconds since the epoch (float, microsecond precision) like every whyrec timestamp
        seconds = (ts - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()
        order = np.lexsort((np.arange(len(raw)), seconds))
        raw = raw.iloc[order].reset_index(drop=True)
        seconds = seconds[order]
        n = len(raw)
        event = np.arange(n, dtype=np.int64)
        item = raw["item_id"].to_numpy(np.int64)
        affinity_cols = [c for c in raw.columns if c.startswith("user-item_affinity_")]
        n_items = len(item_ctx)
        affinity = raw[affinity_cols].to_numpy(np.float32) if affinity_cols else np.zeros((n, n_items), np.float32)
        interactions = pd.DataFrame({
            "event_id": event, USER: event, ITEM: item, LABEL: raw["click"].to_numpy(np.int8),
            POSITION: raw["position"].to_numpy(np.int64), PROPENSITY: raw["propensity_score"].to_numpy(float),
            VARIANT: pd.Categorical(raw[VARIANT], categories=[p for p in POLICIES if p in policies]),
            TIMESTAMP: seconds,
        })
        ucats = {c: pd.Categorical(raw[c]) for c in USER_FEATURES}
        for c in USER_FEATURES:
            interactions[c] = ucats[c]
        interactions["user_item_affinity"] = affinity[event, item] if affinity_cols else 0.0
        users = pd.DataFrame({c: ucats[c] for c in USER_FEATURES}, index=pd.Index(event, name=USER))
        items = item_ctx.set_index("item_id").sort_index()
        items.index = items.index.astype(np.int64)
        items.index.name = ITEM
        for c in ITEM_CATEGORICAL:
            items[c] = pd.Categorical(items[c])
        items[ITEM_NUMERIC] = items[ITEM_NUMERIC].astype(float)
        items["title"] = [f"fashion item {i}" for i in items.index]

        train = test = None
        report = None
        if self.test_fraction > 0:
            # One impression per "user", so the split is global in time and every test user is new.
            is_test, _, report = time_split(event, seconds, self.test_fraction, "global", keep_cold_start=True, n_users=n,
                                         quiet=True)
            cols = ["event_id", USER, ITEM, LABEL, POSITION, PROPENSITY, VARIANT, TIMESTAMP]
            train = interactions.loc[~is_test, cols].reset_index(drop=True)
            test = interactions.loc[is_test, cols].reset_index(drop=True)
        schema = FeatureSchema(
            [Feature(c, "user", "categorical", description="hashed user attribute (OBD)") for c in USER_FEATURES]
            + [Feature("item_feature_0", "item", "numeric", description="numeric item attribute (OBD item context)")]
            + [Feature(c, "item", "categorical", description="hashed item attribute (OBD item context)")
               for c in ITEM_CATEGORICAL]
            + [Feature("user_item_affinity", "cross", "numeric",
                       description="the user's logged affinity for the item (OBD user-item_affinity_<item>)")]
        )
        featurizer = OBDFeaturizer(users, items, affinity)
        params = {"domain": "ecommerce", "policy": self.policy, "campaign": self.campaign, "path": self.path,
                  "test_fraction": self.test_fraction, "source": str(root),
                  "split": report.to_dict() if report else None}
        desc = (f"Open Bandit Dataset sample ({self.campaign} campaign, {' and '.join(policies)} policies): "
                f"{n:,} logged impressions with clicks, positions 1-3 and propensities; one user per impression")
        return RecData(name="open-bandit", interactions=interactions, users=users, items=items, schema=schema,
                       train=train, test=test, featurizer=featurizer, describer=featurizer.describe,
                       params=params, description=desc)


class OBDFeaturizer:
    """User features by impression, item context by item, and the logged user-item affinity."""

    def __init__(self, users: pd.DataFrame, items: pd.DataFrame, affinity: np.ndarray) -> None:
        self.users, self.items, self.affinity = users, items, affinity

    def __call__(self, data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
        u = self.users.index.get_indexer(pairs[USER].to_numpy())
        i = self.items.index.get_indexer(pairs[ITEM].to_numpy())
        if (u < 0).any():
            raise DataError(f"open-bandit: user {show(pairs[USER].to_numpy()[u < 0][0])} is not an event id of the data")
        if (i < 0).any():
            raise DataError(f"open-bandit: item {show(pairs[ITEM].to_numpy()[i < 0][0])} is not in the item context")
        cols: dict[str, Any] = {}
        for c in USER_FEATURES:
            col = self.users[c].array
            cols[c] = pd.Categorical.from_codes(col.codes[u], dtype=col.dtype)
        for c in ITEM_NUMERIC:
            cols[c] = self.items[c].to_numpy(float)[i]
        for c in ITEM_CATEGORICAL:
            col = self.items[c].array
            cols[c] = pd.Categorical.from_codes(col.codes[i], dtype=col.dtype)
        ok = i < self.affinity.shape[1]
        cols["user_item_affinity"] = np.where(ok, self.affinity[u, np.where(ok, i, 0)], 0.0).astype(float)
        return pd.DataFrame(cols, index=pairs.index, copy=False)

    def describe(self, name: str, value: Any, row: Any = None) -> str | None:
        if name == "user_item_affinity":
            return f"your logged affinity for this item: {float(value):.2f}"
        if name.startswith("user_feature_"):
            return f"user attribute {name[-1]} = {str(value)[:8]}"
        if name.startswith("item_feature_"):
            return f"item attribute {name[-1]} = {value if isinstance(value, float) else str(value)[:8]}"
        return None
