"""``tree-shap``: TreeSHAP on a tree model's raw margin, with an additivity check per row."""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import RecData
from whyrec.errors import WhyrecError
from whyrec.explanation import Explanation

from .base import ShapExplainer, base_pairs, field_sums
from .interventional import has_categorical_splits, interventional_shap
from .reasons import LazyReasons, feature_reasons

PERTURBATIONS = ("tree_path_dependent", "interventional")
ENGINES = ("whyrec", "shap")


class AdditivityError(WhyrecError):
    """Attributions that do not add up to the model output (a bug, never silently accepted)."""


class TreeShap(ShapExplainer):
    """TreeSHAP on the booster of a tree model, raw margin.

    feature_perturbation: "tree_path_dependent" (no background; conditional on the trees'
        cover) or "interventional" (marginal over ``background_size`` training rows drawn
        with ``seed``). Every row's |base + sum(phi) - margin| is recorded; above
        ``tolerance`` the explainer fails unless ``check_additivity`` is false.
    engine (path-dependent): "whyrec" (default), whyrec's own engine
        (whyrec_shap.treeshap_engine, equal to LightGBM's pred_contrib), on ``threads``
        threads (0: every CPU); "shap": shap.TreeExplainer, the reference.
    """

    name = "tree-shap"
    requirement = "needs a tree model (capability 'tree' with a LightGBM booster)"

    def __init__(
        self,
        feature_perturbation: str = "tree_path_dependent",
        background_size: int = 100,
        seed: int = 0,
        tolerance: float = 1e-6,
        check_additivity: bool = True,
        n_reasons: int = 3,
        n_waterfall: int = 3,
        quality_pairs: int = 20,
        quality_sanity: bool = True,
        engine: str = "whyrec",
        threads: int = 1,
    ) -> None:
        from whyrec.errors import RegistryError

        if feature_perturbation not in PERTURBATIONS:
            raise RegistryError(f"explainer 'tree-shap': feature_perturbation {feature_perturbation!r} is not one of {list(PERTURBATIONS)}")
        if engine not in ENGINES:
            raise RegistryError(f"explainer 'tree-shap': engine {engine!r} is not one of {list(ENGINES)}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise RegistryError(f"explainer 'tree-shap': threads {threads!r} must be an integer >= 0 (0: every CPU)")
        super().__init__(
            engine=engine, threads=threads,
            feature_perturbation=feature_perturbation, background_size=background_size, seed=seed, tolerance=tolerance,
            check_additivity=check_additivity, n_reasons=n_reasons, n_waterfall=n_waterfall,
            quality_pairs=quality_pairs, quality_sanity=quality_sanity,
        )
        self._cache: dict[int, tuple[Any, Any]] = {}

    def supports(self, model: Any) -> bool:
        return "tree" in getattr(model, "capabilities", ()) and getattr(model, "booster", None) is not None and callable(getattr(model, "encode", None))

    def _shap_tree_explainer(self, booster: Any):
        """One shap.TreeExplainer per booster: building it parses every tree, so reuse it."""
        import shap

        hit = self._cache.get(id(booster))
        if hit is None or hit[0] is not booster:
            hit = (booster, shap.TreeExplainer(booster, feature_perturbation="tree_path_dependent", model_output="raw"))
            self._cache = {id(booster): hit}
        return hit[1]

    def shap_values(self, model: Any, data: RecData, M: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """(phi (n, F), base (n,), engine) for the encoded rows M."""
        booster = model.booster
        if (self.params["feature_perturbation"] == "tree_path_dependent" and self.params["engine"] == "whyrec"
                and callable(getattr(booster, "dump_model", None))):
            from .treeshap_engine import TreeShapEngine

            phi, base = TreeShapEngine.for_booster(booster).shap_values(M, threads=int(self.params["threads"]))
            return phi, np.full(len(M), base), "whyrec_shap.treeshap_engine(tree_path_dependent), equal to LightGBM pred_contrib"
        if self.params["feature_perturbation"] == "tree_path_dependent":
            ex = self._shap_tree_explainer(booster)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # shap's notice about LightGBM binary output shapes
                phi = ex.shap_values(M, check_additivity=False)
            phi = np.asarray(phi[-1] if isinstance(phi, list) else phi, dtype=float)
            base = np.full(len(M), float(np.ravel(ex.expected_value)[-1]))
            return phi, base, "shap.TreeExplainer(tree_path_dependent) via LightGBM pred_contrib"
        B = model.encode(self.background(model, data))
        if has_categorical_splits(booster):
            # shap 0.51 cannot represent LightGBM category sets here (see interventional.py).
            phi, base = interventional_shap(booster, M, B)
            return phi, np.full(len(M), base), "whyrec_shap.interventional (categorical splits)"
        import shap

        ex = shap.TreeExplainer(booster, data=B, feature_perturbation="interventional", model_output="raw")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phi = ex.shap_values(M, check_additivity=False)
        phi = np.asarray(phi[-1] if isinstance(phi, list) else phi, dtype=float)
        return phi, np.full(len(M), float(np.ravel(ex.expected_value)[-1])), "shap.TreeExplainer(interventional)"

    def _explain(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame) -> Explanation:
        t0 = time.perf_counter()
        M = model.encode(X)
        margin = np.asarray(model.predict_margin(M) if hasattr(model, "predict_margin") else model.booster.predict(M, raw_score=True), dtype=float)
        phi, base, engine = self.shap_values(model, data, M)
        err = np.abs(base + phi.sum(axis=1) - margin)
        tol = float(self.params["tolerance"])
        worst = int(np.argmax(err)) if len(err) else 0
        if len(err) and err[worst] > tol and self.params["check_additivity"]:
            u, it = pairs["user"].tolist()[worst], pairs["item"].tolist()[worst]
            raise AdditivityError(
                f"tree-shap: |base + sum(phi) - margin| = {err[worst]:.3g} > tolerance {tol:g} for user {u!r}, "
                f"item {it!r} ({engine}); the attributions do not add up to the model output. "
                "Set check_additivity = false to record the error and continue"
            )
        names = list(model.feature_names)
        attr = pd.DataFrame(phi, columns=names)
        out = base_pairs(pairs, margin, base, data.context_names)
        out["additivity_error"] = err
        n_reasons = int(self.params["n_reasons"])
        reasons = LazyReasons(lambda: feature_reasons(data, attr, X, n=n_reasons), len(X))
        schema = data.schema.select(names)
        return Explanation(
            method=self.name, model=model.name, pairs=out, schema=schema, attributions=attr,
            field_attributions=field_sums(phi, names, schema),
            feature_values=X, params={**self.params, "engine": engine, "output": "raw margin"}, additive=True,
            reasons=reasons,
            summary={
                "max_additivity_error": float(err.max()) if len(err) else 0.0,
                "additivity_tolerance": tol,
                "additivity_ok": bool((err <= tol).all()),
                "engine": engine,
                "seconds": round(time.perf_counter() - t0, 4),
                "rows": int(len(X)),
            },
        )
