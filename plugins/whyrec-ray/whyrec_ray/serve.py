"""A run's explanations as a Ray Serve deployment with replicas: ``whyrec serve-ray RUN``.

Each replica opens the run once and keeps a warm ``whyrec.session.ExplainSession`` (the core
class `whyrec explain` and `whyrec serve` answer through), so ``GET /recommend`` returns the same
JSON as ``whyrec explain --format json`` and as `whyrec serve`. It answers the read endpoints
(``/recommend``, ``/why-above``, ``/healthz``); live events (``POST /events``), metrics and hot
swap are `whyrec serve`'s (docs/serve.md, "Ray Serve"). Ray Serve's proxy spreads requests over
the replicas and restarts one that dies.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response
from whyrec.atomic import to_json
from whyrec.errors import DataError, WhyrecError

READ = {"/recommend": {"user", "k", "explain", "model"}, "/why-above": {"user", "a", "b", "k", "explain", "model"}}


class Explanations:
    """One replica: the run loaded once; requests answered one at a time (explainers keep caches)."""

    def __init__(self, run_dir: str, rankings: int = 10_000, precompute: bool = False) -> None:
        from whyrec.rundir import Run
        from whyrec.errors import RunDirError
        from whyrec.session import ExplainSession

        run = Run(run_dir)
        if run.status != "complete":
            raise RunDirError(f"{run.path}: the run is {run.status!r}, not complete; serve a complete run")
        self.session = ExplainSession(run)
        self.session.ranking_cache = rankings  # as `whyrec serve --rankings`: each user's ranked candidates kept
        for name in self.session.warm():
            if precompute:  # as `whyrec serve --precompute`
                self.session.rank_all(name)
        self.lock = threading.Lock()

    def answer(self, path: str, q: dict) -> tuple[int, Any]:
        if path == "/healthz":
            return 200, {"status": "ok", "pid": os.getpid()}
        if path not in READ:
            return 404, {"error": f"no endpoint {path}; endpoints: /recommend, /why-above, /healthz"}
        s = self.session
        unknown = [k for k in q if k not in READ[path] and k not in s.data.context_names]
        if unknown:
            return 422, {"error": f"unknown query parameter {unknown[0]!r}"}
        methods = tuple(m.strip() for m in q.get("explain", "").split(",") if m.strip())
        ctx = s.data.context_values({k: v for k, v in q.items() if k in s.data.context_names})
        model = q.get("model")
        if model is not None and model not in s.model_names():
            return 422, {"error": f"model {model!r} is not in this run; models: {', '.join(s.model_names())}"}
        try:
            user = s.data.check_user(q.get("user"))
        except DataError as exc:
            return 404, {"error": str(exc), "user": q.get("user")}
        k = int(q.get("k", 10))
        with self.lock:
            if path == "/recommend":
                return 200, s.explain(user, k, model=model, methods=methods, context=ctx)
            return 200, s.why_above(user, q.get("a"), q.get("b"), model=model, methods=methods, k=k, context=ctx)

    async def __call__(self, request: Request) -> Response:
        try:
            status, body = self.answer(request.url.path.rstrip("/") or "/", dict(request.query_params))
        except (WhyrecError, ValueError) as exc:
            status, body = 422, {"error": str(exc)}
        return Response(to_json(body, indent=None, fallback=str), status_code=status, media_type="application/json",
                        headers={"x-whyrec-pid": str(os.getpid())})


def deployment(run_dir: str, replicas: int = 2, cpus: float = 0.5, rankings: int = 10_000, precompute: bool = False) -> Any:
    """The bound Ray Serve application: ``serve.run(deployment(run), route_prefix="/")``."""
    return serve.deployment(Explanations, name="whyrec-explanations", num_replicas=replicas,
                            ray_actor_options={"num_cpus": cpus}).bind(str(run_dir), rankings, precompute)
