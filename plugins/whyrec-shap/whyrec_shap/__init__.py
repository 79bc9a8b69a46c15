"""whyrec-shap: SHAP-family explainers for any whyrec model.

Registers ``tree-shap`` (tree models), ``exact-field-shapley``, ``permutation-shap`` and
``kernel-shap`` (any model with ``score_features``). Also the shared rank-aware and quality
logic other explainer plugins reuse:

- :func:`whyrec_shap.rank.why_above` (``whyrec explain RUN --user U --why-above A B``),
- :func:`whyrec_shap.quality.explanation_quality` (deletion/insertion on rank, stability, sanity).

shap, sklearn and matplotlib load only when a component is used.
"""
from __future__ import annotations

from typing import Any

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"

_LAZY = {
    "why_above": "rank", "WhyAbove": "rank", "explanation_quality": "quality",
    "TreeShap": "tree", "ExactFieldShapley": "exact", "PermutationShap": "sampling", "KernelShap": "sampling",
    "exact_group_shapley": "exact", "interventional_shap": "interventional", "CostWarning": "sampling",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'whyrec_shap' has no attribute {name!r}")


@whyrec.hookimpl
def register_explainers(register):
    # lazy: numpy/pandas/shap load when an explainer is used, not when `whyrec --help` lists plugins.
    register("tree-shap", lazy("whyrec_shap.tree:TreeShap"),
             description="TreeSHAP on the raw margin of tree models (path-dependent or interventional), additivity checked.",
             requires=["tree"], provides=["top-k-counterfactual"])
    register("exact-field-shapley", lazy("whyrec_shap.exact:ExactFieldShapley"),
             description="Exact Shapley values over feature fields/groups (2^F coalitions), any model.",
             provides=["top-k-counterfactual"])
    register("permutation-shap", lazy("whyrec_shap.sampling:PermutationShap"),
             description="shap.PermutationExplainer per feature against a k-means background, any model.",
             provides=["top-k-counterfactual"])
    register("kernel-shap", lazy("whyrec_shap.sampling:KernelShap"),
             description="shap.KernelExplainer per feature against a weighted k-means background, any model.",
             provides=["top-k-counterfactual"])
