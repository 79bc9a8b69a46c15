"""``tree-student``: a shallow LightGBM surrogate of a teacher (one decision tree with
``n_estimators = 1, learning_rate = 1.0``), the interpretable student.

It is a ``whyrec_lightgbm`` LightGBMModel (same encoding of categoricals, same LightGBM text +
JSON files, same load checks), so every explainer that supports that model (``tree-shap``)
works on it. ``fit`` trains on the dataset's labels like the ``lightgbm`` model (the baseline
without distillation); ``fit_targets`` fits the teacher: a regression on its margins (``mse``)
or a cross-entropy on its probabilities (``bce``), with per-row weights.
"""
from __future__ import annotations

import time
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec_lightgbm.encoding import FrameEncoder, lightgbm_names
from whyrec_lightgbm.model import LightGBMModel


class TreeStudent(LightGBMModel):
    """Shallow gradient-boosted (or single) tree surrogate over every non-sequence feature."""

    name = "tree-student"
    capabilities = frozenset({"tree", "lightgbm", "categorical", "surrogate"})

    def __init__(self, n_estimators: int = 30, num_leaves: int = 15, learning_rate: float = 0.2,
                 min_child_samples: int = 20, lambda_l2: float = 1.0, num_threads: int = 1, seed: int = 0,
                 features: list[str] | None = None, **lightgbm_params: Any) -> None:
        # the rest of LightGBMModel's parameters pass through (saved params reload exactly)
        lightgbm_params.setdefault("early_stopping_rounds", 0)
        lightgbm_params.setdefault("valid_fraction", 0.0)
        try:
            super().__init__(n_estimators=n_estimators, num_leaves=num_leaves, learning_rate=learning_rate,
                             min_child_samples=min_child_samples, lambda_l2=lambda_l2, num_threads=num_threads,
                             seed=seed, features=features, **lightgbm_params)
        except TypeError as exc:
            raise RegistryError(f"model 'tree-student': {exc}") from exc

    def prepare(self, data: RecData, X: pd.DataFrame | None = None) -> None:
        """Bind to ``data`` and freeze the categorical encoding on feature rows ``X``."""
        names = self._choose_features(data)
        self.bind(data, names)
        if X is None:
            if data.train is None or len(data.train) == 0:
                raise DataError(f"model 'tree-student': dataset {data.name!r} has no training pairs")
            X = data.features(data.train)
        cats = [n for n in names if data.schema[n].kind == "categorical"]
        self.encoder = FrameEncoder.fit(X[names], names, cats, use_missing=self.params["use_missing"])

    def fit_targets(self, X: pd.DataFrame, targets: np.ndarray, weights: np.ndarray | None = None,
                    loss: Literal["bce", "mse", "listnet"] = "mse", epochs: int | None = None,
                    groups: np.ndarray | None = None, temperature: float = 1.0, pointwise_weight: float = 0.0) -> dict:
        """Fit the teacher's targets: margins (``mse``: L2 regression) or probabilities
        (``bce``: LightGBM's cross_entropy objective). ``listnet`` (listwise, needs ``groups``)
        becomes lambdarank on graded labels from the teacher's rank within each group:
        ranks 1-5 -> 4, 6-10 -> 3, 11-20 -> 2, 21-50 -> 1, the rest 0. ``epochs``,
        ``temperature`` and ``pointwise_weight`` do not apply to trees."""
        if self.encoder is None:
            raise UnsupportedError("model 'tree-student': call prepare(data) (or fit/load) before fit_targets")
        if loss not in ("bce", "mse", "listnet"):
            raise DataError(f"model 'tree-student': loss {loss!r} is not 'bce', 'mse' or 'listnet'")
        t = np.asarray(targets, dtype=float)
        if t.shape != (len(X),) or not np.isfinite(t).all():
            raise DataError(f"model 'tree-student': fit_targets needs one finite target per row ({len(X)} rows)")
        if loss == "bce" and np.any((t < 0) | (t > 1)):
            raise DataError("model 'tree-student': bce targets must be probabilities in [0, 1]; use loss='mse' for margins")
        t0 = time.perf_counter()
        M = self.encoder.encode(X[self.feature_names])
        params = {**self.lgb_params(), "objective": "cross_entropy" if loss == "bce" else "regression",
                  "metric": "cross_entropy" if loss == "bce" else "l2"}
        params.pop("eval_at", None)
        group_sizes = None
        if loss == "listnet":
            if groups is None or len(groups) != len(t):
                raise DataError("model 'tree-student': loss='listnet' needs groups: one group id (the user) per row")
            codes, _ = pd.factorize(np.asarray(groups))
            order = np.lexsort((-t, codes))  # by group, then the teacher's score, best first
            M, t, codes = M[order], t[order], codes[order]
            group_sizes = np.bincount(codes)
            starts = np.r_[0, np.cumsum(group_sizes)[:-1]]
            rank = np.arange(len(t)) - starts[codes] + 1
            t = np.select([rank <= 5, rank <= 10, rank <= 20, rank <= 50], [4, 3, 2, 1], 0).astype(float)
            weights = None
            params.update(objective="lambdarank", metric="ndcg", eval_at=[10])
        ds = lgb.Dataset(M, t, group=group_sizes, weight=None if weights is None else np.asarray(weights, float),
                         feature_name=lightgbm_names(self.feature_names),
                         categorical_feature=self.encoder.categorical_indices, free_raw_data=True, params={"verbose": -1})
        try:
            booster = lgb.train(params, ds, num_boost_round=int(self.params["n_estimators"]))
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"tree-student could not fit the teacher's targets: {exc}") from exc
        self.booster = lgb.Booster(model_str=booster.model_to_string())
        self.train_info = {"n_trees": int(self.booster.num_trees()), "rows": int(len(t)), "loss": loss,
                           "seconds": round(time.perf_counter() - t0, 3), "n_parameters": self.n_parameters()}
        return dict(self.train_info)
