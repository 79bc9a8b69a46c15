"""Figures of the feedback analyzers (matplotlib Figure objects, no pyplot state)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _interval_plot(labels: list[str], value: np.ndarray, lo: np.ndarray, hi: np.ndarray, title: str, xlabel: str,
                   reference: float | None = None, ref_label: str = "", ref_band: tuple[float, float] | None = None) -> Figure:
    fig = Figure(figsize=(6.4, 0.5 + 0.45 * len(labels) + 0.8))
    ax = fig.subplots()
    ypos = np.arange(len(labels))[::-1]
    err = np.vstack([value - lo, hi - value])
    err = np.where(np.isfinite(err), np.maximum(err, 0), 0)  # a point outside its interval must not break the plot
    ax.errorbar(value, ypos, xerr=err, fmt="o", color="#1f5fa8", ecolor="#7aa6d6", capsize=4)
    if ref_band is not None:
        ax.axvspan(ref_band[0], ref_band[1], color="#e6a23c", alpha=0.18, lw=0)
    if reference is not None:
        ax.axvline(reference, color="#c0392b", ls="--", lw=1.2, label=ref_label)
        ax.legend(loc="best", fontsize=8)
    ax.set_yticks(ypos, labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return fig


def ab_figures(arms: pd.DataFrame, rate: str, sequential: pd.DataFrame | None, helpful: pd.DataFrame | None, metric: str) -> dict[str, Figure]:
    name = "click-through rate" if metric == "ctr" else "helpful rate"
    figs = {"rate_by_arm": _interval_plot(arms["arm"].tolist(), arms[rate].to_numpy(float), arms["ci_low"].to_numpy(float),
                                          arms["ci_high"].to_numpy(float), f"{name} per arm (Wilson interval)", name)}
    if sequential is not None and len(sequential):
        fig = Figure(figsize=(7.0, 3.6))
        ax = fig.subplots()
        for arm, g in sequential.groupby("arm", sort=False):
            x = g["look"].to_numpy()
            lo = g["cs_low"].to_numpy(float)
            hi = g["cs_high"].to_numpy(float)
            fin = np.isfinite(lo) & np.isfinite(hi)
            ax.plot(x, g["diff"], marker="o", ms=3, label=f"{arm}: observed difference")
            ax.fill_between(x[fin], lo[fin], hi[fin], alpha=0.2, label=f"{arm}: always-valid confidence sequence")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel("look")
        ax.set_ylabel(f"{name} difference vs control")
        ax.set_title("Sequential test (mSPRT)")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
        figs["sequential"] = fig
    if helpful is not None and len(helpful):
        figs["helpfulness"] = _interval_plot(helpful["explanation_method"].astype(str).tolist(), helpful["helpful_rate"].to_numpy(float),
                                             helpful["ci_low"].to_numpy(float), helpful["ci_high"].to_numpy(float),
                                             "Explanations users found helpful", "helpful rate (Wilson interval)")
    return figs


def ope_figures(est: pd.DataFrame, weights: np.ndarray, reference: dict | None, target: str) -> dict[str, Figure]:
    ref = reference["ctr"] if reference else None
    band = (reference["ci_low"], reference["ci_high"]) if reference else None
    figs = {"estimates": _interval_plot(est["estimator"].tolist(), est["value"].to_numpy(float), est["ci_low"].to_numpy(float),
                                        est["ci_high"].to_numpy(float), f"Estimated CTR of target policy {target!r}", "CTR (bootstrap interval)",
                                        reference=ref, ref_label=f"on-policy CTR of {reference['variant']!r}" if reference else "",
                                        ref_band=band)}
    fig = Figure(figsize=(6.4, 3.2))
    ax = fig.subplots()
    w = weights[weights > 0]
    if len(w):
        bins = np.logspace(np.log10(w.min()), np.log10(w.max()) + 1e-9, 40)
        counts, _ = np.histogram(w, bins=bins)  # np.histogram: fast on millions of weights
        ax.stairs(counts, bins, fill=True, color="#1f5fa8")
        ax.set_xscale("log")
    ax.set_xlabel("importance weight target / logging (non-zero weights)")
    ax.set_ylabel("events")
    ax.set_title(f"Importance weights ({int((weights == 0).sum())} events with weight 0)")
    figs["weights"] = fig
    return figs
