"""report.html section "Is attention faithful?": the verdict of the attention-map quality check,
stated plainly, with the numbers and curves behind it. Built from the run directory alone."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TITLE = "Is attention faithful?"


def _quality_dirs(run: Any) -> list[Path]:
    base = Path(getattr(run, "path", run)) / "explanations"
    out = []
    for q in sorted(base.glob("*/quality/summary.json")) if base.is_dir() else []:
        try:
            if json.loads(q.read_text(encoding="utf-8")).get("kind") == "faithfulness":
                out.append(q.parent)
        except (OSError, ValueError):
            out.append(q.parent)  # unreadable: rendered below as missing
    return out


def render(run: Any):
    from whyrec.report import Section, esc, figure_to_img, kv_table, notice, table_html

    dirs = _quality_dirs(run)
    if not dirs:
        return None
    root = Path(getattr(run, "path", run))
    body, covers, problems = [], [], []
    body.append("<p class=\"wr-small\">Attention weights are often read as explanations. This check asks whether "
                "they agree with what the score actually depends on: the leave-one-out effect of each history item "
                "(Kendall τ), how fast the item falls when history items are removed in attention order compared "
                "with integrated-gradients and random order (deletion curves), and what happens when the learned "
                "weights are replaced by a uniform average.</p>")
    for q in dirs:
        rel = q.relative_to(root).as_posix()
        name = q.parent.name.replace("__", " on ")
        try:
            s = json.loads((q / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{rel}/summary.json cannot be read ({exc}); rerun the pipeline's explainers stage")
            continue
        covers.append(rel)
        body.append(f"<h3>{esc(name)}</h3>")
        body.append(notice(s.get("verdict", "no verdict recorded"), "note" if s.get("faithful") == "yes" else "warning"))
        area = s.get("deletion_area") or {}
        body.append(kv_table({
            "recommendations checked": s.get("pairs_checked"),
            "median Kendall τ (attention vs leave-one-out)": s.get("kendall_tau_attention_loo_median"),
            "median Kendall τ (integrated gradients vs leave-one-out)": s.get("kendall_tau_ig_loo_median"),
            "top history item agrees (attention vs leave-one-out)": s.get("top1_agreement"),
            **{f"deletion area: {k} order (ranks lost)": v for k, v in area.items()},
            "test AUC, learned attention": s.get("test_auc_learned_attention"),
            "test AUC, uniform attention": s.get("test_auc_uniform_attention"),
            "mean |logit change| with uniform attention": s.get("mean_abs_logit_change_uniform_attention"),
        }))
        figs = [figure_to_img(p) for p in (q / "deletion_curves.png", q / "kendall_tau.png") if p.exists()]
        if figs:
            body.append('<div class="wr-grid">' + "".join(figs) + "</div>")
        pp = q / "per_pair.parquet"
        if pp.exists():
            import pandas as pd

            body.append(table_html(pd.read_parquet(pp), caption="per recommendation", max_rows=30))
    if problems and not covers:
        return Section.missing(TITLE, "; ".join(problems))
    return Section(TITLE, body="".join(body), covers=tuple(covers))
