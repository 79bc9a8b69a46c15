"""A small structural causal model of clicks, as a RecData, with its true graph and effects.

    age (user) ──────────────────────────────┐
    quality (item) ──> price (item) ──> label <┘
            └──────────────────────────────^
    discount (item, actionable) ─────────> label
    colour (item, categorical): no effect

price = 10 + 2 * quality + N(0, 1);  logit P(label) = -0.3 + 1.2 quality - 0.9 (price - 10)
+ 1.5 discount + 0.04 (age - 40). Price is confounded by quality: its observational association
with clicks is much weaker than its causal effect.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from whyrec.causal import CausalGraph, Edge
from whyrec.data import RecData
from whyrec.schema import Feature, FeatureSchema

TRUE_EDGES = [("quality", "price"), ("quality", "label"), ("price", "label"), ("discount", "label"), ("age", "label")]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def click_logit(age, quality, price, discount):
    return -0.3 + 1.2 * quality - 0.9 * (price - 10) + 1.5 * discount + 0.04 * (age - 40)


def make_sim(n_users: int = 300, n_items: int = 400, n_pairs: int = 5000, seed: int = 0, reviews: bool = False) -> RecData:
    """The toy SCM; ``reviews`` adds reviews = quality + N(0, 0.5): a child of quality with no
    effect on clicks (a proxy a model can lean on)."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"age": rng.normal(40, 10, n_users).round(1)}, index=pd.Index(np.arange(n_users), name="user"))
    quality = rng.normal(0, 1, n_items)
    items = pd.DataFrame({
        "quality": quality,
        "price": 10 + 2 * quality + rng.normal(0, 1, n_items),
        "discount": rng.binomial(1, 0.3, n_items).astype(float),
        "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n_items)),
    }, index=pd.Index(np.arange(n_items), name="item"))
    if reviews:
        items["reviews"] = quality + rng.normal(0, 0.5, n_items)
    u = rng.integers(0, n_users, n_pairs)
    i = rng.integers(0, n_items, n_pairs)
    logit = click_logit(users["age"].to_numpy()[u], items["quality"].to_numpy()[i], items["price"].to_numpy()[i],
                        items["discount"].to_numpy()[i])
    label = rng.binomial(1, _sigmoid(logit)).astype(float)
    inter = pd.DataFrame({"user": u, "item": i, "label": label, "timestamp": np.arange(n_pairs)})
    cut = int(0.8 * n_pairs)
    feats = [Feature("user_id", "user", "categorical"), Feature("age", "user"),
             Feature("item_id", "item", "categorical"), Feature("quality", "item"),
             Feature("price", "item", actionable=True), Feature("discount", "item", actionable=True),
             Feature("colour", "item", "categorical")]
    if reviews:
        feats.append(Feature("reviews", "item"))
    users["user_id"] = users.index
    items["item_id"] = items.index
    nodes = ["age", "quality", "price", "discount", "colour", "label"] + (["reviews"] if reviews else [])
    edges = TRUE_EDGES + ([("quality", "reviews")] if reviews else [])
    truth = {"graph": CausalGraph(nodes, [Edge(s, t) for s, t in edges]),
             "outcome": "label",
             "interventions": true_interventions(users["age"].to_numpy(), quality, seed)}
    return RecData(name=f"toy-scm-{seed}", interactions=inter, users=users, items=items, schema=FeatureSchema(feats),
                   train=inter.iloc[:cut].reset_index(drop=True), test=inter.iloc[cut:].reset_index(drop=True),
                   truth=truth)


def true_interventions(ages: np.ndarray, quality: np.ndarray, seed: int) -> dict:
    """E[label | do(feature = value)] by Monte Carlo over the other causes (their own laws)."""
    rng = np.random.default_rng(seed + 99)
    m = 200_000
    age = rng.choice(ages, m)
    q = rng.choice(quality, m)
    price = 10 + 2 * q + rng.normal(0, 1, m)
    disc = rng.binomial(1, 0.3, m)
    out = {}
    prices = [7.0, 10.0, 13.0]
    out["price"] = {"values": prices, "expected_outcome": [float(_sigmoid(click_logit(age, q, v, disc)).mean()) for v in prices]}
    out["discount"] = {"values": [0.0, 1.0],
                       "expected_outcome": [float(_sigmoid(click_logit(age, q, price, v)).mean()) for v in (0.0, 1.0)]}
    return out
