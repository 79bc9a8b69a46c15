"""whyrec-lightgbm: registers the ``lightgbm`` recommender model.

The model lives in :mod:`whyrec_lightgbm.model`; this module only holds the hook
implementations, so ``whyrec plugins`` can list the plugin without training anything.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"


@whyrec.hookimpl
def register_models(register):
    # lazy: lightgbm loads when the model is used, not when `whyrec --help` lists plugins.
    register(
        "lightgbm",
        lazy("whyrec_lightgbm.model:LightGBMModel"),
        description="LightGBM click (binary) or ranking (lambdarank) model over every non-sequence feature.",
        provides=["tree", "lightgbm", "categorical"],  # = LightGBMModel.capabilities (a test checks)
    )
