"""Thread count for small networks.

A student MLP's matrices are tiny: on a shared CPU, torch's intra-op thread pool costs far more
in synchronisation than it saves (measured: 0.45 ms per training step on one thread, 9 ms on
two busy cores). Small models therefore run on ``num_threads`` (default 1) while they train or
score, and the process-wide setting is restored afterwards.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (0 = leave torch's setting alone)."""
    if not n or n == torch.get_num_threads():
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(prev)
