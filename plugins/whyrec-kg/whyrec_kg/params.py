"""kg-paths' parameters checked in plain Python: by the explainer when it is built and by
``whyrec validate`` (the plugin's validate_pipeline hook), which imports nothing heavy."""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

SCORINGS = ("auto", "leave-one-out", "shapley")
HISTORIES = ("window", "all")


def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def problems(max_paths: Any = 3, per_history_item: Any = 2, scoring: Any = "auto", max_entity_share: Any = 0.2,
             min_score: Any = 0.0, history: Any = "window") -> list[str]:
    """One line per bad parameter (empty: all good), each starting ``kg-paths:``."""
    out = []
    if not (_is_int(max_paths) and max_paths >= 1 and _is_int(per_history_item) and per_history_item >= 1):
        out.append(f"kg-paths: max_paths={max_paths} and per_history_item={per_history_item} must be >= 1")
    if scoring not in SCORINGS:
        out.append(f"kg-paths: scoring={scoring!r} must be one of {', '.join(SCORINGS)}")
    if not (_is_num(max_entity_share) and 0 < max_entity_share <= 1):
        out.append(f"kg-paths: max_entity_share={max_entity_share} must be in (0, 1] (1 keeps every entity)")
    if min_score is not None and not (_is_num(min_score) and not math.isnan(min_score)):
        out.append(f"kg-paths: min_score={min_score!r} must be a number (-inf keeps every path)")
    if history not in HISTORIES:
        out.append(f"kg-paths: history={history!r} must be 'window' (the items the model sees) or 'all' "
                   "(every liked training item; those outside the window score 0)")
    return out


def _wrong_type(key: str, value: Any) -> bool:
    """Types the registry already refuses against the explainer's signature (said once, there)."""
    if key in ("max_paths", "per_history_item"):
        return not _is_int(value)
    if key in ("max_entity_share", "min_score"):
        return value is not None and not _is_num(value)
    if key in ("scoring", "history"):
        return not isinstance(value, str)
    return False


def validation_problems(params: dict) -> list[str]:
    """``problems`` for a registry entry's parameters, leaving out wrongly typed values and
    unknown keys (the registry names those itself)."""
    known = ("max_paths", "per_history_item", "scoring", "max_entity_share", "min_score", "history")
    return problems(**{k: v for k, v in params.items() if k in known and not _wrong_type(k, v)})
