"""whyrec-feedback: learn from how users respond to recommendations and their explanations.

Registers the feedback analyzers ``ab-test`` and ``off-policy``, the dataset ``feedback-log``
(a feedback log read by a pipeline's feedback stage), the ``whyrec feedback``
commands (``record`` appends to a durable JSON-lines log, ``analyze`` runs an analyzer on a
Parquet/CSV/JSON-lines file) and the report section of feedback stages. Heavy imports
(scipy, statsmodels, scikit-learn) happen only when an analyzer is built.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy


@whyrec.hookimpl
def register_feedback_analyzers(register):
    register("ab-test", lazy("whyrec_feedback.abtest:ABTest", "A/B test: CTR per arm with Wilson intervals, lift, SRM, power, CUPED, always-valid sequential test"))
    register("off-policy", lazy("whyrec_feedback.offpolicy:OffPolicy", "Off-policy evaluation of a target policy's CTR: IPS, SNIPS, DR, DM with bootstrap intervals"))


@whyrec.hookimpl
def register_datasets(register):
    register("feedback-log", lazy("whyrec_feedback.dataset:FeedbackLog", "A feedback log (JSON lines, Parquet or CSV) as a dataset, for feedback stages"))


@whyrec.hookimpl
def register_commands(cli):
    from .cli import feedback

    cli.add_command(feedback)


@whyrec.hookimpl
def register_report_sections(register):
    from .report import render_feedback

    # core has a generic "feedback" section; this one covers our stage directories in full
    register("feedback-analyzers", render_feedback, order=79)
