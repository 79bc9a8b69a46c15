"""Benchmark: transformer-seq next to torch-attention and LightGBM on MovieLens-100K, one process.

On one split (the dataset's default, seed 0):
- ranking: NDCG@10 / HR@10 ranking every unseen item of the same ``--eval-users`` test users
  (``whyrec.metrics.evaluate_model``, seed 0) and AUC on the labelled test pairs, per model;
- size and speed: parameter counts, training seconds per epoch (LightGBM: its fit seconds),
  scoring pairs/s of ``score_features`` on all candidates of ``--score-users`` users (feature
  rows built beforehand; repeats interleaved, medians);
- explanation cost on the transformer per method, per explained pair: integrated-gradients
  (32 steps), gradient-shap (50 background rows, 64 samples), grad-cam, attention-map,
  attention-rollout (rollout, flow), history-counterfactual (fewer pairs: it ranks candidates);
- faithfulness per method (``whyrec_torch.faithfulness_methods``): median Kendall τ against
  leave-one-out drops and deletion area vs random orders, on the transformer and on
  torch-attention, with the most faithful method named.

    WHYREC_PROGRESS=0 nice .venv/bin/python bench/bench_transformer.py            # bench/results/transformer.json
    .venv/bin/python bench/bench_transformer.py --epochs 1 --eval-users 50 --quick   # a smoke run
"""
from __future__ import annotations

import argparse
import json
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


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs of both torch models")
    ap.add_argument("--eval-users", type=int, default=200)
    ap.add_argument("--score-users", type=int, default=20)
    ap.add_argument("--explain-users", type=int, default=5, help="users whose top-10 are explained")
    ap.add_argument("--faith-pairs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="few users, for a smoke run")
    ap.add_argument("--data", choices=("movielens", "toy"), default="movielens", help="toy: the synthetic set, a smoke run")
    ap.add_argument("--out", default=str(HERE / "results" / "transformer.json"))
    args = ap.parse_args()
    if args.quick:
        args.eval_users, args.score_users, args.explain_users, args.faith_pairs, args.repeats = 30, 5, 2, 8, 1
    warnings.simplefilter("ignore")
    os.environ.setdefault("WHYREC_PROGRESS", "0")

    import torch
    import whyrec
    from whyrec.metrics import evaluate_model

    from whyrec_lightgbm.model import LightGBMModel
    from whyrec_torch.attention_map import AttentionMap
    from whyrec_torch.counterfactual import HistoryCounterfactual
    from whyrec_torch.faithfulness_methods import method_faithfulness
    from whyrec_torch.gradient_shap import GradientSHAP
    from whyrec_torch.gradients import GradCAM, IntegratedGradients
    from whyrec_torch.model import TorchAttentionModel
    from whyrec_torch.rollout import AttentionRollout
    from whyrec_torch.transformer import TransformerSeqModel

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.data == "toy":
        from whyrec_torch.toy import make_toy_data

        data = make_toy_data(n_users=80, n_items=40, history_length=6, seed=0)
    else:
        data = whyrec.get_host().create("datasets", "movielens-100k").load()
    out: dict = {"command": "python bench/bench_transformer.py " + " ".join(sys.argv[1:]), "dataset": data.name,
                 "train_rows": len(data.train), "test_rows": len(data.test), "python": platform.python_version(),
                 "torch": torch.__version__, "threads": args.threads, "epochs": args.epochs, "eval_users": args.eval_users}
    print(f"[bench] {data.name}: {len(data.train)} train / {len(data.test)} test pairs", flush=True)

    models = {
        "transformer-seq": TransformerSeqModel(size="small", epochs=args.epochs, device="cpu", num_threads=args.threads, seed=0),
        "torch-attention": TorchAttentionModel(epochs=args.epochs, device="cpu", num_threads=args.threads, seed=0),
        "lightgbm": LightGBMModel(num_threads=args.threads),
    }
    res: dict = {}
    for name, m in models.items():
        t = time.perf_counter()
        info = m.fit(data) or {}
        fit_s = time.perf_counter() - t
        n_par = m.n_parameters() if hasattr(m, "n_parameters") else None
        metrics = evaluate_model(m, data, k=10, max_users=args.eval_users, seed=0)
        res[name] = {"fit_seconds": fit_s, "seconds_per_epoch": info.get("seconds_per_epoch") if isinstance(info, dict) else None,
                     "n_parameters": n_par, **{k: float(v) for k, v in metrics.items()}}
        if name == "transformer-seq":
            res[name]["shape"] = dict(m.shape)
        print(f"[bench] {name}: {res[name]}", flush=True)

    # -- scoring ---------------------------------------------------------------------------------
    pool = np.sort(data.test["user"].unique())
    rng = np.random.default_rng(0)
    su = sorted(rng.choice(pool, args.score_users, replace=False).tolist())
    cand = pd.concat([pd.DataFrame({"user": u, "item": data.candidates(u)}) for u in su], ignore_index=True)
    Xc = data.features(cand)
    times = {k: [] for k in models}
    for _ in range(args.repeats):
        for k, m in models.items():
            times[k].append(_once(lambda m=m: m.score_features(Xc[m.feature_names])))
    for k in models:
        res[k]["score_pairs_per_s"] = len(cand) / statistics.median(times[k])
    out["scoring_pairs"] = len(cand)
    out["models"] = res

    # -- explanation cost on the transformer ---------------------------------------------------
    tm = models["transformer-seq"]
    eu = sorted(rng.choice(pool, args.explain_users, replace=False).tolist())
    pairs = pd.concat([tm.recommend(u, 10) for u in eu], ignore_index=True)
    cf_pairs = pd.concat([tm.recommend(u, 3) for u in eu[:2]], ignore_index=True)
    methods = {
        "integrated-gradients@32": (IntegratedGradients(steps=32), pairs),
        "gradient-shap (bg 50, 64 samples)": (GradientSHAP(background=50, n_samples=64), pairs),
        "grad-cam": (GradCAM(), pairs),
        "attention-map": (AttentionMap(), pairs),
        "attention-rollout (rollout)": (AttentionRollout(method="rollout"), pairs),
        "attention-rollout (flow)": (AttentionRollout(method="flow"), pairs),
        "history-counterfactual": (HistoryCounterfactual(), cf_pairs),
    }
    cost = {}
    for k, (x, p) in methods.items():
        reps = 1 if k == "history-counterfactual" else args.repeats
        secs = statistics.median(_once(lambda x=x, p=p: x.explain(tm, data, p)) for _ in range(reps))
        cost[k] = {"pairs": len(p), "ms_per_pair": 1000 * secs / len(p), "explanations_per_s": len(p) / secs}
        print(f"[bench] explain {k}: {cost[k]['ms_per_pair']:.1f} ms/pair", flush=True)
    out["explanation_cost_transformer"] = cost

    # -- faithfulness per method -----------------------------------------------------------------
    faith = {}
    for name in ("transformer-seq", "torch-attention"):
        m = models[name]
        fp = pd.concat([m.recommend(u, 10) for u in eu], ignore_index=True)
        r = method_faithfulness(m, data, fp, max_pairs=args.faith_pairs, seed=0)
        faith[name] = {"pairs_checked": r["pairs_checked"], "most_faithful": r["most_faithful"],
                       "table": json.loads(r["table"].to_json(orient="records"))}
        print(f"[bench] faithfulness on {name} ({r['pairs_checked']} pairs), most faithful: {r['most_faithful']}")
        print(r["table"].to_string(index=False), flush=True)
    out["faithfulness"] = faith

    print("\nmodel            | params    | s/epoch | NDCG@10 | HR@10 | AUC   | score pairs/s")
    for k, r in res.items():
        spe = r["seconds_per_epoch"] if r["seconds_per_epoch"] is not None else r["fit_seconds"]
        print(f"{k:<16} | {r['n_parameters'] or '-'!s:<9} | {spe:7.1f} | {r.get('ndcg@10', float('nan')):.4f}  | "
              f"{r.get('hr@10', float('nan')):.3f} | {r.get('auc', float('nan')):.3f} | {r['score_pairs_per_s']:,.0f}")
    out["seconds"] = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
