"""The whyrec-ray executor against a real local Ray instance (ray.init(num_cpus=2))."""
from __future__ import annotations

import functools
import json
import operator
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_toy_data import make_data
from whyrec.batch import explain_pairs_batched, read_batch_output
from whyrec.builtins.executors import LocalExecutor
from whyrec.errors import DataError, PluginError, RegistryError
from whyrec_example_plugin.popularity import PopularityModel, PopularityReason
from whyrec_ray.executor import RayExecutor


@pytest.fixture(scope="module")
def fitted():
    data = make_data()
    model = PopularityModel()
    model.fit(data)
    return data, model


def write_pairs(path: Path, n: int, data, unknown: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    users = rng.choice(data.user_ids, n)
    users[:unknown] = 5000 + np.arange(unknown)
    df = pd.DataFrame({"user": users, "item": rng.choice(data.item_ids, n), "batch_id": np.arange(n) % 3})
    df.to_parquet(path, index=False)
    return df


def _ray_running() -> bool:
    import psutil

    return any("gcs_server" in (p.info["name"] or "") for p in psutil.process_iter(["name"]))


def test_address_auto_joins_a_running_cluster_or_says_how_to_start_one(tmp_path):
    """Ray's "auto" finds a cluster by scanning processes: with one running (this session's
    fixture, when it ran first) it joins it, otherwise the error says how to start one."""
    code = ("import ray\nfrom whyrec_ray.executor import RayExecutor\n"
            "try:\n    RayExecutor(address='auto').connect(); print('joined', ray.is_initialized())\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    running = _ray_running()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    if running:
        assert out.stdout.startswith("joined True"), out.stdout + out.stderr
    else:
        assert out.stdout.startswith("PluginError executor 'ray': cannot connect to Ray at address 'auto'"), out.stdout + out.stderr
        assert "ray start --head" in out.stdout


@pytest.mark.parametrize("workers", [1, 2])
def test_ray_output_equals_local_output_row_for_row(ray_cluster, fitted, tmp_path, workers):
    data, model = fitted
    write_pairs(tmp_path / "p.parquet", 1_000, data, unknown=9)
    kw = dict(chunk_rows=128, cold_start="explain", show_progress=False, explainer_name="popularity-reason")
    local = explain_pairs_batched(model, data, PopularityReason(), tmp_path / "p.parquet", tmp_path / "local",
                                  executor=LocalExecutor(), **kw)
    remote = explain_pairs_batched(model, data, PopularityReason(), tmp_path / "p.parquet", tmp_path / "ray",
                                   executor=RayExecutor(workers=workers), **kw)
    assert (remote.parts, remote.parts_written) == (8, 8)
    assert remote.counts == local.counts == {"explained": 991, "cold_start": 9, "skipped": 0, "unknown_user": 9, "unknown_item": 0}
    a, b = read_batch_output(tmp_path / "local"), read_batch_output(tmp_path / "ray")
    assert len(a) == 1_000 and a["row"].tolist() == list(range(1_000))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # same job, same bytes: the _SUCCESS manifests list identical part hashes
    ha = [p["sha256"] for p in json.loads((tmp_path / "local" / "_SUCCESS").read_text())["parts"]]
    hb = [p["sha256"] for p in json.loads((tmp_path / "ray" / "_SUCCESS").read_text())["parts"]]
    assert ha == hb


def test_a_job_started_locally_resumes_on_ray(ray_cluster, fitted, tmp_path):
    """The executor is not part of the job: parts written by one are reused by the other."""
    data, model = fitted
    write_pairs(tmp_path / "p.parquet", 300, data)
    kw = dict(chunk_rows=100, show_progress=False, explainer_name="popularity-reason")
    explain_pairs_batched(model, data, PopularityReason(), tmp_path / "p.parquet", tmp_path / "out", **kw)
    ref = read_batch_output(tmp_path / "out")
    (tmp_path / "out" / "part-00001.parquet").unlink()
    (tmp_path / "out" / "_SUCCESS").unlink()
    res = explain_pairs_batched(model, data, PopularityReason(), tmp_path / "p.parquet", tmp_path / "out",
                                executor=RayExecutor(workers=2), **kw)
    assert (res.parts_written, res.parts_reused) == (1, 2)
    pd.testing.assert_frame_equal(read_batch_output(tmp_path / "out"), ref, check_exact=True)


def test_map_batches_keeps_input_order(ray_cluster):
    ex = RayExecutor(workers=2)
    assert list(ex.map_batches(operator.neg, range(25))) == [-i for i in range(25)]
    assert list(ex.map_batches(operator.neg, [])) == []


def test_map_batches_pulls_a_bounded_number_of_batches_ahead(ray_cluster):
    pulled = []

    def batches():
        for i in range(50):
            pulled.append(i)
            yield i

    ex = RayExecutor(workers=2, in_flight=3)
    it = ex.map_batches(operator.neg, batches())
    assert next(it) == 0
    assert len(pulled) <= 2 * 3  # the window, not the whole input
    assert list(it) == [-i for i in range(1, 50)]


def test_a_user_error_in_a_worker_comes_back_as_that_error(ray_cluster, fitted):
    data, _ = fitted
    ex = RayExecutor(workers=1)
    with pytest.raises(DataError, match=r"user 999 is not in dataset 'ray-toy'"):
        list(ex.map_batches(data.check_user, [1, 2, 999, 3]))
    with pytest.raises(ValueError, match="invalid literal"):
        list(ex.map_batches(int, ["1", "x"]))


def test_close_leaves_a_ray_instance_it_did_not_start(ray_cluster):
    ex = RayExecutor()
    assert list(ex.map_batches(functools.partial(operator.mul, 3), [1, 2])) == [3, 6]
    ex.close()
    assert ray_cluster.is_initialized()


def test_more_workers_than_cpus_is_refused(ray_cluster):
    with pytest.raises(PluginError, match=r"workers = 3 x cpus_per_worker = 1 needs 3 CPUs but the Ray cluster has 2"):
        list(RayExecutor(workers=3).map_batches(operator.neg, [1]))
    with pytest.raises(PluginError, match=r"workers = 2 x cpus_per_worker = 2 needs 4 CPUs but the Ray cluster has 2"):
        list(RayExecutor(workers=2, cpus_per_worker=2).map_batches(operator.neg, [1]))


def test_a_worker_with_two_cpus_runs_two_threads(ray_cluster):
    """Each worker's OMP_NUM_THREADS is its CPUs: LightGBM/numpy threads follow."""
    ex = RayExecutor(cpus_per_worker=2)
    assert ex.n_workers() == 1
    assert list(ex.map_batches(os.getenv, ["OMP_NUM_THREADS"])) == ["2"]
    assert list(RayExecutor(workers=2).map_batches(os.getenv, ["OMP_NUM_THREADS"] * 2)) == ["1", "1"]


@pytest.mark.parametrize("params, message", [
    ({"address": "localhost:6379"}, r"address 'localhost:6379' is not \"local\", \"auto\" or \"ray://host:port\""),
    ({"workers": 0}, "workers must be a positive integer, got 0"),
    ({"num_cpus": -1}, "num_cpus must be a positive integer"),
    ({"in_flight": 0}, "in_flight must be a positive integer"),
    ({"cpus_per_worker": 0}, "cpus_per_worker must be a positive integer"),
    ({"address": "auto", "num_cpus": 2}, "num_cpus sizes a local Ray instance"),
])
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(RegistryError, match=message):
        RayExecutor(**params)


def test_registered_as_executor_ray_without_importing_ray_at_load():
    code = ("import sys, whyrec_ray; from whyrec.plugins import PluginHost; h = PluginHost(); h.add(whyrec_ray, 'whyrec-ray'); "
            "assert h.names('executors') == ['ray']; assert 'ray' not in sys.modules, 'ray imported at plugin load'; "
            "ex = h.create('executors', 'ray', {'address': 'local', 'num_cpus': 2}); print(type(ex).__module__, ex.num_cpus)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "whyrec_ray.executor 2"
    (ep,) = [e for e in entry_points(group="whyrec") if e.name == "whyrec-ray"]
    assert ep.value == "whyrec_ray"


def test_unreachable_ray_client_address_is_a_clear_error(tmp_path):
    code = ("from whyrec_ray.executor import RayExecutor\n"
            "try:\n    RayExecutor(address='ray://127.0.0.1:9').connect()\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.stdout.startswith("PluginError executor 'ray': cannot connect to Ray at address 'ray://127.0.0.1:9'"), out.stdout + out.stderr
