"""report.html: one self-contained HTML page per run, built from the run directory alone.

Sections come from the hook ``register_report_sections(register)``; the core ones live in
``whyrec.report.sections`` (a built-in plugin). A plugin adds its own::

    from whyrec.report import Section, figure_to_img, table_html

    @whyrec.hookimpl
    def register_report_sections(register):
        register("my-plugin", render, order=65)

    def render(run):                      # run: whyrec.rundir.Run
        d = run.path / "causal" / "mine"
        if not d.exists():
            return None                   # nothing to show for this run
        return Section("My analysis", body=table_html(df) + figure_to_img(d / "plot.png"),
                       covers=("causal/mine",))

A render that raises, or whose artifacts are missing, becomes a "missing" section saying what
is missing and how to regenerate it; the report still builds. See docs/report.md.
"""
from __future__ import annotations

from .build import REPORT_NAME, build_report, collect_sections, open_for_report, render_sections, run_repr_html
from .graph import interactive_graph
from .html import (
    ArtifactError, Section, esc, explanation_label, figure_to_img, fmt_value, iframe_html, kv_table, model_label, notice,
    round_text, table_html,
)

__all__ = [
    "Section", "build_report", "figure_to_img", "table_html", "run_repr_html", "kv_table", "esc", "notice",
    "iframe_html", "fmt_value", "ArtifactError", "collect_sections", "render_sections", "open_for_report",
    "REPORT_NAME", "interactive_graph", "model_label", "explanation_label", "round_text",
]
