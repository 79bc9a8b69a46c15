"""whyrec: explain what recommender models recommend.

``import whyrec`` stays light: heavy libraries load only inside plugins, and the names below
are imported on first use.
"""
from __future__ import annotations

from typing import Any

from .hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    "RecData": "data", "FeatureSchema": "schema", "Feature": "schema", "Explanation": "explanation",
    "CausalGraph": "causal", "Edge": "causal", "StageResult": "results", "CausalReport": "results",
    "CompressionReport": "results", "FeedbackReport": "results", "BaseModel": "contracts",
    "PipelineContext": "context", "WhyrecError": "errors", "DataError": "errors",
    "RegistryError": "errors", "UnsupportedError": "errors", "load_registry": "registry",
    "run": "runner", "Run": "rundir", "open_run": "rundir", "get_host": "plugins", "component": "api",
}

__all__ = ["hookimpl", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'whyrec' has no attribute {name!r}")
