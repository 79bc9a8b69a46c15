"""Matplotlib figures of the report, built from saved artifacts (object API, no pyplot state).

Every figure has a title, axis labels and units; colours follow SHAP's convention
(red raises the score, blue lowers it).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

POS, NEG, GREY = "#d62728", "#1f77b4", "#8c8c8c"


def _fig(width: float, height: float, constrained: bool = True):
    """A pyplot-free Figure. Constrained layout for simple plots; grids of many small axes
    lay out by hand (constrained layout costs seconds there) and are cropped when saved."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def _short(label: Any, n: int = 38) -> str:
    s = str(label)
    return s if len(s) <= n else s[: n - 1] + "…"


def importance_bar(values, title: str, xlabel: str, top: int = 15, ylabel: str = "feature"):
    """Horizontal bar chart of a Series (name -> mean |attribution|), largest at the top."""
    v = values.sort_values(ascending=False).head(top)[::-1]
    fig = _fig(6.2, 0.32 * len(v) + 1.3)
    ax = fig.add_subplot()
    ax.barh([_short(i) for i in v.index], v.to_numpy(float), color=POS)
    for y, x in enumerate(v.to_numpy(float)):
        ax.text(x, y, f" {x:.3g}", va="center", fontsize=8)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(x=0.15)
    return fig


def beeswarm(attr, values, title: str, xlabel: str, top: int = 12, seed: int = 0, ylabel: str = "feature"):
    """SHAP-style summary: one row per feature, one dot per explained pair.

    x = attribution, colour = the feature's value scaled to its range (grey where the value
    is not numeric, e.g. categories).
    """
    import numpy as np
    import pandas as pd
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    order = attr.abs().mean().sort_values(ascending=False).head(top).index.tolist()[::-1]
    rng = np.random.default_rng(seed)
    fig = _fig(6.6, 0.36 * len(order) + 1.5)
    ax = fig.add_subplot()
    cmap = colormaps["coolwarm"]
    for y, feat in enumerate(order):
        x = attr[feat].to_numpy(float)
        jitter = rng.uniform(-0.28, 0.28, len(x))
        colours = [GREY] * len(x)
        if values is not None and feat in values.columns:
            num = pd.to_numeric(values[feat], errors="coerce").to_numpy(float)
            ok = ~np.isnan(num)
            if ok.any():
                lo, hi = np.nanmin(num), np.nanmax(num)
                scaled = (num - lo) / (hi - lo) if hi > lo else np.full_like(num, 0.5)
                colours = [cmap(s) if k else GREY for s, k in zip(scaled, ok)]
        ax.scatter(x, y + jitter, s=9, c=colours, alpha=0.8, linewidths=0)
    ax.axvline(0, color="#555555", lw=0.8)
    ax.set_yticks(range(len(order)), [_short(f) for f in order])
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    cb = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, ticks=[0, 1], aspect=30, pad=0.01)
    cb.ax.set_yticklabels(["low", "high"])
    cb.set_label("feature value (grey: not numeric)", fontsize=8)
    return fig


def _waterfall(ax, base: float, contrib, output: float | None, unit: str, title: str, top: int) -> None:
    import numpy as np

    c = contrib.dropna()
    c = c[c != 0] if (c != 0).any() else c
    order = c.abs().sort_values(ascending=False).index
    shown = list(order[:top])
    rest = c.drop(shown).sum() if len(order) > top else None
    items = []  # bottom -> top: the rest first, then ascending importance
    if rest is not None:
        items.append((f"{len(order) - top} other features", float(rest)))
    items += [(str(k), float(c[k])) for k in reversed(shown)]
    start = float(base)
    for y, (label, v) in enumerate(items):
        ax.barh(y, v, left=start, color=POS if v >= 0 else NEG, height=0.7)
        ax.text(start + v, y, f" {v:+.3g}" if v >= 0 else f"{v:+.3g} ", va="center",
                ha="left" if v >= 0 else "right", fontsize=7)
        start += v
    ax.axvline(base, color="#777777", lw=0.8, ls="--")
    end = float(output) if output is not None and not math.isnan(output) else start
    ax.axvline(end, color="#222222", lw=0.9)
    ax.set_yticks(range(len(items)), [_short(lbl, 34) for lbl, _ in items], fontsize=7.5)
    ax.set_title(f"{title}\nbase {base:.3g} → output {end:.3g}", fontsize=8.5)
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.use_sticky_edges = False  # bars' edges would otherwise block the margins
    ax.margins(x=0.22)  # room for the value labels at both ends


def waterfall_grid(panels: Sequence[dict], title: str, unit: str, top: int = 7, ncols: int = 2):
    """Waterfalls side by side: each panel dict has label, base, contrib (Series), output."""
    n = len(panels)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    bars = max(min(len(p["contrib"]), top + 1) for p in panels)
    panel_h = 0.26 * bars + 0.55
    gap_h = 0.95  # two title lines above, the x label below
    fig = _fig(5.4 * ncols, nrows * (panel_h + gap_h) + 0.8, constrained=False)
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={"wspace": 0.75, "hspace": gap_h / panel_h})
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.18, right=0.97, top=1 - 1.2 / height, bottom=0.55 / height)
    for i, p in enumerate(panels):
        _waterfall(axes[i // ncols][i % ncols], p["base"], p["contrib"], p.get("output"), unit, p["label"], top)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle(title, fontsize=11, y=1 - 0.25 / height)
    return fig


def difference_bar(diff, title: str, xlabel: str, top: int = 12):
    """Per-feature attribution differences (A minus B), largest |difference| at the top."""
    d = diff.reindex(diff.abs().sort_values(ascending=False).index).head(top)[::-1]
    fig = _fig(6.4, 0.32 * len(d) + 1.4)
    ax = fig.add_subplot()
    vals = d.to_numpy(float)
    ax.barh([_short(i) for i in d.index], vals, color=[POS if v >= 0 else NEG for v in vals])
    ax.axvline(0, color="#555555", lw=0.8)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("feature")
    return fig


def heatmap(matrix, title: str, xlabel: str, ylabel: str, cbar: str):
    """Rows x columns heat map (e.g. recommended items x history positions)."""
    import numpy as np

    m = matrix.to_numpy(float)
    fig = _fig(min(1.1 + 0.42 * m.shape[1], 11.5), 0.34 * m.shape[0] + 1.8)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(m), aspect="auto", cmap="Reds", vmin=0)
    ax.set_yticks(range(m.shape[0]), [_short(r, 30) for r in matrix.index], fontsize=7.5)
    ax.set_xticks(range(m.shape[1]), [_short(c, 18) for c in matrix.columns], fontsize=7, rotation=60, ha="right")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, label=cbar, aspect=30, pad=0.01)
    return fig


def grouped_bars(df, title: str, ylabel: str):
    """One group per column (metric), one bar per row (model)."""
    import numpy as np

    fig = _fig(max(5.0, 1.2 * len(df.columns) + 2.5), 3.3)
    ax = fig.add_subplot()
    width = 0.8 / max(len(df), 1)
    x = np.arange(len(df.columns))
    for i, (name, row) in enumerate(df.iterrows()):
        vals = row.to_numpy(float)
        bars = ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=_short(name, 30))
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, list(df.columns))
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("metric")
    ax.set_ylim(0, max(1.0, float(np.nanmax(df.to_numpy(float))) * 1.12))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def timings_bar(names: Sequence[str], seconds: Sequence[float], title: str):
    fig = _fig(6.4, 0.3 * len(names) + 1.3)
    ax = fig.add_subplot()
    ax.barh([_short(n, 40) for n in names][::-1], list(seconds)[::-1], color="#4c72b0")
    for y, x in enumerate(list(seconds)[::-1]):
        ax.text(x, y, f" {x:.2f}", va="center", fontsize=8)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("wall-clock time (s)")
    ax.set_ylabel("stage")
    ax.margins(x=0.15)
    return fig


def curves(df, x: str | None, title: str, ylabel: str):
    """Line plot of every numeric column of ``df`` against column ``x`` (or the row number)."""
    fig = _fig(6.0, 3.2)
    ax = fig.add_subplot()
    xs = df[x] if x else range(1, len(df) + 1)
    for col in df.columns:
        if col == x:
            continue
        ax.plot(xs, df[col].to_numpy(float), marker="o", ms=3, label=col)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(x or "step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def gain_bars(df, title: str, xlabel: str):
    """Horizontal grouped bars: one group per row (method on model), one bar per column."""
    import numpy as np

    n, k = len(df), max(len(df.columns), 1)
    fig = _fig(6.8, 0.55 * n * max(k, 1) * 0.6 + 1.6)
    ax = fig.add_subplot()
    h = 0.8 / k
    y = np.arange(n)
    colours = ["#4c72b0", "#dd8452", "#55a868"]
    for j, col in enumerate(df.columns):
        vals = df[col].to_numpy(float)
        bars = ax.barh(y + j * h - 0.4 + h / 2, vals, h, label=col, color=colours[j % len(colours)])
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.axvline(0, color="#555555", lw=0.8)
    ax.set_yticks(y, [_short(i, 40) for i in df.index])
    ax.invert_yaxis()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.18)
    ax.legend(fontsize=8, loc="lower right")
    return fig
