"""Benchmark of whyrec-datasets: MovieLens-100K from the cache, and `table` on 5,000,000 rows.

Each case runs in a fresh Python process (so peak memory is its own) and reports wall seconds
and peak resident memory (VmHWM, minus the process's memory right after imports). The peer of
each whyrec case is the bare read of the same files with pandas/pyarrow, so the ratio shows what
labels, split, negatives and feature building cost on top of reading.

    .venv/bin/python bench/bench_datasets.py            # all cases, writes bench/results/datasets.json
    .venv/bin/python bench/bench_datasets.py --rows 1000000   # a smaller table

The 5M-row Parquet files are generated (seeded) under $WHYREC_CACHE/bench/ and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def table_files(rows: int) -> dict[str, str]:
    from whyrec_datasets.cache import cache_dir

    d = cache_dir() / "bench" / f"table-{rows}"
    paths = {"interactions": d / "interactions.parquet", "users": d / "users.parquet", "items": d / "items.parquet"}
    if not all(p.exists() for p in paths.values()):
        import numpy as np
        import pandas as pd

        d.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        n_users, n_items = max(rows // 25, 10), max(rows // 100, 10)
        inter = pd.DataFrame({
            "user_id": rng.integers(0, n_users, rows), "item_id": rng.integers(0, n_items, rows),
            "clicked": (rng.uniform(size=rows) < 0.1).astype(np.int8),
            "ts": np.sort(rng.uniform(1.6e9, 1.6e9 + 90 * 86400, rows)),
            "device": pd.Categorical(rng.choice(["ios", "android", "web"], rows)),
            "position": rng.integers(1, 11, rows),
        })
        inter.to_parquet(paths["interactions"], index=False)
        pd.DataFrame({"user_id": np.arange(n_users), "age": rng.integers(18, 80, n_users),
                      "country": rng.choice(["fr", "de", "es", "it", "uk"], n_users)}).to_parquet(paths["users"], index=False)
        pd.DataFrame({"item_id": np.arange(n_items), "price": rng.uniform(1, 200, n_items),
                      "category": rng.integers(0, 30, n_items)}).to_parquet(paths["items"], index=False)
    return {k: str(v) for k, v in paths.items()}


# -- cases (each in its own process) ------------------------------------------------------
def case_movielens_read() -> dict:
    import csv

    import pandas as pd

    from whyrec_datasets import cache

    folder = cache.ensure("ml-100k", ["ml-100k.inter", "ml-100k.item", "ml-100k.user"])
    base = rss_mb("VmRSS")
    reset_peak()
    t, c = time.perf_counter(), time.process_time()
    for f in ("ml-100k.inter", "ml-100k.item", "ml-100k.user"):
        pd.read_csv(folder / f, sep="\t", quoting=csv.QUOTE_NONE)
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c, "peak_mb": rss_mb("VmHWM") - base}


def case_movielens_load() -> dict:
    import numpy as np
    import pandas as pd

    from whyrec_datasets import cache
    from whyrec_datasets.movielens import CACHE_FILES, MovieLens100K

    cache.ensure("ml-100k", CACHE_FILES)
    base = rss_mb("VmRSS")
    reset_peak()
    t, c = time.perf_counter(), time.process_time()
    data = MovieLens100K().load()
    load_s, load_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    X = data.features(data.train)
    train_s = time.perf_counter() - t
    peak = rss_mb("VmHWM") - base
    # what evaluation does: every candidate of 200 users (~1,600 per user)
    users = np.random.default_rng(0).choice(data.user_ids, 200, replace=False)
    pairs = pd.concat([pd.DataFrame({"user": u, "item": data.candidates(u)}) for u in users], ignore_index=True)
    t = time.perf_counter()
    data.features(pairs)
    eval_s = time.perf_counter() - t
    # what recommend does: one user's candidates, median of 50 calls
    one = pd.DataFrame({"user": 1, "item": data.items.index.to_numpy()})
    data.features(one)
    times = []
    for _ in range(50):
        t = time.perf_counter()
        data.features(one)
        times.append(time.perf_counter() - t)
    return {"seconds": load_s, "cpu_s": load_cpu, "peak_mb": peak, "train_features_s": train_s, "train_rows": len(X),
            "eval_pairs": len(pairs), "eval_features_s": eval_s,
            "one_user_pairs": len(one), "one_user_features_ms": 1000 * float(np.median(times))}


def case_table_read(rows: int) -> dict:
    import pandas as pd

    files = table_files(rows)
    base = rss_mb("VmRSS")
    reset_peak()
    t, c = time.perf_counter(), time.process_time()
    for p in files.values():
        pd.read_parquet(p)
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c, "peak_mb": rss_mb("VmHWM") - base}


def case_table_load(rows: int) -> dict:
    from whyrec_datasets.table import Table

    files = table_files(rows)
    base = rss_mb("VmRSS")
    reset_peak()
    t, c = time.perf_counter(), time.process_time()
    data = Table(interactions=files["interactions"], users=files["users"], items=files["items"],
                 user_col="user_id", item_col="item_id", label_col="clicked", timestamp_col="ts",
                 position_col="position", context_features=["device"]).load()
    load_s, load_cpu = time.perf_counter() - t, time.process_time() - c
    n = min(1_000_000, len(data.train))
    t = time.perf_counter()
    data.features(data.train.head(n))
    feat_s = time.perf_counter() - t
    return {"seconds": load_s, "cpu_s": load_cpu, "peak_mb": rss_mb("VmHWM") - base, "rows": len(data.interactions),
            "users": len(data.users), "items": len(data.items), "features_rows": n, "features_s": feat_s}


CASES = {"movielens_read": case_movielens_read, "movielens_load": case_movielens_load,
         "table_read": case_table_read, "table_load": case_table_load}


def run_case(name: str, rows: int) -> dict:
    cmd = [sys.executable, __file__, "--case", name, "--rows", str(rows)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--case", choices=sorted(CASES))
    ap.add_argument("--out", default=str(HERE / "results" / "datasets.json"))
    args = ap.parse_args()
    if args.case:
        fn = CASES[args.case]
        res = fn(args.rows) if args.case.startswith("table") else fn()
        print(json.dumps(res))
        return
    table_files(args.rows)  # generate outside the timed processes
    res = {name: run_case(name, args.rows) for name in CASES}
    ml, mr, tl, tr = res["movielens_load"], res["movielens_read"], res["table_load"], res["table_read"]
    rows = [
        ("MovieLens-100K from cache", "whyrec movielens-100k load", ml, "pandas read_csv of the 3 files", mr),
        (f"table, {tl['rows']:,} interactions", "whyrec table load", tl, "pandas read_parquet of the 3 files", tr),
    ]
    print(f"{'data':<32} {'whyrec s':>8} {'(cpu)':>6} {'peer s':>7} {'(cpu)':>6} {'ratio':>6} "
          f"{'whyrec MB':>9} {'peer MB':>8} {'ratio':>6}")
    for label, _, a, _, b in rows:
        print(f"{label:<32} {a['seconds']:>8.2f} {a['cpu_s']:>6.2f} {b['seconds']:>7.2f} {b['cpu_s']:>6.2f} "
              f"{a['seconds'] / b['seconds']:>6.1f} {a['peak_mb']:>9.0f} {b['peak_mb']:>8.0f} "
              f"{a['peak_mb'] / max(b['peak_mb'], 1):>6.1f}")
    print(f"MovieLens features: {ml['train_rows']:,} training pairs in {ml['train_features_s']:.2f} s; "
          f"{ml['eval_pairs']:,} candidate pairs of 200 users in {ml['eval_features_s']:.2f} s; "
          f"one user's {ml['one_user_pairs']:,} candidates in {ml['one_user_features_ms']:.1f} ms (median of 50)")
    print(f"table features: {tl['features_rows']:,} training pairs in {tl['features_s']:.2f} s "
          f"({tl['users']:,} users, {tl['items']:,} items)")
    import platform

    res["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "rows": args.rows,
                      "load_average": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
