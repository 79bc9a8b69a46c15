"""An interactive directed graph for report.html: inline SVG plus a small inline script.

No network, no library: the SVG is laid out here in layers by causal depth (sources left, the
outcome right), nodes ordered within a layer to cross fewer edges, and edges that skip layers
bent around the nodes in between. The script adds pan (drag), zoom (wheel, buttons), and a
hover card with an edge's weight and stability (a node's hover lights its edges). Without
scripts the SVG still shows, and each edge's ``<title>`` gives the same numbers as a tooltip.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from .html import esc, fmt_value

COL_W, ROW_H, NODE_H = 210, 46, 26

SCRIPT = """
(function () {
  if (window.wrGraphs) return; window.wrGraphs = true;
  function setup(box) {
    var svg = box.querySelector('svg'), tip = box.querySelector('.wr-graph-tip');
    var vb = svg.getAttribute('viewBox').split(' ').map(Number), home = vb.slice();
    function show() { svg.setAttribute('viewBox', vb.join(' ')); }
    function zoom(f, cx, cy) {
      var r = svg.getBoundingClientRect();
      var px = vb[0] + (cx - r.left) / r.width * vb[2], py = vb[1] + (cy - r.top) / r.height * vb[3];
      vb = [px - (px - vb[0]) * f, py - (py - vb[1]) * f, vb[2] * f, vb[3] * f]; show();
    }
    svg.addEventListener('wheel', function (e) { e.preventDefault(); zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, e.clientX, e.clientY); },
                         {passive: false});
    var drag = null;
    svg.addEventListener('pointerdown', function (e) { drag = {x: e.clientX, y: e.clientY, vb: vb.slice()};
                                                      svg.setPointerCapture && svg.setPointerCapture(e.pointerId); });
    svg.addEventListener('pointermove', function (e) {
      if (!drag) return;
      var r = svg.getBoundingClientRect();
      vb[0] = drag.vb[0] - (e.clientX - drag.x) / r.width * vb[2];
      vb[1] = drag.vb[1] - (e.clientY - drag.y) / r.height * vb[3]; show();
    });
    svg.addEventListener('pointerup', function () { drag = null; });
    box.querySelectorAll('button[data-zoom]').forEach(function (b) {
      b.addEventListener('click', function () {
        var z = b.getAttribute('data-zoom'), r = svg.getBoundingClientRect();
        if (z === 'reset') { vb = home.slice(); show(); } else { zoom(Number(z), r.left + r.width / 2, r.top + r.height / 2); }
      });
    });
    function card(el, e) {
      tip.textContent = el.getAttribute('data-info'); tip.style.display = 'block';
      var r = box.getBoundingClientRect();
      tip.style.left = (e.clientX - r.left + 12) + 'px'; tip.style.top = (e.clientY - r.top + 12) + 'px';
    }
    box.querySelectorAll('.wr-edge').forEach(function (p) {
      p.addEventListener('mouseenter', function (e) { p.classList.add('wr-on'); card(p, e); });
      p.addEventListener('mousemove', function (e) { card(p, e); });
      p.addEventListener('mouseleave', function () { p.classList.remove('wr-on'); tip.style.display = 'none'; });
    });
    box.querySelectorAll('.wr-node').forEach(function (n) {
      var name = n.getAttribute('data-node');
      n.addEventListener('mouseenter', function (e) {
        box.querySelectorAll('.wr-edge').forEach(function (p) {
          if (p.getAttribute('data-from') === name || p.getAttribute('data-to') === name) p.classList.add('wr-on');
          else p.classList.add('wr-dim');
        });
        card(n, e);
      });
      n.addEventListener('mouseleave', function () {
        box.querySelectorAll('.wr-edge').forEach(function (p) { p.classList.remove('wr-on', 'wr-dim'); });
        tip.style.display = 'none';
      });
    });
    box.setAttribute('data-ready', '1');
  }
  document.querySelectorAll('.wr-graph').forEach(setup);
})();
"""

STYLE = """<style>
.wr-graph { position:relative; border:1px solid var(--line,#d8dee3); border-radius:6px; margin:8px 0 14px; }
.wr-graph svg { display:block; width:100%; height:auto; max-height:640px; cursor:grab; touch-action:none; }
.wr-graph-tools { position:absolute; right:8px; top:8px; display:flex; gap:4px; }
.wr-graph-tools button { font:13px system-ui, sans-serif; min-width:28px; padding:2px 6px; border:1px solid #c3ccd3;
                         background:#fff; border-radius:4px; cursor:pointer; }
.wr-graph-tip { position:absolute; display:none; pointer-events:none; background:#1d2327; color:#fff; font-size:12.5px;
                padding:4px 8px; border-radius:4px; max-width:340px; z-index:3; }
.wr-edge { fill:none; stroke-linecap:round; } .wr-edge.wr-on { stroke-opacity:1 !important; filter:drop-shadow(0 0 2px #0006); }
.wr-edge.wr-dim { stroke-opacity:0.12 !important; }
.wr-node rect { fill:#f5f7f9; stroke:#5f6b73; } .wr-node.wr-outcome rect { fill:#fff4e5; stroke:#b35900; stroke-width:2; }
.wr-node text { font:12px system-ui, sans-serif; fill:#1d2327; }
</style>"""


def _layers(nodes: list[str], edges: list[dict]) -> dict[str, int]:
    """Longest-path depth from the sources (cycles, which a DAG has none of, are cut)."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        preds.setdefault(e["target"], []).append(e["source"])
    depth: dict[str, int] = {}

    def d(n: str, seen: frozenset) -> int:
        if n in depth:
            return depth[n]
        ps = [p for p in preds.get(n, []) if p not in seen]
        depth[n] = 1 + max((d(p, seen | {n}) for p in ps), default=-1)
        return depth[n]

    for n in nodes:
        d(n, frozenset())
    return depth


def layout(nodes: Iterable[str], edges: list[dict], outcome: str | None = None) -> dict[str, tuple[float, float]]:
    """x, y of every node's centre: columns by depth (the outcome in the last one)."""
    nodes = list(dict.fromkeys([*nodes, *(e["source"] for e in edges), *(e["target"] for e in edges)]))
    depth = _layers(nodes, edges)
    linked = {e["source"] for e in edges} | {e["target"] for e in edges}
    last = max(depth.values(), default=0)
    if outcome in depth:
        depth[outcome] = max(last, depth[outcome])
    for n in nodes:  # unconnected nodes: a column of their own at the left
        if n not in linked:
            depth[n] = -1
    cols: dict[int, list[str]] = {}
    for n in nodes:
        cols.setdefault(depth[n], []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    neighbours: dict[str, list[str]] = {}
    for e in edges:
        neighbours.setdefault(e["target"], []).append(e["source"])
        neighbours.setdefault(e["source"], []).append(e["target"])
    order = sorted(cols)
    for c in order:  # barycentre of the already placed neighbours: fewer crossings
        members = cols[c]
        first = {n: i for i, n in enumerate(members)}

        def bary(n: str) -> float:
            ys = [pos[m][1] for m in neighbours.get(n, []) if m in pos]
            return sum(ys) / len(ys) if ys else first[n] * ROW_H * 1.6 + 40

        members.sort(key=bary)
        for i, n in enumerate(members):
            pos[n] = ((order.index(c)) * COL_W + 90, i * ROW_H * 1.6 + 40)
    return pos


def _edge_path(a: tuple[float, float], b: tuple[float, float], skip: int, k: int) -> str:
    """A cubic curve from a's right to b's left; a curve that skips columns bows out between rows."""
    (x1, y1), (x2, y2) = a, b
    x1 += 72
    x2 -= 72
    dx = max(abs(x2 - x1) * 0.45, 40)
    if skip > 0:  # bow away from the nodes of the columns in between (alternating sides)
        bow = (ROW_H * 0.8) * (1 + (k % 3) * 0.35) * (1 if k % 2 == 0 else -1)
        mid_y = (y1 + y2) / 2 + bow
        return f"M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{mid_y:.1f} {x2 - dx:.1f},{mid_y:.1f} {x2:.1f},{y2:.1f}"
    return f"M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"


def interactive_graph(nodes: Iterable[str], edges: list[dict], outcome: str | None = None,
                      caption: str = "", stable_at: float = 0.5) -> str:
    """HTML of an interactive graph: ``edges`` as dicts with source, target, weight and
    (optional) stability (the share of bootstrap refits that found the edge). Red edges are
    negative, width grows with |weight|, dashed edges are below ``stable_at``."""
    nodes = list(nodes)
    pos = layout(nodes, edges, outcome)
    if not pos:
        return ""
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    x0, y0 = min(xs) - 90, min(ys) - 40
    w, h = max(xs) - x0 + 100, max(ys) - y0 + 50
    wmax = max((abs(float(e.get("weight") or 0)) for e in edges), default=1.0) or 1.0
    col = {n: round(p[0]) for n, p in pos.items()}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x0:.0f} {y0:.0f} {w:.0f} {h:.0f}" role="img" '
             f'aria-label="{esc(caption or "directed graph")}">',
             '<defs><marker id="wr-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5f6b73"/></marker></defs>']
    for k, e in enumerate(sorted(edges, key=lambda e: abs(float(e.get("weight") or 0)))):
        a, b = e["source"], e["target"]
        wt = float(e.get("weight") or 0)
        st = e.get("stability")
        st = None if st is None or (isinstance(st, float) and math.isnan(st)) else float(st)
        skip = max(0, round((col[b] - col[a]) / COL_W) - 1) if col[b] >= col[a] else 1
        info = f"{a} → {b}: weight {fmt_value(wt)}" + (f", stability {100 * st:.0f}% of refits" if st is not None else "")
        dash = ' stroke-dasharray="5 4"' if st is not None and st < stable_at else ""
        colour = "#b3261e" if wt < 0 else "#2457a6"
        parts.append(f'<path class="wr-edge" d="{_edge_path(pos[a], pos[b], skip, k)}" stroke="{colour}" '
                     f'stroke-opacity="0.75" stroke-width="{1 + 4 * abs(wt) / wmax:.2f}"{dash} marker-end="url(#wr-arrow)" '
                     f'data-from="{esc(a)}" data-to="{esc(b)}" data-info="{esc(info)}"><title>{esc(info)}</title></path>')
    for n, (x, y) in pos.items():
        ins = sum(1 for e in edges if e["target"] == n)
        outs = sum(1 for e in edges if e["source"] == n)
        info = f"{n}: {ins} cause{'s' if ins != 1 else ''} in the graph, {outs} effect{'s' if outs != 1 else ''}"
        label = n if len(n) <= 20 else n[:19] + "…"
        cls = "wr-node wr-outcome" if n == outcome else "wr-node"
        parts.append(f'<g class="{cls}" data-node="{esc(n)}" data-info="{esc(info)}"><title>{esc(info)}</title>'
                     f'<rect x="{x - 72:.0f}" y="{y - NODE_H / 2:.0f}" width="144" height="{NODE_H}" rx="6"/>'
                     f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle">{esc(label)}</text></g>')
    parts.append("</svg>")
    tools = ('<div class="wr-graph-tools"><button type="button" data-zoom="0.8" title="zoom in">+</button>'
             '<button type="button" data-zoom="1.25" title="zoom out">−</button>'
             '<button type="button" data-zoom="reset" title="fit">fit</button></div>')
    cap = f"<figcaption class=\"wr-small\">{esc(caption)}</figcaption>" if caption else ""
    return (STYLE + f'<figure class="wr-graph">{tools}{"".join(parts)}<div class="wr-graph-tip"></div>{cap}</figure>'
            + f"<script>{SCRIPT}</script>")
