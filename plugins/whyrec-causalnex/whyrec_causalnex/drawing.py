"""Drawings of the learned graph: a static figure (PNG/SVG) and a self-contained interactive HTML.

The HTML comes from pyvis with its JavaScript inlined (``cdn_resources="in_line"``); pyvis's
template still links Bootstrap from a CDN, which the page does not need, so those tags are
removed: the file loads nothing from the network (the report embeds it offline).
"""
from __future__ import annotations

import html
import io
import re
from typing import Any

import numpy as np

from whyrec.causal import CausalGraph

FIELD_COLOURS = {"user": "#8ecae6", "item": "#ffb703", "context": "#b5e48c", "history": "#cdb4db",
                 "cross": "#f4a261", "outcome": "#e63946"}


def _layers(graph: CausalGraph) -> dict[str, int]:
    """Longest-path depth of each node (roots 0): causes drawn left of effects."""
    import networkx as nx

    g = graph.to_networkx()
    depth: dict[str, int] = {}
    for n in nx.topological_sort(g):
        preds = list(g.predecessors(n))
        depth[n] = 1 + max(depth[p] for p in preds) if preds else 0
    return depth


def figure(graph: CausalGraph, fields: dict[str, str], target: str, stability_threshold: float = 0.7,
           title: str | None = None) -> Any:
    """matplotlib Figure: nodes by causal depth (left to right), coloured by field; edge width by
    |weight|, red for negative weights, dashed for edges below the stability threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = graph.to_networkx()
    depth = _layers(graph)
    for n in g.nodes:
        g.nodes[n]["layer"] = depth.get(n, 0)
    pos = nx.multipartite_layout(g, subset_key="layer") if g.number_of_nodes() > 1 else {n: (0, 0) for n in g.nodes}
    n_layers = max(depth.values(), default=0) + 1
    width = max(6.0, 2.2 * n_layers)
    height = max(4.0, 0.55 * max(list(np.bincount(list(depth.values()))) or [1]))
    fig, ax = plt.subplots(figsize=(width, height))
    colours = [FIELD_COLOURS.get(fields.get(n, ""), "#dddddd") for n in g.nodes]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, node_size=900, edgecolors="#333333", linewidths=0.8)
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=8,
                            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})
    weights = [abs(d.get("weight") or 0.0) for _, _, d in g.edges(data=True)]
    wmax = max(weights, default=1.0) or 1.0
    for (u, v, d), w in zip(g.edges(data=True), weights):
        stab = d.get("stability")
        style = "dashed" if stab is not None and stab < stability_threshold else "solid"
        colour = "#c1121f" if (d.get("weight") or 0.0) < 0 else "#1d3557"
        nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(u, v)], width=0.8 + 3.2 * w / wmax, style=style,
                               edge_color=colour, arrowsize=14, node_size=900, connectionstyle="arc3,rad=0.06")
    ax.set_title(title or f"Learned causal graph ({len(graph.edges)} edges; dashed: stability < {stability_threshold:g})",
                 fontsize=10)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=f) for f, c in FIELD_COLOURS.items()
               if f in set(fields.values())]
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False, bbox_to_anchor=(1.0, 1.0))
    ax.axis("off")
    fig.tight_layout()
    return fig


def svg_text(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return buf.getvalue()


_REMOTE_TAG = re.compile(
    r"<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//[^>]*>(?:\s*</script>)?", re.I | re.S)
_COMMENTS = re.compile(r"<!--.*?-->", re.S)


def interactive_html(graph: CausalGraph, fields: dict[str, str], target: str, node_info: dict[str, str] | None = None,
                     stability_threshold: float = 0.7) -> str:
    """A self-contained interactive graph (pyvis / vis-network inlined; no network access)."""
    from pyvis.network import Network

    net = Network(height="560px", width="100%", directed=True, cdn_resources="in_line", notebook=False)
    depth = _layers(graph)
    for n in graph.nodes:
        tip = (node_info or {}).get(n, n)
        net.add_node(n, label=n, title=tip, color=FIELD_COLOURS.get(fields.get(n, ""), "#dddddd"),
                     level=depth.get(n, 0), shape="box" if n == target else "ellipse")
    for e in graph.edges:
        stab = "n/a" if e.stability is None else f"{e.stability:.0%}"
        unstable = e.stability is not None and e.stability < stability_threshold
        net.add_edge(e.source, e.target, value=abs(e.weight), title=f"{e.source} → {e.target}: weight {e.weight:+.3f}, "
                     f"stability {stab}", color="#c1121f" if e.weight < 0 else "#1d3557", dashes=unstable)
    net.set_options('{"layout": {"hierarchical": {"enabled": true, "direction": "LR", "sortMethod": "directed"}},'
                    ' "physics": {"enabled": false}, "edges": {"arrows": {"to": {"enabled": true}}, "smooth": true}}')
    page = net.generate_html()
    page = _COMMENTS.sub("", page)
    page = _REMOTE_TAG.sub("", page)
    page = page.replace("<h1></h1>", "")
    title = html.escape(f"whyrec causal graph ({len(graph.edges)} edges)")
    return page.replace("<head>", f"<head><title>{title}</title>", 1)
