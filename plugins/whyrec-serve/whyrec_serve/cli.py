"""``whyrec serve RUN``: only click here; FastAPI and uvicorn load when the command runs."""
from __future__ import annotations

import os
from pathlib import Path

import click

# uvicorn's h11 parser, named, so that installing httptools does not change how requests are read
# (the app itself refuses oversized query strings, headers and bodies: docs/serve.md)
LIMITS = {"http": "h11"}


@click.command("serve")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (keep 127.0.0.1 unless behind a proxy).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free port).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes; uvicorn's supervisor restarts one that dies.")
@click.option("--events", "events", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The JSON-lines event log POST /events appends to and start-up replays "
                   "(default: RUN/plugins/whyrec-serve/events.jsonl).")
@click.option("--cache", "cache", type=click.IntRange(0, 10_000_000), default=0, show_default=True,
              help="Keep this many /recommend answers for repeated identical requests (an event for the user "
                   "drops theirs; 0: compute every request).")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Threads per worker for the model libraries (OpenMP); scale with --workers instead.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning",
              show_default=True)
def serve(run_dir: Path, host: str, port: int, workers: int, events: Path | None, cache: int, threads: int,
          log_level: str) -> None:
    """Serve RUN_DIR's recommendations and explanations over HTTP (docs/serve.md).

    GET /recommend, /why-above, /healthz, /readyz, /metrics; POST /events, /admin/reload;
    OpenAPI at /openapi.json, docs at /docs."""
    # before LightGBM/torch load: one request runs on one core; parallelism comes from workers
    # (OpenMP threads of concurrent requests on few cores spin against each other)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    import uvicorn

    from .state import open_complete_run

    run = open_complete_run(run_dir)  # an incomplete run is refused here, one line, exit 2
    click.echo(f"whyrec serve: {run.path} on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}); "
               "GET /readyz says when it is warm", err=True)
    if workers > 1:
        os.environ["WHYREC_SERVE_RUN"] = str(run.path)
        os.environ["WHYREC_SERVE_EVENTS"] = str(events) if events else ""
        os.environ["WHYREC_SERVE_CACHE"] = str(cache)
        uvicorn.run("whyrec_serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, timeout_graceful_shutdown=30, **LIMITS)
        return
    from .app import create_app

    uvicorn.run(create_app(run.path, events, cache_size=cache), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30,
                **LIMITS)
