"""Benchmark: latency of ``recommend`` + explain the top 10 for one MovieLens-100K user.

For each of ``--users`` test users (seeded sample), one request = ``model.recommend(user, 10)``
(score all ~1,600 unseen films, take the top 10) and then the explanation of those 10:

- whyrec tree-shap: ``TreeShap().explain(model, data, recs)`` with the reasons worded
  (what ``whyrec explain`` shows a person);
- peer: the same recommend, then the feature rows and ``shap.TreeExplainer(booster).shap_values``
  called directly (numbers only, no words);
- whyrec exact-field-shapley: field attributions (4 fields, 50 background rows), worded.

Explainers are built once (warm process, as in a service). Prints p50 / p99 / mean in ms and
writes bench/results/latency.json.

    .venv/bin/python bench/bench_latency.py --users 200
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from shap_bench_common import machine, sample_users, setup, write


def pct(v: list[float]) -> dict:
    a = np.asarray(v) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()),
            "max_ms": float(a.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--n-estimators", type=int, default=300)
    args = ap.parse_args()

    import shap

    from whyrec_shap.exact import ExactFieldShapley
    from whyrec_shap.tree import TreeShap

    data, model, t_model = setup(args.n_estimators)
    users = sample_users(data, args.users, seed=1)
    tree, exact = TreeShap(), ExactFieldShapley(background_size=50)
    direct = shap.TreeExplainer(model.booster)
    warm = model.recommend(users[0], args.k)  # warm caches (explainer build, history index)
    tree.explain(model, data, warm).reasons.tolist()
    exact.explain(model, data, warm).reasons.tolist()
    direct.shap_values(model.encode(data.features(warm[["user", "item"]])[model.feature_names]), check_additivity=False)

    t_whyrec, t_peer, t_exact, t_rec = [], [], [], []
    for u in users:  # the three interleaved per user, so load drift hits all alike
        t = time.perf_counter()
        recs = model.recommend(u, args.k)
        t_rec.append(time.perf_counter() - t)
        tree.explain(model, data, recs).reasons.tolist()
        t_whyrec.append(time.perf_counter() - t)

        t = time.perf_counter()
        recs = model.recommend(u, args.k)
        X = data.features(recs[["user", "item"]])[model.feature_names]
        direct.shap_values(model.encode(X), check_additivity=False)
        t_peer.append(time.perf_counter() - t)

        t = time.perf_counter()
        recs = model.recommend(u, args.k)
        exact.explain(model, data, recs).reasons.tolist()
        t_exact.append(time.perf_counter() - t)

    table = {"recommend only": pct(t_rec), "recommend + tree-shap (worded)": pct(t_whyrec),
             "recommend + shap.TreeExplainer direct": pct(t_peer), "recommend + exact-field-shapley (worded)": pct(t_exact)}
    print(f"recommend + explain top-{args.k}, {len(users)} MovieLens-100K users, {model.booster.num_trees()} trees")
    print(f"{'':42} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for k, v in table.items():
        print(f"{k:42} {v['p50_ms']:8.1f} {v['p99_ms']:8.1f} {v['mean_ms']:8.1f}")
    ratio = table["recommend + shap.TreeExplainer direct"]["p50_ms"] / table["recommend + tree-shap (worded)"]["p50_ms"]
    print(f"p50 ratio peer / whyrec tree-shap: {ratio:.3f}")
    out = write("latency", {
        "benchmark": "recommend + explain top-k latency per user", "users": len(users), "k": args.k,
        "table": table, "p50_ratio_peer_over_whyrec": ratio, "model_seconds": t_model, "machine": machine(),
        "command": "bench/bench_latency.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
