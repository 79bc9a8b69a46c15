"""QA findings: do() on a variable whose paths to the outcome are cut (by the graph or by the rest
of a joint intervention) is a clear error, never the baseline or an internal error; bootstrap
intervals come from enough resamples and say when they miss their own estimate."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from whyrec.causal import CausalGraph, Edge
from whyrec.errors import UnsupportedError, WhyrecError
from whyrec_causalnex.cli import causal_command
from whyrec_causalnex.learner import CausalNexLearner


def fitted_on(sim, edges, **kw) -> CausalNexLearner:
    learner = CausalNexLearner(bootstrap=0, effect_bootstrap=0, seed=0, **kw)
    nodes = sorted({n for e in edges for n in e})
    learner.fit(sim, CausalGraph(nodes=nodes, edges=[Edge(a, b) for a, b in edges]))
    return learner


CHAIN = [("discount", "price"), ("price", "label"), ("quality", "label")]


def test_joint_do_through_a_set_variable_is_an_error_in_either_order(sim):
    """discount -> price -> label: with price set, discount cannot act; CausalNex used to detach
    discount and fail with 'unknown node' (one order) or drop it silently (the other)."""
    learner = fitted_on(sim, CHAIN)
    alone = learner.intervene({"discount": "1"})
    assert abs(alone["change"].iloc[-1]) > 1e-4  # on its own it acts through price
    for do in ({"price": "low", "discount": "1"}, {"discount": "1", "price": "low"}):
        with pytest.raises(UnsupportedError) as exc:
            learner.intervene(do)
        msg = str(exc.value)
        assert msg.startswith("every directed path from 'discount' to 'label' runs through 'price', which this "
                              "intervention also sets")
        assert "leave 'discount' out" in msg and "\n" not in msg


def test_do_on_a_variable_with_children_but_no_path_is_an_error_not_zero(sim):
    """price -> discount only, and discount has a child that does not reach the outcome: CausalNex
    accepts do(discount) and returns the baseline; the learner refuses in words instead."""
    learner = fitted_on(sim, [("price", "discount"), ("discount", "quality"), ("price", "label")])
    assert "discount" in learner.net.variables
    with pytest.raises(UnsupportedError) as exc:
        learner.intervene({"discount": "1"})
    msg = str(exc.value)
    assert msg.startswith("'discount' has no directed path to 'label' in the learned network (its edges: "
                          "price -> discount, discount -> quality)")
    assert "causal effect 0, not estimated" in msg and "required_edges" in msg
    # the network itself refuses too: no engine call can return the baseline for it
    from whyrec_causalnex.network import NoPathError

    with pytest.raises(NoPathError):
        learner.net.do_outcome({"discount": 0})


def test_cli_joint_do_is_one_line_exit_2(sim, tmp_path):
    learner = fitted_on(sim, CHAIN)
    learner.save(tmp_path)
    from whyrec_causalnex import cli

    orig = cli._stage_dir
    cli._stage_dir = lambda run_dir, name: tmp_path  # a run directory is the pipeline test's job
    try:
        r = CliRunner().invoke(causal_command, [str(tmp_path), "--do", "price=low", "--do", "discount=1"])
        ok = CliRunner().invoke(causal_command, [str(tmp_path), "--do", "discount=1", "--format", "json"])
    finally:
        cli._stage_dir = orig
    assert isinstance(r.exception, WhyrecError)  # the whyrec CLI prints it on one line, exit 2
    assert "every directed path from 'discount' to 'label' runs through 'price'" in str(r.exception)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["p_do"] != pytest.approx(learner.baseline, abs=1e-6)


@pytest.mark.parametrize("n", [1, 2, 19])
def test_too_few_effect_bootstrap_resamples_are_refused(n):
    with pytest.raises(UnsupportedError, match=rf"effect_bootstrap must be 0 \(no intervals\) or at least 20, got {n}"):
        CausalNexLearner(effect_bootstrap=n)
    CausalNexLearner(effect_bootstrap=0)
    CausalNexLearner(effect_bootstrap=20)


def test_intervals_flag_estimates_outside_them(fitted, sim):
    levels = fitted.report(sim, []).tables["effects"]
    boot = levels[levels["p_do_low"].notna() & levels["path_to_outcome"]]
    assert len(boot)
    inside = (boot["p_do_low"] - 1e-12 <= boot["p_do"]) & (boot["p_do"] <= boot["p_do_high"] + 1e-12)
    assert (boot["estimate_in_interval"].astype(bool) == inside).all()
    no_path = levels[~levels["path_to_outcome"]]
    assert no_path["estimate_in_interval"].isna().all()


def test_estimate_outside_interval_is_said(sim):
    """Force the contradiction (a CPD refit that cannot reach the point estimate) and check the
    table and the notes say so rather than print it silently."""
    from whyrec_causalnex import effects

    learner = fitted_on(sim, CHAIN)
    net = learner.net
    levels, _ = effects.do_effects(net, ["price"], learner.states, learner.codes.iloc[:40], baseline=learner.baseline,
                                   n_boot=20, seed=0)
    # CPDs refitted on resamples of 40 rows are pulled to the prior: the estimate from all rows
    # lies outside at least one interval, and the column says which
    lo, hi, p = levels["p_do_low"].to_numpy(), levels["p_do_high"].to_numpy(), levels["p_do"].to_numpy()
    expect = (lo - 1e-12 <= p) & (p <= hi + 1e-12)
    assert list(levels["estimate_in_interval"]) == list(expect)
    assert not expect.all()
