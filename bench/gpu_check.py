"""GPU check for whyrec-torch: on a machine with CUDA, train torch-attention and transformer-seq
(size ``large``, over 10M parameters, by default on CUDA; ``small`` on the CPU) for a few epochs
on CUDA and on CPU, score, explain (attention-map, integrated gradients, Grad-CAM, and
attention-rollout for the transformer) and distil (-> mlp) on each, and print CUDA vs CPU:
seconds per epoch, scoring pairs/s, explanations/s, distillation seconds.

On a machine without CUDA it says so and measures the CPU side only (exit status 0), so the
path is proved everywhere; ``--size tiny --data tiny`` makes that a run of seconds. Data: MovieLens-100K from the whyrec cache when it is there (``--data movielens``),
else the synthetic sequel data set of whyrec_torch.toy (``--data toy``), so the check also runs
on a machine that cannot fetch anything.

    .venv/bin/python bench/gpu_check.py                    # writes bench/results/torch_gpu.json
    .venv/bin/python bench/gpu_check.py --epochs 3 --data toy
    .venv/bin/python bench/gpu_check.py --epochs 1 --data tiny --size tiny --users 10 --repeats 1   # CPU smoke
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
    if kind == "tiny":  # the smoke run's data: seconds, not minutes
        return make_toy_data(n_users=80, n_items=40, history_length=6, seed=0)
    return make_toy_data(n_users=3000, n_items=1500, n_genres=12, history_length=10, per_user=40, negatives=4, seed=0)


def make_model(name: str, device: str, epochs: int, batch_size: int, size: str):
    from whyrec_torch.model import TorchAttentionModel
    from whyrec_torch.transformer import TransformerSeqModel

    threads = None if device == "cuda" else max(1, min(8, os.cpu_count() or 1))
    common = dict(epochs=epochs, device=device, batch_size=batch_size, num_threads=threads,
                  score_batch_size=65536 if device == "cuda" else 8192, seed=0)
    if name == "torch-attention":
        return TorchAttentionModel(**common)
    if size == "tiny":  # the smoke configuration: proves the path, measures little
        return TransformerSeqModel(size="small", embedding_dim=16, layers=1, heads=1, hidden=[16], **common)
    if size == "auto":
        size = "large" if device == "cuda" else "small"
    return TransformerSeqModel(size=size, **common)


def measure(name: str, device: str, data, epochs: int, batch_size: int, users: list, repeats: int, size: str = "auto",
            distill: bool = True) -> dict:
    import pandas as pd
    import torch

    from whyrec_torch.attention_map import AttentionMap
    from whyrec_torch.gradients import GradCAM, IntegratedGradients

    m = make_model(name, device, epochs, batch_size, size)
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
    explainers = [("attention-map", AttentionMap()), ("integrated-gradients@32", IntegratedGradients(steps=32)),
                  ("grad-cam", GradCAM())]
    if name == "transformer-seq":
        from whyrec_torch.rollout import AttentionRollout

        explainers.append(("attention-rollout", AttentionRollout(method="rollout")))
    expl = {}
    for ename, ex in explainers:
        ex.explain(m, data, pairs.head(10))  # warm-up
        expl[ename] = len(pairs) / statistics.median(_t(lambda: ex.explain(m, data, pairs)) for _ in range(repeats))
    out = {"model": name, "device": device, "threads": m.params.get("num_threads") if hasattr(m, "params") else None,
           "n_parameters": m.n_parameters(), "shape": getattr(m, "shape", None),
           "seconds_per_epoch": info["seconds_per_epoch"], "fit_seconds": fit_s, "val_auc": info.get("val_auc"),
           "scoring_pairs_per_s": len(cand) / score_s, "scored_pairs": len(cand), "explained_recs_per_s": expl,
           "trained": m}
    if distill:  # the teacher scores the distillation set on its device; the mlp student trains on the CPU
        from whyrec_distill.distill import Distiller

        d = Distiller(student="mlp", student_params={"epochs": 3}, mode="listwise", baseline=False, max_users=100,
                      eval_users=min(30, len(users)), explain_users=2, repeats=1)
        t = time.perf_counter()
        _, rep = d.compress(m, data)
        st = rep.summary["models"]
        stu = [v for k, v in st.items() if k != "teacher"][0]
        out["distill"] = {"seconds": time.perf_counter() - t, "jaccard@10": stu.get("jaccard@10"),
                          "speedup": stu.get("speedup"), "parameter_ratio": stu.get("parameter_ratio")}
        if "structured-network" in getattr(m, "capabilities", ()):
            # distill-network (its defaults, fewer epochs and users): the student is cloned onto the
            # teacher's device and trains there
            from whyrec_distill.structured import NetworkDistiller

            nd = NetworkDistiller(epochs=2, max_users=100, eval_users=min(30, len(users)), explain_users=2, repeats=1)
            t = time.perf_counter()
            _, rep = nd.compress(m, data)
            stu = rep.summary["models"]["student"]
            out["distill_network"] = {"seconds": time.perf_counter() - t, "jaccard@10": stu.get("jaccard@10"),
                                      "top3_agreement": stu.get("top3_agreement"), "speedup": stu.get("speedup"),
                                      "parameter_ratio": stu.get("parameter_ratio"),
                                      "listwise_seconds": rep.summary["distillation"]["seconds"]}
    return out


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
    ap.add_argument("--data", choices=("auto", "movielens", "toy", "tiny"), default="auto")
    ap.add_argument("--models", default="torch-attention,transformer-seq")
    ap.add_argument("--size", choices=("auto", "tiny", "small", "large"), default="auto",
                    help="transformer-seq configuration: auto = large on CUDA, small on the CPU; tiny = a smoke run")
    ap.add_argument("--no-distill", action="store_true")
    ap.add_argument("--cpu-only", action="store_true", help="measure the CPU side only (what runs where CUDA is absent)")
    ap.add_argument("--out", default=None, help="default: results/torch_gpu.json with CUDA, results/gpu_check_cpu.json without")
    args = ap.parse_args()
    import torch

    cuda = torch.cuda.is_available() and not args.cpu_only
    if not cuda:
        print(f"gpu_check: CUDA is not available here (torch {torch.__version__}, torch.cuda.is_available() is "
              f"{torch.cuda.is_available()}); measuring the CPU side only. Run this script on a machine with an NVIDIA "
              f"GPU and a CUDA build of torch for the CUDA vs CPU table.")
    warnings.simplefilter("ignore")
    os.environ.setdefault("WHYREC_PROGRESS", "0")
    import numpy as np

    data = load_data(args.data)
    pool = np.sort(data.test["user"].unique())
    users = sorted(np.random.default_rng(0).choice(pool, min(args.users, len(pool)), replace=False).tolist())
    devices = ("cuda", "cpu") if cuda else ("cpu",)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    res = {(n, d): measure(n, d, data, args.epochs, args.batch_size, users, args.repeats, args.size, not args.no_distill)
           for n in names for d in devices}

    out = {"dataset": data.name, "train_rows": len(data.train), "epochs": args.epochs, "batch_size": args.batch_size,
           "gpu": torch.cuda.get_device_name(0) if cuda else None, "torch": torch.__version__, "python": sys.version.split()[0],
           "platform": platform.platform(), "cpus": os.cpu_count(), "size": args.size,
           "command": "python bench/gpu_check.py " + " ".join(sys.argv[1:]), "models": {}}
    import tempfile

    for n in names:
        entry = {d: {k: v for k, v in res[(n, d)].items() if k != "trained"} for d in devices}
        if cuda:  # the same weights on both devices must score alike (fp32 scoring on both)
            trained = res[(n, "cuda")]["trained"]
            with tempfile.TemporaryDirectory() as tmp:
                trained.save(tmp)
                on_cpu = type(trained).load(tmp, data, device="cpu")
                X = data.features(data.test[["user", "item"]].head(5000))[on_cpu.feature_names]
                entry["cuda_vs_cpu_max_abs_score_diff_same_weights"] = float(
                    np.max(np.abs(on_cpu.score_features(X) - trained.score_features(X))))
        out["models"][n] = entry
        print(f"\n{n}: {out['gpu'] or 'no GPU'} vs CPU ({out['cpus']} cores), {data.name}, {len(data.train):,} training rows")
        cols = list(devices)
        print(f"{'':<28}" + "".join(f"{c.upper():>12}" for c in cols) + (f"{'CUDA/CPU':>10}" if cuda else ""))
        c = entry[cols[0]]
        rows = [("parameters", "n_parameters", False), ("seconds per epoch", "seconds_per_epoch", True),
                ("scoring pairs/s", "scoring_pairs_per_s", False)]
        for label, key, lower in rows:
            vals = [entry[d][key] for d in cols]
            ratio = (vals[1] / vals[0] if lower else vals[0] / vals[1]) if cuda else None
            print(f"{label:<28}" + "".join(f"{v:>12,.2f}" for v in vals) + (f"{ratio:>9.1f}x" if ratio else ""))
        for k in c["explained_recs_per_s"]:
            vals = [entry[d]["explained_recs_per_s"][k] for d in cols]
            print(f"{k + ' recs/s':<28}" + "".join(f"{v:>12,.2f}" for v in vals) + (f"{vals[0] / vals[1]:>9.1f}x" if cuda else ""))
        if "distill" in c:
            vals = [entry[d]["distill"]["seconds"] for d in cols]
            print(f"{'distill -> mlp seconds':<28}" + "".join(f"{v:>12,.2f}" for v in vals) + (f"{vals[1] / vals[0]:>9.1f}x" if cuda else ""))
        if "distill_network" in c:
            vals = [entry[d]["distill_network"]["seconds"] for d in cols]
            print(f"{'distill-network seconds':<28}" + "".join(f"{v:>12,.2f}" for v in vals) + (f"{vals[1] / vals[0]:>9.1f}x" if cuda else ""))
    from whyrec.atomic import write_json

    (HERE / "results").mkdir(exist_ok=True)
    target = Path(args.out) if args.out else HERE / "results" / ("torch_gpu.json" if cuda else "gpu_check_cpu.json")
    print("wrote", write_json(target, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
