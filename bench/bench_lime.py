"""Benchmark: whyrec's ``lime`` explainer against lime called directly, and against
``exact-field-shapley``, on the MovieLens-100K LightGBM model (bench/shap_bench_common.py).

Per explained pair (the top-``--k`` recommendations of ``--users`` sampled test users):

1. mask sampler, units = fields (4 players), one seed: whyrec ``lime`` vs the same samples
   given to ``lime.lime_base.LimeBase.explain_instance_with_data`` by hand (masks drawn with
   lime's RandomState as whyrec draws them, labels built row by row and averaged over the same
   background, lime's kernel, the same Ridge): max |weight difference| and seconds per pair;
2. tabular sampler, units = features (48): whyrec ``lime`` vs ``LimeTabularExplainer`` called
   directly on the same encoded rows with the same random_state: max |weight difference|, seconds;
3. the default explainer (fields, 5 stability seeds, Shapley comparison on): seconds per pair,
   local fidelity (weighted R²), top-3 stability, Spearman rank agreement with exact-field-shapley,
   and exact-field-shapley's own seconds per pair on the same background;
4. fidelity of units = features (mask) and of the tabular sampler on the same pairs.

    .venv/bin/python bench/bench_lime.py          # writes bench/results/lime.json
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from shap_bench_common import machine, sample_users, setup, write


def direct_mask_lime(f, x: pd.DataFrame, B: pd.DataFrame, groups: dict[str, list[str]], num_samples: int, seed: int,
                     alpha: float) -> tuple[np.ndarray, float]:
    """LIME over field masks written against lime directly: no whyrec code but the mask draw's recipe."""
    from lime.lime_base import LimeBase
    from sklearn.linear_model import Ridge

    rs = np.random.RandomState(seed)
    n = len(groups)
    Z = np.ones((num_samples, n))
    for i, k in enumerate(rs.randint(1, n + 1, num_samples - 1), start=1):
        Z[i, rs.choice(range(n), k, replace=False)] = 0
    nb = len(B)
    cols = {}
    unit = {c: u for u, cs in enumerate(groups.values()) for c in cs}
    for c in B.columns:
        take_x = np.repeat(Z[:, unit[c]].astype(bool), nb)
        xv = x[c].astype(object).to_numpy()[0]
        vals = np.where(take_x, xv, np.tile(B[c].astype(object).to_numpy(), num_samples))
        cols[c] = (pd.Categorical(vals, categories=B[c].cat.categories) if isinstance(B[c].dtype, pd.CategoricalDtype)
                   else vals.astype(float))
    y = np.asarray(f(pd.DataFrame(cols)[list(B.columns)])).reshape(num_samples, nb).mean(axis=1)
    width = 0.75 * np.sqrt(n)
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d ** 2) / width ** 2)), random_state=rs)
    _, exp, score, _ = base.explain_instance_with_data(Z, y[:, None], np.sqrt((1 - Z).sum(axis=1)), 0, n,
                                                       feature_selection="none", model_regressor=Ridge(alpha=alpha, random_state=seed))
    w = np.zeros(n)
    for j, v in exp:
        w[j] = v
    return w, float(score)


def timed(fn, *args, **kw):
    """(result, wall seconds, CPU seconds of this process: all threads; steadier than wall on a shared machine)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--background", type=int, default=50)
    ap.add_argument("--direct-pairs", type=int, default=10, help="pairs also explained by lime directly (slow: no mask memo)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import lime
    import whyrec
    from whyrec_lime.explainer import LimeExplainer
    from whyrec_lime.tabular import Codec
    from whyrec_lime.units import model_units, sample_background

    data, model, t_setup = setup()
    users = sample_users(data, args.users)
    pairs = pd.concat([model.recommend(u, args.k) for u in users], ignore_index=True)
    X = data.features(pairs)[model.feature_names].reset_index(drop=True)
    n = len(pairs)
    f = model.score_features
    ns, nbg, seed = args.num_samples, args.background, 0
    out: dict = {"pairs": n, "num_samples": ns, "background_size": nbg, "machine": machine(), "lime": lime.__version__ if hasattr(lime, "__version__") else "0.2.0.1"}
    print(f"MovieLens-100K LightGBM ({len(model.feature_names)} features), {n} pairs, num_samples={ns}, background={nbg}")

    # 1. fields, mask sampler, one seed: whyrec vs LimeBase by hand on the same samples
    groups = model_units(model, data, "fields")
    B = sample_background(model, data, nbg, seed)
    x1 = LimeExplainer(num_samples=ns, background_size=nbg, stability_seeds=1, compare_shapley=False, seed=seed)
    x1.explain_features(model, data, pairs.head(1), X.head(1))  # warm-up: imports
    nd = min(args.direct_pairs, n)
    e1, w1, c1 = timed(x1.explain_features, model, data, pairs, X)
    e1d, w1d, c1d = timed(x1.explain_features, model, data, pairs.head(nd), X.head(nd))
    direct, wd, cd = timed(lambda: [direct_mask_lime(f, X.iloc[[i]].reset_index(drop=True), B, groups, ns, seed, 0.0) for i in range(nd)])
    dw = np.max(np.abs(e1.field_attributions[list(groups)].to_numpy()[:nd] - np.array([w for w, _ in direct])))
    ds = np.max(np.abs(e1.pairs["fidelity"].to_numpy()[:nd] - np.array([s for _, s in direct])))
    out["mask_fields"] = {"whyrec_wall_s_per_pair": w1 / n, "whyrec_cpu_s_per_pair": c1 / n, "direct_pairs": nd,
                          "whyrec_cpu_s_per_pair_on_direct_pairs": c1d / nd, "lime_base_direct_wall_s_per_pair": wd / nd,
                          "lime_base_direct_cpu_s_per_pair": cd / nd, "cpu_ratio_direct_over_whyrec": (cd / nd) / (c1d / nd),
                          "max_abs_weight_diff": float(dw), "max_abs_fidelity_diff": float(ds),
                          "whyrec_model_rows_per_pair": e1.summary["model_rows"] / n, "direct_model_rows_per_pair": ns * nbg}
    print(f"[fields, mask, 1 seed] whyrec {c1 / n * 1e3:.0f} ms CPU/pair ({w1 / n * 1e3:.0f} ms wall); on {nd} pairs: whyrec {c1d / nd * 1e3:.0f} ms CPU/pair, "
          f"LimeBase by hand {cd / nd * 1e3:.0f} ms CPU/pair (x{cd / c1d:.1f}); max |Δweight| {dw:.2e}, max |Δfidelity| {ds:.2e}")
    t_whyrec = c1 / n

    # 2. tabular sampler over the 48 features: whyrec vs LimeTabularExplainer directly
    from lime.lime_tabular import LimeTabularExplainer
    from sklearn.linear_model import Ridge

    x2 = LimeExplainer(sampler="tabular", units="features", num_samples=ns, background_size=nbg, stability_seeds=1,
                       compare_shapley=False, seed=seed)
    e2, w2, c2 = timed(x2.explain_features, model, data, pairs.head(nd), X.head(nd))
    codec = Codec.fit(B, X.head(nd))

    def tabular_direct():
        W = []
        for i in range(nd):
            lt = LimeTabularExplainer(codec.encode(B), mode="regression", feature_names=codec.columns,
                                      categorical_features=codec.categorical, feature_selection="none", random_state=seed)
            exp = lt.explain_instance(codec.encode(X.iloc[[i]])[0], lambda M: f(codec.decode(M)), num_features=len(codec.columns),
                                      num_samples=ns, model_regressor=Ridge(alpha=0.0, random_state=seed))
            w = np.zeros(len(codec.columns))
            for j, v in exp.local_exp[1]:
                w[j] = v
            W.append(w)
        return W

    W, wd2, cd2 = timed(tabular_direct)
    t_whyrec_tab, t_direct_tab = c2 / nd, cd2 / nd
    dw2 = float(np.max(np.abs(e2.attributions.to_numpy() - np.array(W))))
    out["tabular_features"] = {"pairs": nd, "whyrec_cpu_s_per_pair": t_whyrec_tab, "lime_tabular_direct_cpu_s_per_pair": t_direct_tab,
                               "whyrec_wall_s_per_pair": w2 / nd, "lime_tabular_direct_wall_s_per_pair": wd2 / nd,
                               "ratio_direct_over_whyrec": t_direct_tab / t_whyrec_tab, "max_abs_weight_diff": dw2,
                               "fidelity_median": float(e2.pairs["fidelity"].median()), "fidelity_min": float(e2.pairs["fidelity"].min()),
                               "low_fidelity_pairs": int(e2.pairs["low_fidelity"].sum())}
    print(f"[features, tabular, 1 seed, {nd} pairs] whyrec {t_whyrec_tab * 1e3:.0f} ms CPU/pair, LimeTabularExplainer directly {t_direct_tab * 1e3:.0f} ms CPU/pair "
          f"(x{t_direct_tab / t_whyrec_tab:.2f}); max |Δweight| {dw2:.2e}; fidelity median {out['tabular_features']['fidelity_median']:.3f}")

    # 3. the default explainer vs exact-field-shapley
    x3 = LimeExplainer(num_samples=ns, background_size=nbg, seed=seed)
    e3, w3, c3 = timed(x3.explain_features, model, data, pairs, X)
    t_default = c3 / n
    exact = whyrec.get_host().create("explainers", "exact-field-shapley", {"background_size": nbg, "seed": seed})
    exact.explain_features(model, data, pairs.head(1), X.head(1))
    _, we, ce = timed(exact.explain_features, model, data, pairs, X)
    t_exact = ce / n
    s = e3.summary
    out["default_vs_exact_shapley"] = {
        "lime_cpu_s_per_pair_5_seeds_with_comparison": t_default, "lime_cpu_s_per_pair_1_seed": t_whyrec, "exact_shapley_cpu_s_per_pair": t_exact,
        "lime_wall_s_per_pair_5_seeds_with_comparison": w3 / n, "exact_shapley_wall_s_per_pair": we / n,
        "lime_1_seed_over_exact": t_whyrec / t_exact,
        "fidelity_median": s["fidelity_median"], "fidelity_min": s["fidelity_min"], "low_fidelity_pairs": s["low_fidelity_pairs"],
        "stability_top3_overlap_mean": s["stability_top3_overlap_mean"], "shapley_spearman_mean": s["shapley_spearman_mean"],
        "shapley_top3_overlap_mean": s["shapley_top3_overlap_mean"],
    }
    print(f"[default: fields, 5 seeds] {t_default * 1e3:.0f} ms CPU/pair (incl. stability + Shapley comparison); one seed {t_whyrec * 1e3:.0f} ms CPU/pair; "
          f"exact-field-shapley {t_exact * 1e3:.0f} ms CPU/pair (lime 1 seed / exact = {t_whyrec / t_exact:.2f})")
    print(f"    fidelity median {s['fidelity_median']:.3f} min {s['fidelity_min']:.3f} ({s['low_fidelity_pairs']}/{n} below 0.7); "
          f"top-3 stability {s['stability_top3_overlap_mean']:.3f}; Spearman vs exact Shapley {s['shapley_spearman_mean']:.3f}, "
          f"top-3 overlap {s['shapley_top3_overlap_mean']:.3f}")

    # 4. features as units (mask sampler)
    x4 = LimeExplainer(units="features", num_samples=ns, background_size=nbg, stability_seeds=1, seed=seed)
    e4, w4, c4 = timed(x4.explain_features, model, data, pairs.head(nd), X.head(nd))
    t_feat = c4 / nd
    out["mask_features"] = {"pairs": nd, "cpu_s_per_pair": t_feat, "wall_s_per_pair": w4 / nd, "fidelity_median": float(e4.pairs["fidelity"].median()),
                            "fidelity_min": float(e4.pairs["fidelity"].min()), "low_fidelity_pairs": int(e4.pairs["low_fidelity"].sum())}
    print(f"[features, mask, 1 seed, {nd} pairs] {t_feat * 1e3:.0f} ms CPU/pair; fidelity median {out['mask_features']['fidelity_median']:.3f} "
          f"min {out['mask_features']['fidelity_min']:.3f} ({out['mask_features']['low_fidelity_pairs']}/{nd} below 0.7)")
    out["setup_s"] = t_setup
    out["load_average_after"] = list(__import__("os").getloadavg())
    print("wrote", write("lime", out))


if __name__ == "__main__":
    main()
