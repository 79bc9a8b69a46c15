"""One real pipeline run for the whole tests/e2e session (see e2e_pipeline.py).

The run uses the installed plugins exactly as ``whyrec run`` does (entry points, the default
plugin host) and logs to an MLflow file store in the session's temporary directory. Every
test of this folder reads the same run directory; none of them changes it.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
for p in (HERE, ROOT / "tests" / "browser"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# the data cache is whyrec's default one ($WHYREC_CACHE, else ~/.cache/whyrec), as for `make test`

import e2e_pipeline  # noqa: E402


@dataclass
class E2ERun:
    run: object  # whyrec.Run
    path: Path
    manifest: dict
    data_dir: Path
    data_paths: dict
    mlflow_uri: str
    experiment: str
    seconds: float


@pytest.fixture(scope="session")
def e2e(tmp_path_factory) -> E2ERun:
    import whyrec

    root = tmp_path_factory.mktemp("e2e")
    paths = e2e_pipeline.write_data(root / "data")
    uri = (root / "mlruns").as_uri()
    reg = root / "registry.toml"
    reg.write_text(e2e_pipeline.registry_text(paths, uri))
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)  # the registry's store, not an ambient one
    try:
        t0 = time.perf_counter()
        run = whyrec.run(e2e_pipeline.PIPELINE, registry=reg, out=root / "runs")
        seconds = time.perf_counter() - t0
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    print(f"\n[e2e] pipeline {e2e_pipeline.PIPELINE} ran in {seconds:.1f} s: {run.path}")
    return E2ERun(run=run, path=Path(run.path), manifest=run.manifest, data_dir=root / "data", data_paths=paths,
                  mlflow_uri=uri, experiment=e2e_pipeline.EXPERIMENT, seconds=seconds)
