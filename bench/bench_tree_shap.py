"""Benchmark: whyrec's ``tree-shap`` against ``shap.TreeExplainer`` called directly.

Same booster (the MovieLens-100K LightGBM model), same rows (the top-10 recommendations of
``--users`` test users), path-dependent TreeSHAP on the raw margin, side by side in one
process, repeats interleaved (A B A B ...) so machine load hits both alike. The shared
machine's load moves the median of one method by more than whyrec's overhead, so the
headline ratio uses each method's fastest repeat (the least disturbed run of identical work);
medians are printed and stored too.

- direct: ``shap.TreeExplainer(booster).shap_values(M)`` on the encoded matrix M;
- whyrec: ``TreeShap().explain_features(model, data, pairs, X)`` on the same rows: encoding,
  shap values, the additivity check (a second LightGBM pass for the margin), the Explanation
  (reasons in words are built on first use, see whyrec_shap.reasons.LazyReasons);
- whyrec + reasons: the same, then every pair's reasons worded (``e.reasons.tolist()``): the
  dataset's describer, 6 calls per pair;
- whyrec + features: ``explain(model, data, pairs)``, which also builds the feature rows.

Both explainers are built once before timing (shap parses every tree when it is built).
Ratio = whyrec throughput / direct throughput. ``--engine shap`` measures the explainer's
overhead over shap (>= 0.95 is the target); the default ``--engine whyrec`` is what
``tree-shap`` runs by default, whyrec's own engine (bench/bench_treeshap_engine.py compares
the engines alone). Also: interventional
TreeSHAP on this model, where shap 0.51 fails on LightGBM categorical splits and whyrec's
engine answers (with its additivity error).

    .venv/bin/python bench/bench_tree_shap.py                 # writes bench/results/tree_shap_whyrec.json
    .venv/bin/python bench/bench_tree_shap.py --users 50 --repeats 5
    .venv/bin/python bench/bench_tree_shap.py --engine shap    # the shap path (tree_shap.json), as before the engine
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from shap_bench_common import machine, sample_users, setup, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--n-estimators", type=int, default=300)
    ap.add_argument("--interventional-rows", type=int, default=20)
    ap.add_argument("--background", type=int, default=100)
    ap.add_argument("--engine", choices=["whyrec", "shap"], default="whyrec", help="tree-shap's path-dependent engine")
    args = ap.parse_args()

    import shap

    from whyrec_shap.tree import TreeShap

    data, model, t_model = setup(args.n_estimators)
    users = sample_users(data, args.users)
    pairs = pd.concat([model.recommend(u, 10) for u in users], ignore_index=True)
    X = data.features(pairs[["user", "item"]])[model.feature_names].reset_index(drop=True)
    M = model.encode(X)

    t = time.perf_counter()
    direct = shap.TreeExplainer(model.booster)
    build_direct = time.perf_counter() - t
    ours = TreeShap(engine=args.engine)
    t = time.perf_counter()
    ours.explain_features(model, data, pairs.head(1), X.head(1))  # builds and caches its TreeExplainer
    build_ours = time.perf_counter() - t

    times = {"direct": [], "whyrec": [], "whyrec+reasons": [], "whyrec+features": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        sv = direct.shap_values(M, check_additivity=False)
        times["direct"].append(time.perf_counter() - t)
        t = time.perf_counter()
        e = ours.explain_features(model, data, pairs, X)
        times["whyrec"].append(time.perf_counter() - t)
        t = time.perf_counter()
        e1 = ours.explain_features(model, data, pairs, X)
        e1.reasons.tolist()
        times["whyrec+reasons"].append(time.perf_counter() - t)
        t = time.perf_counter()
        e2 = ours.explain(model, data, pairs)
        times["whyrec+features"].append(time.perf_counter() - t)
    sv = np.asarray(sv[-1] if isinstance(sv, list) else sv)
    same = float(np.abs(sv - e.attributions.to_numpy()).max())
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    rows = len(X)
    table = [{"method": k, "min_s": best[k], "median_s": med[k], "rows_per_s": rows / best[k],
              "ratio_vs_direct": best["direct"] / best[k], "ratio_vs_direct_median": med["direct"] / med[k]} for k in times]

    # interventional: shap's own engine vs whyrec's on the categorical model
    Xi = X.head(args.interventional_rows)
    Pi = pairs.head(args.interventional_rows)
    from whyrec_shap.background import sample_background

    B = model.encode(sample_background(model, data, args.background, 0))
    try:
        shap.TreeExplainer(model.booster, data=B, feature_perturbation="interventional").shap_values(model.encode(Xi))
        shap_interventional = "ran"
    except Exception as exc:  # noqa: BLE001  (the point: it fails on categorical splits)
        shap_interventional = f"{type(exc).__name__}: {str(exc)[:160]}"
    t = time.perf_counter()
    ei = TreeShap(feature_perturbation="interventional", background_size=args.background).explain_features(model, data, Pi, Xi)
    t_int = time.perf_counter() - t

    print(f"tree-shap vs shap.TreeExplainer: {rows} rows (top-10 of {len(users)} users), {model.booster.num_trees()} trees, "
          f"{len(model.feature_names)} features, {args.repeats} interleaved repeats")
    print(f"{'method':18} {'min s':>8} {'median s':>9} {'rows/s':>8} {'ratio':>6} {'ratio(median)':>13}")
    for r in table:
        print(f"{r['method']:18} {r['min_s']:8.4f} {r['median_s']:9.4f} {r['rows_per_s']:8.0f} {r['ratio_vs_direct']:6.3f} "
              f"{r['ratio_vs_direct_median']:13.3f}")
    print(f"max |phi_whyrec - phi_shap| = {same:.2e}; max additivity error {e.summary['max_additivity_error']:.2e}")
    print(f"explainer build: shap {build_direct:.2f}s, whyrec first call {build_ours:.2f}s")
    print(f"interventional ({args.interventional_rows} rows x {args.background} background): shap -> {shap_interventional}")
    print(f"  whyrec engine: {t_int:.2f}s, max additivity error {ei.summary['max_additivity_error']:.2e}")
    out = write("tree_shap" if args.engine == "shap" else "tree_shap_whyrec", {
        "benchmark": "tree-shap vs shap.TreeExplainer (path-dependent, raw margin)", "engine": args.engine, "rows": rows, "users": len(users),
        "trees": int(model.booster.num_trees()), "features": len(model.feature_names), "repeats": args.repeats,
        "table": table, "times": times, "max_abs_diff_vs_shap": same,
        "max_additivity_error": e.summary["max_additivity_error"], "build_seconds": {"shap": build_direct, "whyrec": build_ours},
        "interventional": {"rows": args.interventional_rows, "background": args.background, "shap": shap_interventional,
                           "whyrec_seconds": t_int, "whyrec_max_additivity_error": ei.summary["max_additivity_error"]},
        "model_seconds": t_model, "machine": machine(),
        "command": "bench/bench_tree_shap.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    })
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
