"""GPU check for whyrec-torch: on a machine with CUDA, train torch-attention for a few epochs on
CUDA and on CPU, score and explain a batch on each, and print CUDA vs CPU throughput.

On a machine without CUDA it prints why and exits with status 0 (nothing to measure is not a
failure). Data: MovieLens-100K from the whyrec cache when it is there (``--data movielens``),
else the synthetic sequel data set of whyrec_torch.toy (``--data toy``), so the check also runs
on a machine that cannot fetch anything.

    .venv/bin/python bench/gpu_check.py                    # writes bench/results/torch_gpu.json
    .venv/bin/python bench/gpu_check.py --epochs 3 --data toy
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_data(kind: str):
    from whyrec_torch.toy import make_toy_data

    if kind in ("auto", "movielens"):
        try:
            from whyrec_datasets.cache import cache_dir
            from whyrec_datasets.movielens import MovieLens100K

            if kind == "movielens" or (cache_dir() / "ml-100k").is_dir():
                return MovieLens100K().load()
        except Exception as exc:  # noqa: BLE001  (no datasets plugin or no cache: use the synthetic set)
            if kind == "movielens":
                raise
            print(f"gpu_check: MovieLens not available ({type(exc).__name__}: {exc}); using synthetic data", file=sys.stderr)
    return make_toy_data(n_users=3000, n_items=1500, n_genres=12, history_length=10, per_user=40, negatives=4, seed=0)


def measure(device: str, data, epochs: int, batch_size: int, users: list, repeats: int) -> dict:
    import pandas as pd
    import torch

    from whyrec_torch.attention_map import AttentionMap
    from whyrec_torch.gradients import GradCAM, IntegratedGradients
    from whyrec_torch.model import TorchAttentionModel

    threads = None if device == "cuda" else max(1, min(8, os.cpu_count() or 1))
    m = TorchAttentionModel(epochs=epochs, device=device, batch_size=batch_size, num_threads=threads,
                            score_batch_size=65536 if device == "cuda" else 8192, seed=0)
    t = time.perf_counter()
    info = m.fit(data)
    fit_s = time.perf_counter() - t
    cand = pd.concat([pd.DataFrame({"user": u, "item": data.candidates(u)}) for u in users], ignore_index=True)
    X = data.features(cand)[m.feature_names]

    def score():
        m.score_features(X)
        if device == "cuda":
            torch.cuda.synchronize()

    score()  # warm-up (CUDA context, kernels)
    score_s = statistics.median(_t(score) for _ in range(repeats))
    pairs = pd.concat([m.recommend(u, 10) for u in users[:20]], ignore_index=True)
    expl = {}
    for name, ex in (("attention-map", AttentionMap()), ("integrated-gradients@32", IntegratedGradients(steps=32)),
                     ("grad-cam", GradCAM())):
        ex.explain(m, data, pairs.head(10))  # warm-up
        expl[name] = len(pairs) / statistics.median(_t(lambda: ex.explain(m, data, pairs)) for _ in range(repeats))
    return {"device": device, "threads": threads, "seconds_per_epoch": info["seconds_per_epoch"], "fit_seconds": fit_s,
            "val_auc": info.get("val_auc"), "scoring_pairs_per_s": len(cand) / score_s, "scored_pairs": len(cand),
            "explained_recs_per_s": expl, "model": m}


def _t(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", choices=("auto", "movielens", "toy"), default="auto")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: CUDA is not available here (torch {torch.__version__}, "
              f"torch.cuda.is_available() is False); nothing to measure. Run this script on a machine with an "
              f"NVIDIA GPU and a CUDA build of torch. The CPU figures come from bench/bench_torch.py.")
        return 0
    warnings.simplefilter("ignore")
    os.environ.setdefault("WHYREC_PROGRESS", "0")
    import numpy as np

    data = load_data(args.data)
    pool = np.sort(data.test["user"].unique())
    users = sorted(np.random.default_rng(0).choice(pool, min(args.users, len(pool)), replace=False).tolist())
    res = {d: measure(d, data, args.epochs, args.batch_size, users, args.repeats) for d in ("cuda", "cpu")}

    # the same weights on both devices must score alike (fp32 scoring on both)
    import tempfile

    from whyrec_torch.model import TorchAttentionModel

    with tempfile.TemporaryDirectory() as tmp:
        res["cuda"]["model"].save(tmp)
        on_cpu = TorchAttentionModel.load(tmp, data, device="cpu")
        X = data.features(data.test[["user", "item"]].head(5000))[on_cpu.feature_names]
        diff = float(np.max(np.abs(on_cpu.score_features(X) - res["cuda"]["model"].score_features(X))))

    out = {"dataset": data.name, "train_rows": len(data.train), "epochs": args.epochs, "batch_size": args.batch_size,
           "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "python": sys.version.split()[0],
           "platform": platform.platform(), "cpus": os.cpu_count(), "cuda_vs_cpu_max_abs_score_diff_same_weights": diff,
           "command": "python bench/gpu_check.py " + " ".join(sys.argv[1:])}
    for d in ("cuda", "cpu"):
        out[d] = {k: v for k, v in res[d].items() if k != "model"}
    c, p = out["cuda"], out["cpu"]
    print(f"\n{out['gpu']} vs CPU ({out['cpus']} cores, {p['threads']} threads), {data.name}, {len(data.train):,} training rows")
    print(f"{'':<28}{'CUDA':>12}{'CPU':>12}{'CUDA/CPU':>10}")
    rows = [("seconds per epoch", c["seconds_per_epoch"], p["seconds_per_epoch"], p["seconds_per_epoch"] / c["seconds_per_epoch"]),
            ("scoring pairs/s", c["scoring_pairs_per_s"], p["scoring_pairs_per_s"], c["scoring_pairs_per_s"] / p["scoring_pairs_per_s"])]
    rows += [(f"{k} recs/s", c["explained_recs_per_s"][k], p["explained_recs_per_s"][k],
              c["explained_recs_per_s"][k] / p["explained_recs_per_s"][k]) for k in c["explained_recs_per_s"]]
    for name, a, b, r in rows:
        print(f"{name:<28}{a:>12,.2f}{b:>12,.2f}{r:>10.1f}x")
    print(f"validation AUC: CUDA (bf16 autocast) {c['val_auc']:.4f}, CPU {p['val_auc']:.4f}; "
          f"same weights CUDA vs CPU max |score diff| {diff:.2e}")
    from whyrec.atomic import write_json

    (HERE / "results").mkdir(exist_ok=True)
    print("wrote", write_json(HERE / "results" / "torch_gpu.json", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
