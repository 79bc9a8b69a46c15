"""The ``ray`` executor: ``map_batches(fn, batches)`` on a pool of Ray worker actors.

Why actors rather than one task per batch: the function carries the model, the dataset and the
explainer. Ray tasks would deserialise them for every batch; an actor deserialises them once
(from a single copy in Ray's object store) and then serves batch after batch. Results come back
in input order, with at most ``in_flight`` batches per worker submitted at a time, so the
driver's memory stays bounded whatever the number of batches.

What travels: the function object (whyrec's own model/explainer objects, serialised by Ray) and
each batch (an Arrow table). Nothing read from a user-supplied file is ever unpickled: the
pairs are read by the driver as Parquet and sent as Arrow data.
"""
from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Iterable, Iterator

import ray

from whyrec.errors import PluginError, RegistryError, WhyrecError

ADDRESSES = ("local", "auto")


class _Worker:
    """Holds the deserialised function; one per worker process."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def run(self, batch: Any) -> Any:
        return self.fn(batch)


class RayExecutor:
    """Run batches on Ray.

    address: "local" starts a Ray instance in this process's machine (``num_cpus`` CPUs, all by
        default) and shuts it down on ``close()``; "auto" joins the cluster started with
        ``ray start --head`` on this machine; "ray://host:port" connects through Ray Client.
        When Ray is already initialised in the process (a platform or a notebook did it), that
        instance is used and left running.
    workers: worker actors; default: as many as the cluster's CPUs allow.
    cpus_per_worker: CPUs reserved by each worker; its OMP_NUM_THREADS (and BLAS threads)
        are set to it, so LightGBM/numpy inside a worker use that many threads.
    in_flight: batches queued per worker; the driver holds at most ``workers * in_flight``
        batches and results at a time.
    """

    def __init__(self, address: str = "local", num_cpus: int | None = None, workers: int | None = None,
                 cpus_per_worker: int = 1, in_flight: int = 2) -> None:
        if not isinstance(address, str) or not (address in ADDRESSES or address.startswith("ray://")):
            raise RegistryError(f"executor 'ray': address {address!r} is not \"local\", \"auto\" or \"ray://host:port\"")
        for name, value in (("num_cpus", num_cpus), ("workers", workers), ("cpus_per_worker", cpus_per_worker)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise RegistryError(f"executor 'ray': {name} must be a positive integer, got {value!r}")
        if not isinstance(in_flight, int) or in_flight < 1:
            raise RegistryError(f"executor 'ray': in_flight must be a positive integer, got {in_flight!r}")
        if num_cpus is not None and address != "local":
            raise RegistryError(f"executor 'ray': num_cpus sizes a local Ray instance; with address {address!r} the cluster decides (use workers)")
        self.address, self.num_cpus, self.workers, self.in_flight = address, num_cpus, workers, in_flight
        self.cpus_per_worker = cpus_per_worker
        self._started = False

    # -- connecting -------------------------------------------------------------------------
    def connect(self) -> None:
        """Start or join Ray (idempotent)."""
        if ray.is_initialized():
            return
        try:
            if self.address == "local":
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False, configure_logging=True)
            else:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            hint = ("start one with `ray start --head`, or use address = \"local\"" if self.address == "auto"
                    else "check the address and that the cluster runs the same Ray and Python versions")
            raise PluginError(f"executor 'ray': cannot connect to Ray at address {self.address!r} "
                              f"({type(exc).__name__}: {exc}); {hint}") from exc
        self._started = True

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False

    def __enter__(self) -> "RayExecutor":
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def n_workers(self) -> int:
        self.connect()
        cpus = int(ray.cluster_resources().get("CPU", 0))
        n = self.workers or max(cpus // self.cpus_per_worker, 1)
        if n * self.cpus_per_worker > cpus:
            raise PluginError(f"executor 'ray': workers = {n} x cpus_per_worker = {self.cpus_per_worker} needs "
                              f"{n * self.cpus_per_worker} CPUs but the Ray cluster has {cpus}; lower workers or "
                              f"cpus_per_worker, or give the cluster more CPUs (num_cpus for address = \"local\")")
        return n

    # -- the contract -------------------------------------------------------------------------
    def map_batches(self, fn: Callable[[Any], Any], batches: Iterable[Any]) -> Iterator[Any]:
        """Yield ``fn(batch)`` for every batch, in input order."""
        n = self.n_workers()
        fn_ref = ray.put(fn)  # one copy in the object store; each actor resolves it once
        # A worker's native thread pools (OpenMP in LightGBM, BLAS) get its CPUs, no more:
        # otherwise each worker would start one thread per core of the machine.
        threads = str(self.cpus_per_worker)
        env = {k: threads for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        worker_cls = ray.remote(num_cpus=self.cpus_per_worker, runtime_env={"env_vars": env})(_Worker)
        actors = [worker_cls.remote(fn_ref) for _ in range(n)]
        load = [0] * n
        window: collections.deque = collections.deque()  # (object ref, actor index), in input order
        limit = n * self.in_flight
        try:
            it = iter(batches)
            exhausted = False
            while True:
                while not exhausted and len(window) < limit:
                    try:
                        batch = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    a = min(range(n), key=load.__getitem__)  # least busy worker
                    window.append((actors[a].run.remote(batch), a))
                    load[a] += 1
                if not window:
                    return
                ref, a = window.popleft()
                result = _get(ref)
                load[a] -= 1
                yield result
        finally:
            # Stopped early (an error, or the consumer gave up): killing the actors drops their queues.
            for actor in actors:
                ray.kill(actor)
            del fn_ref


def _get(ref: Any) -> Any:
    """ray.get that re-raises a worker's own error (a WhyrecError stays a one-line user error)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, WhyrecError):
            raise cause from None
        if isinstance(cause, Exception):
            raise cause from exc
        raise
    except ray.exceptions.RayActorError as exc:
        raise PluginError(f"executor 'ray': a worker died ({exc}); results already written are kept, "
                          f"rerun the command to resume") from exc
