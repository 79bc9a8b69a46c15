"""The HTTP API of ``whyrec serve``: FastAPI over a warm ``ServeState`` (docs/serve.md).

Answers are the core's: ``/recommend`` is ``ExplainSession.explain`` (the JSON of
``whyrec explain --format json``) and ``/why-above`` is ``ExplainSession.why_above``. Errors are
one JSON object ``{"error": "<one line naming the value and the fix>", ...}``: 404 for an
unknown user, 422 for any other bad input, 413 for a body over the limit, 503 while loading.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from whyrec.atomic import plain, to_json
from whyrec.errors import DataError, WhyrecError

from .metrics import Metrics
from .state import RANKINGS, ServeState

MAX_BODY = 64 * 1024  # bytes of a request body (an event is a few hundred)
MAX_QUERY = 8 * 1024  # bytes of a query string
MAX_HEADERS = 16 * 1024  # bytes of all header names and values together
MAX_METHODS = 16  # methods named in one `explain` parameter
READY_WAIT = 120.0  # seconds a request waits for the start-up load before a 503
ENDPOINTS = ("/recommend", "/why-above", "/events", "/healthz", "/readyz", "/metrics", "/admin/reload",
             "/openapi.json", "/docs")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class Interaction(BaseModel):
    """One interaction in the dataset's interaction columns: user, item, label (1 = positive),
    and optionally rating, timestamp and the dataset's context columns."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": {"user": 1, "item": 50, "label": 1}})
    user: int | str
    item: int | str
    label: float | None = None


class Reload(BaseModel):
    """Which run to swap in (default: the one being served, re-read from disk)."""

    model_config = ConfigDict(extra="forbid")
    run: str | None = None


class _Guard:
    """ASGI middleware: refuses bodies over the limit (413, nothing read further) and records
    every request's count and latency by endpoint (unknown paths count as "other")."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "other"
        status = {"code": 500, "started": False}

        async def send_(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        seen = {"bytes": 0}

        async def receive_() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_body:
                    raise _TooLarge()
            return message

        headers = scope.get("headers") or []
        too_big = None
        if len(scope.get("query_string", b"")) > MAX_QUERY:
            too_big = (414, f"query string over {MAX_QUERY:,} bytes; ask for fewer explainers or shorter ids", MAX_QUERY)
        elif sum(len(k) + len(v) for k, v in headers) > MAX_HEADERS:
            too_big = (431, f"request headers over {MAX_HEADERS:,} bytes together", MAX_HEADERS)
        if too_big is not None:
            body = to_json({"error": too_big[1], "limit_bytes": too_big[2]}, indent=None).encode()
            await send_({"type": "http.response.start", "status": too_big[0],
                         "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send_({"type": "http.response.body", "body": body})
            self.metrics.requests.labels(endpoint, scope.get("method", ""), str(status["code"])).inc()
            return
        try:
            length = dict(headers).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                raise _TooLarge()
            await self.app(scope, receive_, send_)
        except _TooLarge:
            if status["started"]:  # pragma: no cover - the body is read before any answer
                raise
            body = to_json({"error": f"request body over {self.max_body:,} bytes; send one event per request "
                                     f"(a few hundred bytes)", "limit_bytes": self.max_body}, indent=None).encode()
            await send_({"type": "http.response.start", "status": 413,
                         "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send_({"type": "http.response.body", "body": body})
        finally:
            self.metrics.requests.labels(endpoint, scope.get("method", ""), str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t)


class _TooLarge(Exception):
    pass


def create_app(run_dir: str | Path, events: str | Path | None = None, *, max_body: int = MAX_BODY,
               background_warm: bool = True, cache_size: int = 0, rankings: int = RANKINGS,
               precompute: bool = False, warm_request: str | None = None) -> FastAPI:
    """The app for one run. The run is opened and checked now (an incomplete run raises
    RunDirError); its data, models and explainers load at start-up, in the background while
    /healthz already answers (/readyz says when it is ready)."""
    metrics = Metrics()
    events_given = events
    warm_query = parse_warm_request(warm_request) if warm_request else None
    precompute = precompute or warm_query is not None
    holder: dict[str, Any] = {"state": ServeState(run_dir, events, cache_size, rankings, precompute)}
    reload_lock = threading.Lock()

    def warm(state: ServeState) -> None:
        def observed() -> None:  # start-up answers are not requests: the metrics count from here on
            state.session.observe = metrics.observe_explainer

        state.warm(prefill=(lambda: (prefill(state, warm_query), observed())) if warm_query else observed)

    def swap(run: str | Path | None = None) -> ServeState:
        """Build and warm the new state beside the old one, then replace it: requests keep
        being answered by the old one meanwhile (no failed request)."""
        with reload_lock:
            old = holder["state"]
            try:
                new = ServeState(run or old.run.path, events_given, cache_size, rankings, precompute)
                warm(new)
            except Exception:
                metrics.reloads.labels("failed").inc()
                raise
            holder["state"] = new
            metrics.reloads.labels("ok").inc()
            return new

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = holder["state"]
        if background_warm:
            threading.Thread(target=_quiet(warm), args=(state,), name="whyrec-serve-warm", daemon=True).start()
        else:
            warm(state)
        try:  # SIGHUP swaps the run in again (single process; with --workers the supervisor restarts workers)
            import asyncio

            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: threading.Thread(target=_quiet(swap), name="whyrec-serve-reload", daemon=True).start())
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        yield

    app = FastAPI(title="whyrec serve", version=_version(), lifespan=lifespan,
                  description="Recommendations with their explanations over a finished whyrec run (docs/serve.md).")
    app.state.holder = holder
    app.state.swap = swap
    app.add_middleware(_Guard, metrics=metrics, max_body=max_body)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        msg = f"{where}: {first.get('msg', 'invalid')}" if errs else "invalid request"
        return JSONResponse({"error": msg, "problems": [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
                                                        for e in errs[:10]]}, status_code=422)

    @app.exception_handler(WhyrecError)
    async def _user_error(request: Request, exc: WhyrecError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug, reported as one
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    def ready_state() -> ServeState:
        state = holder["state"]
        if not state.ready.wait(READY_WAIT):
            raise ApiError(503, "still loading the run; retry shortly (GET /readyz says when it is ready)")
        if state.error:
            raise ApiError(503, f"the run failed to load: {state.error}")
        return state

    @app.get("/recommend", summary="Top-k recommendations for a user with their explanations",
             responses={200: {"description": "The JSON of `whyrec explain --format json` (docs/contracts.md)"},
                        404: {"description": "unknown user"}, 422: {"description": "bad k, model, explainer or context"}})
    async def recommend(request: Request,
                  user: str = Query(..., max_length=200, description="User id"),
                  k: int = Query(10, description="How many recommendations (1 .. the user's candidate count)"),
                  explain: str | None = Query(None, max_length=2000, description="Comma-separated explainers (default: the run's that support the model)"),
                  model: str | None = Query(None, max_length=200, description="Model of the run (default: its first)"),
                  lang: Literal["en", "zh"] | None = Query(None, description="Add sentences a person reads (`text`, docs/sentences.md)")) -> Response:
        """Further query parameters state the request's context when the dataset has context
        features (e.g. `&device=ios`); default: the user's latest logged context."""
        state = holder["state"]
        # a kept answer is returned from the event loop (no thread hand-off); anything to compute
        # (or a lock held by a computing request) goes to the thread pool
        if state.cache_size > 0 and state.ready.is_set() and not state.error and state.lock.acquire(blocking=False):
            try:
                body = recommend_answer(state, request.query_params, user, k, explain, model, lang, kept_only=True)
            finally:
                state.lock.release()
            if body is not None:
                return Response(body, media_type="application/json")

        def compute() -> str:
            state = ready_state()
            with state.lock:
                return recommend_answer(state, request.query_params, user, k, explain, model, lang)

        return Response(await run_in_threadpool(compute), media_type="application/json")

    @app.get("/why-above", summary="Why item A scores above item B for a user",
             responses={200: {"description": "The JSON of `whyrec explain --why-above A B --format json`"},
                        404: {"description": "unknown user"}, 422: {"description": "bad item, model, explainer or context"}})
    def why_above(request: Request,
                  user: str = Query(..., max_length=200), a: str = Query(..., max_length=200, description="Item A"),
                  b: str = Query(..., max_length=200, description="Item B"),
                  k: int = Query(10, ge=1, le=1000, description="The top-k a counterfactual moves A into"),
                  explain: str | None = Query(None, max_length=2000, description="Explainer (the first named is used)"),
                  model: str | None = Query(None, max_length=200)) -> Response:
        state = ready_state()
        with state.lock:
            state.sync()
            mname, methods, uid, ctx = _check(state, request.query_params, user, model, explain,
                                              {"user", "a", "b", "k", "explain", "model"})
            data = state.session.data
            data.check_item(a, "A"), data.check_item(b, "B")
            out = state.session.why_above(uid, a, b, model=mname, methods=methods, k=k, context=ctx)
        return Response(to_json(out, indent=None, fallback=str), media_type="application/json")

    @app.post("/events", status_code=201, summary="Record a new interaction of a user (live history)",
              responses={201: {"description": "The event as written to the log"},
                         422: {"description": "malformed event, unknown user or item: nothing written"},
                         413: {"description": "body over the limit"}})
    def post_event(event: Interaction) -> Response:
        """The next /recommend for the user reflects it (docs/serve.md: what is and is not updated)."""
        state = ready_state()
        body = event.model_dump(exclude_unset=True)
        with state.lock:
            ev = state.record(body)
        metrics.events.inc()
        return Response(to_json({"accepted": True, "event": ev}, indent=None), status_code=201, media_type="application/json")

    @app.get("/healthz", summary="Liveness: the process answers")
    def healthz() -> dict:
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/readyz", summary="Readiness: the run is loaded and warm",
             responses={503: {"description": "loading, or failed to load"}})
    def readyz() -> JSONResponse:
        state = holder["state"]
        if state.error:
            return JSONResponse({"status": "failed", "error": state.error}, status_code=503)
        if not state.ready.is_set():
            return JSONResponse({"status": "loading", "run": str(state.run.path)}, status_code=503)
        return JSONResponse({"status": "ready", "pid": os.getpid(), **state.info()})

    @app.get("/metrics", summary="Prometheus metrics of this process")
    def get_metrics() -> Response:
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    @app.post("/admin/reload", summary="Hot-swap the run (default: the one served, re-read)",
              responses={422: {"description": "the run cannot be served (incomplete, missing)"}})
    def reload(body: Reload | None = None) -> JSONResponse:
        """Requests keep being answered by the old run until the new one is warm. Bind the
        server to 127.0.0.1 (the default) or keep /admin behind your proxy."""
        new = swap(body.run if body else None)
        return JSONResponse({"status": "reloaded", **new.info()})

    return app


RECOMMEND_PARAMS = ("user", "k", "explain", "model", "lang")


def recommend_answer(state: ServeState, query: Mapping[str, str], user: str, k: int, explain: str | None,
                     model: str | None, lang: str | None, kept_only: bool = False) -> str | None:
    """The body of GET /recommend, checked, from the answer cache where one is kept: the
    endpoint and the start-up prefill (``--warm-request``) answer through this one path.
    ``kept_only``: None rather than compute one. Call it under ``state.lock``."""
    state.sync()
    mname, methods, uid, ctx = _check(state, query, user, model, explain, set(RECOMMEND_PARAMS))
    _check_k(state, uid, k)
    key = ("recommend", mname, methods, k, lang, tuple(sorted(ctx.items())))
    if kept_only:
        return state.kept(key, uid)
    return state.answer(key, uid, lambda: to_json(
        state.session.explain(uid, k, model=mname, methods=methods, context=ctx, lang=lang), indent=None, fallback=str))


def parse_warm_request(text: str) -> dict[str, str]:
    """``--warm-request "k=10&explain=tree-shap&model=lightgbm"``: the /recommend query (without
    ``user``) whose answer is computed for every user at start-up. DataError naming the
    parameter; the run-specific checks (model, explainers, context) happen at start-up."""
    from urllib.parse import parse_qsl

    try:
        pairs = parse_qsl(text.lstrip("?"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise DataError(f"--warm-request {text!r}: not a query string; write it as k=10&explain=tree-shap&model=NAME") from None
    query = dict(pairs)
    if len(query) != len(pairs):
        raise DataError(f"--warm-request {text!r}: a parameter is given twice")
    if "user" in query:
        raise DataError("--warm-request: leave out 'user'; the request is answered for every user of the run")
    k = query.get("k", "10")
    if not k.isdigit() or int(k) < 1:
        raise DataError(f"--warm-request: k={k!r}; give a whole number >= 1")
    query["k"] = k
    if query.get("lang") not in (None, "en", "zh"):
        raise DataError(f"--warm-request: lang={query['lang']!r}; use en or zh")
    return query


def prefill(state: ServeState, query: dict[str, str]) -> int:
    """Answer ``query`` (``parse_warm_request``) for every user into the answer cache, which is
    grown to hold them; a user whose candidates are fewer than k is skipped. Returns how many
    answers were kept. The first other refusal (an unknown model or explainer) stops start-up."""
    users = state.session.data.user_ids
    state.cache_size = max(state.cache_size, len(users))
    n = 0
    for u in users:
        try:
            with state.lock:
                recommend_answer(state, query, str(plain(u)), int(query["k"]), query.get("explain"), query.get("model"),
                                 query.get("lang"))
            n += 1
        except ApiError as exc:
            if isinstance(exc.extra.get("valid"), dict) and "max" in exc.extra["valid"]:
                continue  # this user has fewer than k candidates (_check_k's refusal)
            raise DataError(f"--warm-request: {exc.message}") from None
    state.prefilled = n
    return n


def _check(state: ServeState, query: Mapping[str, str], user: str, model: str | None, explain: str | None,
           known: set[str]) -> tuple[str, tuple[str, ...], Any, dict]:
    """Model, methods, user and context of a request, checked; ApiError naming the valid ones."""
    session = state.session
    names = session.model_names()
    if model is not None and model not in names:
        raise ApiError(422, f"model {model!r} is not in this run; models: {', '.join(names)}", valid=names)
    mname = session.model_name(model)
    methods: tuple[str, ...] = ()
    if explain is not None:
        methods = tuple(dict.fromkeys(m.strip() for m in explain.split(",") if m.strip()))
        valid = session.method_names(mname)
        if not methods:
            raise ApiError(422, f"explain: name at least one explainer ({', '.join(valid)}) or leave it out", valid=valid)
        if len(methods) > MAX_METHODS:
            raise ApiError(422, f"explain: {len(methods)} explainers named; at most {MAX_METHODS}", valid=valid)
        bad = [m for m in methods if m not in valid]
        if bad:
            raise ApiError(422, f"explainer {bad[0]!r} is not one for model {mname!r}; explainers that are: {', '.join(valid)}",
                           valid=valid)
    data = session.data
    try:
        uid = data.check_user(user)
    except DataError as exc:
        raise ApiError(404, f"{exc}; this run's models have no cold-start answer for a user they were not trained on",
                       user=user) from None
    extra = {k: v for k, v in query.items() if k not in known}
    if not extra:
        return mname, methods, uid, {}
    names_ctx = data.context_names
    unknown = [k for k in extra if k not in names_ctx]
    if unknown:
        allowed = sorted(known) + names_ctx
        raise ApiError(422, f"unknown query parameter {unknown[0]!r}; parameters: {', '.join(sorted(known))}"
                       + (f" (context features: {', '.join(names_ctx)})" if names_ctx else ""), valid=allowed)
    ctx = data.context_values(extra) if extra else {}
    return mname, methods, uid, ctx


def _check_k(state: ServeState, user: Any, k: int) -> None:
    n = state.session.candidate_count(user)
    if not 1 <= k <= n:
        raise ApiError(422, f"k={k}: use 1 <= k <= {n} (user {plain(user)!r} has {n} candidate items)", valid={"min": 1, "max": n})


def _quiet(fn: Any) -> Any:
    """A thread target whose exception is recorded (by ServeState/metrics), not printed twice."""
    def run(*args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001
            import sys

            print(f"whyrec serve: {type(exc).__name__}: {exc}", file=sys.stderr)
    return run


def _version() -> str:
    from . import __version__

    return __version__


def app_from_env() -> FastAPI:
    """The app for uvicorn's ``--workers`` (an import string): the run and log from the
    environment the ``serve`` command sets."""
    return create_app(os.environ["WHYREC_SERVE_RUN"], os.environ.get("WHYREC_SERVE_EVENTS") or None,
                      cache_size=int(os.environ.get("WHYREC_SERVE_CACHE") or 0),
                      warm_request=os.environ.get("WHYREC_SERVE_WARM_REQUEST") or None,
                      rankings=int(os.environ.get("WHYREC_SERVE_RANKINGS") or RANKINGS),
                      precompute=os.environ.get("WHYREC_SERVE_PRECOMPUTE") == "1")
