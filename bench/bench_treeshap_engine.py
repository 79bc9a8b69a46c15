"""Benchmark: whyrec's TreeSHAP engine vs shap.TreeExplainer vs LightGBM's pred_contrib.

Same booster (the MovieLens-100K LightGBM model of shap_bench_common: 300 trees, 48 features,
4 categorical), same encoded rows, path-dependent TreeSHAP on the raw margin:

- engine: ``TreeShapEngine.for_booster(booster).shap_values(M, threads=n)`` (whyrec_shap.treeshap_engine);
- shap: ``shap.TreeExplainer(booster).shap_values(M)`` (built once; for LightGBM it calls pred_contrib);
- pred_contrib: ``booster.predict(M, pred_contrib=True, num_threads=n)``.

Two workloads: a batch of 2,000 rows (top-10 of 200 test users) and one user's top-10 (10
rows; each repeat takes the next user, so per-call overhead counts). Each thread count runs
in its own process started with OMP_NUM_THREADS=n (shap's call has no thread argument, so
LightGBM's OpenMP default decides; pred_contrib also gets num_threads=n); inside it the three
methods run interleaved (A B C A B C ...) so machine load hits them alike. Rows/s from the
fastest repeat (the least disturbed run of identical work) and from the median; also CPU
seconds (process time) of the fastest repeat, which the shared machine's load moves less.
max |diff| is against pred_contrib over the 2,000 rows. Also: the first call's cost in a
fresh process (numba import + kernels from numba's disk cache + the model's tables) and the
kernels' compile time with an empty cache.

    .venv/bin/python bench/bench_treeshap_engine.py            # writes bench/results/treeshap_engine.json
    .venv/bin/python bench/bench_treeshap_engine.py --threads 1,2 --batch-repeats 7 --top10-repeats 200
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(args: argparse.Namespace) -> dict:
    """One thread count: every method, both workloads, in this process."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from shap_bench_common import machine, sample_users, setup

    n = args.child
    t = time.perf_counter()
    from whyrec_shap.treeshap_engine import TreeShapEngine, warm_up

    kernels_s = warm_up()
    first_import_s = time.perf_counter() - t
    data, model, _ = setup(args.n_estimators)
    booster = model.booster
    users = sample_users(data, args.users)
    pairs = pd.concat([model.recommend(u, 10) for u in users], ignore_index=True)
    X = data.features(pairs[["user", "item"]])[model.feature_names].reset_index(drop=True)
    M = np.ascontiguousarray(model.encode(X), dtype=np.float64)[: args.batch]
    t = time.perf_counter()
    engine = TreeShapEngine.for_booster(booster)
    build_s = time.perf_counter() - t

    import shap
    import warnings

    warnings.simplefilter("ignore")
    t = time.perf_counter()
    explainer = shap.TreeExplainer(booster)
    shap_build_s = time.perf_counter() - t

    methods = {
        "engine": lambda A: TreeShapEngine.for_booster(booster).shap_values(A, threads=n)[0],
        "shap.TreeExplainer": lambda A: np.asarray(explainer.shap_values(A, check_additivity=False)),
        "pred_contrib": lambda A: booster.predict(A, pred_contrib=True, num_threads=n)[:, :-1],
    }
    ref = booster.predict(M, pred_contrib=True, num_threads=n)
    diffs = {k: float(np.abs(f(M) - ref[:, :-1]).max()) for k, f in methods.items()}
    phi, base = engine.shap_values(M, threads=n)
    additivity = float(np.abs(phi.sum(axis=1) + base - booster.predict(M, raw_score=True, num_threads=n)).max())

    out = {"threads": n, "rows": len(M), "max_abs_diff_vs_pred_contrib": diffs, "engine_max_additivity_error": additivity,
           "first_call": {"import_numba_and_load_kernels_s": first_import_s, "warm_up_s": kernels_s,
                          "engine_build_s": build_s, "shap_explainer_build_s": shap_build_s,
                          "table_doubles": int(engine.H.size), "max_path_features": int(engine.max_unique)},
           "machine": machine(), "workloads": {}}
    top10 = [M[i * 10:(i + 1) * 10] for i in range(len(M) // 10)]
    for name, repeats, batch_of in (("batch", args.batch_repeats, lambda i: M), ("top10", args.top10_repeats, lambda i: top10[i % len(top10)])):
        wall = {k: [] for k in methods}
        cpu = {k: [] for k in methods}
        for i in range(repeats):
            A = batch_of(i)
            for k, f in methods.items():
                c, w = time.process_time(), time.perf_counter()
                f(A)
                wall[k].append(time.perf_counter() - w)
                cpu[k].append(time.process_time() - c)
        rows = len(batch_of(0))
        table = {}
        for k in methods:
            table[k] = {"min_s": min(wall[k]), "median_s": statistics.median(wall[k]), "rows_per_s": rows / min(wall[k]),
                        "rows_per_s_median": rows / statistics.median(wall[k]), "cpu_s_of_fastest": cpu[k][wall[k].index(min(wall[k]))],
                        "cpu_min_s": min(cpu[k])}
        for k in methods:
            table[k]["engine_speedup"] = table[k]["min_s"] / table["engine"]["min_s"]
            table[k]["engine_speedup_median"] = table[k]["median_s"] / table["engine"]["median_s"]
            table[k]["engine_speedup_cpu"] = table[k]["cpu_min_s"] / max(table["engine"]["cpu_min_s"], 1e-9)
        out["workloads"][name] = {"rows": rows, "repeats": repeats, "table": table}
    out["load_average_after"] = os.getloadavg()
    return out


def cold_compile() -> float:
    """Seconds to compile the kernels with an empty numba cache, in a fresh process."""
    with tempfile.TemporaryDirectory() as d:
        code = "from whyrec_shap.treeshap_engine import warm_up; print(warm_up())"
        env = {**os.environ, "NUMBA_CACHE_DIR": d}
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--batch-repeats", type=int, default=5)
    ap.add_argument("--top10-repeats", type=int, default=100)
    ap.add_argument("--n-estimators", type=int, default=300)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    results = []
    for n in [int(x) for x in args.threads.split(",")]:
        env = {**os.environ, "OMP_NUM_THREADS": str(n), "WHYREC_PROGRESS": "0"}
        cmd = [sys.executable, __file__, "--child", str(n)] + [
            a for k, v in vars(args).items() if k not in ("child", "threads") for a in (f"--{k.replace('_', '-')}", str(v))]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"child for {n} thread(s) failed:\n{r.stderr[-3000:]}")
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
    compile_s = cold_compile()

    print(f"TreeSHAP engine vs shap.TreeExplainer vs pred_contrib: MovieLens LightGBM, "
          f"{results[0]['first_call']['table_doubles']} table doubles, max {results[0]['first_call']['max_path_features']} path features")
    print(f"{'threads':>7} {'workload':8} {'method':19} {'rows/s':>8} {'rows/s med':>10} {'cpu ms':>8} "
          f"{'engine x':>8} {'x median':>8} {'x cpu':>6} {'max|diff|':>9}")
    for res in results:
        for w, block in res["workloads"].items():
            for k, row in block["table"].items():
                print(f"{res['threads']:>7} {w:8} {k:19} {row['rows_per_s']:8.0f} {row['rows_per_s_median']:10.0f} "
                      f"{row['cpu_min_s'] * 1e3:8.2f} {row['engine_speedup']:8.2f} {row['engine_speedup_median']:8.2f} "
                      f"{row['engine_speedup_cpu']:6.2f} {res['max_abs_diff_vs_pred_contrib'][k]:9.1e}")
        fc = res["first_call"]
        print(f"        first call: numba + kernels from cache {fc['import_numba_and_load_kernels_s']:.2f}s, model tables "
              f"{fc['engine_build_s']:.2f}s (shap.TreeExplainer build {fc['shap_explainer_build_s']:.2f}s); "
              f"additivity {res['engine_max_additivity_error']:.1e}; load average {res['load_average_after']}")
    print(f"kernel compile with an empty numba cache: {compile_s:.1f}s")
    sys.path.insert(0, str(HERE))
    from shap_bench_common import write

    out = write("treeshap_engine", {
        "benchmark": "whyrec TreeSHAP engine vs shap.TreeExplainer vs LightGBM pred_contrib (path-dependent, raw margin)",
        "results": results, "cold_compile_s": compile_s,
        "command": "bench/bench_treeshap_engine.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "child"),
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
