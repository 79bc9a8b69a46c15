"""whyrec-serve: ``whyrec serve RUN``, a run's explanations as an HTTP JSON API.

Registers the ``serve`` command. FastAPI, uvicorn and the run's heavy libraries load only when
the command runs, so ``whyrec --help`` stays fast and the core never imports a web framework.
"""
from __future__ import annotations

import whyrec

__version__ = "0.1.0"


@whyrec.hookimpl
def register_commands(cli):
    from .cli import serve

    cli.add_command(serve)
