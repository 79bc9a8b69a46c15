"""Simulators with known causal ground truth: e-commerce, video and finance recommendations.

Each simulator is an explicit structural causal model (SCM). User-level variables are drawn
once per user, item-level variables once per item (each from its parents plus its own noise),
cross features are deterministic functions of a user and an item (so features exist for any
pair a model ranks), and the outcome is ``label ~ Bernoulli(sigmoid(logit(parents)))`` for each
logged (user, item) impression. Impressions are uniform random pairs (no exposure bias), so the
only confounding is the one in the DAG.

``RecData.truth`` holds:
  graph          CausalGraph over the observed features and "label" (edge weight = the
                 coefficient of the structural equation, the local slope for max(0, .) terms)
  outcome        "label"
  interventions  {feature: {"values": [...], "expected_outcome": [E[label | do(feature=v)]]}} for
                 every actionable feature, by Monte Carlo on a fresh population with the noise
                 held fixed across values (common random numbers); "mc_pairs" and "mc_se" say
                 how precise it is
  contributions  DataFrame aligned with ``train`` (same index), one column per schema feature:
                 the feature's additive term on the logit scale minus its training mean, so that
                 ``base_value + contributions.sum(axis=1) == logit`` exactly; None when the
                 outcome model is not additive (sim-video)
  base_value     mean training logit (additive simulators), logit_train (every simulator)
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from whyrec.causal import CausalGraph, Edge
from whyrec.data import ITEM, LABEL, TIMESTAMP, USER, RecData
from whyrec.errors import DataError
from whyrec.schema import Feature, FeatureSchema

from .splits import time_split

DAY = 86400.0
T0 = 1_700_000_000.0  # simulated logs start here (seconds since the epoch)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Simulator:
    """Base class: sampling impressions, splitting, features, and the ground truth."""

    name: ClassVar[str] = "sim"
    description: ClassVar[str] = ""
    features: ClassVar[list[Feature]] = []
    edges: ClassVar[list[tuple[str, str, float]]] = []
    intervention_values: ClassVar[dict[str, list[float]]] = {}
    additive: ClassVar[bool] = True
    item_noun: ClassVar[str] = "item"
    reasons: ClassVar[dict[str, str]] = {}  # feature -> reason template with {v}

    def __init__(self, n_users: int = 1000, n_items: int = 500, n_rows: int = 50000, seed: int = 0,
                 test_fraction: float = 0.2, mc_pairs: int = 400000) -> None:
        for key, val, low in (("n_users", n_users, 1), ("n_items", n_items, 1), ("n_rows", n_rows, 10),
                              ("mc_pairs", mc_pairs, 1000)):
            if int(val) < low:
                raise DataError(f"{self.name}: {key}={val} must be at least {low}")
        if int(n_rows) > int(n_users) * int(n_items):
            raise DataError(f"{self.name}: n_rows={n_rows} exceeds n_users * n_items = {n_users * n_items} "
                            f"distinct pairs; lower n_rows or raise n_users / n_items")
        self.n_users, self.n_items, self.n_rows = int(n_users), int(n_items), int(n_rows)
        self.seed, self.test_fraction, self.mc_pairs = int(seed), float(test_fraction), int(mc_pairs)

    # -- what each simulator defines -------------------------------------------------------
    def structural(self, rng: np.random.Generator, n_users: int, n_items: int, do: dict[str, float]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
        """Users and items (observed columns) plus latent arrays, with ``do`` overrides applied.

        Every noise term is drawn whatever ``do`` says, so two calls with the same seed share
        their noise (common random numbers) and differ only through the intervention.
        """
        raise NotImplementedError

    def cross(self, users: pd.DataFrame, items: pd.DataFrame, latent: dict, u: np.ndarray, i: np.ndarray) -> dict:
        return {}

    def terms(self, X: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Additive logit terms per feature (additive simulators)."""
        raise NotImplementedError

    def intercept(self) -> float:
        raise NotImplementedError

    def logit(self, X: dict[str, np.ndarray]) -> np.ndarray:
        return self.intercept() + sum(self.terms(X).values())

    # -- machinery -------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        return {"n_users": self.n_users, "n_items": self.n_items, "n_rows": self.n_rows, "seed": self.seed,
                "test_fraction": self.test_fraction, "mc_pairs": self.mc_pairs}

    @property
    def schema(self) -> FeatureSchema:
        return FeatureSchema(list(self.features))

    def feature_arrays(self, users: pd.DataFrame, items: pd.DataFrame, latent: dict,
                       u: np.ndarray, i: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        cross = self.cross(users, items, latent, u, i)
        for f in self.features:
            if f.field == "cross":
                out[f.name] = cross[f.name]
            elif f.name in users.columns:
                out[f.name] = users[f.name].to_numpy(float)[u]
            else:
                out[f.name] = items[f.name].to_numpy(float)[i]
        return out

    def graph(self) -> CausalGraph:
        nodes = [f.name for f in self.features] + [LABEL]
        return CausalGraph(nodes=nodes, edges=[Edge(s, t, float(w)) for s, t, w in self.edges],
                           method={"source": "simulator", "simulator": self.name, "params": self.params})

    def interventions(self) -> dict:
        """E[label | do(x = v)] for every actionable feature, by Monte Carlo with fixed noise."""
        n_u = max(2000, min(20000, self.mc_pairs // 20))
        n_i = max(500, min(5000, self.mc_pairs // 80))
        out: dict[str, dict] = {}
        for name, values in self.intervention_values.items():
            means, ses = [], []
            for v in values:
                rng = np.random.default_rng([self.seed, 7919])  # the same population for every v
                users, items, latent = self.structural(rng, n_u, n_i, {name: float(v)})
                u = rng.integers(0, n_u, self.mc_pairs)
                i = rng.integers(0, n_i, self.mc_pairs)
                p = sigmoid(self.logit(self.feature_arrays(users, items, latent, u, i)))
                means.append(float(p.mean()))
                ses.append(float(p.std(ddof=1) / np.sqrt(len(p))))
            out[name] = {"values": [float(v) for v in values], "expected_outcome": means,
                         "mc_pairs": self.mc_pairs, "mc_se": ses}
        return out

    def load(self) -> RecData:
        rng = np.random.default_rng(self.seed)
        users, items, latent = self.structural(rng, self.n_users, self.n_items, {})
        users.index = pd.RangeIndex(self.n_users, name=USER)
        items.index = pd.RangeIndex(self.n_items, name=ITEM)
        # Distinct uniform random (user, item) impressions at uniform random times over 30 days.
        keys = rng.choice(self.n_users * self.n_items, size=self.n_rows, replace=False)
        u, i = keys // self.n_items, keys % self.n_items
        ts = np.round(T0 + rng.uniform(0, 30 * DAY, self.n_rows))
        X = self.feature_arrays(users, items, latent, u, i)
        logit = self.logit(X)
        label = (rng.uniform(size=self.n_rows) < sigmoid(logit)).astype(np.int8)
        order = np.lexsort((ts, u))
        u, i, ts, label, logit = u[order], i[order], ts[order], label[order], logit[order]
        X = {k: v[order] for k, v in X.items()}
        interactions = pd.DataFrame({USER: u, ITEM: i, LABEL: label, TIMESTAMP: ts})
        is_test, keep, report = time_split(u, ts, self.test_fraction, "user", n_users=self.n_users)
        train = interactions[~is_test].reset_index(drop=True)
        test = interactions[is_test & keep].reset_index(drop=True)
        logit_train = logit[~is_test]
        contributions, base = None, None
        if self.additive:
            Xtr = {k: v[~is_test] for k, v in X.items()}
            t = self.terms(Xtr)
            cols = {f.name: (t[f.name] - t[f.name].mean()) if f.name in t else np.zeros(len(train))
                    for f in self.features}
            contributions = pd.DataFrame(cols, index=train.index)
            base = float(self.intercept() + sum(v.mean() for v in t.values()))
        truth = {"graph": self.graph(), "outcome": LABEL, "interventions": self.interventions(),
                 "contributions": contributions, "base_value": base, "contributions_scale": "logit",
                 "logit_train": logit_train, "observed_positive_rate": float(label.mean())}
        users_out = users.copy()
        items_out = items.copy()
        items_out["title"] = [f"{self.item_noun} {k}" for k in items_out.index]
        featurizer = SimFeaturizer(self, users, items, latent)
        desc = f"{self.description} ({self.n_users} users, {self.n_items} {self.item_noun}s, {self.n_rows} impressions, seed {self.seed})"
        return RecData(name=self.name, interactions=interactions, users=users_out, items=items_out,
                       schema=self.schema, train=train, test=test, featurizer=featurizer,
                       describer=featurizer.describe, truth=truth,
                       params=dict(self.params, domain=self.domain, split=report.to_dict()), description=desc)


class SimFeaturizer:
    """Features of any (user, item) pair from the simulated users, items and latent variables."""

    def __init__(self, sim: Simulator, users: pd.DataFrame, items: pd.DataFrame, latent: dict) -> None:
        self.sim, self.users, self.items, self.latent = sim, users, items, latent

    def __call__(self, data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
        u = pairs[USER].to_numpy()
        i = pairs[ITEM].to_numpy()
        for arr, n, what in ((u, len(self.users), "user"), (i, len(self.items), "item")):
            if len(arr) and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= n):
                raise DataError(f"{self.sim.name}: {what} ids must be integers 0..{n - 1}; got e.g. {arr[:3].tolist()}")
        X = self.sim.feature_arrays(self.users, self.items, self.latent, u.astype(np.int64), i.astype(np.int64))
        return pd.DataFrame(X, index=pairs.index)

    def describe(self, name: str, value: Any, row: Any = None) -> str | None:
        template = self.sim.reasons.get(name)
        if template is None or value is None:
            return None
        v = float(value)
        n = round(v) if v == v else None
        times = "once" if n == 1 else "nothing" if n == 0 else f"{v:.0f} times"
        return template.format(v=v, times=times)


# -- e-commerce ----------------------------------------------------------------------------
class SimEcommerce(Simulator):
    """Simulated shop: price, rating, discount and purchase history drive purchases (additive logit)."""

    name = "sim-ecommerce"
    domain = "ecommerce"  # the words of its sentences (whyrec.sentences)
    description = "Simulated e-commerce: price, rating, discount, purchase history -> purchase"
    item_noun = "product"
    features = [
        Feature("income", "user", "numeric", description="yearly income (k$)"),
        Feature("purchase_history", "history", "numeric", description="purchases in the last 90 days"),
        Feature("rating", "item", "numeric", description="average star rating (1-5)"),
        Feature("price", "item", "numeric", description="price ($)", actionable=True),
        Feature("discount", "item", "numeric", description="discount (%)", actionable=True),
    ]
    edges = [("income", "purchase_history", 0.08), ("rating", "price", 12.0), ("price", "discount", 0.3),
             ("price", LABEL, -0.06), ("rating", LABEL, 0.9), ("discount", LABEL, 0.08),
             ("purchase_history", LABEL, 0.25)]
    intervention_values = {"price": [15, 22, 30, 38, 45], "discount": [0, 3, 6, 9, 12]}
    reasons = {"income": "your income: {v:.0f}k$ a year", "purchase_history": "you bought {times} in 90 days",
               "rating": "rated {v:.1f} stars", "price": "price ${v:.2f}", "discount": "{v:.0f}% off"}

    def structural(self, rng, n_users, n_items, do):
        e_inc, e_hist = rng.normal(size=n_users), rng.normal(size=n_users)
        e_rat, e_price, e_disc = rng.normal(size=n_items), rng.normal(size=n_items), rng.normal(size=n_items)
        income = do.get("income", np.maximum(10.0, 50 + 15 * e_inc))
        income = np.broadcast_to(income, (n_users,)).astype(float)
        hist = do.get("purchase_history", np.maximum(0.0, np.round(3 + 0.08 * (income - 50) + 1.5 * e_hist)))
        rating = do.get("rating", np.clip(3.8 + 0.5 * e_rat, 1, 5))
        rating = np.broadcast_to(rating, (n_items,)).astype(float)
        price = do.get("price", np.maximum(2.0, 30 + 12 * (rating - 3.8) + 8 * e_price))
        price = np.broadcast_to(price, (n_items,)).astype(float)
        discount = do.get("discount", np.clip(5 + 0.3 * (price - 30) + 3 * e_disc, 0, 50))
        users = pd.DataFrame({"income": income, "purchase_history": np.broadcast_to(hist, (n_users,)).astype(float)})
        items = pd.DataFrame({"rating": rating, "price": price,
                              "discount": np.broadcast_to(discount, (n_items,)).astype(float)})
        return users, items, {}

    def intercept(self):
        return -1.6

    def terms(self, X):
        return {"price": -0.06 * (X["price"] - 30), "rating": 0.9 * (X["rating"] - 3.8),
                "discount": 0.08 * (X["discount"] - 5), "purchase_history": 0.25 * (X["purchase_history"] - 3)}


# -- video ---------------------------------------------------------------------------------
N_GENRES = 6


class SimVideo(Simulator):
    """Simulated video platform: duration, genre match, recency and watch history drive watching
    (the duration effect depends on watch history, so the logit is not additive)."""

    name = "sim-video"
    domain = "video"  # the words of its sentences (whyrec.sentences)
    description = "Simulated video: duration, genre match, recency, watch history -> watch"
    item_noun = "video"
    additive = False
    features = [
        Feature("watch_history", "history", "numeric", description="videos watched in the last 30 days"),
        Feature("recency", "item", "numeric", description="days since upload"),
        Feature("duration", "item", "numeric", description="length (minutes)", actionable=True),
        Feature("genre_match", "cross", "numeric",
                description="share of the user's taste in the video's genre (0-1)"),
    ]
    edges = [("recency", "duration", 0.15), ("genre_match", LABEL, 3.0), ("duration", LABEL, -0.12),
             ("recency", LABEL, -0.02), ("watch_history", LABEL, 0.1)]
    intervention_values = {"duration": [4, 8, 12, 16, 20]}
    reasons = {"watch_history": "you watched {v:.0f} videos in 30 days", "recency": "uploaded {v:.0f} days ago",
               "duration": "{v:.0f} minutes long", "genre_match": "its genre is {v:.0%} of your taste"}

    def structural(self, rng, n_users, n_items, do):
        e_hist = rng.normal(size=n_users)
        taste = rng.dirichlet(np.full(N_GENRES, 0.5), size=n_users)
        genre = rng.integers(0, N_GENRES, n_items)
        e_rec, e_dur = rng.uniform(size=n_items), rng.normal(size=n_items)
        hist = do.get("watch_history", np.maximum(0.0, np.round(12 + 5 * e_hist)))
        recency = do.get("recency", 60 * e_rec)
        recency = np.broadcast_to(recency, (n_items,)).astype(float)
        duration = do.get("duration", np.maximum(1.0, 12 + 0.15 * (recency - 30) + 3 * e_dur))
        users = pd.DataFrame({"watch_history": np.broadcast_to(hist, (n_users,)).astype(float)})
        items = pd.DataFrame({"recency": recency, "duration": np.broadcast_to(duration, (n_items,)).astype(float)})
        return users, items, {"taste": taste, "genre": genre, "genre_match_do": do.get("genre_match")}

    def cross(self, users, items, latent, u, i):
        gm = latent["taste"][u, latent["genre"][i]]
        if latent.get("genre_match_do") is not None:
            gm = np.full(len(u), float(latent["genre_match_do"]))
        return {"genre_match": gm}

    def logit(self, X):
        # Heavy watchers mind long videos less: the duration slope shrinks with watch history.
        tolerance = 1 - 0.5 * np.tanh((X["watch_history"] - 12) / 5)
        return (-0.3 + 3.0 * (X["genre_match"] - 1 / N_GENRES) - 0.12 * (X["duration"] - 12) * tolerance
                - 0.02 * (X["recency"] - 30) + 0.1 * (X["watch_history"] - 12))


# -- finance -------------------------------------------------------------------------------
class SimFinance(Simulator):
    """Simulated investment products: expected return, risk above the user's tolerance, fees and
    the user's investing experience drive adoption (additive logit)."""

    name = "sim-finance"
    domain = "finance"  # the words of its sentences (whyrec.sentences)
    description = "Simulated finance: expected return, risk vs risk tolerance, fees, experience -> adoption"
    item_noun = "fund"
    features = [
        Feature("age", "user", "numeric", description="age (years)"),
        Feature("years_investing", "history", "numeric", description="years the user has been investing"),
        Feature("risk_tolerance", "user", "numeric", description="risk tolerance (0-10)"),
        Feature("risk", "item", "numeric", description="risk score (1-10)"),
        Feature("expected_return", "item", "numeric", description="expected return (% a year)"),
        Feature("fees", "item", "numeric", description="fees (% a year)", actionable=True),
        Feature("risk_gap", "cross", "numeric",
                description="risk above the user's tolerance (max(0, risk - risk_tolerance))"),
    ]
    edges = [("age", "years_investing", 0.4), ("risk", "expected_return", 0.6), ("expected_return", "fees", 0.1),
             ("risk", "risk_gap", 1.0), ("risk_tolerance", "risk_gap", -1.0), ("years_investing", LABEL, 0.06),
             ("expected_return", LABEL, 0.35), ("risk_gap", LABEL, -0.5), ("fees", LABEL, -1.5)]
    intervention_values = {"fees": [0.1, 0.3, 0.5, 0.8, 1.2]}
    reasons = {"age": "your age: {v:.0f}", "years_investing": "you have invested for {v:.0f} years",
               "risk_tolerance": "your risk tolerance: {v:.1f}/10",
               "risk": "risk {v:.1f}/10", "expected_return": "expected return {v:.1f}% a year",
               "fees": "fees {v:.2f}% a year", "risk_gap": "risk {v:.1f} points above your tolerance"}

    def structural(self, rng, n_users, n_items, do):
        e_age, e_tol, e_exp = rng.uniform(size=n_users), rng.normal(size=n_users), rng.normal(size=n_users)
        e_risk, e_ret, e_fee = rng.uniform(size=n_items), rng.normal(size=n_items), rng.normal(size=n_items)
        age = do.get("age", 22 + 48 * e_age)
        age = np.broadcast_to(age, (n_users,)).astype(float)
        years = do.get("years_investing", np.maximum(0.0, np.round(0.4 * (age - 22) + 4 * e_exp)))
        tol = do.get("risk_tolerance", np.clip(6 + 1.6 * e_tol, 0, 10))
        risk = do.get("risk", 1 + 9 * e_risk)
        risk = np.broadcast_to(risk, (n_items,)).astype(float)
        ret = do.get("expected_return", 1 + 0.6 * risk + 1.0 * e_ret)
        ret = np.broadcast_to(ret, (n_items,)).astype(float)
        fees = do.get("fees", np.maximum(0.05, 0.2 + 0.1 * ret + 0.25 * e_fee))
        users = pd.DataFrame({"age": age, "years_investing": np.broadcast_to(years, (n_users,)).astype(float),
                              "risk_tolerance": np.broadcast_to(tol, (n_users,)).astype(float)})
        items = pd.DataFrame({"risk": risk, "expected_return": ret,
                              "fees": np.broadcast_to(fees, (n_items,)).astype(float)})
        return users, items, {"risk_gap_do": do.get("risk_gap")}

    def cross(self, users, items, latent, u, i):
        gap = np.maximum(0.0, items["risk"].to_numpy(float)[i] - users["risk_tolerance"].to_numpy(float)[u])
        if latent.get("risk_gap_do") is not None:
            gap = np.full(len(u), float(latent["risk_gap_do"]))
        return {"risk_gap": gap}

    def intercept(self):
        return -1.2

    def terms(self, X):
        return {"expected_return": 0.35 * (X["expected_return"] - 4), "risk_gap": -0.5 * X["risk_gap"],
                "fees": -1.5 * (X["fees"] - 0.6), "years_investing": 0.06 * (X["years_investing"] - 10)}


SIMULATORS = {cls.name: cls for cls in (SimEcommerce, SimVideo, SimFinance)}
