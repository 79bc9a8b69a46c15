"""One real local Ray instance (2 CPUs) for the whole session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray instance with 2 CPUs, started (and at the end stopped) by the executor's
    own address = "local" path, so that path is what every test runs on."""
    import ray

    from whyrec_ray.executor import RayExecutor

    owner = RayExecutor(address="local", num_cpus=2)
    owner.connect()
    assert ray.is_initialized() and int(ray.cluster_resources()["CPU"]) == 2
    yield ray
    owner.close()
    assert not ray.is_initialized()
