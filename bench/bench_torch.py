"""Benchmark: the torch-attention model and its explainers on MovieLens-100K, CPU, one process.

Measured side by side (repeats interleaved A B C A B C ... so machine load hits all alike;
medians reported):

- training: seconds per epoch of torch-attention, next to the LightGBM model (its peer in the
  default pipeline) trained on the same split, with both models' AUC / NDCG@10 / HR@10;
- scoring: pairs per second of ``score_features`` on all candidates of ``--score-users`` users
  (feature rows built beforehand), torch-attention vs LightGBM, and ``recommend`` latency;
- explanation cost per recommendation on the top-10 of ``--users`` users: attention-map,
  integrated gradients at 32 and 128 steps (with their completeness gaps), Grad-CAM,
  history-counterfactual, whyrec-shap's exact-field-shapley (50 background rows), and Captum's
  LayerIntegratedGradients called directly on the same encoded rows (the peer: ratio =
  whyrec's IG throughput / Captum's, i.e. what building the Explanation costs).

    WHYREC_CACHE=.cache/whyrec .venv/bin/python bench/bench_torch.py     # writes bench/results/torch.json
    .venv/bin/python bench/bench_torch.py --epochs 5 --users 20 --repeats 5
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

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def median_time(fn, repeats: int) -> float:
    return statistics.median(_once(fn) for _ in range(repeats))


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--users", type=int, default=10, help="users whose top-10 are explained")
    ap.add_argument("--score-users", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the model's num_threads)")
    ap.add_argument("--no-lightgbm", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("WHYREC_PROGRESS", "0")

    import torch
    import whyrec
    from captum.attr import LayerIntegratedGradients

    from whyrec_torch.attention_map import AttentionMap
    from whyrec_torch.counterfactual import HistoryCounterfactual
    from whyrec_torch.gradients import GradCAM, IntegratedGradients
    from whyrec_torch.model import TorchAttentionModel

    t0 = time.perf_counter()
    data = whyrec.get_host().create("datasets", "movielens-100k").load()
    out: dict = {"dataset": data.name, "train_rows": len(data.train), "load_seconds": time.perf_counter() - t0}

    # -- training -----------------------------------------------------------------------------
    model = TorchAttentionModel(epochs=args.epochs, device="cpu", num_threads=args.threads, seed=0)
    t = time.perf_counter()
    info = model.fit(data)
    out["torch"] = {"fit_seconds": time.perf_counter() - t, "seconds_per_epoch": info["seconds_per_epoch"],
                    "epochs": args.epochs, "n_parameters": model.n_parameters(),
                    "metrics": model.evaluate(data, max_users=200, seed=0), "threads": args.threads,
                    "curves": model.curves}
    lgb = None
    if not args.no_lightgbm:
        from whyrec_lightgbm.model import LightGBMModel

        lgb = LightGBMModel(num_threads=args.threads)
        t = time.perf_counter()
        lgb.fit(data)
        out["lightgbm"] = {"fit_seconds": time.perf_counter() - t, "metrics": lgb.evaluate(data, max_users=200, seed=0),
                           "threads": args.threads}

    # -- scoring ------------------------------------------------------------------------------
    pool = np.sort(data.test["user"].unique())
    rng = np.random.default_rng(0)
    su = sorted(rng.choice(pool, args.score_users, replace=False).tolist())
    cand = pd.concat([pd.DataFrame({"user": u, "item": data.candidates(u)}) for u in su], ignore_index=True)
    t = time.perf_counter()
    Xc = data.features(cand)
    feat_s = time.perf_counter() - t
    scoring = {"pairs": len(cand), "featurize_pairs_per_s": len(cand) / feat_s}
    runners = {"torch-attention": lambda: model.score_features(Xc[model.feature_names])}
    if lgb is not None:
        runners["lightgbm"] = lambda: lgb.score_features(Xc[lgb.feature_names])
    times = {k: [] for k in runners}
    for _ in range(args.repeats):
        for k, fn in runners.items():
            times[k].append(_once(fn))
    for k, ts in times.items():
        scoring[f"{k}_pairs_per_s"] = len(cand) / statistics.median(ts)
    scoring["torch_recommend_ms_per_user"] = 1000 * median_time(lambda: [model.recommend(u, 10) for u in su[:10]], args.repeats) / 10
    out["scoring"] = scoring

    # -- explanation cost ----------------------------------------------------------------------
    eu = sorted(rng.choice(pool, args.users, replace=False).tolist())
    pairs = pd.concat([model.recommend(u, 10) for u in eu], ignore_index=True)
    X = data.features(pairs[["user", "item"]])[model.feature_names].reset_index(drop=True)
    enc = model.encode(X)
    net = model.net
    offsets = torch.as_tensor(model.encoder.cat_offsets)

    def captum_ig32():
        with model.threads():
            items, cat, num, mask = model.to_tensors(enc)
            lig = LayerIntegratedGradients(lambda i, c, n, m: net(i, c, n, m), [net.item_emb, net.cat_emb, net.num_in])
            lig.attribute((items, cat, num), baselines=(torch.zeros_like(items), offsets.expand_as(cat).contiguous(),
                                                        torch.zeros_like(num)),
                          additional_forward_args=(mask,), n_steps=32, internal_batch_size=128 * 32)

    methods = {
        "attention-map": lambda: AttentionMap().explain(model, data, pairs),
        "integrated-gradients@32": lambda: IntegratedGradients(steps=32).explain(model, data, pairs),
        "integrated-gradients@128": lambda: IntegratedGradients(steps=128).explain(model, data, pairs),
        "grad-cam": lambda: GradCAM().explain(model, data, pairs),
        "captum LayerIG@32 (direct, peer)": captum_ig32,
    }
    try:
        from whyrec_shap.exact import ExactFieldShapley

        methods["exact-field-shapley (bg 50)"] = lambda: ExactFieldShapley(background_size=50).explain(model, data, pairs)
    except ImportError:
        print("whyrec-shap is not installed: exact-field-shapley left out", file=sys.stderr)
    results = {k: [] for k in methods}
    extra = {}
    for _ in range(args.repeats):
        for k, fn in methods.items():
            t = time.perf_counter()
            r = fn()
            results[k].append(time.perf_counter() - t)
            if k.startswith("integrated-gradients"):
                extra[k] = {"completeness_gap_max": r.summary["completeness_gap_max"],
                            "completeness_gap_mean": r.summary["completeness_gap_mean"]}
    # once each (their cost depends on ranking all candidates; repeats would only hit caches)
    t = time.perf_counter()
    cf = HistoryCounterfactual().explain(model, data, pairs)
    results["history-counterfactual"] = [time.perf_counter() - t]
    extra["history-counterfactual"] = cf.summary
    am = AttentionMap(quality_pairs=20)
    e = am.explain(model, data, pairs)
    t = time.perf_counter()
    q = am.quality(model, data, e, None)
    results["attention faithfulness check (20 pairs)"] = [time.perf_counter() - t]
    extra["faithfulness"] = {k: v for k, v in q.summary.items() if k not in ("method",)}
    n = len(pairs)
    expl = {k: {"ms_per_recommendation": 1000 * statistics.median(v) / n, "seconds_total": statistics.median(v),
                **extra.get(k, {})} for k, v in results.items()}
    expl["attention faithfulness check (20 pairs)"]["ms_per_recommendation"] = 1000 * results["attention faithfulness check (20 pairs)"][0] / 20
    out["explanations"] = {"recommendations": n, "users": args.users, "methods": expl}
    ours, peer = expl["integrated-gradients@32"]["seconds_total"], expl["captum LayerIG@32 (direct, peer)"]["seconds_total"]
    out["ig_overhead_ratio"] = peer / ours  # whyrec throughput / Captum throughput

    out["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                      "torch": torch.__version__, "load_average": os.getloadavg(), "cuda": torch.cuda.is_available()}
    out["command"] = "python bench/bench_torch.py " + " ".join(sys.argv[1:])

    # -- table ----------------------------------------------------------------------------------
    tm = out["torch"]["metrics"]
    print(f"\nMovieLens-100K, {len(data.train):,} training rows, CPU, {args.threads} thread(s), load avg {os.getloadavg()[0]:.1f}")
    print(f"{'model':<18}{'s/epoch':>9}{'fit s':>8}{'AUC':>8}{'NDCG@10':>9}{'HR@10':>7}{'pairs/s':>11}")
    print(f"{'torch-attention':<18}{info['seconds_per_epoch']:>9.2f}{out['torch']['fit_seconds']:>8.1f}{tm['auc']:>8.4f}"
          f"{tm['ndcg@10']:>9.4f}{tm['hr@10']:>7.3f}{scoring['torch-attention_pairs_per_s']:>11,.0f}")
    if lgb is not None:
        lm = out["lightgbm"]["metrics"]
        print(f"{'lightgbm':<18}{'':>9}{out['lightgbm']['fit_seconds']:>8.1f}{lm['auc']:>8.4f}{lm['ndcg@10']:>9.4f}"
              f"{lm['hr@10']:>7.3f}{scoring['lightgbm_pairs_per_s']:>11,.0f}")
        print(f"scoring ratio torch/lightgbm: {scoring['torch-attention_pairs_per_s'] / scoring['lightgbm_pairs_per_s']:.2f}")
    print(f"\nexplaining {n} recommendations (top-10 of {args.users} users), median of {args.repeats}")
    base = expl["attention-map"]["ms_per_recommendation"]
    print(f"{'method':<40}{'ms/rec':>9}{'x attention':>13}{'gap max':>10}")
    for k, v in expl.items():
        gap = v.get("completeness_gap_max")
        print(f"{k:<40}{v['ms_per_recommendation']:>9.2f}{v['ms_per_recommendation'] / base:>13.1f}"
              f"{'' if gap is None else f'{gap:.1e}':>10}")
    print(f"whyrec IG@32 throughput / Captum direct: {out['ig_overhead_ratio']:.2f}")
    print(f"attention faithful? {q.summary['faithful']}: {q.summary['verdict']}")
    from whyrec.atomic import write_json

    (HERE / "results").mkdir(exist_ok=True)
    print("wrote", write_json(HERE / "results" / "torch.json", out))


if __name__ == "__main__":
    main()
