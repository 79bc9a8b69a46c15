"""A logistic regression over the schema's numeric features: the template of a model that
scores feature rows (imported only when used).

It implements the whole model contract with numpy alone: ``fit`` binds the data and the
columns it uses, ``score_features`` returns the margin (what explainers explain), the
weights are saved as JSON (never pickle). Because it scores feature rows, the model-agnostic
explainers (exact-field-shapley, permutation-shap, kernel-shap) explain it without knowing it.
``solver = "lbfgs"`` uses scipy, an optional heavy dependency (the ``fast`` extra).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from whyrec import BaseModel
from whyrec.atomic import write_json
from whyrec.contracts import read_json
from whyrec.data import LABEL
from whyrec.errors import DataError

from .optional import require

WEIGHTS = "weights.json"


class LogisticModel(BaseModel):
    """Logistic regression on the standardised numeric features: margin = bias + sum_j w_j z_j."""

    name = "logistic"
    # "additive": the margin is a sum of one term per feature (``terms``); = provides= at registration
    capabilities = frozenset({"additive"})

    def __init__(self, l2: float = 1e-3, epochs: int = 300, lr: float = 0.5,
                 solver: Literal["gd", "lbfgs"] = "gd", features: list[str] | None = None) -> None:
        super().__init__(l2=l2, epochs=epochs, lr=lr, solver=solver, features=features)
        if solver not in ("gd", "lbfgs"):
            raise DataError(f"logistic: solver={solver!r} must be 'gd' (numpy) or 'lbfgs' (scipy)")
        if int(epochs) < 1 or float(lr) <= 0 or float(l2) < 0:
            raise DataError(f"logistic: epochs={epochs} must be >= 1, lr={lr} > 0 and l2={l2} >= 0")
        if solver == "lbfgs":  # fail when the model is built, before any data loads
            require("scipy.optimize", "fast", 'logistic solver = "lbfgs"')
        self.l2, self.epochs, self.lr, self.solver, self.features = float(l2), int(epochs), float(lr), solver, features
        self.mean = self.std = self.weights = None
        self.bias = 0.0

    # -- training -------------------------------------------------------------------------
    def fit(self, data, ctx=None) -> dict:
        numeric = data.schema.of_kind("numeric")
        names = numeric if self.features is None else list(self.features)
        wrong = [n for n in names if n not in numeric]
        if wrong:
            raise DataError(f"logistic: features {wrong} are not numeric features of dataset {data.name!r}; "
                            f"its numeric features are {numeric}")
        if not names:
            raise DataError(f"logistic: dataset {data.name!r} has no numeric features to fit on")
        if data.train is None or LABEL not in data.train.columns:
            raise DataError(f"logistic: dataset {data.name!r} has no labelled training rows (data.train)")
        self.bind(data, feature_names=names)  # before scoring: which columns score_features receives
        # whole training rows (their context columns included) through the one featurizer
        X = data.features(data.train)[self.feature_names].to_numpy(dtype=float, na_value=np.nan)
        y = (data.train[LABEL].to_numpy(dtype=float) > 0).astype(float)
        if len(np.unique(y)) < 2:
            raise DataError(f"logistic: the training rows of {data.name!r} hold one class only; add negatives")
        self.mean = np.nanmean(X, axis=0)
        self.mean = np.where(np.isfinite(self.mean), self.mean, 0.0)
        std = np.nanstd(X, axis=0)
        self.std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        Z = self._standardise(X)
        theta = np.zeros(Z.shape[1] + 1)
        if self.solver == "lbfgs":
            opt = require("scipy.optimize", "fast", 'logistic solver = "lbfgs"')
            theta = opt.minimize(self._loss_grad, theta, args=(Z, y), jac=True, method="L-BFGS-B").x
        else:
            for _ in range(self.epochs):
                _, grad = self._loss_grad(theta, Z, y)
                theta -= self.lr * grad
        self.bias, self.weights = float(theta[0]), theta[1:]
        return {"train_logloss": float(self._loss_grad(theta, Z, y)[0]), "features": len(names)}

    def _loss_grad(self, theta: np.ndarray, Z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        m = theta[0] + Z @ theta[1:]
        p = 1.0 / (1.0 + np.exp(-m))
        loss = float(np.mean(np.logaddexp(0.0, m) - y * m) + 0.5 * self.l2 * theta[1:] @ theta[1:])
        g = p - y
        grad = np.concatenate([[g.mean()], Z.T @ g / len(y) + self.l2 * theta[1:]])
        return loss, grad

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self.mean) / self.std
        return np.where(np.isfinite(Z), Z, 0.0)  # a missing value counts as the training mean

    # -- scoring --------------------------------------------------------------------------
    def terms(self, X: pd.DataFrame) -> pd.DataFrame:
        """One additive term per feature: ``bias + terms(X).sum(axis=1) == score_features(X)``."""
        if self.weights is None:
            raise DataError("logistic: not fitted or loaded; call fit(data) or LogisticModel.load(dir, data)")
        Z = self._standardise(X[self.feature_names].to_numpy(dtype=float, na_value=np.nan))
        return pd.DataFrame(Z * self.weights, columns=self.feature_names, index=X.index)

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        """The margin (log-odds of a click) of each feature row: what explainers explain."""
        return self.bias + self.terms(X).to_numpy().sum(axis=1)

    def n_parameters(self) -> int | None:
        return None if self.weights is None else len(self.weights) + 1

    # -- persistence: JSON, never pickle --------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        write_json(directory / WEIGHTS, {
            "features": list(self.feature_names), "bias": self.bias, "weights": self.weights.tolist(),
            "mean": self.mean.tolist(), "std": self.std.tolist(),
        })

    def _load_weights(self, directory: Path) -> None:
        if not (directory / WEIGHTS).exists():
            raise DataError(f"{directory}: no {WEIGHTS}; this is not a saved logistic model")
        w = read_json(directory / WEIGHTS, "logistic model")  # a pickle put there is refused, never loaded
        if not isinstance(w, dict) or w.get("features") != list(self.feature_names):
            raise DataError(f"{directory / WEIGHTS}: weights for features {w.get('features') if isinstance(w, dict) else None}, "
                            f"but model.json names {self.feature_names}; re-save the model")
        self.bias = float(w["bias"])
        self.weights, self.mean, self.std = (np.asarray(w[k], dtype=float) for k in ("weights", "mean", "std"))
