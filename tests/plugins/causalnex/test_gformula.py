"""The g-formula that answers do() in the data's units (whyrec_causalnex.gformula, effects.DoModel).

Each SCM here has an interventional mean known in closed form (or by Gauss-Hermite quadrature
to 1e-10), so the estimator is checked against the truth, not against itself."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec_causalnex.discretise import VariableStates
from whyrec_causalnex.effects import DoModel, do_effects
from whyrec_causalnex.gformula import GFormula

N = 20000


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def confounded(n=N, seed=0):
    """z (binary) -> x (continuous), z -> y, x -> y; logistic y."""
    rng = np.random.default_rng(seed)
    z = (rng.uniform(size=n) < 0.4).astype(float)
    x = 10 + 4 * (1.5 * z + rng.standard_normal(n))  # a unit of 4 around 10
    y = (rng.uniform(size=n) < sig(-0.5 + 0.8 * (x - 10) / 4 + 1.0 * z)).astype(float)
    return pd.DataFrame({"z": z, "x": x, "label": y})


def true_confounded(v):
    u = (v - 10) / 4
    return 0.6 * sig(-0.5 + 0.8 * u) + 0.4 * sig(0.5 + 0.8 * u)


KINDS = {"z": "numeric", "x": "numeric", "label": "numeric", "m": "numeric", "b": "numeric", "c": "categorical"}


def test_back_door_through_a_binary_confounder_matches_the_closed_form():
    df = confounded()
    gf = GFormula(df, KINDS, [("z", "x"), ("z", "label"), ("x", "label")], "label", 1.0)
    for v in (6.0, 10.0, 14.0):
        assert gf.mean_outcome({"x": v}) == pytest.approx(true_confounded(v), abs=0.012)
    effect = gf.mean_outcome({"x": 14.0}) - gf.mean_outcome({"x": 6.0})
    truth = true_confounded(14.0) - true_confounded(6.0)
    assert abs(effect - truth) <= 0.1 * abs(truth)
    # the observational contrast is confounded: far from the truth (what adjustment removes)
    naive = GFormula(df, KINDS, [("x", "label")], "label", 1.0)
    naive_effect = naive.mean_outcome({"x": 14.0}) - naive.mean_outcome({"x": 6.0})
    assert abs(naive_effect - truth) > 0.2 * abs(truth)


def test_a_continuous_mediator_is_recomputed_with_each_rows_residual():
    """x -> m -> y with m = 0.5 x + N(0, 1): E[y | do(x = v)] = E_e sigmoid(-0.3 + 1.2 (0.5 v + e))."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(N)
    m = 0.5 * x + rng.standard_normal(N)
    y = (rng.uniform(size=N) < sig(-0.3 + 1.2 * m)).astype(float)
    df = pd.DataFrame({"x": x, "m": m, "label": y})
    gf = GFormula(df, KINDS, [("x", "m"), ("m", "label")], "label", 1.0)
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    for v in (-1.0, 0.0, 1.5):
        truth = float(np.sum(weights * sig(-0.3 + 1.2 * (0.5 * v + nodes))) / np.sqrt(2 * np.pi))
        assert gf.mean_outcome({"x": v}) == pytest.approx(truth, abs=0.012)
    # x reaches the outcome only through m: setting m too cuts x off
    assert gf.mean_outcome({"x": -1.0, "m": 0.2}) == pytest.approx(gf.mean_outcome({"x": 1.5, "m": 0.2}), abs=1e-12)
    assert gf.has_path("x") and gf.descendants("x") == ["m", "label"]


def test_binary_and_categorical_descendants_are_sampled_with_the_same_noise_for_every_value():
    """x -> b (binary) -> y and x -> c (categorical) -> y; closed forms over b's two values and
    c's three levels."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(N)
    b = (rng.uniform(size=N) < sig(1.0 * x)).astype(float)
    score = {"A": -1.0, "B": 0.2, "C": 0.8}
    load = np.array([-1.0, 0.0, 1.0])
    logits = load[None, :] * x[:, None]
    c = np.asarray(["A", "B", "C"])[np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)]
    cs = np.vectorize(score.get)(c)
    y = (rng.uniform(size=N) < sig(-0.2 + 1.0 * b + 0.9 * cs)).astype(float)
    df = pd.DataFrame({"x": x, "b": b, "c": c, "label": y})
    gf = GFormula(df, KINDS, [("x", "b"), ("x", "c"), ("b", "label"), ("c", "label")], "label", 1.0)

    def truth(v):
        pc = np.exp(load * v) / np.exp(load * v).sum()
        return sum(pb * pcl * sig(-0.2 + 1.0 * bb + 0.9 * s)
                   for bb, pb in ((1.0, sig(v)), (0.0, 1 - sig(v)))
                   for s, pcl in zip(score.values(), pc))

    got = {v: gf.mean_outcome({"x": v}) for v in (-1.0, 0.0, 1.0)}
    for v, p in got.items():
        assert p == pytest.approx(truth(v), abs=0.015)
    assert got[1.0] - got[-1.0] == pytest.approx(truth(1.0) - truth(-1.0), rel=0.1)
    # a categorical set by do(): its level, not a code
    assert gf.mean_outcome({"c": "C"}) - gf.mean_outcome({"c": "A"}) == pytest.approx(
        float(np.mean(sig(-0.2 + b + 0.9 * 0.8) - sig(-0.2 + b - 0.9))), abs=0.02)


def test_variables_off_the_outcomes_ancestry_change_nothing_and_a_cycle_is_refused():
    df = confounded(2000)
    gf = GFormula(df, KINDS, [("z", "x"), ("z", "label")], "label", 1.0)
    assert not gf.has_path("x")
    assert gf.mean_outcome({"x": 5.0}) == gf.mean_outcome({"x": 15.0}) == pytest.approx(df["label"].mean(), abs=0.01)
    with pytest.raises(ValueError, match="cycle"):
        GFormula(df, KINDS, [("z", "x"), ("x", "z"), ("x", "label")], "label", 1.0)


def test_saved_and_loaded_answers_are_identical():
    df = confounded(3000)
    gf = GFormula(df, KINDS, [("z", "x"), ("z", "label"), ("x", "label")], "label", 1.0, seed=3)
    back = GFormula.from_dict(gf.to_dict())
    for v in (7.0, 12.5):
        assert back.mean_outcome({"x": v}) == gf.mean_outcome({"x": v})


def _states(df):
    x = VariableStates("x", "bins", ["low", "medium", "high"], edges=list(np.quantile(df["x"], [1 / 3, 2 / 3])),
                       counts=[len(df) // 3] * 3, support=[float(df["x"].min()), float(df["x"].max())])
    z = VariableStates("z", "values", ["0", "1"], values=[0.0, 1.0], counts=[1, 1])
    y = VariableStates("label", "values", ["0", "1"], values=[0.0, 1.0], counts=[1, 1])
    return {"x": x, "z": z, "label": y}


def test_a_rare_edge_moves_only_its_share_of_the_interval_and_never_the_answer():
    """The learned graph lacks x -> label (found in 2 of 20 resamples): the answer is 'no path'
    (effect 0), and the interval carries the two resamples that found it; with the edge in every
    resample the interval excludes 0."""
    df = confounded(4000)
    st = _states(df)
    codes = pd.DataFrame({c: st[c].transform(df[c]) for c in df})
    rare = [[("z", "x"), ("z", "label"), ("x", "label")]] * 2 + [[("z", "x"), ("z", "label")]] * 18
    model = DoModel(df, KINDS, [("z", "x"), ("z", "label")], "label", 1.0, st, boot_graphs=rare)
    levels, fx = do_effects(None, ["x"], st, codes, baseline=float(df["label"].mean()), n_boot=20, model=model)
    row = fx.set_index("feature").loc["x"]
    assert not row["path_to_outcome"] and row["effect"] == 0.0
    assert row["effect_low"] == 0.0  # 18 of 20 resamples have no path: at least the 2.5 % quantile is 0
    assert row["effect_high"] > 0.0  # the rare edge shows in the interval, not in the answer
    assert (levels["p_do"] == float(df["label"].mean())).all()
    always = DoModel(df, KINDS, [("z", "x"), ("z", "label"), ("x", "label")], "label", 1.0, st,
                     boot_graphs=[[("z", "x"), ("z", "label"), ("x", "label")]] * 20)
    _, fx2 = do_effects(None, ["x"], st, codes, baseline=0.0, n_boot=20, model=always)
    r2 = fx2.set_index("feature").loc["x"]
    assert r2["path_to_outcome"] and r2["effect_low"] > 0.05
    # each state stands for its training median, the truth at that value is within 10 % (effect)
    lv = levels  # noqa: F841 (the no-path levels are checked above)
    vals = always.values("x")
    eff = always.gf.mean_outcome({"x": vals[2]}) - always.gf.mean_outcome({"x": vals[0]})
    assert abs(eff - (true_confounded(vals[2]) - true_confounded(vals[0]))) <= 0.1 * abs(
        true_confounded(vals[2]) - true_confounded(vals[0]))


# -- the learner: its answers at a value, and what unstable edges may not do --------------------
def test_the_learners_answer_at_a_value_is_the_toy_scms_truth(fitted):
    """do(price = v) leaves quality, discount and age as they are: the truth on the training rows
    is the mean of the known click probability with price set to v."""
    from cnx_toyscm import click_logit

    t = fitted.table.frame

    def truth(v):
        return float(np.mean(sig(click_logit(t["age"], t["quality"], v, t["discount"]))))

    got = {v: fitted.point_do("price", v) for v in (8.0, 10.0, 12.0)}
    for v, p in got.items():
        assert p == pytest.approx(truth(v), abs=0.02)
    assert got[12.0] - got[8.0] == pytest.approx(truth(12.0) - truth(8.0), rel=0.1)
    # the effect intervals re-use the structure's bootstrap graphs (8 resamples)
    assert fitted.do_model.boot_graphs == [list(map(tuple, g)) for g in fitted.structure.boot_edges]
    assert len(fitted.do_model.boot_graphs) == 8


def test_unstable_to_drop_by_presence_and_by_direction():
    from whyrec_causalnex.structure import unstable_to_drop

    stab = {("a", "b"): 0.55, ("b", "a"): 0.45,  # always joined, oriented both ways
            ("c", "d"): 0.3,  # joined in 30 % of the resamples
            ("e", "f"): 0.2, ("f", "e"): 0.1,  # joined in 30 %, either way
            ("g", "h"): 0.9}
    edges = [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h"), ("r", "s")]
    assert unstable_to_drop(edges, stab, 0.6, {("r", "s")}, "presence") == [("c", "d"), ("e", "f")]
    assert unstable_to_drop(edges, stab, 0.6, {("r", "s")}, "direction") == [("a", "b"), ("c", "d"), ("e", "f")]
    assert unstable_to_drop(edges, stab, 0.6, set(), "presence")[-1] == ("r", "s")  # never found, not required


def test_no_edge_below_the_stability_threshold_decides_an_answer(fitted, sim):
    from whyrec.causal import CausalGraph, Edge
    from whyrec_causalnex.learner import CausalNexLearner

    thr = fitted.params["stability_threshold"]
    assert fitted.params["unstable_rule"] == "presence"
    required = {tuple(e) for e in fitted.graph.constraints["required_edges"]}
    stab = fitted.structure.stability
    assert all((e.source, e.target) in required or stab.get((e.source, e.target), 0) + stab.get((e.target, e.source), 0) >= thr
               for e in fitted.graph.edges)
    # linear NOTEARS flips quality-price between resamples (no v-structure orients it). The rule
    # "direction" drops it, so do(quality) acts through quality -> label only, though the true
    # SCM has quality -> price -> label: the dropped edge would have changed the answer
    pair = {("quality", "price"), ("price", "quality")}
    kw = dict(bootstrap=8, effect_bootstrap=0, seed=0, method="linear", stability_threshold=0.7)
    by_direction = CausalNexLearner(unstable_rule="direction", **kw)
    g = by_direction.learn(sim)
    assert not pair & g.edge_set()
    assert [e for e in g.method["unstable_dropped"] if tuple(e) in pair]
    by_direction.fit(sim, g)
    with_edge = CausalNexLearner(bootstrap=0, effect_bootstrap=0, seed=0)
    with_edge.fit(sim, CausalGraph(nodes=g.nodes, edges=list(g.edges) + [Edge("quality", "price")]))
    answer = by_direction.point_do("quality", 1.0) - by_direction.point_do("quality", -1.0)
    assert abs((with_edge.point_do("quality", 1.0) - with_edge.point_do("quality", -1.0)) - answer) > 0.05
    # "presence" (the default) keeps a pair every resample joins, in its majority direction, and
    # still names it as direction-unstable; the effect interval refits on the bootstrap graphs
    by_presence = CausalNexLearner(**kw)
    gp = by_presence.learn(sim)
    kept = pair & gp.edge_set()
    assert len(kept) == 1 and not [e for e in gp.method["unstable_dropped"] if tuple(e) in pair]
    (a, b), st = kept.pop(), by_presence.structure.stability
    assert st.get((a, b), 0) < 0.7 <= st.get((a, b), 0) + st.get((b, a), 0)
    assert st.get((a, b), 0) >= st.get((b, a), 0)


def test_an_answer_names_the_direction_unstable_edge_it_rests_on(sim, tmp_path):
    """The presence rule keeps quality - price (joined in every resample, oriented both ways):
    an answer for the edge's source rests on it, and the report and `--do` say so."""
    from whyrec_causalnex.learner import CausalNexLearner

    learner = CausalNexLearner(bootstrap=8, effect_bootstrap=0, seed=0, method="linear", stability_threshold=0.7)
    g = learner.fit(sim, learner.learn(sim)) or learner.graph
    (a, b), = {("quality", "price"), ("price", "quality")} & g.edge_set()
    shaky = learner.uncertain_path_edges(a)
    assert [(x, y) for x, y, _ in shaky] == [(a, b)] and 0 < shaky[0][2] < 0.7
    assert learner.uncertain_path_edges("discount") == []  # discount -> label only
    assert f"{a} -> {b}" in learner.uncertain_path_text(a) and "required_edges" in learner.uncertain_path_text(a)
    assert learner.uncertain_path_text("discount") == ""
    rep = learner.report(sim, [])
    fx = rep.tables["feature_effects"].set_index("feature")
    assert fx.loc[a, "unstable_on_path"].startswith(f"{a} -> {b} (") and fx.loc["discount", "unstable_on_path"] == ""
    # `whyrec causal RUN --do`: a note in text, the edges in JSON; the learner as saved and loaded
    import json

    from click.testing import CliRunner
    from whyrec_causalnex import cli

    learner.save(tmp_path)
    orig = cli._stage_dir
    cli._stage_dir = lambda run_dir, name: tmp_path  # a run directory is the pipeline test's job
    try:
        value = round(float(learner.table.frame[a].median()), 3)
        text = CliRunner().invoke(cli.causal_command, [str(tmp_path), "--do", f"{a}={value}"])
        js = CliRunner().invoke(cli.causal_command, [str(tmp_path), "--do", f"{a}={value}", "--format", "json"])
        plain = CliRunner().invoke(cli.causal_command, [str(tmp_path), "--do", "discount=1"])
    finally:
        cli._stage_dir = orig
    assert text.exit_code == 0, text.output
    assert f"note: the answer for {a!r} rests on {a} -> {b} (" in text.output and "required_edges" in text.output
    assert [tuple(e[:2]) for e in json.loads(js.output)["unstable_on_path"][a]] == [(a, b)]
    assert plain.exit_code == 0 and "rests on" not in plain.output
