"""whyrec_causalnex.compat on its own: CausalNex inference on Python 3.11 against hand-computed
probabilities (no whyrec learner involved)."""
from __future__ import annotations

import inspect
import logging
import sys

import numpy as np
import pandas as pd
import pytest

from whyrec_causalnex import compat

compat.apply()

from causalnex.inference import InferenceEngine  # noqa: E402
from causalnex.network import BayesianNetwork  # noqa: E402
from causalnex.structure import StructureModel  # noqa: E402


def confounded_network() -> BayesianNetwork:
    """Z -> X -> Y and Z -> Y, fitted by maximum likelihood on 1,000 rows whose counts give
    P(Z=1) = 0.4, P(X=hi | Z) = 0.25 / 0.75, P(Y=1 | X, Z) = 0.1, 0.5 (X=lo) and 0.3, 0.9 (X=hi).
    X has string states, as CausalNex allows."""
    rows: list[tuple] = []
    for z, x, y, n in [(0, "lo", 0, 405), (0, "lo", 1, 45), (1, "lo", 0, 50), (1, "lo", 1, 50),
                       (0, "hi", 0, 105), (0, "hi", 1, 45), (1, "hi", 0, 30), (1, "hi", 1, 270)]:
        rows += [(z, x, y)] * n
    df = pd.DataFrame(rows, columns=["Z", "X", "Y"])
    return BayesianNetwork(StructureModel([("Z", "X"), ("Z", "Y"), ("X", "Y")])).fit_node_states_and_cpds(df)


@pytest.fixture
def engine() -> InferenceEngine:
    return InferenceEngine(confounded_network())


def test_unpatched_inference_engine_is_broken_on_this_python():
    """The reason for the module: CausalNex's own node-function builder fails on 3.11+."""
    from causalnex.inference import inference

    original = inference.InferenceEngine.__dict__["_create_node_function"]
    assert original is compat._create_node_function  # apply() replaced it
    src = inspect.getsource(inference)
    assert "types.CodeType(" in src  # the 3.8-3.10 constructor call compat replaces
    if sys.version_info >= (3, 11):
        code = (lambda: 0).__code__
        with pytest.raises(TypeError):  # what CausalNex's call does on 3.11+
            type(code)(0, 0, 0, 0, code.co_stacksize, code.co_flags, code.co_code, code.co_consts, code.co_names,
                        (), code.co_filename, "f", code.co_firstlineno, code.co_lnotab, (), ())


def test_query_marginals_match_hand_computation(engine):
    m = engine.query()
    assert m["Z"][1] == pytest.approx(0.4, abs=1e-12)
    # P(X=hi) = 0.6 * 0.25 + 0.4 * 0.75 = 0.45
    assert m["X"]["hi"] == pytest.approx(0.45, abs=1e-12)
    # P(Y=1) = (45 + 50 + 45 + 270) / 1000
    assert m["Y"][1] == pytest.approx(0.41, abs=1e-12)


def test_query_with_observations(engine):
    assert engine.query({"Z": 1})["Y"][1] == pytest.approx(0.8, abs=1e-12)  # (50 + 270) / 400
    assert engine.query({"X": "hi"})["Y"][1] == pytest.approx(0.7, abs=1e-12)  # (45 + 270) / 450
    assert engine.query({"Y": 1})["X"]["hi"] == pytest.approx(315 / 410, abs=1e-12)


def test_do_intervention_with_a_string_state(engine):
    # P(Y=1 | do(X=hi)) = sum_z P(z) P(Y=1 | hi, z) = 0.6 * 0.3 + 0.4 * 0.9; not P(Y=1 | X=hi) = 0.7
    engine.do_intervention("X", "hi")
    m = engine.query()
    assert m["Y"][1] == pytest.approx(0.54, abs=1e-12)
    assert m["Z"][1] == pytest.approx(0.4, abs=1e-12)  # intervening on X leaves its cause alone
    engine.reset_do("X")
    engine.do_intervention("X", "lo")
    assert engine.query()["Y"][1] == pytest.approx(0.6 * 0.1 + 0.4 * 0.5, abs=1e-12)
    engine.reset_do("X")
    assert engine.query()["Y"][1] == pytest.approx(0.41, abs=1e-12)


def test_do_intervention_with_a_distribution(engine):
    engine.do_intervention("X", {"hi": 0.5, "lo": 0.5})
    assert engine.query()["Y"][1] == pytest.approx(0.5 * 0.54 + 0.5 * 0.26, abs=1e-12)


def test_do_intervention_on_an_unknown_state_names_the_states(engine):
    with pytest.raises(ValueError, match=r"node 'X' has no state 'medium'; its states are \['hi', 'lo'\]"):
        engine.do_intervention("X", "medium")


def test_do_intervention_that_would_isolate_a_node_is_refused(engine):
    # Y has no children: cutting its parents would leave it isolated (CausalNex refuses)
    with pytest.raises(ValueError, match="isolate"):
        engine.do_intervention("Y", 1)


def test_node_function_parameters_are_the_node_names():
    """Names that cannot be written as Python parameters still work (CausalNex allows them)."""
    from causalnex.ebaybbn.utils import get_args

    table = {(1, 0, 2): 0.25}
    f = compat.make_node_function(lambda vals: table[vals], "f_class", ("class", "1st", "x"))
    assert get_args(f) == ["class", "1st", "x"]  # what the junction tree reads
    assert inspect.getargs(f.__code__).args == ["class", "1st", "x"]  # what do_intervention reads
    g = compat.make_node_function(lambda vals: sum(vals), "f_price", ("price", "quality"))
    assert list(inspect.signature(g).parameters) == ["price", "quality"]
    assert g(2, 3) == 5
    assert f.__name__ == "f_class"
    assert f(1, 0, 2) == 0.25


def test_inference_on_nodes_named_like_keywords():
    rows = [(0, 0)] * 30 + [(0, 1)] * 10 + [(1, 0)] * 20 + [(1, 1)] * 40
    df = pd.DataFrame(rows, columns=["class", "1st"])
    bn = BayesianNetwork(StructureModel([("class", "1st")])).fit_node_states_and_cpds(df)
    ie = InferenceEngine(bn)
    assert ie.query()["1st"][1] == pytest.approx(0.5, abs=1e-12)
    ie.do_intervention("class", 1)
    assert ie.query()["1st"][1] == pytest.approx(40 / 60, abs=1e-12)


def test_fit_cpds_with_declared_states_missing_from_the_data():
    """CausalNex issue 15: states fitted on all data, CPDs on a part lacking c = 2 (K2 prior)."""
    sm = StructureModel([("a", "b"), ("c", "b")])
    train = pd.DataFrame([[0, 0, 1], [1, 0, 1], [1, 1, 1]], columns=["a", "b", "c"])
    test = pd.DataFrame([[0, 0, 1], [1, 0, 1], [1, 1, 2]], columns=["a", "b", "c"])
    bn = BayesianNetwork(sm).fit_node_states(pd.concat([train, test]))
    bn.fit_cpds(train, method="BayesianEstimator", bayes_prior="K2")
    c = bn.cpds["c"]
    assert c.loc[1].iloc[0] == pytest.approx(0.8)  # (3 + 1) / (3 + 2)
    assert c.loc[2].iloc[0] == pytest.approx(0.2)
    b = bn.cpds["b"]
    # an unseen parent configuration (a=0, c=2) gets the prior's uniform column
    assert b[(0, 2)].tolist() == pytest.approx([0.5, 0.5])


def test_unknown_states_in_fitting_data_are_refused_not_dropped():
    sm = StructureModel([("a", "b")])
    bn = BayesianNetwork(sm).fit_node_states(pd.DataFrame({"a": [0, 1], "b": [0, 1]}))
    with pytest.raises(ValueError, match=r"node 'a': values \['7'\] are not among the states"):
        bn.fit_cpds(pd.DataFrame({"a": [0, 7], "b": [0, 1]}))


def test_np_nan_alias():
    assert np.NaN is np.nan


def test_pgmpy_logging_side_effect_is_undone():
    """pgmpy's import runs logging.basicConfig(level=INFO); apply() imports it under
    restore_root_logging, which leaves the host's root logger as it was."""
    import importlib

    import pgmpy.global_vars

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for h in root.handlers[:]:
            root.removeHandler(h)
        root.setLevel(logging.WARNING)
        importlib.reload(pgmpy.global_vars)  # what a first import does
        assert root.level == logging.INFO and len(root.handlers) == 1
        for h in root.handlers[:]:
            root.removeHandler(h)
        root.setLevel(logging.WARNING)
        with compat.restore_root_logging():
            importlib.reload(pgmpy.global_vars)
        assert root.level == logging.WARNING and root.handlers == []
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


def test_apply_is_idempotent():
    before = InferenceEngine.do_intervention
    compat.apply()
    assert InferenceEngine.do_intervention is before
    assert compat.is_applied()


# --- issue 14: the cases CausalNex's own suite showed broken on Python 3.11 / numpy 2 / pandas 3 ---

def int_confounded_network() -> BayesianNetwork:
    """confounded_network() with int node names: Z = 0, X = 1 (lo = 0, hi = 1), Y = 2. The columns
    are an int64 Index (a RangeIndex, a frame built without names, does not show the pgmpy bug)."""
    rows: list[tuple] = []
    for z, x, y, n in [(0, 0, 0, 405), (0, 0, 1, 45), (1, 0, 0, 50), (1, 0, 1, 50),
                       (0, 1, 0, 105), (0, 1, 1, 45), (1, 1, 0, 30), (1, 1, 1, 270)]:
        rows += [(z, x, y)] * n
    df = pd.DataFrame(rows, columns=[0, 1, 2])
    return BayesianNetwork(StructureModel([(0, 1), (0, 2), (1, 2)])).fit_node_states_and_cpds(df)


def test_fitting_a_node_with_two_int_parents():
    """pgmpy's state_counts unstacked numpy-int level names (pandas 3): a ValueError before fix 8."""
    cpd = int_confounded_network().cpds[2]
    assert cpd.columns.names == [0, 1]
    # P(Y=1 | Z, X) = 45/450, 45/150 (Z=0; X=0, 1) and 50/100, 270/300 (Z=1)
    assert cpd.loc[1].tolist() == pytest.approx([0.1, 0.3, 0.5, 0.9], abs=1e-12)


def test_query_with_int_node_names():
    ie = InferenceEngine(int_confounded_network())
    assert ie._whyrec_aliases == {0: "0", 1: "1", 2: "2"}
    m = ie.query()
    assert set(m) == {0, 1, 2}  # results come back under the int nodes
    assert m[1][1] == pytest.approx(0.45, abs=1e-12)  # 0.6 * 0.25 + 0.4 * 0.75
    assert m[2][1] == pytest.approx(0.41, abs=1e-12)
    assert ie.query({0: 1})[2][1] == pytest.approx(0.8, abs=1e-12)  # (50 + 270) / 400
    assert ie.query({1: 1})[2][1] == pytest.approx(0.7, abs=1e-12)  # (45 + 270) / 450
    assert ie.query({2: 1})[1][1] == pytest.approx(315 / 410, abs=1e-12)
    both = ie.query([{0: 1}, {1: 0}])
    assert both[1][2][1] == pytest.approx((45 + 50) / 550, abs=1e-12)


def test_do_intervention_with_int_node_names():
    ie = InferenceEngine(int_confounded_network())
    ie.do_intervention(1, 1)  # do(X = hi): 0.6 * 0.3 + 0.4 * 0.9
    assert ie.query()[2][1] == pytest.approx(0.54, abs=1e-12)
    ie.reset_do(1)
    ie.do_intervention(0, 1)  # do(Z = 1) = conditioning on the root
    m = ie.query()
    assert m[1][1] == pytest.approx(0.75, abs=1e-12)
    assert m[2][1] == pytest.approx(0.8, abs=1e-12)
    ie.reset_do(0)
    assert ie.query()[2][1] == pytest.approx(0.41, abs=1e-12)
    with pytest.raises(ValueError, match="isolate"):  # Y has no children (read as nodes, not aliases)
        ie.do_intervention(2, 1)
    with pytest.raises(ValueError, match=r"unknown node 7; the network's nodes are \[0, 1, 2\]"):
        ie.do_intervention(7, 1)


def test_node_aliases_never_clash_with_string_nodes():
    assert compat.node_aliases([3, "3", "_3", 4, "b"]) == {3: "__3", "3": "3", "_3": "_3", 4: "4", "b": "b"}


def test_inference_engine_name_check():
    """Strings keep CausalNex's rule and message; ints pass; anything else is named."""
    sm = StructureModel([("a", "b")])
    df = pd.DataFrame({"a": [0, 1, 1], "b": [0, 1, 0]})
    bn = BayesianNetwork(sm).fit_node_states_and_cpds(df)
    InferenceEngine(bn)
    bad = BayesianNetwork(StructureModel([("$a", "b")])).fit_node_states_and_cpds(df.rename(columns={"a": "$a"}))
    with pytest.raises(ValueError, match=r"Variable names must match \^\[0-9a-zA-Z_\]\+\$ .*\['\$a'\]"):
        InferenceEngine(bad)
    flt = BayesianNetwork(StructureModel([(1.5, "b")])).fit_node_states_and_cpds(df.rename(columns={"a": 1.5}))
    with pytest.raises(ValueError, match=r"following nodes: \[1.5\]"):
        InferenceEngine(flt)


def test_state_counts_under_int_names_keep_the_names():
    from pgmpy.estimators import BaseEstimator

    df = pd.DataFrame([(0, 0, 0), (1, 1, 1), (0, 1, 1), (0, 1, 1)], columns=[0, 1, 2])
    counts = BaseEstimator(df).state_counts(2, [0, 1])
    assert counts.index.name == 2 and counts.columns.names == [0, 1]
    assert counts.loc[1, (0, 1)] == 2 and counts.loc[1, (1, 1)] == 1 and counts.loc[0, (0, 0)] == 1
    assert counts.to_numpy().sum() == 4
    by_str = BaseEstimator(df.rename(columns=str)).state_counts("2", ["0", "1"])  # pgmpy's own path
    assert by_str.to_numpy().tolist() == counts.to_numpy().tolist()


def test_cpd_multiplication_keeps_the_first_node_first():
    """Fix 7. Int names make pgmpy's set-ordered product deterministic: {3, 1} iterates 1 first, so the
    original put the wrong variable first (a KeyError or a mislabelled table)."""
    from causalnex.utils import pgmpy_utils

    assert pgmpy_utils.cpd_multiplication is compat._cpd_multiplication
    p3 = pd.DataFrame([[0.4], [0.6]], index=pd.Index([0, 1], name=3), columns=[""])
    p1_given_3 = pd.DataFrame([[0.75, 1 / 3], [0.25, 2 / 3]], index=pd.Index([0, 1], name=1),
                              columns=pd.MultiIndex.from_product([[0, 1]], names=[3]))
    joint = compat._cpd_multiplication([p3, p1_given_3], normalize=False)
    assert joint.index.name == 3 and joint.columns.names == [1]
    # P(3 = s, 1 = t): 0.3, 0.1 (s = 0) and 0.2, 0.4 (s = 1)
    assert joint.to_numpy() == pytest.approx(np.array([[0.3, 0.1], [0.2, 0.4]]), abs=1e-12)
    post = compat._cpd_multiplication([p3, p1_given_3])  # normalised: P(3 | 1)
    assert post.to_numpy() == pytest.approx(np.array([[0.6, 0.2], [0.4, 0.8]]), abs=1e-12)


def test_fit_latent_cpds_reaches_the_closed_form_em_optimum():
    """Latent z -> c (c -> d observed), z seen on 100 of 200 rows. The model is saturated in (z, c),
    so EM's fixed point is P(c) from all rows times P(z | c) from the rows that show z:
    P(c = 0) = 0.5; P(z = 0 | c) = 30/50, 10/50. Hence P(z = 0) = 0.4 and
    P(c = 0 | z = 0) = 0.3 / 0.4, P(c = 0 | z = 1) = 0.2 / 0.6. Before fix 7 this failed with
    "Variable names cannot be same" or a KeyError, depending on the string hash seed."""
    complete = {(0, 0): 30, (0, 1): 10, (1, 0): 20, (1, 1): 40}
    rows = [(z, c) for (z, c), n in complete.items() for _ in range(n)]
    rows += [(np.nan, c) for c in (0, 1) for _ in range(50)]
    data = pd.DataFrame(rows, columns=["z", "c"])
    data["d"] = [i % 2 if c == 0 else int(i % 4 == 0) for i, c in enumerate(data["c"])]
    bn = BayesianNetwork(StructureModel([("c", "d")])).fit_node_states_and_cpds(data[["c", "d"]])
    d_before = bn.cpds["d"].copy()
    bn.add_node("z", [("z", "c")], [])
    bn.fit_latent_cpds("z", [0, 1], data, n_runs=500, stopping_delta=1e-12)
    assert bn.cpds["z"].iloc[:, 0].tolist() == pytest.approx([0.4, 0.6], abs=1e-6)
    assert bn.cpds["c"].to_numpy() == pytest.approx(np.array([[0.75, 1 / 3], [0.25, 2 / 3]]), abs=1e-6)
    pd.testing.assert_frame_equal(bn.cpds["d"], d_before)  # outside z's Markov blanket: untouched
    assert InferenceEngine(bn).query({"c": 1})["z"][1] == pytest.approx(0.8, abs=1e-6)


def test_fit_cpds_by_maximum_likelihood_with_declared_states_missing_from_the_data():
    """The maximum-likelihood case of CausalNex issue 15 (the K2 case is tested above)."""
    sm = StructureModel([("a", "b"), ("c", "b")])
    train = pd.DataFrame([[0, 0, 1], [1, 0, 1], [1, 1, 1]], columns=["a", "b", "c"])
    test = pd.DataFrame([[0, 0, 1], [1, 0, 1], [1, 1, 2]], columns=["a", "b", "c"])
    bn = BayesianNetwork(sm).fit_node_states(pd.concat([train, test]))
    bn.fit_cpds(train)
    assert bn.cpds["c"].iloc[:, 0].tolist() == [1.0, 0.0]  # c = 1 always; c = 2 declared, never seen
    b = bn.cpds["b"]
    assert b[(0, 1)].tolist() == [1.0, 0.0]
    assert b[(1, 1)].tolist() == [0.5, 0.5]


def test_pgmpy_sem_graph_runs_on_numpy_2():
    """Fix 5: pgmpy's SEMGraph gives an edge without a given weight the weight np.NaN (an
    AttributeError on numpy 2 without the alias); CausalNex's own conftest spells it too."""
    from pgmpy.models import SEMGraph

    g = SEMGraph(ebunch=[("x", "y"), ("y", "z", 0.5)], latents=[], err_corr=[], err_var={})
    assert np.isnan(g.graph.edges["x", "y"]["weight"])
    assert g.graph.edges["y", "z"]["weight"] == 0.5
