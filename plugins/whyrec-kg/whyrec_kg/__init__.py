"""whyrec-kg: knowledge-graph path explanations.

Registers the explainer ``kg-paths``: for a recommended item, the best few paths through the
dataset's knowledge graph from the user's history items to it ("you liked Alien; Aliens has the
same director"), each scored by its history item's contribution to the model's score. The graph
comes from the dataset (``data.knowledge_graph()``, which whyrec-datasets sets for MovieLens-100K
and for a ``table`` with ``kg = "triples.csv"``); nothing here imports another plugin.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"


@whyrec.hookimpl
def register_explainers(register):
    # lazy: numpy/pandas load when the explainer is used, not when plugins load.
    register("kg-paths", lazy("whyrec_kg.explainer:KGPaths"),
             description="knowledge-graph paths from the user's history to the item, scored by the history item's "
                         "leave-one-out (or, for sequence models, Shapley) contribution, any model.")


@whyrec.hookimpl
def validate_pipeline(stages):
    """``whyrec validate`` refuses bad kg-paths parameters before anything loads (plain Python only)."""
    from .params import validation_problems

    out = []
    for entries in stages.values():
        for e in entries or []:
            if e.get("use") == "kg-paths":
                out += [f"{e.get('where')}: {p}" for p in validation_problems(e.get("params") or {})]
    return out or None
