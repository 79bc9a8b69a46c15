"""Benchmark: whyrec's ``exact-field-shapley`` against ``shap.KernelExplainer`` over the same
feature groups, model, background and rows, with a brute-force reference for the error.

Three player sets on the MovieLens-100K LightGBM model: the 4 fields (user, item, history,
cross), the schema's 6 groups, and 12 finer groups. For each:

- whyrec: ``ExactFieldShapley(groups=...)``: all 2^F coalitions x the background rows;
- shap: ``shap.KernelExplainer(f, DenseData(background, names, groups))`` (Kernel SHAP over the
  same groups, uniform weights on the same background rows; ``nsamples`` = shap's "auto",
  2F + 2048, which enumerates every coalition when 2^F - 2 <= that, i.e. F <= 11);
- reference: the Shapley subset formula with each coalition's rows built explicitly (no code
  shared with whyrec_shap), on the first ``--ref-rows`` rows.

Prints seconds, the speed ratio (shap seconds / whyrec seconds: > 1 means whyrec is faster)
and the max |error| of each against the reference.

    .venv/bin/python bench/bench_field_shapley.py          # writes bench/results/field_shapley.json
"""
from __future__ import annotations

import argparse
import itertools
import math
import time
import warnings

import numpy as np
import pandas as pd

from shap_bench_common import machine, sample_users, setup, write


def reference(f, x: pd.DataFrame, B: pd.DataFrame, groups: dict[str, list[str]]) -> np.ndarray:
    names = list(groups)
    n, nb = len(names), len(B)
    bits = np.array(list(itertools.product((0, 1), repeat=n)), dtype=bool)
    cols = {}
    for g, name in enumerate(names):
        for c in groups[name]:
            take_x = np.repeat(bits[:, g], nb)
            vals = np.where(take_x, x[c].astype(object).to_numpy()[0], np.tile(B[c].astype(object).to_numpy(), len(bits)))
            cols[c] = (pd.Categorical(vals, categories=B[c].cat.categories) if isinstance(B[c].dtype, pd.CategoricalDtype)
                       else vals.astype(float))
    v = np.asarray(f(pd.DataFrame(cols)[list(B.columns)])).reshape(len(bits), nb).mean(axis=1)
    index = {tuple(b): k for k, b in enumerate(bits.astype(int).tolist())}
    phi = np.zeros(n)
    for b, k in index.items():
        s = sum(b)
        for j in range(n):
            if not b[j]:
                phi[j] += math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) * (v[index[b[:j] + (1,) + b[j + 1:]]] - v[k])
    return phi


def player_sets(model, data) -> dict[str, dict[str, list[str]]]:
    from whyrec_shap.exact import model_groups

    fields = model_groups(model, data, "field")
    groups = model_groups(model, data, "group")
    fine: dict[str, list[str]] = {}
    for name, cols in groups.items():
        if ":" in name:  # keep genre / genre_profile blocks whole
            fine[name] = cols
        else:
            for c in cols:
                fine[c] = [c]
    return {"fields": fields, "groups": groups, "fine": fine}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20)
    ap.add_argument("--background", type=int, default=30)
    ap.add_argument("--ref-rows", type=int, default=5)
    ap.add_argument("--n-estimators", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import shap
    from shap.utils._legacy import DenseData

    from whyrec_shap.background import FrameCodec, sample_background
    from whyrec_shap.exact import ExactFieldShapley
    from whyrec_shap.sampling import NAN_SENTINEL, _from_shap, _to_shap

    data, model, t_model = setup(args.n_estimators)
    users = sample_users(data, max(1, args.rows // 10), args.seed)
    pairs = pd.concat([model.recommend(u, 10) for u in users], ignore_index=True).head(args.rows)
    X = data.features(pairs[["user", "item"]])[model.feature_names].reset_index(drop=True)
    B = sample_background(model, data, args.background, args.seed)
    codec = FrameCodec.fit(B, X)
    cols = codec.columns

    def f(M: np.ndarray) -> np.ndarray:
        return model.score_features(codec.decode(_from_shap(M)))

    rows = []
    for label, groups in player_sets(model, data).items():
        F = len(groups)
        t = time.perf_counter()
        ours = ExactFieldShapley(groups=groups, background_size=args.background, seed=args.seed).explain_features(model, data, pairs, X)
        t_ours = time.perf_counter() - t
        phi_ours = ours.field_attributions[list(groups)].to_numpy()
        # Kernel SHAP over the same groups: columns reordered group by group for DenseData
        order = [c for g in groups.values() for c in g]
        pos = {c: k for k, c in enumerate(order)}
        idx_groups = [np.array([pos[c] for c in g]) for g in groups.values()]
        perm = [cols.index(c) for c in order]
        inv = np.argsort(perm)
        bg = DenseData(_to_shap(codec.encode(B))[:, perm], list(groups), idx_groups)
        fk = lambda M: f(np.asarray(M)[:, inv])  # noqa: E731  back to the model's column order
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.random.seed(args.seed)
            t = time.perf_counter()
            kx = shap.KernelExplainer(fk, bg)
            phi_kernel = np.asarray(kx.shap_values(_to_shap(codec.encode(X))[:, perm], silent=True)).reshape(len(X), F)
            t_kernel = time.perf_counter() - t
        t = time.perf_counter()
        ref = np.array([reference(model.score_features, X.iloc[[i]], B, groups) for i in range(min(args.ref_rows, len(X)))])
        t_ref = time.perf_counter() - t
        r = len(ref)
        rows.append({
            "players": label, "F": F, "coalitions": 2 ** F, "rows": len(X), "background": len(B),
            "whyrec_s": t_ours, "kernel_s": t_kernel, "speed_ratio_kernel_over_whyrec": t_kernel / t_ours,
            "whyrec_max_err": float(np.abs(phi_ours[:r] - ref).max()), "kernel_max_err": float(np.abs(phi_kernel[:r] - ref).max()),
            "kernel_nsamples": int(kx.nsamples) if hasattr(kx, "nsamples") else None, "reference_s": t_ref, "reference_rows": r,
            "whyrec_max_additivity_error": ours.max_additivity_error,
        })
        print(f"{label}: F={F} done", flush=True)

    print(f"exact-field-shapley vs shap.KernelExplainer: {len(X)} rows, {len(B)} background rows, "
          f"{model.booster.num_trees()} trees; errors vs brute force on {rows[0]['reference_rows']} rows")
    print(f"{'players':8} {'F':>3} {'whyrec s':>9} {'kernel s':>9} {'kernel/whyrec':>13} {'whyrec err':>11} {'kernel err':>11}")
    for r in rows:
        print(f"{r['players']:8} {r['F']:3d} {r['whyrec_s']:9.3f} {r['kernel_s']:9.3f} {r['speed_ratio_kernel_over_whyrec']:13.2f} "
              f"{r['whyrec_max_err']:11.2e} {r['kernel_max_err']:11.2e}")
    out = write("field_shapley", {
        "benchmark": "exact-field-shapley vs shap.KernelExplainer over the same groups", "table": rows,
        "model_seconds": t_model, "machine": machine(),
        "command": "bench/bench_field_shapley.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    })
    print(f"wrote {out}")
    assert NAN_SENTINEL < 0


if __name__ == "__main__":
    main()
