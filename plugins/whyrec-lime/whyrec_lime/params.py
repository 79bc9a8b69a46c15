"""The lime explainer's parameters checked in plain Python: by the explainer when it is built
and by ``whyrec validate`` (the plugin's validate_pipeline hook), which imports nothing heavy."""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

UNITS = ("fields", "features")
SAMPLERS = ("mask", "tabular")
# name -> smallest allowed value of the integer parameters
INT_MIN = {"num_samples": 10, "background_size": 1, "top_k": 1, "stability_seeds": 1, "n_reasons": 0, "max_rows": 1, "seed": 0}


def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _wrong_type(key: str, value: Any) -> bool:
    if key in INT_MIN:
        return not _is_int(value)
    if key in ("kernel_width", "alpha", "min_fidelity"):
        return value is not None and not _is_num(value)
    if key in ("units", "sampler"):
        return not isinstance(value, str)
    return False


def problems(params: dict, types_checked: bool = False) -> list[str]:
    """One line per bad parameter (empty: all good); parameters not given are not checked.
    ``types_checked``: the caller (the registry, against the explainer's signature) already
    refused values of the wrong type, so only the ranges of well-typed values are checked here,
    and `whyrec validate` says each problem once."""
    if types_checked:
        params = {k: v for k, v in params.items() if not _wrong_type(k, v)}
    out = []
    if "units" in params and params["units"] not in UNITS:
        out.append(f"units {params['units']!r} is not one of {list(UNITS)}")
    if "sampler" in params and params["sampler"] not in SAMPLERS:
        out.append(f"sampler {params['sampler']!r} is not one of {list(SAMPLERS)}")
    for key, low in INT_MIN.items():
        if key in params and (not _is_int(params[key]) or params[key] < low):
            out.append(f"{key}={params[key]!r} must be an integer >= {low}")
    w = params.get("kernel_width")
    if w is not None and (not _is_num(w) or not math.isfinite(w) or not w > 0):
        out.append(f"kernel_width={w!r} must be a number > 0 (or unset: 0.75 * sqrt(number of units), lime's default)")
    a = params.get("alpha", 0.0)
    if not _is_num(a) or not math.isfinite(a) or not a >= 0:
        out.append(f"alpha={a!r} (the surrogate's ridge penalty) must be a number >= 0")
    t = params.get("min_fidelity", 0.5)
    if not _is_num(t) or not 0 <= t <= 1:
        out.append(f"min_fidelity={t!r} must be a number in [0, 1] (a weighted R²)")
    return out
