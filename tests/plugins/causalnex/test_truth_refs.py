"""Validation against a simulator's truth (whyrec_causalnex.truth) on hand-counted graphs and
hand-made intervention tables: the scores must not be bounds on numbers the code computes."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from whyrec.causal import CausalGraph, Edge
from whyrec_causalnex.truth import as_graph, intervention_errors, structure_scores, summarise_errors, truth_scores


def g(nodes, *edges):
    return CausalGraph(nodes=list(nodes), edges=[Edge(s, t) for s, t in edges])


TRUE = g("abcdz", ("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("z", "a"))


def test_structure_scores_hand_counted():
    # learned over a..e (z is not a variable, e is not in the truth):
    # (b,a) reversed; (c,b) reversed; (a,d) correct; (c,d) missing; (d,e) outside the shared nodes
    learned = g("abcde", ("b", "a"), ("c", "b"), ("a", "d"), ("d", "e"), ("a", "c"))
    s = structure_scores(learned, TRUE)
    assert s["nodes_compared"] == 4
    assert s["true_edges"] == 4 and s["learned_edges"] == 4  # (z,a) and (d,e) are outside the shared nodes
    assert s["correct_edges"] == 1
    assert s["reversed_edges"] == [["b", "a"], ["c", "b"]]
    assert s["missing_edges"] == [["c", "d"]]
    assert s["extra_edges"] == [["a", "c"]]
    assert s["shd"] == 2 + 1 + 1  # two reversals, one missing, one extra
    assert s["precision"] == 0.25 and s["recall"] == 0.25
    assert s["true_nodes_not_variables"] == ["z"]


def test_structure_scores_perfect_and_empty():
    same = structure_scores(g("abcdz", *[(e.source, e.target) for e in TRUE.edges]), TRUE)
    assert (same["shd"], same["precision"], same["recall"], same["correct_edges"]) == (0, 1.0, 1.0, 5)
    assert same["reversed_edges"] == same["missing_edges"] == same["extra_edges"] == []
    empty = structure_scores(g("abc"), g("abc"))
    assert empty["shd"] == 0 and math.isnan(empty["precision"]) and math.isnan(empty["recall"])
    none_learned = structure_scores(g("abcdz"), TRUE)
    assert none_learned["shd"] == 5 and math.isnan(none_learned["precision"]) and none_learned["recall"] == 0.0


def test_as_graph_accepts_graph_dict_and_networkx():
    assert as_graph(TRUE) is TRUE
    assert as_graph(TRUE.to_dict()) == TRUE
    G = nx.DiGraph([("a", "b"), ("b", "c")])
    G.add_node("x")
    c = as_graph(G)
    assert c.nodes == ["a", "b", "c", "x"] and c.edge_set() == {("a", "b"), ("b", "c")}
    with pytest.raises(TypeError, match="truth graph of unsupported type list"):
        as_graph([("a", "b")])


class States:
    """Bins by thresholds: value -> index of the first edge above it."""

    def __init__(self, edges, labels):
        self.edges, self.labels = edges, labels

    def transform(self, s):
        return np.searchsorted(self.edges, s.to_numpy(float), side="right")


class Net:
    positive_state = 1
    variables = ["price", "age"]

    def __init__(self, p_by_state, path=("price",)):
        self.p, self.path, self.calls = p_by_state, set(path), []

    def has_path(self, feat):
        return feat in self.path

    def do_outcome(self, do):
        self.calls.append(do)
        (feat, code), = do.items()
        return {0: 1 - self.p[feat][code], 1: self.p[feat][code]}


TRUTH = {"interventions": {
    "price": {"values": [1.0, 5.0, 9.0], "expected_outcome": [0.30, 0.20, 0.05]},
    "age": {"values": [20, 60], "expected_outcome": [0.1, 0.2]},
    "unknown": {"values": [1], "expected_outcome": [0.5]},
    "mismatched": {"values": [1, 2], "expected_outcome": [0.5]},
}}
STATES = {"price": States([3.0, 7.0], ["low", "mid", "high"]), "age": States([40.0], ["young", "old"]),
          "mismatched": States([1.5], ["a", "b"])}


def test_intervention_errors_hand_made():
    net = Net({"price": [0.25, 0.25, 0.10], "age": [0.5, 0.5]})
    err = intervention_errors(TRUTH, net, STATES, baseline=0.15)
    price = err[err["feature"] == "price"]
    assert price["state"].tolist() == ["low", "mid", "high"]
    assert price["p_do"].tolist() == [0.25, 0.25, 0.10]
    assert price["abs_error"].tolist() == pytest.approx([0.05, 0.05, 0.05])
    assert price["effect"].tolist() == pytest.approx([0.0, 0.0, -0.15])
    assert price["expected_effect"].tolist() == pytest.approx([0.0, -0.10, -0.25])
    assert price["effect_abs_error"].tolist() == pytest.approx([0.0, 0.10, 0.10])
    assert price["path_to_outcome"].all()
    age = err[err["feature"] == "age"]  # no path from age to the outcome: the baseline everywhere
    assert age["p_do"].tolist() == [0.15, 0.15] and not age["path_to_outcome"].any()
    assert age["abs_error"].tolist() == pytest.approx([0.05, 0.05])
    assert age["effect_abs_error"].tolist() == pytest.approx([0.0, 0.1])
    assert set(err["feature"]) == {"price", "age"}  # unknown and mismatched specs are skipped
    assert net.calls == [{"price": 0}, {"price": 1}, {"price": 2}]
    assert list(err.columns) == ["feature", "value", "state", "p_do", "expected", "abs_error", "effect",
                                 "expected_effect", "effect_abs_error", "path_to_outcome"]


def test_intervention_errors_without_a_network_or_interventions():
    err = intervention_errors(TRUTH, None, STATES, baseline=0.2)
    assert (err["p_do"] == 0.2).all() and not err["path_to_outcome"].any()
    assert intervention_errors({}, None, STATES, 0.2).empty
    assert intervention_errors({"interventions": {"price": {"values": [], "expected_outcome": []}}}, None, STATES, 0.2).empty


def test_summarise_errors_reference_value_excluded_from_effects():
    net = Net({"price": [0.25, 0.25, 0.10], "age": [0.5, 0.5]})
    s = summarise_errors(intervention_errors(TRUTH, net, STATES, baseline=0.15))
    assert s["interventions_compared"] == 5 and s["features_compared"] == ["age", "price"]
    assert s["do_mae"] == pytest.approx(0.05) and s["do_max_error"] == pytest.approx(0.05)
    # effects: price 0.10, 0.10 and age 0.10 (the first value of each feature is the reference)
    assert s["effect_mae"] == pytest.approx(0.10) and s["effect_max_error"] == pytest.approx(0.10)
    assert summarise_errors(pd.DataFrame()) == {"interventions_compared": 0}
    one = summarise_errors(pd.DataFrame({"feature": ["f"], "abs_error": [0.3], "effect_abs_error": [0.0]}))
    assert math.isnan(one["effect_mae"]) and math.isnan(one["effect_max_error"]) and one["do_max_error"] == 0.3


def test_truth_scores():
    net = Net({"price": [0.25, 0.25, 0.10], "age": [0.5, 0.5]})
    out, err = truth_scores(None, TRUE, net, STATES, 0.1)
    assert out == {} and err.empty
    out, err = truth_scores({**TRUTH, "graph": TRUE.to_dict()}, g("abcd", ("a", "b")), net, STATES, 0.15)
    assert out["structure"]["shd"] == 3 and out["structure"]["true_nodes_not_variables"] == ["z"]
    assert out["interventions"]["interventions_compared"] == 5 and len(err) == 5
    out, _ = truth_scores(TRUTH, TRUE, net, STATES, 0.15)
    assert "structure" not in out


def test_skipped_specs_do_not_stop_the_ones_after_them():
    truth = {"interventions": {"unknown": {"values": [1], "expected_outcome": [0.5]},
                               "mismatched": {"values": [1, 2], "expected_outcome": [0.5]},
                               "price": {"values": [1.0, 9.0], "expected_outcome": [0.3, 0.1]}}}
    err = intervention_errors(truth, None, STATES, baseline=0.2)
    assert err["feature"].tolist() == ["price", "price"]


def test_summarise_errors_effects_exclude_only_the_first_value():
    errors = pd.DataFrame({"feature": ["f", "f", "f", "g", "g"], "abs_error": [0.1, 0.2, 0.3, 0.4, 0.5],
                           "effect_abs_error": [0.0, 0.2, 0.4, 0.0, 0.6]})
    s = summarise_errors(errors)
    assert s["effect_mae"] == pytest.approx((0.2 + 0.4 + 0.6) / 3) and s["effect_max_error"] == pytest.approx(0.6)
    assert s["do_mae"] == pytest.approx(0.3) and s["do_max_error"] == pytest.approx(0.5)
