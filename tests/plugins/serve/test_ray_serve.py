"""The Ray Serve deployment (whyrec-ray) on a local Ray with 2 replicas answers as `whyrec serve`."""
from __future__ import annotations

import time

import httpx
import pytest

from serve_helpers import free_port


@pytest.fixture(scope="module")
def ray_serve_url(served_run):
    import ray
    from ray import serve

    from whyrec_ray.serve import deployment

    port = free_port()
    if ray.is_initialized():  # another test's Ray (an executor run in this process): start our own
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(deployment(str(served_run), replicas=2), route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_two_replicas_answer_as_the_plain_server(ray_serve_url, ro_client):
    params = {"user": 3, "k": 4, "explain": "tree-shap,exact-field-shapley", "device": "ios"}
    want = ro_client.get("/recommend", params=params).json()
    pids = set()
    end = time.monotonic() + 120
    while len(pids) < 2 and time.monotonic() < end:  # both replicas answer, and alike
        r = httpx.get(ray_serve_url + "/recommend", params=params, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json() == want
        pids.add(r.headers["x-whyrec-pid"])
    assert len(pids) == 2
    w = {"user": 5, "a": want["recommendations"][0]["item"], "b": want["recommendations"][1]["item"], "explain": "tree-shap"}
    assert httpx.get(ray_serve_url + "/why-above", params=w, timeout=120).json() == ro_client.get("/why-above", params=w).json()
    r = httpx.get(ray_serve_url + "/recommend", params={"user": 999}, timeout=60)
    assert r.status_code == 404 and "user '999' is not in dataset" in r.json()["error"]


def test_bad_requests_to_the_replicas_name_the_value(ray_serve_url):
    r = httpx.get(ray_serve_url + "/recommend", params={"user": 3, "model": "xgboost"}, timeout=60)
    assert (r.status_code, r.json()) == (422, {"error": "model 'xgboost' is not in this run; models: lightgbm"})
    r = httpx.get(ray_serve_url + "/recommend", params={"user": 3, "colour": "red"}, timeout=60)
    assert (r.status_code, r.json()) == (422, {"error": "unknown query parameter 'colour'"})
    r = httpx.get(ray_serve_url + "/recommend", params={"user": 3, "k": 0}, timeout=60)
    assert r.status_code == 422 and "k=0 but user 3 has" in r.json()["error"]
    r = httpx.get(ray_serve_url + "/events", timeout=60)
    assert r.status_code == 404 and "no endpoint /events" in r.json()["error"]


def test_serve_ray_refuses_an_incomplete_run_before_starting_ray(run_copy):
    import json
    import subprocess
    import sys
    from pathlib import Path

    mf = json.loads((run_copy / "manifest.json").read_text())
    mf["status"] = "failed"
    (run_copy / "manifest.json").write_text(json.dumps(mf))
    res = subprocess.run([str(Path(sys.executable).parent / "whyrec"), "serve-ray", str(run_copy)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: {run_copy}: the run is 'failed', not complete; serve a complete run"]
