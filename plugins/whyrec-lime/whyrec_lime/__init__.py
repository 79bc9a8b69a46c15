"""whyrec-lime: LIME (lime's ``LimeBase``) for any model that scores feature rows.

Registers the ``lime`` explainer. The interpretable representation is the model's fields
(or its features) switched between the explained row's values and background rows'
values; lime's classic ``LimeTabularExplainer`` sampler is an option. Every explanation
reports its local fidelity (the surrogate's weighted R²) and its stability across seeds,
and flags low fidelity. ``lime`` is the optional extra ``whyrec-lime[lime]``: numpy, pandas
and lime load only when the explainer is built.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"


@whyrec.hookimpl
def register_explainers(register):
    # requires stays empty: "scores feature rows" is score_features + feature_names on the
    # model object (docs/plugins.md), which supports() checks; there is no capability string for it.
    register("lime", lazy("whyrec_lime.explainer:LimeExplainer"),
             description="LIME (lime's LimeBase) over fields or features against background rows, "
                         "with local fidelity (weighted R²) and top-k stability across seeds; any model with score_features.")


@whyrec.hookimpl
def validate_pipeline(stages):
    """``whyrec validate`` refuses bad lime parameters before anything loads (plain Python only)."""
    from .params import problems

    out = []
    for entries in stages.values():
        for e in entries or []:
            if e.get("use") == "lime":
                # the registry has already refused wrongly typed values (against the signature): one line each
                out += [f"{e.get('where')}: explainer 'lime': {p}" for p in problems(e.get("params") or {}, types_checked=True)]
    return out or None
