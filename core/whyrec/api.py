"""Direct use of registered components without a registry: ``whyrec.component("models", "lightgbm", n_estimators=50)``."""
from __future__ import annotations

from typing import Any


def component(kind: str, name: str, **params: Any) -> Any:
    """Build a registered component (kind: datasets, models, explainers, causal_learners,
    compressors, feedback_analyzers, executors) with the given parameters."""
    from .plugins import get_host
    from .registry import check_params

    comp = get_host().get(kind, name)
    check_params(comp.factory, name, params, where=f"whyrec.component({kind!r}, {name!r})")  # as the registry is checked
    return comp.create(**params)
