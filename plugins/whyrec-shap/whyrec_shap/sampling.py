"""``permutation-shap`` and ``kernel-shap``: shap's own model-agnostic explainers, per
feature, for any model with ``score_features``.

Both see the model through a float matrix (categoricals as codes, see FrameCodec) and a
k-means summary of a background sample. They are approximations whose cost grows with the
number of features: each emits a :class:`CostWarning` stating the model rows it will score.
"""
from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import pandas as pd

from whyrec.data import RecData
from whyrec.errors import RegistryError
from whyrec.explanation import Explanation

from .background import FrameCodec, kmeans_background
from .base import ShapExplainer, base_pairs, field_sums, is_model_agnostic_target
from .reasons import LazyReasons, feature_reasons

# shap's maskers compute x * mask + background * ~mask, which turns NaN (a missing history
# position) into NaN everywhere; a finite sentinel survives that arithmetic exactly.
NAN_SENTINEL = -1e300


class CostWarning(UserWarning):
    """A sampling explainer is about to score many model rows."""


@contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    """shap's sampling explainers draw from numpy's global RNG: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _to_shap(M: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(M), NAN_SENTINEL, M)


def _from_shap(M: np.ndarray) -> np.ndarray:
    M = np.array(M, dtype=float)
    M[M <= NAN_SENTINEL / 2] = np.nan
    return M


class _SamplingShap(ShapExplainer):
    requirement = "needs a model with score_features and feature_names"

    def supports(self, model: Any) -> bool:
        return is_model_agnostic_target(model)

    def _setup(self, model: Any, data: RecData, X: pd.DataFrame) -> tuple[FrameCodec, np.ndarray, np.ndarray, Any]:
        B = self.background(model, data)
        k = self.params["background_k"]
        if k < 1:
            raise RegistryError(f"explainer {self.name!r}: background_k must be >= 1, got {k}")
        codec = FrameCodec.fit(B, X)
        discrete = codec.categorical_mask | np.array(
            [c in data.schema and data.schema[c].kind in ("categorical", "sequence") for c in codec.columns])
        centers, weights = kmeans_background(codec.encode(B), k, discrete, seed=self.seed)

        def f(M: np.ndarray) -> np.ndarray:
            return np.asarray(model.score_features(codec.decode(_from_shap(M))), dtype=float)

        return codec, centers, weights, f

    def _finish(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame, phi: np.ndarray,
                base: np.ndarray, t0: float, summary: dict) -> Explanation:
        names = list(model.feature_names)
        attr = pd.DataFrame(phi, columns=names)
        n_reasons = int(self.params["n_reasons"])
        fx = np.asarray(model.score_features(X), dtype=float)
        out = base_pairs(pairs, fx, base, data.context_names)
        schema = data.schema.select([c for c in names if c in data.schema])
        return Explanation(
            method=self.name, model=model.name, pairs=out, schema=schema,
            attributions=attr, field_attributions=field_sums(phi, names, schema), feature_values=X, params={**self.params, "output": "model score_features (raw)"},
            additive=True, reasons=LazyReasons(lambda: feature_reasons(data, attr, X, n=n_reasons), len(X)),
            summary={**summary, "seconds": round(time.perf_counter() - t0, 4), "rows": int(len(X))},
        )


class PermutationShap(_SamplingShap):
    """shap.PermutationExplainer per feature (antithetic permutations; exact additivity)
    against ``background_k`` k-means centers of ``background_size`` training rows."""

    name = "permutation-shap"

    def __init__(
        self,
        max_evals: int = 500,
        background_size: int = 200,
        background_k: int = 10,
        seed: int = 0,
        n_reasons: int = 3,
        n_waterfall: int = 3,
        quality_pairs: int = 20,
        quality_sanity: bool = True,
    ) -> None:
        super().__init__(max_evals=max_evals, background_size=background_size, background_k=background_k, seed=seed,
                         n_reasons=n_reasons, n_waterfall=n_waterfall, quality_pairs=quality_pairs, quality_sanity=quality_sanity)

    def _explain(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame) -> Explanation:
        import shap

        t0 = time.perf_counter()
        codec, centers, _weights, f = self._setup(model, data, X)
        n_feat = len(codec.columns)
        max_evals = max(int(self.params["max_evals"]), 2 * n_feat + 1)  # shap's minimum: one permutation
        rows = len(X) * max_evals * len(centers)
        warnings.warn(
            f"permutation-shap scores about {max_evals} coalitions x {len(centers)} background rows = "
            f"{max_evals * len(centers):,} model rows per pair ({rows:,} for {len(X)} pairs, {n_feat} features); "
            "for tree models tree-shap is exact and far cheaper, for fields use exact-field-shapley",
            CostWarning, stacklevel=3,
        )
        masker = shap.maskers.Independent(_to_shap(centers), max_samples=len(centers))
        with seeded_numpy(self.seed):
            ex = shap.PermutationExplainer(f, masker, feature_names=codec.columns, seed=self.seed)  # its own np.random.seed call
            res = ex(_to_shap(codec.encode(X)), max_evals=max_evals, silent=True)
        phi = np.asarray(res.values, dtype=float)
        base = np.asarray(res.base_values, dtype=float).reshape(-1)
        return self._finish(model, data, pairs, X, phi, base, t0,
                            {"max_evals": max_evals, "background_centers": len(centers), "model_rows": rows})


class KernelShap(_SamplingShap):
    """shap.KernelExplainer per feature against ``background_k`` weighted k-means centers;
    ``nsamples`` coalitions per pair (exact when nsamples >= 2^features)."""

    name = "kernel-shap"

    def __init__(
        self,
        nsamples: int = 1024,
        background_size: int = 200,
        background_k: int = 10,
        seed: int = 0,
        n_reasons: int = 3,
        n_waterfall: int = 3,
        quality_pairs: int = 20,
        quality_sanity: bool = True,
    ) -> None:
        super().__init__(nsamples=nsamples, background_size=background_size, background_k=background_k, seed=seed,
                         n_reasons=n_reasons, n_waterfall=n_waterfall, quality_pairs=quality_pairs, quality_sanity=quality_sanity)

    def _explain(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame) -> Explanation:
        import shap
        from shap.utils._legacy import DenseData

        t0 = time.perf_counter()
        codec, centers, weights, f = self._setup(model, data, X)
        n_feat = len(codec.columns)
        nsamples = int(self.params["nsamples"])
        rows = len(X) * nsamples * len(centers)
        warnings.warn(
            f"kernel-shap scores {nsamples} coalitions x {len(centers)} background rows = {nsamples * len(centers):,} "
            f"model rows per pair ({rows:,} for {len(X)} pairs, {n_feat} features) and fits a weighted regression per pair; "
            "for tree models tree-shap is exact and far cheaper, for fields use exact-field-shapley",
            CostWarning, stacklevel=3,
        )
        bg = DenseData(_to_shap(centers), list(codec.columns), None, weights)
        with seeded_numpy(self.seed), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ex = shap.KernelExplainer(f, bg)
            phi = ex.shap_values(_to_shap(codec.encode(X)), nsamples=nsamples, silent=True)
        phi = np.asarray(phi, dtype=float).reshape(len(X), n_feat)
        base = np.full(len(X), float(np.ravel(ex.expected_value)[0]))
        return self._finish(model, data, pairs, X, phi, base, t0,
                            {"nsamples": nsamples, "background_centers": len(centers), "model_rows": rows})
