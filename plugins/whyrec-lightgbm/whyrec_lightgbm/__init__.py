"""whyrec-lightgbm: registers the ``lightgbm`` recommender model.

The model lives in :mod:`whyrec_lightgbm.model`; this module only holds the hook
implementations, so ``whyrec plugins`` can list the plugin without training anything.
"""
from __future__ import annotations

import whyrec

__version__ = "0.1.0"


@whyrec.hookimpl
def register_models(register):
    # Import inside the hook: lightgbm loads only when the catalogue is collected.
    from .model import LightGBMModel

    register(
        "lightgbm",
        LightGBMModel,
        description="LightGBM click (binary) or ranking (lambdarank) model over every non-sequence feature.",
    )
