"""Benchmark: `whyrec serve` under load from locust (headless, 127.0.0.1 only), per explainer.

Starts ``whyrec serve RUN`` (a MovieLens-100K run with the LightGBM and the attention model;
built first into runs/ when --run is not given) and, per scenario, a headless locust with C
closed-loop clients (each sends its next request when the last one is answered) asking
``/recommend?user=U&k=10&explain=M&model=X`` for users drawn uniformly (seeded) from the
dataset. A scenario stops after its request count or its time bound, whichever comes first.
Every request's latency is recorded by locust's request event (exact percentiles, not locust's
rounded ones); errors are non-200 answers or failed connections.

    .venv/bin/python bench/bench_serve.py --run runs/<movielens run>            # the whole table
    .venv/bin/python bench/bench_serve.py --run RUN --only tree-shap --clients 8 --requests 10000
    .venv/bin/python bench/bench_serve.py --run RUN --ray --only tree-shap --clients 8   # Ray Serve, 2 replicas

Server configurations (--configs, see CONFIGS): ``plain`` scores every candidate per request,
``precompute`` ranks every user at start-up, ``warm`` also keeps every user's tree-shap answer.

Writes bench/results/serve.json (serve-ray.json with --ray).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXE = Path(sys.executable).parent

# -- the locust side: loaded by `locust -f bench/bench_serve.py` (the driver sets the variable) --
if os.environ.get("WHYREC_BENCH_LOCUST"):
    from locust import FastHttpUser, constant, events, task

    _CFG = json.loads(os.environ["WHYREC_BENCH_LOCUST"])
    _LAT: list[float] = []
    _ERR = {"n": 0, "first": None}
    _RNG = random.Random(_CFG["seed"])

    _DONE: list[float] = []  # when each answer came (throughput from the first to the last, not the bounds)

    @events.request.add_listener
    def _record(request_type, name, response_time, response_length, exception=None, response=None, **kw):
        _LAT.append(response_time)
        _DONE.append(time.time())
        if exception is not None or (response is not None and response.status_code != 200):
            _ERR["n"] += 1
            _ERR["first"] = _ERR["first"] or f"{exception or response.status_code}: {getattr(response, 'text', '')[:200]}"

    @events.quitting.add_listener
    def _dump(environment, **kw):
        Path(_CFG["out"]).write_text(json.dumps({"latency_ms": _LAT, "errors": _ERR["n"], "first_error": _ERR["first"],
                                                 "end": time.time(), "done": _DONE}))

    @events.test_start.add_listener
    def _watch(environment, **kw):
        import gevent

        def stop_at_count() -> None:  # users stopping alone leave locust idle until its time bound
            while len(_LAT) < _CFG["requests"]:
                gevent.sleep(0.05)
            environment.runner.quit()

        gevent.spawn(stop_at_count)

    class RecommendUser(FastHttpUser):
        wait_time = constant(0)

        @task
        def recommend(self) -> None:
            if len(_LAT) >= _CFG["requests"]:
                from locust.exception import StopUser

                raise StopUser()  # this client is done; the run ends at its time bound at the latest
            u = _RNG.choice(_CFG["users"])
            self.client.get(f"/recommend?user={u}&k={_CFG['k']}&explain={_CFG['method']}&model={_CFG['model']}",
                            name="/recommend")


REGISTRY = """
[pipelines.bench-serve]
seed = 42
sample_users = 3
top_k = 10
eval_users = 50
dataset = { use = "movielens-100k", positive_rating = 4, negatives = 4, history_length = 10 }
model = [ { use = "lightgbm", n_estimators = 200 }, { use = "torch-attention", epochs = 3 } ]
explainers = [ { use = "tree-shap" }, { use = "exact-field-shapley" }, { use = "attention-map" },
               { use = "integrated-gradients", steps = 32 }, { use = "gradient-shap", n_samples = 256 } ]
report = { enabled = false }
"""

# (model, method, clients, requests, seconds): the target row first; every explainer at 1, 8, 32 clients
SCENARIOS = [
    ("lightgbm", "tree-shap", 8, 10_000, 600),
    ("lightgbm", "tree-shap", 1, 1_000, 120),
    ("lightgbm", "tree-shap", 32, 4_000, 300),
] + [(model, method, clients, 300, 90)
     for model, method in (("lightgbm", "exact-field-shapley"), ("torch-attention", "integrated-gradients"),
                           ("torch-attention", "gradient-shap"), ("torch-attention", "attention-map"))
     for clients in (1, 8, 32)]


def build_run() -> Path:
    reg = Path(tempfile.mkdtemp()) / "registry.toml"
    reg.write_text(REGISTRY)
    out = subprocess.run([str(EXE / "whyrec"), "run", "bench-serve", "--registry", str(reg), "--out", str(ROOT / "runs")],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.split("run complete: ", 1)[1].split()[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# server configurations (`whyrec serve` options; Ray Serve takes the first two kinds)
CONFIGS = {
    "plain": ["--rankings", "0"],          # every request scores all the user's candidates, then explains
    "rankings": [],                        # the default: a user's ranking kept after their first request
    "precompute": ["--precompute"],        # every user ranked at start-up: a request only explains its top-k
    "warm": ["--warm-request", "k={k}&explain=tree-shap&model=lightgbm"],  # the tree-shap answer kept for every user
}


def start_server(run: Path, workers: int, config: str, k: int, log: Path, ray: bool = False) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    opts = [o.format(k=k) for o in CONFIGS[config]]
    cmd = ([str(EXE / "whyrec"), "serve-ray", str(run), "--replicas", str(workers), "--port", str(port), *opts] if ray else
           [str(EXE / "whyrec"), "serve", str(run), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--events", str(log.with_suffix(".jsonl")), *opts])
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    t = time.time()
    ready = 0
    while ready < 4 * workers and time.time() - t < 600:  # every worker warm: consecutive readyz from any of them
        if proc.poll() is not None:
            raise SystemExit(f"whyrec serve exited: {log.read_text()[-2000:]}")
        try:
            ready = ready + 1 if httpx.get(url + ("/healthz" if ray else "/readyz"), timeout=30).status_code == 200 else 0
        except httpx.HTTPError:
            ready = 0
        time.sleep(0.2)
    print(f"server warm in {time.time() - t:.1f} s ({workers} worker(s), {config}: {' '.join(opts) or 'defaults'})", flush=True)
    return proc, url


def run_locust(url: str, model: str, method: str, clients: int, requests: int, seconds: int, users: list, k: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lat.json"
        cfg = {"requests": requests, "users": users, "k": k, "method": method, "model": model, "seed": 7, "out": str(out)}
        env = dict(os.environ, WHYREC_BENCH_LOCUST=json.dumps(cfg))
        t = time.time()
        subprocess.run([str(EXE / "locust"), "-f", str(Path(__file__).resolve()), "--headless", "-u", str(clients),
                        "-r", str(clients), "-t", f"{seconds}s", "--host", url, "--only-summary", "--loglevel", "WARNING",
                        "--stop-timeout", "30"], env=env, capture_output=True, text=True, timeout=seconds + 120)
        res = json.loads(out.read_text())
        wall = res["end"] - t
    import numpy as np

    lat = np.asarray(res["latency_ms"], dtype=float)
    done = sorted(res.get("done") or [])
    span = (done[-1] - done[0]) if len(done) > 1 else wall
    return {"model": model, "method": method, "clients": clients, "requests": int(len(lat)), "errors": res["errors"],
            "first_error": res["first_error"], "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "mean_ms": float(lat.mean()), "throughput_rps": float((len(done) - 1) / max(span, 1e-9)) if len(done) > 1 else 0.0,
            # closed loop without think time: throughput = clients / mean latency (Little's law), a check of the above
            "throughput_littles_law_rps": float(clients / max(lat.mean() / 1000, 1e-9)), "wall_s": wall,
            "p90_ms": float(np.percentile(lat, 90)), "p999_ms": float(np.percentile(lat, 99.9)), "max_ms": float(lat.max()),
            # in request order: where the slow ones fall (start-up of the clients, or throughout)
            "p99_ms_by_tenth": [float(np.percentile(part, 99)) for part in np.array_split(lat, 10)] if len(lat) >= 100 else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="A finished MovieLens run (default: build one into runs/).")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--only", default=None, help="Only scenarios of this method.")
    ap.add_argument("--clients", type=int, default=None, help="Only scenarios with this many clients.")
    ap.add_argument("--requests", type=int, default=None, help="Override the request count of the chosen scenarios.")
    ap.add_argument("--seconds", type=int, default=None, help="Override the time bound of the chosen scenarios.")
    ap.add_argument("--configs", default="precompute,warm,plain",
                    help=f"Server configurations, in order ({', '.join(CONFIGS)}); every scenario runs on the first, "
                         "the tree-shap scenarios on the others.")
    ap.add_argument("--ray", action="store_true", help="Drive `whyrec serve-ray` (Ray Serve, --workers replicas) instead.")
    ap.add_argument("--tag", default="", help="Suffix of the results file (serve-TAG.json).")
    args = ap.parse_args()

    run = args.run or build_run()
    sys.path.insert(0, str(ROOT / "core"))
    from whyrec.rundir import Run

    users = [int(u) for u in Run(run).load_data().user_ids]
    scen = [s for s in SCENARIOS if (args.only is None or s[1] == args.only) and (args.clients is None or s[2] == args.clients)]
    logdir = Path(tempfile.mkdtemp())
    rows = []
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIGS or (args.ray and c == "warm")]
    if bad:
        raise SystemExit(f"--configs: {bad[0]!r} is not one of {', '.join(CONFIGS)}" + (" (Ray Serve: not warm)" if args.ray else ""))
    for n, config in enumerate(configs):
        proc, url = start_server(run, args.workers, config, args.k, logdir / f"serve-{config}.log", ray=args.ray)
        try:
            for model, method, clients, requests, seconds in (scen if n == 0 else [s for s in scen if s[1] == "tree-shap"]):
                r = run_locust(url, model, method, clients, args.requests or requests, args.seconds or seconds, users, args.k)
                r["config"] = config
                r["server_options"] = [o.format(k=args.k) for o in CONFIGS[config]]
                r["server"] = "ray-serve" if args.ray else "whyrec serve"
                rows.append(r)
                print(f"{model:16} {method:22} clients {clients:3} {config:10}: {r['requests']:6} requests, {r['errors']} errors, "
                      f"p50 {r['p50_ms']:7.1f} ms, p99 {r['p99_ms']:7.1f} ms, {r['throughput_rps']:6.1f} req/s", flush=True)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(120)
    load = os.getloadavg()
    out = {"run": str(run), "workers": args.workers, "k": args.k, "rows": rows, "cpus": os.cpu_count(),
           "loadavg_after": load, "python": platform.python_version(),
           "command": "bench/bench_serve.py " + " ".join(sys.argv[1:])}
    (HERE / "results").mkdir(exist_ok=True)
    name = "serve" + ("-ray" if args.ray else "") + (f"-{args.tag}" if args.tag else "") + ".json"
    (HERE / "results" / name).write_text(json.dumps(out, indent=2))
    print(f"wrote bench/results/{name} (load average after: {load[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
