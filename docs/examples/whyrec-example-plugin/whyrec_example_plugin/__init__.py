"""A sample third-party whyrec plugin, written from docs/plugins.md alone.

It registers a ``popularity`` model (score = log of the item's training positives, plus a
small user-activity term so users differ), a ``popularity-reason`` explainer that
attributes the score exactly to its two terms, and a ``logistic`` model that scores feature
rows (the template for a model the model-agnostic explainers can explain), and a
``feature-net`` torch model that offers the ``torch-network`` capability (the template for a
model that compressors such as whyrec-distill's prune and quantize can work on). Its tests are in
``tests/`` next to this package; ``make test`` runs them.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

# lazy(): numpy/pandas load when the model is used, not when `whyrec --help` lists plugins.


@whyrec.hookimpl
def register_models(register):
    register("popularity", lazy("whyrec_example_plugin.popularity:PopularityModel"),
             description="Most-popular baseline: log(1 + positives of the item) + weight * log(1 + user activity).",
             provides=["additive", "popularity-terms"])  # = PopularityModel.capabilities: the core matches explainers without importing
    register("logistic", lazy("whyrec_example_plugin.logistic:LogisticModel"),
             description="Logistic regression over the numeric features (numpy; solver='lbfgs' needs the [fast] extra).",
             provides=["additive"])  # = LogisticModel.capabilities
    register("feature-net", lazy("whyrec_example_plugin.feature_net:FeatureNetModel"),
             description="Small torch network over the numeric features (the [torch] extra); offers the torch-network capability.",
             provides=["differentiable", "torch-network"])  # = FeatureNetModel.capabilities: prune / quantize find it by this


@whyrec.hookimpl
def register_explainers(register):
    register("popularity-reason", lazy("whyrec_example_plugin.popularity:PopularityReason"),
             description="Exact additive explanation of the popularity model: its two terms.",
             requires=["popularity-terms"])  # needs model.terms(pairs); `whyrec validate` refuses it without such a model
