"""Gradient SHAP (expected gradients, Erion et al. 2021) for the torch-attention model.

For an explained row x and a background distribution of rows b, expected gradients is

    φ_j(x) = E_{b, α~U(0,1)} [ (x_j − b_j) · ∂f/∂x_j (b + α (x − b)) ],

and Σ_j φ_j(x) = f(x) − E_b[f(b)] exactly (integrated gradients from every background row,
averaged): that is what makes it a SHAP value with the background mean as base value. It is
estimated by Monte Carlo: ``n_samples`` random (background row, α) draws per explained row, so
the completeness gap |Σ φ − (f(x) − base)| is a sampling error that shrinks like 1/√n_samples;
the standard error of Σ φ is reported per pair (``mc_stderr``) next to it.

Where: on the same three embedding layers as integrated gradients (``item_emb`` for the
candidate and each history position, ``cat_emb``, the ``num_in`` numbers), summed over the
embedding dimensions to one attribution per feature, then per field by the schema.

Baselines: the encoded rows of ``background`` training pairs drawn with ``seed`` (not the
all-missing input integrated gradients uses). The history *mask* is the explained row's own
for the input and for every baseline, as integrated gradients does: the attention then reads
the same positions all along the path, padded positions get exactly zero, and f(b) in the base
value is the background row seen through this row's mask (a background row's item at a
position this user has not filled is ignored; one that is empty where the user has an item
reads the zero padding vector).

Why not Captum's ``LayerGradientShap``: it takes one layer (these are three), it adds its
``stdevs`` noise to the raw inputs (here integer ids) and draws from numpy's global generator.
This module does the same computation in embedding space with ``net.embed`` /
``net.forward_embedded``, with per-row generators seeded by ``seed`` (results do not depend on
``chunk`` or on what ran before) and ``stdevs`` noise added to the input's embeddings.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from whyrec import Explanation
from whyrec.data import ITEM, USER, RecData
from whyrec.errors import DataError, WhyrecError

from .common import check_model, prepare, supports
from .encoding import Encoded
from .gradients import attribution_explanation, attribution_figures, ig_feature_frame

NAME = "gradient-shap"


def _positive_int(name: str, value: Any, example: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise WhyrecError(f"{NAME}: {name}={value!r} must be a positive integer (e.g. {example})")
    return int(value)


def _stdevs(value: Any) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value < 0:
        raise WhyrecError(f"{NAME}: stdevs={value!r} must be a number >= 0 (e.g. 0.0 for plain expected gradients, or 0.1)")
    return float(value)


def _seed(value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise WhyrecError(f"{NAME}: seed={value!r} must be a non-negative integer (e.g. 0)")
    return int(value)


# -- computation ---------------------------------------------------------------------------
def gradient_shap_attributions(model: Any, enc: Encoded, baselines: Encoded, n_samples: int = 64, stdevs: float = 0.0,
                               seed: int = 0, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Expected gradients of each row of ``enc`` against the background rows ``baselines``
    (their masks are ignored: every row uses its own). Returns arrays: ``items`` [B, 1+N],
    ``cat`` [B, C], ``num`` [B, M] (attributions summed over embedding dimensions), ``output``
    [B] = f(x), ``baseline`` [B] = mean over the background of f(b) through the row's mask,
    ``stderr`` [B] = Monte-Carlo standard error of the sum of the row's attributions, and
    ``se_items``, ``se_cat``, ``se_num``: the standard error of each attribution.

    ``chunk`` is the number of (row, draw) evaluations per forward/backward pass."""
    n_samples = _positive_int("n_samples", n_samples, "64 or 1024")
    chunk = _positive_int("chunk", chunk, "4096")
    stdevs, seed = _stdevs(stdevs), _seed(seed)
    if len(baselines) == 0:
        raise WhyrecError(f"{NAME}: no background rows to draw baselines from")
    net = model.net
    if net.training:
        net.eval()
    B, K, S = len(enc), len(baselines), n_samples
    # One generator per explained row: its draws depend on (seed, row) only, not on chunking.
    rngs = [np.random.default_rng([seed, i]) for i in range(B)]
    pick = np.stack([g.integers(0, K, S) for g in rngs]) if B else np.zeros((0, S), dtype=np.int64)
    alpha = np.stack([g.random(S) for g in rngs]) if B else np.zeros((0, S))
    with model.threads():
        xi, xc, xn, mask = model.to_tensors(enc)
        bi, bc, bn, _ = model.to_tensors(baselines)
        dev = xi.device
        with torch.no_grad():
            ex = net.embed(xi, xc, xn)  # [B, 1+N, d], [B, C, d], [B, M]
            eb = net.embed(bi, bc, bn)
        dims = [int(np.prod(t.shape[1:])) for t in ex]
        # Per row: sums of each feature's per-draw attribution, of its square (for the standard
        # errors) and of the per-draw total and its square.
        n_feat = [t.shape[1] for t in ex]
        acc = [torch.zeros(B, n, dtype=torch.float64, device=dev) for n in n_feat]
        acc2 = [torch.zeros(B, n, dtype=torch.float64, device=dev) for n in n_feat]
        tot = torch.zeros(B, dtype=torch.float64, device=dev)
        tot2 = torch.zeros(B, dtype=torch.float64, device=dev)
        row_all = np.repeat(np.arange(B), S)
        pick_all, alpha_all = pick.reshape(-1), alpha.reshape(-1)
        for s in range(0, B * S, chunk):
            rows_np = row_all[s:s + chunk]
            r = torch.as_tensor(rows_np, device=dev)
            k = torch.as_tensor(pick_all[s:s + chunk], device=dev)
            a = torch.as_tensor(alpha_all[s:s + chunk], dtype=ex[0].dtype, device=dev)
            noise = _noise(rngs, rows_np, sum(dims), stdevs) if stdevs > 0 else None
            parts, deltas, off = [], [], 0
            for x, b, d in zip(ex, eb, dims):
                xr = x[r]
                if noise is not None:
                    xr = xr + torch.as_tensor(noise[:, off:off + d], dtype=x.dtype, device=dev).view_as(xr)
                off += d
                delta = xr - b[k]
                deltas.append(delta)
                parts.append((b[k] + a.view(-1, *[1] * (x.dim() - 1)) * delta).requires_grad_(True))
            with torch.enable_grad():
                logit, _ = net.forward_embedded(*parts, mask[r])
                grads = torch.autograd.grad(logit.sum(), parts)  # rows are independent: one backward serves all
            total = torch.zeros(len(rows_np), dtype=torch.float64, device=dev)
            for j, (g, delta) in enumerate(zip(grads, deltas)):
                v = g * delta
                v = (v.sum(-1) if v.dim() == 3 else v).double()  # per feature: sum over embedding dims
                acc[j].index_add_(0, r, v)
                acc2[j].index_add_(0, r, v * v)
                total += v.sum(1)
            tot.index_add_(0, r, total)
            tot2.index_add_(0, r, total * total)
        with torch.no_grad():
            f_x = net(xi, xc, xn, mask).double()
            base = _background_mean(net, bi, bc, bn, mask, chunk)
    res = {"items": acc[0] / S, "cat": acc[1] / S, "num": acc[2] / S, "output": f_x, "baseline": base,
           "stderr": _stderr(tot, tot2, S), "se_items": _stderr(acc[0], acc2[0], S), "se_cat": _stderr(acc[1], acc2[1], S),
           "se_num": _stderr(acc[2], acc2[2], S)}
    return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in res.items()}


def _stderr(total: torch.Tensor, total_sq: torch.Tensor, n: int) -> torch.Tensor:
    """Standard error of a mean of ``n`` draws from their sum and sum of squares."""
    mean = total / n
    var = (total_sq / n - mean * mean).clamp_min(0.0) * (n / max(n - 1, 1))
    return torch.sqrt(var / n)


def _noise(rngs: list[np.random.Generator], rows: np.ndarray, width: int, stdevs: float) -> np.ndarray:
    """Gaussian noise for a slice of (row, draw) evaluations, each row from its own generator
    in draw order (so the noise a draw gets does not depend on where slices start)."""
    out = np.empty((len(rows), width), dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    for lo, hi in zip(starts, np.r_[starts[1:], len(rows)]):
        out[lo:hi] = rngs[int(rows[lo])].standard_normal((hi - lo, width), dtype=np.float32)
    return out * np.float32(stdevs)


def _background_mean(net: Any, bi: torch.Tensor, bc: torch.Tensor, bn: torch.Tensor, mask: torch.Tensor,
                     chunk: int) -> torch.Tensor:
    """Mean over the background rows of f(b) with each explained row's mask: [B]."""
    B, K = mask.shape[0], bi.shape[0]
    out = torch.zeros(B, dtype=torch.float64, device=mask.device)
    per = max(1, chunk // K)
    for s in range(0, B, per):
        m = mask[s:s + per]
        n = m.shape[0]
        f = net(bi.repeat(n, 1), bc.repeat(n, 1), bn.repeat(n, 1), m.repeat_interleave(K, 0))
        out[s:s + n] = f.double().view(n, K).mean(1)
    return out


def background_rows(model: Any, data: RecData, size: int, seed: int) -> tuple[pd.DataFrame, Encoded]:
    """``size`` training pairs drawn without replacement with ``seed`` (all of them when the
    training set is smaller), with their encoded feature rows."""
    train = getattr(data, "train", None)
    if train is None or len(train) == 0:
        raise DataError(f"{NAME}: the dataset has no training pairs to draw background rows from")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(train), min(size, len(train)), replace=False))
    pairs = train.iloc[idx].reset_index(drop=True)  # whole rows: context included
    X = data.features(pairs)[model.feature_names].reset_index(drop=True)
    return pairs, model.encode(X)


# -- explainer -------------------------------------------------------------------------------
class GradientSHAP:
    """Gradient SHAP / expected gradients on the embedding layers of a torch-attention model,
    against a background of training rows: additive up to a Monte-Carlo error."""

    def __init__(self, background: int = 50, n_samples: int = 64, stdevs: float = 0.0, seed: int = 0,
                 chunk: int = 4096, reasons: int = 3) -> None:
        self.background = _positive_int("background", background, "50")
        self.n_samples = _positive_int("n_samples", n_samples, "64 or 1024")
        self.stdevs = _stdevs(stdevs)
        self.seed = _seed(seed)
        self.chunk = _positive_int("chunk", chunk, "4096")
        self.n_reasons = _positive_int("reasons", reasons, "3")

    def supports(self, model: Any) -> bool:
        return supports(model, "differentiable")

    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        check_model(model, NAME, "differentiable")
        rows = prepare(model, data, pairs)
        _, bg = background_rows(model, data, self.background, self.seed)
        res = gradient_shap_attributions(model, rows.enc, bg, self.n_samples, self.stdevs, self.seed, self.chunk)
        params = {"background": len(bg), "n_samples": self.n_samples, "stdevs": self.stdevs, "seed": self.seed,
                  "baseline": f"{len(bg)} training rows drawn with seed {self.seed}, each seen through the explained "
                              "row's history mask; base_value = their mean logit",
                  "additivity_error": "Monte-Carlo error of the expected-gradients estimate: shrinks like "
                                      "1/sqrt(n_samples); mc_stderr is its standard error"}
        expl = attribution_explanation(model, data, rows, NAME, ig_feature_frame(model, res), res["output"],
                                       res["baseline"], params, self.n_reasons)
        expl.pairs["mc_stderr"] = res["stderr"]
        gaps = expl.pairs["additivity_error"].to_numpy(float)
        expl.summary = {"additivity_error_max": float(gaps.max()), "additivity_error_mean": float(gaps.mean()),
                        "mc_stderr_mean": float(res["stderr"].mean()), "n_samples": self.n_samples,
                        "background": len(bg), "cold_start_pairs": int(rows.cold.sum()),
                        "note": "additivity_error is a Monte-Carlo error (falls like 1/sqrt(n_samples)), "
                                "not a bias: expected gradients are complete in expectation"
                                + ("; with stdevs > 0 the attributions explain the smoothed model, so a gap "
                                   "remains" if self.stdevs > 0 else "")}
        return expl

    def figures(self, explanation: Explanation, data: RecData) -> dict[str, Any]:
        return attribution_figures(explanation, data, "gshap", "gradient SHAP", "gradient SHAP")
