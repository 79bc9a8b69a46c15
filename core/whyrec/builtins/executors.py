"""The local executor: batches run in this process, optionally on a thread pool."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator


class LocalExecutor:
    """Run batches in this process; ``workers > 1`` uses threads (numpy, LightGBM and torch
    release the GIL in their kernels), keeping results in input order."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            from ..errors import RegistryError

            raise RegistryError(f"executor 'local': workers must be >= 1, got {workers}")
        self.workers = workers

    def map_batches(self, fn: Callable[[Any], Any], batches: Iterable[Any]) -> Iterator[Any]:
        if self.workers == 1:
            for b in batches:
                yield fn(b)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers) as pool:
            pending = []
            for b in batches:
                pending.append(pool.submit(fn, b))
                if len(pending) >= 2 * self.workers:
                    yield pending.pop(0).result()
            for f in pending:
                yield f.result()
