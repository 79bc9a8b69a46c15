"""whyrec-ray: the ``ray`` executor, and ``whyrec serve-ray`` (a Ray Serve deployment, serve.py).

Batch work (``whyrec explain-batch``) runs on Ray actors: the per-chunk function (model, data
and explainer) is put into Ray's object store once, each worker actor deserialises it once and
then explains chunk after chunk. The factory is ``lazy`` so that loading plugins never imports
Ray (about a second).
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"

DESCRIPTION = "Run batches on Ray worker actors (address = \"local\" | \"auto\" | \"ray://host:port\")."


@whyrec.hookimpl
def register_executors(register):
    register("ray", lazy(f"{__name__}.executor:RayExecutor", DESCRIPTION), description=DESCRIPTION)


@whyrec.hookimpl
def register_commands(cli):
    from .cli import serve_ray

    cli.add_command(serve_ray)
