"""``whyrec serve-ray RUN``: only click here; Ray loads when the command runs."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("serve-ray")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--replicas", type=click.IntRange(1, 1024), default=2, show_default=True, help="Ray Serve replicas.")
@click.option("--cpus", type=click.FloatRange(0.01, 256), default=0.5, show_default=True, help="CPUs Ray reserves per replica.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of Ray Serve's HTTP proxy.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--address", default=None, help="A running Ray cluster (\"auto\", \"ray://host:port\"); default: a local one.")
@click.option("--rankings", type=click.IntRange(0, 10_000_000), default=10_000, show_default=True,
              help="As `whyrec serve --rankings`: keep this many users' ranked candidates per replica.")
@click.option("--precompute/--no-precompute", default=False, show_default=True,
              help="As `whyrec serve --precompute`: each replica ranks every user's candidates at start-up.")
def serve_ray(run_dir: Path, replicas: int, cpus: float, host: str, port: int, address: str | None, rankings: int,
              precompute: bool) -> None:
    """Serve RUN_DIR's /recommend and /why-above as a Ray Serve deployment (docs/serve.md, "Ray Serve")."""
    import signal
    import time

    import ray
    from ray import serve
    from whyrec.rundir import Run
    from whyrec.errors import RunDirError

    from .serve import deployment

    run = Run(run_dir)
    if run.status != "complete":  # refused before any replica starts
        raise RunDirError(f"{run.path}: the run is {run.status!r}, not complete; serve a complete run")
    ray.init(address=address)
    serve.start(http_options={"host": host, "port": port})
    serve.run(deployment(str(run.path.resolve()), replicas=replicas, cpus=cpus, rankings=rankings,
                                 precompute=precompute), route_prefix="/")
    click.echo(f"whyrec serve-ray: {run.path} on http://{host}:{port} ({replicas} replicas); Ctrl-C stops", err=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        while not stop["now"]:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
