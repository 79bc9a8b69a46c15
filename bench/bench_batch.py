"""Benchmark of `whyrec explain-batch`: rows/s and peak memory of the local executor and of Ray
with 1 and 2 workers, against one in-memory LightGBM ``pred_contrib`` call on the same rows.

    .venv/bin/python bench/bench_batch.py [--rows 1000000] [--chunk-rows 50000]

Everything runs in this one process, one case after the other, on the same pairs file and the
same model: MovieLens-100K and the LightGBM model of the default pipeline (n_estimators = 200,
trained once and cached by bench/shap_bench_common.py). The pairs are generated (seeded) known
(user, item) pairs, written once as Parquet with 100,000-row row groups.

Cases:
  in-memory  the peer: read every pair, build every feature row, one
             ``booster.predict(pred_contrib=True)`` (LightGBM's TreeSHAP, what tree-shap calls)
             on all rows; LightGBM uses every core.
  local      explain-batch, local executor, tree-shap (n_reasons = 0: the batch output holds no
             sentences), parts written to disk; LightGBM uses every core.
  ray-1      the same on a local Ray instance (num_cpus = 2): 1 worker x 1 CPU (one thread).
  ray-2      2 workers x 1 CPU.
  ray-1x2    1 worker x 2 CPUs (two LightGBM threads in the worker).

Peak memory is sampled (psutil, every 20 ms) as the resident memory of this process ("driver")
and of this process plus all its descendants ("total": the Ray instance and its workers, which
this process starts), minus the value before the case began. CPU seconds are summed over the
same process tree: on a shared machine they, not wall seconds, say what a case costs. Ray
start-up is timed apart.
The explain-batch outputs of all executors are checked to be byte-identical, and their
attributions equal to the in-memory pred_contrib values.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shap_bench_common as common  # noqa: E402


class PeakRSS:
    """Samples resident memory and CPU time of this process and of its whole process tree.

    CPU seconds (user + system, summed over the process, its threads and every descendant seen,
    such as Ray workers) are what a case costs whatever else runs on the machine; wall seconds
    on a shared machine are not.
    """

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.base_self = self.base_tree = 0
        self.peak_self = self.peak_tree = 0
        self.cpu_base: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self._stop = threading.Event()

    def _sample(self) -> tuple[int, int]:
        import psutil

        own = self.proc.memory_info().rss
        total = own
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                if p is not self.proc:
                    total += p.memory_info().rss
                t = p.cpu_times()
                self.cpu_last[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return own, total

    def _run(self) -> None:
        while not self._stop.is_set():
            own, total = self._sample()
            self.peak_self, self.peak_tree = max(self.peak_self, own), max(self.peak_tree, total)
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        import gc

        gc.collect()
        self.base_self, self.base_tree = self._sample()
        self.cpu_base = dict(self.cpu_last)
        self.peak_self, self.peak_tree = self.base_self, self.base_tree
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        own, total = self._sample()
        self.peak_self, self.peak_tree = max(self.peak_self, own), max(self.peak_tree, total)

    def cpu_seconds(self) -> float:
        return sum(v - self.cpu_base.get(pid, 0.0) for pid, v in self.cpu_last.items())

    def mb(self) -> dict:
        return {"driver_mb": round((self.peak_self - self.base_self) / 2**20, 1),
                "total_mb": round((self.peak_tree - self.base_tree) / 2**20, 1),
                "cpu_s": round(self.cpu_seconds(), 1)}


def make_pairs(data, rows: int, path: Path) -> Path:
    import numpy as np
    import pandas as pd

    if path.exists():
        return path
    rng = np.random.default_rng(2026)
    df = pd.DataFrame({"user": rng.choice(data.user_ids, rows), "item": rng.choice(data.item_ids, rows)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    df.to_parquet(tmp, index=False, row_group_size=100_000)
    tmp.replace(path)
    return path


def in_memory(data, model, pairs: Path):
    import pandas as pd

    df = pd.read_parquet(pairs)
    X = data.features(df)[list(model.feature_names)]
    contrib = model.booster.predict(model.encode(X), pred_contrib=True)
    return contrib


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--cases", default="in-memory,local,ray-1,ray-2,ray-1x2")
    ap.add_argument("--keep", action="store_true", help="keep the output directories")
    ap.add_argument("--name", default=None, help="results file bench/results/<name>.json (default: batch[-<rows>])")
    args = ap.parse_args(argv)
    cases = args.cases.split(",")
    result_name = args.name or ("batch" if args.rows == 1_000_000 else f"batch-{args.rows}")  # bench/results/<name>.json

    import numpy as np
    import pyarrow.parquet as pq

    from whyrec.batch import SUCCESS_FILE, explain_pairs_batched
    from whyrec.builtins.executors import LocalExecutor
    from whyrec_datasets.cache import cache_dir

    t0 = time.perf_counter()
    data, model, setup_s = common.setup(n_estimators=200)
    print(f"data + model ready in {setup_s:.1f}s ({len(model.feature_names)} features, {model.booster.num_trees()} trees)", flush=True)
    pairs = make_pairs(data, args.rows, cache_dir() / "bench" / f"batch-pairs-{args.rows}.parquet")
    explainer = __import__("whyrec").get_host().create("explainers", "tree-shap", {"n_reasons": 0})
    work = Path(tempfile.mkdtemp(prefix="whyrec-bench-batch-"))
    results: dict[str, dict] = {}
    outputs: dict[str, Path] = {}
    reference = None
    ray_mod = None
    ray_start_s = None

    def explain_case(name: str, executor) -> None:
        out = work / name
        with PeakRSS() as mem:
            t = time.perf_counter()
            res = explain_pairs_batched(model, data, explainer, pairs, out, executor=executor,
                                        chunk_rows=args.chunk_rows, show_progress=False, explainer_name="tree-shap")
            secs = time.perf_counter() - t
        assert res.counts["explained"] == args.rows, res.counts
        outputs[name] = out
        results[name] = {"seconds": round(secs, 2), "rows_per_s": round(args.rows / secs, 1), **mem.mb(),
                         "parts": res.parts, "output_mb": round(sum(p.stat().st_size for p in out.glob("part-*")) / 2**20, 1)}
        print(f"{name:>9}: {secs:8.1f}s  {args.rows / secs:10,.0f} rows/s  {results[name]['cpu_s']:.0f} CPU s  "
              f"peak +{results[name]['driver_mb']:.0f} MB driver, +{results[name]['total_mb']:.0f} MB total", flush=True)

    def save_partial() -> None:  # a long run that is stopped still leaves what it measured
        common.write(result_name, {"benchmark": "explain-batch", "partial": True, "rows": args.rows,
                               "chunk_rows": args.chunk_rows, "results": results, "ray_start_s": ray_start_s,
                               "machine": common.machine()})

    for case in cases:
        if results:
            save_partial()
        if case == "in-memory":
            with PeakRSS() as mem:
                t = time.perf_counter()
                reference = in_memory(data, model, pairs)
                secs = time.perf_counter() - t
            results[case] = {"seconds": round(secs, 2), "rows_per_s": round(args.rows / secs, 1), **mem.mb()}
            print(f"{case:>9}: {secs:8.1f}s  {args.rows / secs:10,.0f} rows/s  {results[case]['cpu_s']:.0f} CPU s  "
                  f"peak +{results[case]['driver_mb']:.0f} MB", flush=True)
        elif case == "local":
            explain_case(case, LocalExecutor())
        elif case.startswith("ray-"):
            from whyrec_ray.executor import RayExecutor

            if ray_mod is None:
                import ray as ray_mod

                t = time.perf_counter()
                RayExecutor(address="local", num_cpus=2).connect()
                ray_start_s = round(time.perf_counter() - t, 2)
                print(f"ray instance started in {ray_start_s:.1f}s", flush=True)
            spec = case.removeprefix("ray-")
            workers, _, cpus = spec.partition("x")
            explain_case(case, RayExecutor(workers=int(workers), cpus_per_worker=int(cpus or 1)))
        else:
            raise SystemExit(f"unknown case {case!r}")
    if ray_mod is not None:
        ray_mod.shutdown()

    # -- checks: every executor wrote the same bytes; attributions equal pred_contrib ----------
    import json

    hashes = {n: [p["sha256"] for p in json.loads((o / SUCCESS_FILE).read_text())["parts"]] for n, o in outputs.items()}
    identical = len({tuple(h) for h in hashes.values()}) <= 1
    max_diff = None
    if reference is not None and outputs:
        first = next(iter(outputs.values()))
        names = [f"attr__{f}" for f in model.feature_names]
        row = 0
        max_diff = 0.0
        for part in sorted(first.glob("part-*.parquet")):
            t = pq.read_table(part, columns=names + ["base_value"]).to_pandas()
            ref = reference[row:row + len(t)]
            max_diff = max(max_diff, float(np.abs(t[names].to_numpy() - ref[:, :-1]).max()),
                           float(np.abs(t["base_value"].to_numpy() - ref[:, -1]).max()))
            row += len(t)
    base = results.get("in-memory", {}).get("seconds")
    print()
    print(f"explain-batch on {args.rows:,} MovieLens pairs (LightGBM, {model.booster.num_trees()} trees, "
          f"{len(model.feature_names)} features), chunk_rows = {args.chunk_rows:,}, {os.cpu_count()} CPUs")
    cpu_base = results.get("in-memory", {}).get("cpu_s")
    print(f"{'case':>10} {'seconds':>9} {'rows/s':>10} {'vs in-memory':>13} {'CPU s':>8} {'CPU vs in-memory':>17} {'peak driver MB':>15} {'peak total MB':>14}")
    for name, r in results.items():
        ratio = f"{r['seconds'] / base:.2f}x" if base else "-"
        cratio = f"{r['cpu_s'] / cpu_base:.2f}x" if cpu_base else "-"
        print(f"{name:>10} {r['seconds']:9.1f} {r['rows_per_s']:10,.0f} {ratio:>13} {r['cpu_s']:8.1f} {cratio:>17} "
              f"{r['driver_mb']:15.0f} {r['total_mb']:14.0f}")
    print(f"outputs of {', '.join(outputs)} byte-identical: {identical}; max |attribution - pred_contrib| = {max_diff}")
    if ray_start_s is not None:
        print(f"Ray start-up (not in the rows above): {ray_start_s:.1f}s")
    payload = {
        "benchmark": "explain-batch", "command": "bench/bench_batch.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": args.rows, "chunk_rows": args.chunk_rows, "model": {"trees": model.booster.num_trees(), "features": len(model.feature_names)},
        "results": results, "chunking_overhead_wall": {n: round(r["seconds"] / base, 3) for n, r in results.items() if base and n != "in-memory"},
        "chunking_overhead_cpu": {n: round(r["cpu_s"] / results["in-memory"]["cpu_s"], 3)
                                  for n, r in results.items() if base and n != "in-memory"},
        "outputs_identical": identical, "max_abs_diff_vs_pred_contrib": max_diff, "ray_start_s": ray_start_s,
        "pairs_file_mb": round(pairs.stat().st_size / 2**20, 1), "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": common.machine(),
    }
    print(f"wrote {common.write(result_name, payload)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
