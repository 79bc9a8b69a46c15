"""Shared set-up of the whyrec-shap benchmarks: MovieLens-100K and a LightGBM model.

The model is trained once with the given parameters and cached (LightGBM text + JSON, the
plugin's own format) under $WHYREC_CACHE/bench/lightgbm-<params>-<data hash>/, so the three
benchmark scripts measure explaining, not training.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def setup(n_estimators: int = 300, quiet: bool = True):
    """(data, model, seconds spent training or loading)."""
    if quiet:
        warnings.simplefilter("ignore")
        os.environ.setdefault("WHYREC_PROGRESS", "0")
    import whyrec
    from whyrec_datasets.cache import cache_dir
    from whyrec_lightgbm.model import LightGBMModel

    data = whyrec.get_host().create("datasets", "movielens-100k").load()
    params = {"n_estimators": n_estimators}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    d = cache_dir() / "bench" / f"lightgbm-{key}-{data.data_hash()[:12]}"
    t0 = time.perf_counter()
    if (d / "model.json").exists():
        model = LightGBMModel.load(d, data)
    else:
        model = LightGBMModel(**params)
        model.fit(data)
        model.save(d)
    return data, model, time.perf_counter() - t0


def machine() -> dict:
    import lightgbm
    import shap

    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "lightgbm": lightgbm.__version__, "shap": shap.__version__,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def sample_users(data, n: int, seed: int = 0) -> list:
    import numpy as np

    pool = np.sort(data.test["user"].unique())
    return sorted(np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False).tolist())


def write(name: str, payload: dict) -> Path:
    from whyrec.atomic import write_json

    RESULTS.mkdir(parents=True, exist_ok=True)
    return write_json(RESULTS / f"{name}.json", payload)
