"""``whyrec serve RUN``: only click here; FastAPI and uvicorn load when the command runs."""
from __future__ import annotations

import os
from pathlib import Path

import click

# uvicorn's C parser and event loop, named (both pinned in pyproject.toml; uvloop is not built
# for Windows): a kept answer then costs a third less CPU than with h11 and asyncio
# (docs/benchmarks.md). The app itself refuses oversized query strings, headers and bodies
# (docs/serve.md), whichever parser reads them.
LIMITS = {"http": "httptools", "loop": "asyncio" if os.name == "nt" else "uvloop"}


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
@click.option("--rankings", type=click.IntRange(0, 10_000_000), default=10_000, show_default=True,
              help="Keep each user's ranked candidates (per model) for this many users, so a repeated request scores "
                   "no candidates (an event for the user drops theirs; 0: score every request).")
@click.option("--precompute/--no-precompute", default=False, show_default=True,
              help="Rank every user's candidates at start-up, in batches (up to --rankings users per model): "
                   "requests then only explain; start-up takes longer.")
@click.option("--warm-request", "warm_request", default=None, metavar="QUERY",
              help='A /recommend query without user, e.g. "k=10&explain=tree-shap&model=lightgbm": answered for every '
                   "user at start-up into the answer cache (grown to hold them; implies --precompute). An event for a "
                   "user drops theirs, and their next request is computed afresh.")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Threads per worker for the model libraries (OpenMP); scale with --workers instead.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning",
              show_default=True)
def serve(run_dir: Path, host: str, port: int, workers: int, events: Path | None, cache: int, rankings: int,
          precompute: bool, warm_request: str | None, threads: int, log_level: str) -> None:
    """Serve RUN_DIR's recommendations and explanations over HTTP (docs/serve.md).

    GET /recommend, /why-above, /healthz, /readyz, /metrics; POST /events, /admin/reload;
    OpenAPI at /openapi.json, docs at /docs."""
    # before LightGBM/torch load: one request runs on one core; parallelism comes from workers
    # (OpenMP threads of concurrent requests on few cores spin against each other)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    import uvicorn

    from .app import parse_warm_request
    from .state import open_complete_run

    if warm_request:
        parse_warm_request(warm_request)  # a malformed one is refused here, one line, before anything loads

    run = open_complete_run(run_dir)  # an incomplete run is refused here, one line, exit 2
    click.echo(f"whyrec serve: {run.path} on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}); "
               "GET /readyz says when it is warm", err=True)
    if workers > 1:
        os.environ["WHYREC_SERVE_RUN"] = str(run.path)
        os.environ["WHYREC_SERVE_EVENTS"] = str(events) if events else ""
        os.environ["WHYREC_SERVE_CACHE"] = str(cache)
        os.environ["WHYREC_SERVE_RANKINGS"] = str(rankings)
        os.environ["WHYREC_SERVE_PRECOMPUTE"] = "1" if precompute else "0"
        os.environ["WHYREC_SERVE_WARM_REQUEST"] = warm_request or ""
        uvicorn.run("whyrec_serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, timeout_graceful_shutdown=30, **LIMITS)
        return
    from .app import create_app

    uvicorn.run(create_app(run.path, events, cache_size=cache, rankings=rankings, precompute=precompute,
                           warm_request=warm_request), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30,
                **LIMITS)
