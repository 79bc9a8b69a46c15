"""The "Feedback" section of report.html, built from the run directory alone
(run/feedback/<name>/summary.json, its Parquet tables and PNG figures)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TITLE = "Feedback analysis: A/B tests and off-policy estimates"


OURS = ("ab-test", "off-policy")


def _analyzer(sd: Any) -> str | None:
    """Which of our analyzers wrote this stage directory (None: not ours)."""
    summ = sd.path / "summary.json"
    if summ.exists():
        try:
            a = json.loads(summ.read_text()).get("analyzer")
        except (ValueError, OSError, AttributeError):
            a = None
        if a in OURS:
            return a
    comp = (sd.stage or {}).get("component")
    return comp if comp in OURS else None


def render_feedback(run: Any) -> Any:
    """One subsection per ab-test / off-policy stage directory; other analyzers' directories
    are left to the core's generic feedback section."""
    from whyrec.report.artifacts import stage_dirs_section

    return stage_dirs_section(run, "feedback", TITLE, _analyzer,
                              lambda sd, name: _stage_html(sd.stage or {"name": name, "component": _analyzer(sd)}, sd.path))


def _table(d: Path, name: str) -> Any:
    from whyrec.report.artifacts import parquet_or_none

    return parquet_or_none(d / f"{name}.parquet")


def _fig(d: Path, name: str, caption: str) -> str:
    from whyrec.report.html import figure_block, figure_to_img

    p = d / f"{name}.png"
    return figure_block(figure_to_img(p), caption) if p.exists() else ""


def _stage_html(stage: dict, d: Path) -> str:
    from whyrec.report.html import ArtifactError, esc

    sp = d / "summary.json"
    if not sp.exists():
        raise ArtifactError(f"{sp} is missing")
    try:
        s = json.loads(sp.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{sp} is not valid JSON") from exc
    head = f"<h3>{esc(stage['name'])} <small>({esc(stage.get('component', ''))})</small></h3>"
    if s.get("analyzer") == "ab-test":
        return head + _ab_html(s, d)
    if s.get("analyzer") == "off-policy":
        return head + _ope_html(s, d)
    from whyrec.report.html import kv_table

    return head + kv_table({k: v for k, v in s.items() if not isinstance(v, (dict, list))})


def _ab_html(s: dict, d: Path) -> str:
    from whyrec.report.html import esc, kv_table, notice, table_html

    out = []
    if s["srm"]["mismatch"]:
        out.append(notice(f"Sample ratio mismatch (p = {s['srm']['p_value']:.2g}): exposures per arm {s['srm']['observed']} "
                          f"differ from the planned split {s['srm']['expected_share']}; do not trust the comparison until the "
                          "assignment is fixed.", "warning"))
    out.append(f"<p>{esc(s.get('conclusion', ''))}</p>")
    arms = _table(d, "arms")
    if arms is not None:
        out.append(table_html(arms, caption=f"{s['metric']} per arm ({s['arm_column']}), Wilson intervals"))
    comps = _table(d, "comparisons")
    if comps is not None:
        out.append(table_html(comps, caption="Treatment vs control: difference (Newcombe CI), relative lift (log risk-ratio CI), "
                                              "two-proportion z-test, Holm-adjusted p"))
    out.append(_fig(d, "rate_by_arm", "Rate per arm with Wilson intervals"))
    out.append(kv_table({"chi-square": s["srm"]["chi2"], "p-value": s["srm"]["p_value"], "observed": s["srm"]["observed"],
                         "expected share": s["srm"]["expected_share"], "mismatch": s["srm"]["mismatch"]},
                        caption="Sample-ratio mismatch check"))
    pw = _table(d, "power")
    if pw is not None:
        out.append(table_html(pw, caption="Power for the minimum detectable effect and sample size needed"))
    cu = _table(d, "cuped")
    if cu is not None and "cuped" in s:
        out.append(table_html(cu, caption=f"CUPED on {s['cuped']['covariate']} (variance reduction "
                                          f"{100 * s['cuped']['variance_reduction']:.1f}%, theta {s['cuped']['theta']:.4g})"))
    if "sequential" in s:
        sq = s["sequential"]
        out.append(f"<p>Sequential test: {esc(sq['method'])} with tau = {sq['tau']:.3g}, {sq['looks']} looks "
                   f"({esc(sq['look_every'])}). {esc(sq['reference'])}.</p>")
        seq = _table(d, "sequential")
        if seq is not None:
            out.append(table_html(seq, caption="Always-valid p-values and confidence sequence per look, next to the "
                                               "fixed-horizon p-value that repeated peeking would (wrongly) use"))
        out.append(_fig(d, "sequential", "Observed difference and always-valid confidence sequence"))
    if "explanations" in s:
        h = _table(d, "helpfulness")
        if h is not None:
            t = s["explanations"].get("test_across_methods")
            cap = "Helpfulness of explanations per method" + (f" (chi-square p = {t['p_value']:.3g})" if t else "")
            out.append(table_html(h, caption=cap))
        hf = _table(d, "helpfulness_by_format")
        if hf is not None:
            out.append(table_html(hf, caption="Helpfulness per method and format"))
        out.append(_fig(d, "helpfulness", "Helpful rate per explanation method"))
    return "".join(out)


def _ope_html(s: dict, d: Path) -> str:
    from whyrec.report.html import esc, kv_table, notice, table_html

    out = [f"<p>Target policy <b>{esc(s['target'])}</b>: {esc(s['target_description'])}. Evaluated from "
           f"{s['logged_events']} logged events ({esc(s.get('logging_variant') or 'all variants')}, "
           f"{s['logged_clicks']} clicks).</p>"]
    if not s.get("supported", True):
        out.append(notice(s["unsupported"]["message"], "warning"))
    for n in s.get("notes", []):
        if not n.startswith("UNSUPPORTED"):
            out.append(notice(n, "note"))
    est = _table(d, "estimates")
    if est is not None:
        cap = "Estimated CTR of the target policy (percentile bootstrap intervals over events; the reward model is held fixed)"
        if s.get("reference"):
            r = s["reference"]
            cap += f"; truth: on-policy CTR of {r['variant']!r} = {r['ctr']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}]"
        out.append(table_html(est, caption=cap))
    out.append(_fig(d, "estimates", "Estimates with intervals, against the on-policy CTR where known"))
    if "weights" in s:
        w = s["weights"]
        out.append(kv_table({"effective sample size": w["ess"], "share of events": w["ess_fraction"],
                             "mean weight (1 when supported)": w["mean"], "max weight": w["max"]}, caption="Importance weights"))
        out.append(_fig(d, "weights", "Distribution of importance weights"))
    bp = _table(d, "by_position")
    if bp is not None:
        out.append(table_html(bp, caption="Per position"))
    return "".join(out)
