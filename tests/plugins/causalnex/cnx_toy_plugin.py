"""A test plugin: the toy click SCM as a dataset, a logistic model and its exact linear SHAP.

The model sees ``reviews`` (a noisy child of ``quality``) but not ``quality`` itself, so it leans
on a proxy with no causal effect on clicks: what the causal-vs-attribution table must flag.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

import whyrec
from whyrec import BaseModel, Explanation

from cnx_toyscm import make_sim  # tests/plugins/causalnex is on sys.path (conftest / PYTHONPATH)

MODEL_FEATURES = ["age", "price", "discount", "reviews"]


class ToySCM:
    def __init__(self, n_pairs: int = 4000, seed: int = 0) -> None:
        self.n_pairs, self.seed = n_pairs, seed

    def load(self):
        return make_sim(n_pairs=self.n_pairs, seed=self.seed, reviews=True)


class ToyLogit(BaseModel):
    name = "toy-logit"
    capabilities = frozenset({"linear"})

    def __init__(self, C: float = 1.0) -> None:
        super().__init__(C=C)
        self.C = C

    def fit(self, data, ctx=None) -> dict:
        from sklearn.linear_model import LogisticRegression

        self.bind(data, MODEL_FEATURES)
        X = data.features(data.train)[MODEL_FEATURES].to_numpy(float)
        m = LogisticRegression(C=self.C, max_iter=500).fit(X, data.train["label"].to_numpy())
        self.coef, self.intercept = m.coef_[0], float(m.intercept_[0])
        self.mean = X.mean(axis=0)
        return {}

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        return X[MODEL_FEATURES].to_numpy(float) @ self.coef + self.intercept

    def _save_weights(self, d: Path) -> None:
        (d / "weights.json").write_text(json.dumps({"coef": self.coef.tolist(), "intercept": self.intercept,
                                                    "mean": self.mean.tolist()}))

    def _load_weights(self, d: Path) -> None:
        w = json.loads((d / "weights.json").read_text())
        self.coef, self.intercept, self.mean = np.array(w["coef"]), w["intercept"], np.array(w["mean"])


class LinearShap:
    """Exact SHAP of a linear model with independent features: w_j (x_j - mean_j)."""

    def supports(self, model) -> bool:
        return isinstance(model, ToyLogit)

    def explain(self, model, data, pairs) -> Explanation:
        X = data.features(pairs)[MODEL_FEATURES].to_numpy(float)
        attr = pd.DataFrame((X - model.mean) * model.coef, columns=MODEL_FEATURES)
        out = pairs[["user", "item"]].reset_index(drop=True).copy()
        out["output_value"] = X @ model.coef + model.intercept
        out["base_value"] = float(model.mean @ model.coef + model.intercept)
        return Explanation(method="linear-shap", model=model.name, pairs=out,
                           schema=data.schema.select(MODEL_FEATURES), attributions=attr,
                           feature_values=pd.DataFrame(X, columns=MODEL_FEATURES))


@whyrec.hookimpl
def register_datasets(register):
    register("toy-scm", ToySCM)


@whyrec.hookimpl
def register_models(register):
    register("toy-logit", ToyLogit)


@whyrec.hookimpl
def register_explainers(register):
    register("linear-shap", LinearShap)
