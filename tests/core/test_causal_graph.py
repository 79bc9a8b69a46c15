"""CausalGraph: SHD against hand-counted graphs (missing, extra and reversed edges), acyclicity,
parents and the JSON round trip."""
from __future__ import annotations

import json

import pytest

from whyrec.causal import CausalGraph, Edge


def g(*edges, nodes="abcde"):
    return CausalGraph(nodes=list(nodes), edges=[Edge(s, t) for s, t in edges])


TRUE = g(("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"))


def test_shd_identical_is_zero():
    assert TRUE.shd(g(("a", "d"), ("c", "d"), ("b", "c"), ("a", "b"))) == 0


def test_shd_missing_edge_counts_one():
    assert TRUE.shd(g(("a", "b"), ("b", "c"), ("c", "d"))) == 1


def test_shd_extra_edge_counts_one():
    assert TRUE.shd(g(("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("e", "a"))) == 1


def test_shd_reversed_edge_counts_once():
    assert TRUE.shd(g(("b", "a"), ("b", "c"), ("c", "d"), ("a", "d"))) == 1


def test_shd_hand_counted_mix_of_missing_extra_and_reversed():
    # against TRUE: (a,b) reversed -> 1; (c,d) missing -> 1; (a,d) kept; (b,c) reversed -> 1;
    # (e,c) and (d,e) extra -> 2: total 5
    learned = g(("b", "a"), ("c", "b"), ("a", "d"), ("e", "c"), ("d", "e"))
    assert TRUE.shd(learned) == 5
    assert learned.shd(TRUE) == 5  # symmetric


def test_shd_both_directions_learned_counts_one_reversal_and_one_extra():
    # a->b true; learned has a->b and b->a: b->a is an extra edge
    assert g(("a", "b")).shd(g(("a", "b"), ("b", "a"))) == 1


def test_shd_empty_graphs():
    assert g().shd(g()) == 0
    assert g().shd(TRUE) == 4 and TRUE.shd(g()) == 4


def test_edge_set_and_parents():
    assert TRUE.edge_set() == {("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")}
    assert sorted(TRUE.parents("d")) == ["a", "c"]
    assert TRUE.parents("a") == []


def test_is_acyclic():
    assert TRUE.is_acyclic()
    assert not g(("a", "b"), ("b", "c"), ("c", "a")).is_acyclic()
    assert not g(("a", "a")).is_acyclic()  # a self loop is a cycle
    assert g().is_acyclic()
    # edges naming nodes outside `nodes`
    assert CausalGraph(nodes=["a"], edges=[Edge("x", "y"), Edge("y", "z")]).is_acyclic()
    assert not CausalGraph(nodes=[], edges=[Edge("x", "y"), Edge("y", "x")]).is_acyclic()


def test_is_acyclic_diamond_and_cycle_downstream_of_a_root():
    assert g(("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")).is_acyclic()
    assert not g(("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")).is_acyclic()


def test_round_trip_json(tmp_path):
    graph = CausalGraph(nodes=["x", "y"], edges=[Edge("x", "y", weight=0.5, stability=0.9)],
                        constraints={"tabu": [["y", "x"]]}, method={"name": "notears", "w": 0.1})
    d = graph.to_dict()
    assert d == {"nodes": ["x", "y"], "edges": [{"source": "x", "target": "y", "weight": 0.5, "stability": 0.9}],
                 "constraints": {"tabu": [["y", "x"]]}, "method": {"name": "notears", "w": 0.1}}
    assert CausalGraph.from_dict(d) == graph
    p = graph.save(tmp_path / "g.json")
    assert json.loads(p.read_text()) == d
    assert CausalGraph.load(p) == graph


def test_from_dict_defaults():
    graph = CausalGraph.from_dict({"nodes": ["x"], "edges": [{"source": "x", "target": "x"}]})
    assert graph.constraints == {} and graph.method == {}
    assert graph.edges == [Edge("x", "x", 1.0, None)]


def test_edge_defaults():
    e = Edge("a", "b")
    assert e.weight == 1.0 and e.stability is None


def test_to_networkx():
    nx = pytest.importorskip("networkx")
    graph = CausalGraph(nodes=["x", "y", "z"], edges=[Edge("x", "y", weight=0.5, stability=0.9)])
    G = graph.to_networkx()
    assert isinstance(G, nx.DiGraph)
    assert sorted(G.nodes) == ["x", "y", "z"]
    assert list(G.edges(data=True)) == [("x", "y", {"weight": 0.5, "stability": 0.9})]


def test_edges_are_immutable_and_hashable():
    import dataclasses

    e = Edge("a", "b", 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.weight = 2.0  # type: ignore[misc]
    assert len({e, Edge("a", "b", 0.5)}) == 1


def test_graph_defaults_are_empty_and_not_shared():
    a, b = CausalGraph(nodes=["x"]), CausalGraph(nodes=["y"])
    assert (a.edges, a.constraints, a.method) == ([], {}, {})
    a.edges.append(Edge("x", "x"))
    a.constraints["k"] = 1
    assert b.edges == [] and b.constraints == {}
    assert a.to_dict() == {"nodes": ["x"], "edges": [{"source": "x", "target": "x", "weight": 1.0, "stability": None}],
                           "constraints": {"k": 1}, "method": {}}
