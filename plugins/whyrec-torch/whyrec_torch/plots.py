"""Figures: history heat-maps across a user's top-k, field bars, deletion curves."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def history_heatmaps(explanation: Any, data: Any, table: str, value: str, label: str, max_users: int = 3,
                     cmap: str = "Blues") -> dict[str, Any]:
    """One heat-map per user (first ``max_users``): rows = the user's explained items in rank
    order, columns = history positions (most recent first) labelled with titles."""
    plt = _plt()
    tab = explanation.extras.get(table)
    if tab is None:
        return {}
    tab = pd.DataFrame(tab)
    pairs = explanation.pairs
    figs: dict[str, Any] = {}
    users = list(dict.fromkeys(pairs["user"].tolist()))
    for user in users[:max_users]:
        idx = pairs.index[pairs["user"] == user].tolist()
        if "rank" in pairs.columns:
            idx = sorted(idx, key=lambda i: pairs.at[i, "rank"])
        t = tab[tab["pair"].isin(idx)]
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(user))
        if t.empty:
            fig, ax = plt.subplots(figsize=(6, 1.6))
            ax.axis("off")
            ax.text(0.5, 0.5, f"user {user}: no viewing history (cold start);\nsee the non-history fields in the reasons",
                    ha="center", va="center")
            figs[f"{table}_user_{safe}"] = fig
            continue
        positions = sorted(t["position"].unique())
        titles = t.drop_duplicates("position").set_index("position")["history_title"].reindex(positions)
        M = np.full((len(idx), len(positions)), np.nan)
        for r, i in enumerate(idx):
            sub = t[t["pair"] == i].set_index("position")[value]
            for c, p in enumerate(positions):
                if p in sub.index:
                    M[r, c] = sub[p]
        fig, ax = plt.subplots(figsize=(1.1 * len(positions) + 3.5, 0.42 * len(idx) + 2.2))
        im = ax.imshow(M, cmap=cmap, aspect="auto", vmin=0 if np.nanmin(M) >= 0 else None)
        ax.set_xticks(range(len(positions)), [f"{p}: {_short(str(s), 22)}" for p, s in zip(positions, titles)], rotation=40, ha="right", fontsize=8)
        ylabels = []
        for i in idx:
            rk = f"#{int(pairs.at[i, 'rank'])} " if "rank" in pairs.columns else ""
            ylabels.append(rk + _short(data.item_title(pairs.at[i, "item"]), 34))
        ax.set_yticks(range(len(idx)), ylabels, fontsize=8)
        if M.size <= 200:
            for r in range(M.shape[0]):
                for c in range(M.shape[1]):
                    if np.isfinite(M[r, c]):
                        ax.text(c, r, f"{M[r, c]:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if M[r, c] > np.nanmax(M) * 0.6 else "black")
        ax.set_xlabel("history (position 0 = most recent)")
        ax.set_title(f"{label}: user {user}'s top-{len(idx)}")
        fig.colorbar(im, ax=ax, fraction=0.03)
        fig.tight_layout()
        figs[f"{table}_user_{safe}"] = fig
    return figs


def field_bar(explanation: Any, title: str) -> Any:
    plt = _plt()
    fa = explanation.field_attributions
    mean = fa.mean(axis=0).sort_values()
    fig, ax = plt.subplots(figsize=(5.5, 0.4 * len(mean) + 1.2))
    ax.barh(mean.index, mean.to_numpy(), color=["tab:red" if v < 0 else "tab:blue" for v in mean])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("mean attribution (logit)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def deletion_curves(curves: pd.DataFrame) -> Any:
    """curves: columns order, fraction, mean_rank (one line per order)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, g in curves.groupby("order", sort=False):
        ax.plot(g["fraction"], g["mean_rank"], marker="o", label=name)
    ax.set_xlabel("share of history items removed")
    ax.set_ylabel("mean rank of the recommended item")
    ax.set_title("deletion curves (higher = the order found what mattered)")
    ax.legend()
    fig.tight_layout()
    return fig


def tau_hist(taus: np.ndarray, title: str) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    t = taus[np.isfinite(taus)]
    ax.hist(t, bins=np.linspace(-1, 1, 21), color="tab:purple")
    ax.axvline(0, color="black", lw=0.8)
    if len(t):
        ax.axvline(float(np.median(t)), color="tab:orange", ls="--", label=f"median {np.median(t):.2f}")
        ax.legend()
    ax.set_xlabel("Kendall τ")
    ax.set_ylabel("recommendations")
    ax.set_title(title)
    fig.tight_layout()
    return fig
