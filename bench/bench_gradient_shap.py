"""Benchmark: whyrec's gradient-shap against shap.GradientExplainer on MovieLens-100K, one process.

Both compute expected gradients on the torch-attention model's embedding layers, on the same
rows (the top-10 of ``--users`` test users), the same background (``--background`` training rows
drawn with the explainer's seed) and the same ``--samples`` draws per row:

- whyrec: ``GradientSHAP(...).explain(model, data, pairs)`` (the whole Explanation: feature rows,
  background, attributions, base values, reasons), and its computation alone
  (``gradient_shap_attributions`` on the encoded rows);
- peer: ``shap.GradientExplainer`` on the embedded network (``net.embed`` then
  ``net.forward_embedded`` in a small ``nn.Module`` with the explained row's history mask fixed),
  one row at a time (the mask differs per row), ``batch_size`` = max(50, samples).

Reported: ms per recommendation for both (median of ``--repeats``, interleaved), the ratio, and
agreement of the per-feature attributions (embedding dimensions summed, as whyrec reports them):
Pearson and Spearman per recommendation (median) and pooled, top-3 |attribution| overlap. Both
are Monte-Carlo estimates, so agreement is also shown against a ``--ref-samples`` whyrec run
(another seed) and between two whyrec runs of different seeds (the noise ceiling).

    WHYREC_CACHE=.cache/whyrec .venv/bin/python bench/bench_gradient_shap.py --epochs 3 --users 10 --samples 64
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


def agreement(a: np.ndarray, b: np.ndarray, k: int = 3) -> dict[str, float]:
    """Per-row Pearson / Spearman (median over rows) over the features either method moves,
    the same pooled over all rows, and the mean share of the top-k |attribution| features shared."""
    from scipy.stats import pearsonr, spearmanr

    pr, sr, top = [], [], []
    for x, y in zip(a, b):
        use = (x != 0) | (y != 0)
        if use.sum() >= 3:
            pr.append(pearsonr(x[use], y[use])[0])
            sr.append(spearmanr(x[use], y[use])[0])
        top.append(len(set(np.argsort(-np.abs(x))[:k]) & set(np.argsort(-np.abs(y))[:k])) / k)
    use = (a != 0) | (b != 0)
    return {"pearson_median": float(np.median(pr)), "spearman_median": float(np.median(sr)),
            "pearson_pooled": float(pearsonr(a[use], b[use])[0]), "spearman_pooled": float(spearmanr(a[use], b[use])[0]),
            f"top{k}_overlap": float(np.mean(top))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--users", type=int, default=10, help="users whose top-10 are explained")
    ap.add_argument("--samples", type=int, default=64, help="(baseline, alpha) draws per recommendation, both methods")
    ap.add_argument("--background", type=int, default=50)
    ap.add_argument("--ref-samples", type=int, default=2048, help="whyrec draws of the reference estimate")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("WHYREC_PROGRESS", "0")

    import shap
    import torch
    from torch import nn

    import whyrec
    from whyrec.atomic import write_json
    from whyrec_torch.gradient_shap import GradientSHAP, background_rows, gradient_shap_attributions
    from whyrec_torch.gradients import ig_feature_frame
    from whyrec_torch.model import TorchAttentionModel

    data = whyrec.get_host().create("datasets", "movielens-100k").load()
    model = TorchAttentionModel(epochs=args.epochs, device=args.device, num_threads=args.threads, seed=0)
    t = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t
    pool = np.sort(data.test["user"].unique())
    users = sorted(np.random.default_rng(0).choice(pool, args.users, replace=False).tolist())
    pairs = pd.concat([model.recommend(u, 10) for u in users], ignore_index=True)
    X = data.features(pairs[["user", "item"]])[model.feature_names].reset_index(drop=True)
    enc = model.encode(X)
    seed = 0
    _, bg = background_rows(model, data, args.background, seed)
    net = model.net.eval()
    n = len(pairs)

    class RowNet(nn.Module):
        """The network from its embeddings on, with one explained row's history mask fixed."""

        def __init__(self, net: nn.Module, mask: torch.Tensor) -> None:
            super().__init__()
            self.net, self.mask = net, mask

        def forward(self, e_items: torch.Tensor, e_cat: torch.Tensor, x_num: torch.Tensor) -> torch.Tensor:
            logit, _ = self.net.forward_embedded(e_items, e_cat, x_num, self.mask.expand(e_items.shape[0], -1))
            return logit.unsqueeze(-1)

    def run_shap() -> dict[str, np.ndarray]:
        out = {"items": [], "cat": [], "num": []}
        with model.threads():
            xi, xc, xn, mask = model.to_tensors(enc)
            bi, bc, bn, _ = model.to_tensors(bg)
            with torch.no_grad():
                ex = [t.detach() for t in net.embed(xi, xc, xn)]
                eb = [t.detach() for t in net.embed(bi, bc, bn)]
            for j in range(n):
                expl = shap.GradientExplainer(RowNet(net, mask[j:j + 1]), eb, batch_size=max(50, args.samples))
                sv = expl.shap_values([t[j:j + 1] for t in ex], nsamples=args.samples, rseed=seed + j)
                sv = [np.asarray(v)[..., 0] for v in sv]  # drop the single-output axis
                out["items"].append(sv[0].sum(-1))
                out["cat"].append(sv[1].sum(-1))
                out["num"].append(sv[2])
        return {k: np.concatenate(v) for k, v in out.items()}

    methods = {
        "whyrec gradient-shap explain()": lambda: GradientSHAP(background=args.background, n_samples=args.samples, seed=seed).explain(model, data, pairs),
        "whyrec gradient_shap_attributions": lambda: gradient_shap_attributions(model, enc, bg, args.samples, seed=seed),
        "shap.GradientExplainer (peer)": run_shap,
    }
    times = {k: [] for k in methods}
    last = {}
    for _ in range(args.repeats):
        for k, fn in methods.items():
            t = time.perf_counter()
            last[k] = fn()
            times[k].append(time.perf_counter() - t)
    ms = {k: 1000 * statistics.median(v) / n for k, v in times.items()}

    e = last["whyrec gradient-shap explain()"]
    ours = e.attributions.to_numpy(float)
    peer_res = last["shap.GradientExplainer (peer)"]
    peer = ig_feature_frame(model, peer_res).to_numpy(float)
    other = ig_feature_frame(model, gradient_shap_attributions(model, enc, bg, args.samples, seed=seed + 1)).to_numpy(float)
    t = time.perf_counter()
    ref = ig_feature_frame(model, gradient_shap_attributions(model, enc, bg, args.ref_samples, seed=seed + 2)).to_numpy(float)
    ref_s = time.perf_counter() - t
    span = (e.pairs["output_value"] - e.pairs["base_value"]).to_numpy()
    peer_gap = np.abs(peer.sum(1) - span)
    agree = {"whyrec vs shap": agreement(ours, peer), "whyrec vs whyrec (other seed)": agreement(ours, other),
             f"whyrec vs reference ({args.ref_samples} draws)": agreement(ours, ref),
             f"shap vs reference ({args.ref_samples} draws)": agreement(peer, ref)}
    rmse = {"whyrec vs reference": float(np.sqrt(np.mean((ours - ref) ** 2))),
            "shap vs reference": float(np.sqrt(np.mean((peer - ref) ** 2)))}

    out = {
        "dataset": data.name, "recommendations": n, "users": args.users, "samples": args.samples,
        "background": len(bg), "ref_samples": args.ref_samples, "repeats": args.repeats, "epochs": args.epochs,
        "fit_seconds": fit_s, "device": str(model.device), "threads": args.threads,
        "ms_per_recommendation": ms,
        "speedup_explain_vs_shap": ms["shap.GradientExplainer (peer)"] / ms["whyrec gradient-shap explain()"],
        "speedup_computation_vs_shap": ms["shap.GradientExplainer (peer)"] / ms["whyrec gradient_shap_attributions"],
        "agreement": agree, "rmse": rmse,
        "additivity_error_mean": {"whyrec": float(e.pairs["additivity_error"].mean()), "shap": float(peer_gap.mean()),
                                  f"whyrec at {args.ref_samples} draws": float(np.abs(ref.sum(1) - span).mean())},
        "mean_abs_output_minus_base": float(np.abs(span).mean()),
        "whyrec_mc_stderr_mean": float(e.pairs["mc_stderr"].mean()),
        "reference_seconds": ref_s,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "shap": shap.__version__, "load_average": os.getloadavg(),
                    "cuda": torch.cuda.is_available()},
        "command": "python bench/bench_gradient_shap.py " + " ".join(sys.argv[1:]),
    }

    print(f"\nMovieLens-100K, torch-attention ({args.epochs} epochs, {model.device}, {args.threads} thread(s)), "
          f"top-10 of {args.users} users = {n} recommendations; {len(bg)} background rows, {args.samples} draws each; "
          f"median of {args.repeats}, load avg {os.getloadavg()[0]:.1f}")
    print(f"{'method':<40}{'ms/rec':>10}{'x shap':>9}")
    for k, v in ms.items():
        print(f"{k:<40}{v:>10.2f}{v / ms['shap.GradientExplainer (peer)']:>9.3f}")
    print(f"shap / whyrec explain(): {out['speedup_explain_vs_shap']:.1f}x; shap / whyrec computation: "
          f"{out['speedup_computation_vs_shap']:.1f}x")
    print(f"\n{'agreement of per-feature attributions':<44}{'pearson':>9}{'spearman':>10}{'pooled r':>10}{'top-3':>7}")
    for k, a in agree.items():
        print(f"{k:<44}{a['pearson_median']:>9.3f}{a['spearman_median']:>10.3f}{a['pearson_pooled']:>10.3f}{a['top3_overlap']:>7.2f}")
    print(f"RMSE to the reference: whyrec {rmse['whyrec vs reference']:.2e}, shap {rmse['shap vs reference']:.2e}")
    print(f"mean additivity error: whyrec {out['additivity_error_mean']['whyrec']:.2e} (mc_stderr "
          f"{out['whyrec_mc_stderr_mean']:.2e}), shap {out['additivity_error_mean']['shap']:.2e}, whyrec at "
          f"{args.ref_samples} draws {out['additivity_error_mean'][f'whyrec at {args.ref_samples} draws']:.2e}; "
          f"mean |f(x) - base| {out['mean_abs_output_minus_base']:.3f}")
    (HERE / "results").mkdir(exist_ok=True)
    print("wrote", write_json(HERE / "results" / "gradient_shap.json", out))


if __name__ == "__main__":
    main()
