"""Gradient explainers of the torch-attention model: integrated gradients and Grad-CAM.

Integrated gradients (Captum ``LayerIntegratedGradients``) runs on the embedding layers:
``item_emb`` (candidate + history positions), ``cat_emb`` (every categorical feature) and
``num_in`` (the standardised numbers). The baseline is the "no information" input: every id
missing (zero vectors), numbers at their training mean, and the same history mask as the
explained row, so the path is consistent and completeness holds up to the quadrature error:
|Σ attributions − (f(x) − f(baseline))| is recorded per pair as its additivity error.

Grad-CAM for sequences: activations are the history item embeddings (positions × channels),
channel weights are the gradient of the logit averaged over the filled positions, and the map
is ReLU(Σ_channels weight × activation) per position. The signed gradient × activation per
position is kept as the attribution.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch

from whyrec import Explanation
from whyrec.data import RecData
from whyrec.errors import WhyrecError

from . import plots
from .common import (Rows, base_pairs, check_model, cold_start_reasons, history_fields, position_table, prepare, supports,
                     watched_reason)
from .encoding import Encoded


METHODS = ("gausslegendre", "riemann_middle", "riemann_left", "riemann_right")


# -- computations ------------------------------------------------------------------------
def ig_attributions(model: Any, enc: Encoded, steps: int = 32, method: str = "gausslegendre",
                    chunk: int = 128) -> dict[str, np.ndarray]:
    """Per-input integrated gradients. Returns arrays: ``items`` [B, 1+N], ``cat`` [B, C],
    ``num`` [B, M], ``output`` [B], ``baseline`` [B], ``delta`` [B] (Captum's convergence delta)."""
    from captum.attr import LayerIntegratedGradients

    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        raise WhyrecError(f"integrated-gradients: steps={steps!r} must be a positive integer (e.g. 32 or 128)")
    net = model.net
    if net.training:
        net.eval()
    offsets = torch.as_tensor(model.encoder.cat_offsets, dtype=torch.long, device=model.device)

    def fwd(items: torch.Tensor, cat: torch.Tensor, num: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return net(items, cat, num, mask)

    with warnings.catch_warnings():
        # Captum warns that layers must not feed each other; these three each read raw inputs.
        warnings.filterwarnings("ignore", message="Multiple layers provided")
        lig = LayerIntegratedGradients(fwd, [net.item_emb, net.cat_emb, net.num_in])
    out: dict[str, list] = {k: [] for k in ("items", "cat", "num", "output", "baseline", "delta")}
    with model.threads():
        for s in range(0, len(enc), chunk):
            items, cat, num, mask = model.to_tensors(enc.take(slice(s, s + chunk)))
            b_items = torch.zeros_like(items)
            b_cat = offsets.unsqueeze(0).expand_as(cat).contiguous()
            b_num = torch.zeros_like(num)
            attrs, delta = lig.attribute(
                inputs=(items, cat, num), baselines=(b_items, b_cat, b_num), additional_forward_args=(mask,),
                n_steps=steps, method=method, return_convergence_delta=True,
            )
            with torch.no_grad():
                f_x = net(items, cat, num, mask)
                f_b = net(b_items, b_cat, b_num, mask)
            a_items, a_cat, a_num = attrs
            out["items"].append(a_items.sum(-1).detach().double().cpu().numpy())
            out["cat"].append(a_cat.sum(-1).detach().double().cpu().numpy())
            out["num"].append(a_num.detach().double().cpu().numpy())
            out["output"].append(f_x.double().cpu().numpy())
            out["baseline"].append(f_b.double().cpu().numpy())
            out["delta"].append(delta.detach().double().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def ig_feature_frame(model: Any, res: dict[str, np.ndarray]) -> pd.DataFrame:
    """Attributions per model feature (columns in ``model.feature_names`` order)."""
    e = model.encoder
    cols = {e.item_feature: res["items"][:, 0]}
    for j, c in enumerate(e.sequence):
        cols[c] = res["items"][:, 1 + j]
    for j, c in enumerate(e.categorical):
        cols[c] = res["cat"][:, j]
    for j, c in enumerate(e.numeric):
        cols[c] = res["num"][:, j]
    return pd.DataFrame({c: cols[c] for c in model.feature_names})


def grad_cam(model: Any, enc: Encoded, chunk: int = 2048) -> dict[str, np.ndarray]:
    """Grad-CAM over history positions. Returns ``cam`` (ReLU map, rows sum to 1 where any
    position is positive), ``cam_raw``, ``grad_x_act`` (signed), ``output``; all [B, N] but output."""
    net = model.net
    if net.training:
        net.eval()
    res: dict[str, list] = {k: [] for k in ("cam", "cam_raw", "grad_x_act", "output")}
    with model.threads():
        for s in range(0, len(enc), chunk):
            items, cat, num, mask = model.to_tensors(enc.take(slice(s, s + chunk)))
            with torch.enable_grad():
                e_items, e_cat, x_num = net.embed(items, cat, num)
                e = e_items.detach().requires_grad_(True)
                logit, _ = net.forward_embedded(e, e_cat.detach(), x_num.detach(), mask)
                (g,) = torch.autograd.grad(logit.sum(), e)  # rows are independent: one backward serves all
            A, G = e[:, 1:].detach(), g[:, 1:]
            m = mask.to(A.dtype)
            alpha = (G * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
            cam_raw = torch.relu((A * alpha.unsqueeze(1)).sum(-1)) * m
            total = cam_raw.sum(1, keepdim=True)
            cam = torch.where(total > 0, cam_raw / total.clamp_min(1e-12), torch.zeros_like(cam_raw))
            res["cam"].append(cam.double().cpu().numpy())
            res["cam_raw"].append(cam_raw.double().cpu().numpy())
            res["grad_x_act"].append(((A * G).sum(-1) * m).double().cpu().numpy())
            res["output"].append(logit.detach().double().cpu().numpy())
    return {k: np.concatenate(v) for k, v in res.items()}


# -- words ---------------------------------------------------------------------------------
REASON_SHARE = 0.05  # documented in docs/torch.md: the smallest share of |attribution| a reason may carry
def feature_reasons(model: Any, data: RecData, rows: Rows, i: int, attr: pd.Series, n: int = 3) -> list[str]:
    """Top positive (and the strongest negative) features of pair ``i`` in words."""
    seq = set(model.sequence_features)
    row = rows.X.iloc[i]
    hist_by_col = {model.sequence_features[p]: item for p, item in rows.history[i]}

    def words(name: str) -> str:
        if name in seq:
            item = hist_by_col.get(name)
            if item is None:
                return f"{name} (empty)"
            # the dataset's own words for a history item ("you watched Alien" is MovieLens's, not every
            # domain's); a generic phrase where it has none
            try:
                text = data.describe_feature(name, item, row)
            except (TypeError, ValueError):  # a describer written for sequence codes, given an id
                text = None
            return text if text and text != f"{name} = {item}" else f"{data.item_title(item)} in your history"
        return data.describe_feature(name, row.get(name), row)

    names, v = attr.index.to_numpy(), attr.to_numpy(dtype=float)
    total = float(np.abs(v).sum())
    # a reason must carry weight: below REASON_SHARE of the pair's total |attribution| it is noise
    strong = np.abs(v) >= REASON_SHARE * total if total > 0 else np.zeros(len(v), bool)
    order = np.argsort(-v, kind="stable")
    out = [f"{words(names[j])}: {v[j]:+.3g}" for j in order[:n] if v[j] > 0 and strong[j]]
    j = order[-1] if len(order) else None
    if j is not None and v[j] < 0 and strong[j]:
        out.append(f"against it: {words(names[j])}: {v[j]:+.3g}")
    return out


# -- explainers ------------------------------------------------------------------------------
class IntegratedGradients:
    """Captum layer integrated gradients on the embedding layers, per feature and per field,
    with the completeness gap recorded as each pair's additivity error."""

    def __init__(self, steps: int = 32, method: str = "gausslegendre", chunk: int = 128, reasons: int = 3) -> None:
        if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
            raise WhyrecError(f"integrated-gradients: steps={steps!r} must be a positive integer (e.g. 32 or 128)")
        if method == "riemann_trapezoid":
            # Captum 0.9's trapezoid weights are 1/n with halved ends: they sum to (n-1)/n, so every
            # attribution is shrunk by that factor and completeness never holds.
            raise WhyrecError("integrated-gradients: method='riemann_trapezoid' is refused: Captum's trapezoid step "
                              "sizes sum to (n-1)/n, which biases every attribution; use gausslegendre (default) "
                              "or riemann_middle")
        if method not in METHODS:
            raise WhyrecError(f"integrated-gradients: method={method!r} is not one of {', '.join(METHODS)}")
        self.steps, self.method, self.chunk, self.n_reasons = steps, method, int(chunk), int(reasons)

    def supports(self, model: Any) -> bool:
        return supports(model, "differentiable")

    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        check_model(model, "integrated-gradients", "differentiable")
        rows = prepare(model, data, pairs)
        res = ig_attributions(model, rows.enc, self.steps, self.method, self.chunk)
        expl = attribution_explanation(
            model, data, rows, "integrated-gradients", ig_feature_frame(model, res), res["output"], res["baseline"],
            {"steps": self.steps, "method": self.method, "baseline": "all ids missing, numbers at the training mean, same history mask"},
            self.n_reasons)
        expl.pairs["captum_delta"] = res["delta"]
        gaps = expl.pairs["additivity_error"].to_numpy(float)
        expl.summary = {"completeness_gap_max": float(gaps.max()), "completeness_gap_mean": float(gaps.mean()),
                        "steps": self.steps, "cold_start_pairs": int(rows.cold.sum())}
        return expl

    def figures(self, explanation: Explanation, data: RecData) -> dict[str, Any]:
        return attribution_figures(explanation, data, "ig", "integrated gradients", "IG")


def attribution_explanation(model: Any, data: RecData, rows: Rows, method: str, attr: pd.DataFrame, output: np.ndarray,
                            base: np.ndarray, params: dict[str, Any], n_reasons: int) -> Explanation:
    """An additive per-feature explanation of the embedding-layer attribution methods
    (integrated gradients, gradient SHAP): pairs, attributions, the ``history_positions``
    extras and reasons in words (cold-start users by their non-history fields)."""
    expl = Explanation(method=method, model=model.name, pairs=base_pairs(rows, output, base),
                       schema=data.schema.select(model.feature_names), attributions=attr,
                       feature_values=rows.X.astype(object).astype(str), params=params, additive=True)
    seq = model.sequence_features
    expl.extras["history_positions"] = position_table(rows, data, {"attribution": attr[seq].to_numpy() if seq else np.zeros((len(rows.pairs), 0))})
    reasons = []
    for i in range(len(rows.pairs)):
        if rows.cold[i]:
            reasons.append(cold_start_reasons(expl.field_attributions.iloc[i], attr.iloc[i], data, rows.X.iloc[i], history_fields(data), n_reasons))
        else:
            reasons.append(feature_reasons(model, data, rows, i, attr.iloc[i], n_reasons))
    expl.reasons = reasons
    return expl


def attribution_figures(explanation: Explanation, data: RecData, prefix: str, title: str, short: str) -> dict[str, Any]:
    """Mean attribution per field, and per-user heat-maps of history-item attributions."""
    figs = {f"{prefix}_fields": plots.field_bar(explanation, f"{title}: mean attribution per field")}
    figs.update(plots.history_heatmaps(explanation, data, "history_positions", "attribution", f"{short} per history item", cmap="RdBu_r"))
    return figs


class GradCAM:
    """Grad-CAM over the history positions: which watched items the gradient points at."""

    def __init__(self, reasons: int = 3, ig_steps_cold: int = 16) -> None:
        self.n_reasons = int(reasons)
        self.ig_steps_cold = int(ig_steps_cold)

    def supports(self, model: Any) -> bool:
        return supports(model, "differentiable")

    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        check_model(model, "grad-cam", "differentiable")
        rows = prepare(model, data, pairs)
        res = grad_cam(model, rows.enc)
        seq = model.sequence_features
        attr = pd.DataFrame(res["grad_x_act"], columns=seq)
        out = base_pairs(rows, res["output"], np.nan)
        expl = Explanation(method="grad-cam", model=model.name, pairs=out, schema=data.schema.select(seq), attributions=attr,
                           params={"activation": "history item embeddings", "map": "ReLU(sum_c mean-gradient_c x activation_c)"},
                           additive=False)
        expl.extras["grad_cam"] = position_table(rows, data, {"cam": res["cam"], "cam_raw": res["cam_raw"], "grad_x_act": res["grad_x_act"]})
        expl.reasons = _history_reasons(model, data, rows, res["cam"], "Grad-CAM", self.n_reasons, self.ig_steps_cold)
        expl.summary = {"cold_start_pairs": int(rows.cold.sum()),
                        "attribution_units": "gradient x activation of the history item embedding (not additive)"}
        return expl

    def figures(self, explanation: Explanation, data: RecData) -> dict[str, Any]:
        return plots.history_heatmaps(explanation, data, "grad_cam", "cam", "Grad-CAM", cmap="Oranges")


def _history_reasons(model: Any, data: RecData, rows: Rows, weights: np.ndarray, what: str, n: int,
                     ig_steps_cold: int) -> list[list[str]]:
    """'because you watched A (0.41) and B (0.22)' per pair; cold-start pairs are explained by
    integrated gradients over their non-history fields, and say so."""
    reasons: list[list[str]] = [[] for _ in range(len(rows.pairs))]
    cold = np.flatnonzero(rows.cold)
    if len(cold):
        res = ig_attributions(model, rows.enc.take(cold), steps=max(ig_steps_cold, 1))
        attr = ig_feature_frame(model, res)
        fields = Explanation(method="ig", model=model.name, pairs=rows.pairs.iloc[cold], schema=data.schema.select(model.feature_names),
                             attributions=attr, additive=False).field_attributions
        for j, i in enumerate(cold):
            reasons[i] = cold_start_reasons(fields.iloc[j], attr.iloc[j], data, rows.X.iloc[i], history_fields(data), n)
    for i, hist in enumerate(rows.history):
        if not hist:
            continue
        ranked = sorted(hist, key=lambda pi: -weights[i, pi[0]])[:n]
        top = [(data.item_title(item), float(weights[i, pos])) for pos, item in ranked if weights[i, pos] > 0]
        if top:
            reasons[i].append(watched_reason(top))
        else:
            reasons[i].append(f"{what} finds no history item that raises this score")
    return reasons
