"""Simulated logged feedback with a known truth (for tests, benchmarks and trying the analyzers).

Users have two categorical features; the click probability of item i at position p for a
user of type u is sigmoid(a_u + b_i + c_p). Two logging policies run side by side as the
variants of an A/B test, like the Open Bandit Dataset:

- ``random``: every item equally likely at every position (propensity 1 / n_items);
- ``skewed``: items drawn with probability proportional to exp(skew * b_i), so better items
  are shown more, as a learning bandit would (propensity depends on the item and position).

``truth`` holds each policy's exact expected CTR, so estimates can be checked against it.
Everything is vectorised numpy: ten million events take a few seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = 1_574_553_600.0  # 2019-11-24 00:00 UTC, in seconds since the epoch (whyrec's timestamps)


@dataclass
class Simulation:
    events: pd.DataFrame
    truth: dict
    item_logit: np.ndarray
    position_logit: np.ndarray
    user_logit: np.ndarray
    skewed_propensity: np.ndarray  # (n_positions, n_items)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def simulate_events(n: int = 20_000, n_items: int = 80, n_positions: int = 3, seed: int = 0, skew: float = 1.5,
                    base_logit: float = -5.5, treatment_share: float = 0.5, days: int = 7,
                    user_levels: tuple[int, int] = (3, 5)) -> Simulation:
    rng = np.random.default_rng(seed)
    b = rng.normal(0.0, 0.6, n_items)
    c = -0.15 * np.arange(n_positions)
    u0 = rng.normal(0.0, 0.4, user_levels[0])
    u1 = rng.normal(0.0, 0.3, user_levels[1])
    ua = (u0[:, None] + u1[None, :]).ravel()  # logit of each user type (f0, f1)
    share = np.full(len(ua), 1.0 / len(ua))
    prop_sk = np.exp(skew * b)[None, :] * np.exp(0.3 * skew * rng.normal(size=(n_positions, n_items)))
    prop_sk /= prop_sk.sum(axis=1, keepdims=True)

    utype = rng.integers(0, len(ua), n).astype(np.int32)
    pos = rng.integers(0, n_positions, n).astype(np.int8)
    skewed = rng.random(n) < treatment_share
    item = rng.integers(0, n_items, n).astype(np.int32)
    for p in range(n_positions):  # the skewed policy's draws, by inverse CDF per position
        m = np.flatnonzero(skewed & (pos == p))
        cdf = np.cumsum(prop_sk[p])
        item[m] = np.minimum(np.searchsorted(cdf, rng.random(len(m)) * cdf[-1]), n_items - 1)
    propensity = np.where(skewed, prop_sk[pos, item], 1.0 / n_items)
    logit = base_logit + ua[utype] + b[item] + c[pos]
    click = (rng.random(n) < _sigmoid(logit)).astype(np.int8)
    ts = START + np.sort(rng.random(n)) * days * 86400.0

    # exact expected CTRs: positions uniform, user types uniform
    q = _sigmoid(base_logit + ua[:, None, None] + c[None, :, None] + b[None, None, :])  # (user, pos, item)
    v_random = float((share[:, None, None] * q).sum(axis=0).mean(axis=0).mean())
    v_skewed = float(((share[:, None, None] * q).sum(axis=0) * prop_sk).sum(axis=1).mean())
    best = np.argsort(-b)
    v_top = float((share[:, None] * q[:, np.arange(n_positions), best[:n_positions]]).sum(axis=0).mean())
    events = pd.DataFrame({
        "event_id": np.arange(n, dtype=np.int64),
        "user": np.arange(n, dtype=np.int64),
        "item": item,
        "label": click,
        "position": (pos + 1).astype(np.int8),
        "propensity": propensity,
        "variant": pd.Categorical.from_codes(skewed.astype(np.int8), categories=["random", "skewed"]),
        "timestamp": ts,
        "user_feature_0": pd.Categorical.from_codes((utype // user_levels[1]).astype(np.int8), categories=[f"a{k}" for k in range(user_levels[0])]),
        "user_feature_1": pd.Categorical.from_codes((utype % user_levels[1]).astype(np.int8), categories=[f"b{k}" for k in range(user_levels[1])]),
    })
    truth = {"ctr": {"random": v_random, "skewed": v_skewed}, "uniform": v_random,
             "best_ranking": best[:n_positions].tolist(), "best_ranking_ctr": v_top}
    return Simulation(events, truth, b, c, ua, prop_sk)
