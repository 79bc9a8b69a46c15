"""whyrec-causalnex: what really drives clicks, learned with CausalNex on Python 3.11.

Registers the causal learner ``causalnex-bn`` (NOTEARS with domain constraints and bootstrap edge
stability, Bayesian network, do-interventions with bootstrap intervals, causal effect next to the
run's attributions) and the command ``whyrec causal RUN --do feature=level``.

Components are registered through ``whyrec.plugins.lazy``: causalnex, pgmpy and torch are only
imported when the learner is built, so ``whyrec --help`` and ``whyrec plugins`` stay fast.
"""
from __future__ import annotations

import whyrec
from whyrec.plugins import lazy

__version__ = "0.1.0"

DESCRIPTION = ("NOTEARS causal graph with domain constraints and edge stability, Bayesian network, "
               "do-interventions with bootstrap intervals (CausalNex)")


@whyrec.hookimpl
def register_causal_learners(register):
    register("causalnex-bn", lazy("whyrec_causalnex.learner:CausalNexLearner", DESCRIPTION), description=DESCRIPTION)


@whyrec.hookimpl
def validate_pipeline(stages):
    # The causal roles (outcome, actionable, exogenous, required/forbidden edges) checked against
    # each other when the registry is validated, not after the data has loaded; constraints
    # imports nothing heavy for this.
    from whyrec.errors import WhyrecError

    from .constraints import check_roles

    problems = []
    for entry in stages.get("causal", []):
        if entry["use"] != "causalnex-bn":
            continue
        p = entry["params"]
        try:
            check_roles(outcome=p.get("outcome") or p.get("target", "label"), actionable=p.get("actionable"),
                        exogenous=p.get("exogenous"), forbidden_edges=p.get("forbidden_edges"),
                        required_edges=p.get("required_edges"), tabu_parents=p.get("tabu_parents"),
                        tabu_children=p.get("tabu_children"), outcome_is_sink=p.get("outcome_is_sink", True),
                        variables=p.get("variables"), exclude=p.get("exclude"), interventions=p.get("interventions"))
        except WhyrecError as exc:
            problems.append(f"{entry['where']}: {exc}")
    return problems


@whyrec.hookimpl
def register_commands(cli):
    from .cli import causal_command

    cli.add_command(causal_command, "causal")


@whyrec.hookimpl
def register_report_sections(register):
    from .report import render_causal

    # core has a generic "causal" section (order 60); this one covers causalnex-bn directories in full
    register("causalnex", render_causal, order=59)
