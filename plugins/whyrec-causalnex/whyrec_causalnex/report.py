"""The "What drives the outcome causally" section of report.html, from the run directory alone
(run/causal/<name>/ of causalnex-bn stages: summary.json, its tables, graph.png, graph.html)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TITLE = "What drives the outcome causally (CausalNex)"


def _ours(sd: Any) -> bool:
    """A causalnex-bn directory: by the manifest's stage, else by its summary."""
    if sd.stage is not None:
        return sd.stage.get("component") == "causalnex-bn"
    try:
        return json.loads((sd.path / "summary.json").read_text()).get("learner") == "causalnex-bn"
    except (ValueError, OSError, AttributeError):
        return False


def render_causal(run: Any) -> Any:
    from whyrec.report.artifacts import stage_dirs_section
    from whyrec.report.html import esc

    return stage_dirs_section(run, "causal", TITLE, _ours,
                              lambda sd, name: f"<h3>{esc(name)}</h3>" + _stage_html(sd.path))


def _read(d: Path, name: str) -> Any:
    from whyrec.report.artifacts import parquet_or_none

    return parquet_or_none(d / f"{name}.parquet")


def _interval_level(d: Path) -> str:
    """The run's own interval level (the learner's ``ci``), never a hard-coded 95%."""
    try:
        ci = json.loads((d / "effects.json").read_text()).get("ci")
        return f"{100 * float(ci):g}%"
    except (OSError, ValueError, TypeError, AttributeError):
        return "bootstrap"


def _pct(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _stage_html(d: Path) -> str:
    from whyrec.report.html import (
        ArtifactError, details, esc, kv_table, notice, table_html,
    )

    sp = d / "summary.json"
    if not sp.exists():
        raise ArtifactError("summary.json is missing")
    try:
        s = json.loads(sp.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError("summary.json is not valid JSON") from exc
    out: list[str] = []
    outcome = s.get("outcome", "label")
    out.append(f"<p>Outcome <b>{esc(outcome)}</b>: P({esc(outcome)} = 1) = {_pct(s.get('baseline_outcome_probability'))} "
               f"in the training data. {esc(s.get('method', ''))} over {len(s.get('variables', []))} variables "
               f"({esc(s.get('standardisation', ''))}), |weight| &gt; {esc(s.get('w_threshold'))}: "
               f"{esc(s.get('edges'))} edges.</p>")
    out.append(notice(s.get("caution", ""), "warning"))
    if s.get("unstable_edges"):
        out.append(notice("Unstable edges (found in fewer bootstrap refits than the threshold): "
                          + ", ".join(f"{a} → {b}" for a, b in s["unstable_edges"]), "note"))
    # headline: the causal effects
    fx = _read(d, "feature_effects")
    level = _interval_level(d)
    if fx is not None and len(fx):
        top = fx[fx["path_to_outcome"]].copy()
        if len(top):
            lines = []
            for r in top.head(8).itertuples():
                ci = "" if math.isnan(r.effect_low) else f" ({level} interval {_pct(r.effect_low)} to {_pct(r.effect_high)})"
                shaky = getattr(r, "unstable_on_path", "")
                shaky = (f" <span class=\"wr-small\">(rests on unstable edge(s) {esc(shaky)}: found in fewer bootstrap "
                         f"resamples than the threshold, often a direction the data cannot settle; set it with "
                         f"required_edges if you know it)</span>") if isinstance(shaky, str) and shaky else ""
                lines.append(f"<li><b>{esc(r.feature)}</b>: setting it across its levels moves P({esc(outcome)}) by "
                             f"{_pct(r.effect)}{ci}{shaky}</li>")
            out.append("<p>Causes of the outcome found (largest first):</p><ul>" + "".join(lines) + "</ul>")
        none = fx[~fx["path_to_outcome"]]["feature"].tolist()
        if none:
            out.append(f"<p class=\"wr-small\">No directed path to {esc(outcome)} (causal effect 0 in this graph): "
                       f"{esc(', '.join(none))}. That is what the learned graph shows, not proof of no effect: a cause "
                       f"the structure search missed (e.g. one acting only through an interaction with another "
                       f"variable, which an additive score cannot see) is not ruled out.</p>")
    out.append(_graph_html(d, outcome, s))
    eff = _read(d, "effects")
    if eff is not None and len(eff):
        cols = ["description", "interval", "do_value", "p_do", "p_do_low", "p_do_high", "estimate_in_interval", "effect_vs_first",
                "effect_low", "effect_high", "p_observed", "path_to_outcome"]
        out.append("<h4>Interventions: P(outcome | do(feature = level))</h4>")
        if "estimate_in_interval" in eff.columns:
            outside = eff[eff["estimate_in_interval"].astype("boolean").eq(False).fillna(False)]
            if len(outside):
                out.append(f"<p class=\"wr-small\"><b>{len(outside)} estimate(s) fall outside their own bootstrap interval</b> "
                           f"({esc(', '.join(map(str, outside['description'].head(5))))}): those intervals are unreliable; "
                           "more rows or a larger effect_bootstrap narrow them.</p>")
        how = (f"do() answered by the g-formula at each state's value (a bin: its training median; "
               f"column do_value); intervals: {esc(s.get('effect_bootstrap'))} bootstrap refits, each on one of the "
               f"structure search's bootstrap graphs, so they carry the uncertainty of the graph"
               if s.get("do_estimator") == "gformula" else
               f"do() answered by the Bayesian network for each state; intervals: {esc(s.get('effect_bootstrap'))} "
               f"bootstrap refits of the network's probabilities on the learned graph")
        out.append(f"<p class=\"wr-small\">{esc(s.get('interventions_from', ''))}; {how}. p_observed is "
                   f"P(outcome | feature = level) (conditioning): where it differs from p_do, the association is "
                   f"confounded. Ask your own with <code>whyrec causal RUN --do feature=level</code>.</p>")
        out.append(table_html(eff[[c for c in cols if c in eff.columns]], max_rows=60))
    cva = _read(d, "causal_vs_attribution")
    if cva is not None and len(cva):
        from .attribution import WARNINGS

        cva, partial = coverage_checked(cva)

        out.append("<h4>Causal effect vs what the model uses</h4>")
        out.append("<p class=\"wr-small\">Each feature's causal effect (spread of P(outcome | do) over its levels, and "
                   "for numeric features P(do(high)) − P(do(low)), with bootstrap intervals) next to the model's "
                   "attribution share and direction (correlation of the feature's value with its attribution, with a "
                   "Fisher-z interval). A flag is raised only when the intervals support it. The same table: "
                   "<code>whyrec causal RUN --compare</code>.</p>")
        if partial:
            out.append("<p class=\"wr-small\">"
                       + "; ".join(f"{esc(meth)} on {esc(model)} attributes only to {esc(_few(feats))}, so it has no row "
                                   "for the model's other inputs" for (model, meth), feats in partial.items())
                       + ". A method's coverage is not the model's inputs.</p>")
        flagged = cva[cva["flag"].astype(str).str.startswith(WARNINGS)]
        if len(flagged):
            has_reason = "reason" in flagged.columns
            out.append("<ul>" + "".join(
                f"<li><b>{esc(r.feature)}</b> ({esc(r.model)}, {esc(r.method)}): {esc(r.flag)}"
                + (f" — {esc(r.reason)}" if has_reason and isinstance(r.reason, str) else "") + "</li>"
                for r in flagged.itertuples()) + "</ul>")
        cols = ["feature", "model", "method", "causal_effect", "causal_effect_low", "causal_effect_high",
                "causal_direction", "causal_direction_low", "causal_direction_high", "attribution_share",
                "attribution_rank", "attribution_direction", "attribution_direction_low", "attribution_direction_high",
                "flag"]
        out.append(table_html(cva[[c for c in cols if c in cva.columns]], max_rows=80))
    q = s.get("predictive_quality") or {}
    if q:
        out.append("<h4>Predictive quality of the network on the test split</h4>")
        out.append(kv_table({k: v for k, v in q.items() if not isinstance(v, (dict, list))}))
    truth = s.get("truth") or {}
    if truth:
        out.append("<h4>Against the simulator's ground truth</h4>")
        st = truth.get("structure", {})
        iv = truth.get("interventions", {})
        out.append(kv_table({
            "structural Hamming distance": st.get("shd"), "true edges": st.get("true_edges"),
            "missing edges": ", ".join(f"{a} → {b}" for a, b in st.get("missing_edges", [])) or "none",
            "extra edges": ", ".join(f"{a} → {b}" for a, b in st.get("extra_edges", [])) or "none",
            "reversed edges": ", ".join(f"{a} → {b}" for a, b in st.get("reversed_edges", [])) or "none",
            "do-effect mean abs error": iv.get("do_mae"), "do-effect max error": iv.get("do_max_error"),
            "effect (difference) mean abs error": iv.get("effect_mae"),
        }))
        ti = _read(d, "truth_interventions")
        if ti is not None and len(ti):
            out.append(table_html(ti, max_rows=40))
    stab = _read(d, "edge_stability")
    if stab is not None and len(stab):
        out.append(details(f"Edge stability ({len(stab)} edges seen)", table_html(stab, max_rows=100)))
    notes = s.get("notes") or []
    if notes:
        out.append(details("Notes", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"))
    return "".join(out)


def _few(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def coverage_checked(cva: Any) -> tuple[Any, dict]:
    """The table without "(not a model input)" rows for features another method of the same
    model attributes (tables written before that was checked), and per (model, method) that
    covers fewer inputs than another method of its model, the features it covers."""
    import numpy as np

    from .attribution import NOT_INPUT

    if not {"feature", "model", "method", "flag"} <= set(cva.columns):
        return cva, {}
    flag = cva["flag"].astype(str)
    attributed = cva[~flag.str.endswith(NOT_INPUT)]
    inputs = attributed.groupby("model")["feature"].agg(lambda s: set(map(str, s))).to_dict()
    taken = np.array([str(f) in inputs.get(m, set()) for f, m in zip(cva["feature"], cva["model"])], dtype=bool)
    wrong = flag.str.endswith(NOT_INPUT).to_numpy(dtype=bool) & taken
    partial = {}
    for (model, method), grp in attributed.groupby(["model", "method"], sort=False):
        feats = sorted(map(str, grp["feature"]))
        if len(feats) < len(inputs.get(model, ())):
            partial[(str(model), str(method))] = feats
    return cva[~wrong].reset_index(drop=True), partial


def _graph_html(d: Path, outcome: str, s: dict) -> str:
    """The learned graph, interactive (pan, zoom, hover for weight and stability) from
    graph.json, offline; the static PNG when there is no graph.json. graph.html (pyvis, large)
    is linked, not embedded."""
    from whyrec.report.html import figure_block, figure_to_img

    gj = d / "graph.json"
    caption = ("Learned graph, left to right by causal depth; width = |weight|; red = negative; dashed = unstable "
               "(found in fewer than half of the bootstrap refits). Drag to pan, scroll or +/− to zoom, hover an edge "
               "for its weight and stability, a node to light its edges.")
    html = ""
    if gj.exists():
        try:
            g = json.loads(gj.read_text(encoding="utf-8"))
            from whyrec.report.graph import interactive_graph

            html = interactive_graph(g.get("nodes") or [], [e for e in g.get("edges") or [] if isinstance(e, dict)],
                                     outcome=outcome, caption=caption)
        except (OSError, ValueError, KeyError, TypeError):
            html = ""
    png = d / "graph.png"
    if not html and png.exists():
        html = figure_block(figure_to_img(png, alt="learned causal graph"), caption.split(". Drag")[0])
    page = d / "graph.html"
    if page.exists():
        from whyrec.report.artifacts import remote_references
        from whyrec.report.html import details, iframe_html

        text = page.read_text(encoding="utf-8")
        if not remote_references(text):  # inline resources only: it loads nothing from the network
            html += details("Interactive graph, physics layout (pyvis: drag nodes, zoom)",
                            iframe_html(text, "causal graph", height=560))
        else:
            html += (f'<p class="wr-small">The same graph as a stand-alone page: <a href="causal/{d.name}/graph.html">'
                     "graph.html</a> in the run directory (it loads its scripts from the network).</p>")
    return html
