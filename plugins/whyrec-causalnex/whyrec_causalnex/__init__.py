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
def register_commands(cli):
    from .cli import causal_command

    cli.add_command(causal_command, "causal")


@whyrec.hookimpl
def register_report_sections(register):
    from .report import render_causal

    # core has a generic "causal" section (order 60); this one covers causalnex-bn directories in full
    register("causalnex", render_causal, order=59)
