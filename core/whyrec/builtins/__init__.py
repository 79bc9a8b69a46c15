"""Built-in components, registered as an ordinary plugin: the local executor."""
from __future__ import annotations

from ..hookspecs import hookimpl
from .executors import LocalExecutor


@hookimpl
def register_executors(register):
    register("local", LocalExecutor, description="Run batches in this process (threads optional).")
