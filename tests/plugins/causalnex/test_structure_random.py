"""Structure learning on random structural causal models (whyrec_datasets.scm), scored with a
structural Hamming distance implemented here independently of whyrec's."""
from __future__ import annotations

import numpy as np
import pytest

from whyrec.causal import CausalGraph, Edge
from whyrec_causalnex.structure import Constraints, learn_structure
from whyrec_causalnex.structure_select import BICScore, majority_graph, variable_levels
from whyrec_causalnex.truth import structure_scores


def shd(learned: set[tuple[str, str]], true: set[tuple[str, str]]) -> int:
    """Pairs of variables whose connection differs (absent / present / direction): one per pair."""
    def state(g, a, b):
        return (a, b) in g, (b, a) in g

    nodes = {n for e in learned | true for n in e}
    return sum(state(learned, a, b) != state(true, a, b) for a in nodes for b in nodes if a < b)


TRUE = {("a", "b"), ("b", "c"), ("c", "d"), ("a", "e")}


def test_independent_shd_counts_missing_extra_and_reversed_edges_once():
    # hand count: c->d missing (1), b->c reversed (1), a->d extra (1); a->b and a->e right
    learned = {("a", "b"), ("c", "b"), ("a", "d"), ("a", "e")}
    assert shd(learned, TRUE) == 3
    assert shd(TRUE, TRUE) == 0
    assert shd(set(), TRUE) == 4
    g = lambda es: CausalGraph(list("abcde"), [Edge(s, t) for s, t in es])  # noqa: E731
    sc = structure_scores(g(learned), g(TRUE))
    assert sc["shd"] == 3 and sc["missing_edges"] == [["c", "d"]] and sc["extra_edges"] == [["a", "d"]]
    assert sc["reversed_edges"] == [["c", "b"]]


def item_collider(n_items=400, rows_per_item=10, seed=0):
    """Item variables a -> c <- b (a v-structure orients both edges) and an unrelated item
    variable w, plus an interaction-level outcome y <- c. Strong effects, 4,000 rows."""
    rng = np.random.default_rng(seed)
    a, b, w = rng.normal(size=(3, n_items))
    c = 1.0 * a - 1.0 * b + 0.7 * rng.normal(size=n_items)
    item = np.repeat(np.arange(n_items), rows_per_item)
    user = rng.integers(0, 1000, len(item))
    y = (rng.uniform(size=len(item)) < 1 / (1 + np.exp(-1.5 * c[item]))).astype(float)
    X = np.column_stack([a[item] * 3 + 10, b[item] / 5, c[item], w[item], y])
    return X, ["a", "b", "c", "w", "y"], (np.unique(user, return_inverse=True)[1], item)


def test_bic_search_recovers_a_v_structure_exactly():
    X, names, groups = item_collider()
    c = Constraints(tabu_parents=["y"])
    res = learn_structure(X, names, c, w_threshold=0.0, standardise=True, method="bic", bootstrap=5, groups=groups)
    truth = {("a", "c"), ("b", "c"), ("c", "y")}
    assert set(res.edges) == truth
    assert shd(set(res.edges), truth) == 0
    assert all(res.stability[e] == 1.0 for e in truth)


def test_repeated_item_rows_are_not_evidence():
    """Two unrelated item variables with a sample correlation of exactly 0.15 over 100 items,
    each item logged 50 times. Scored per item (n = 100) the edge does not pay its BIC penalty
    (gain 100/2 * -log(1 - 0.15^2) = 1.14 < log(100)/2 = 2.30); scored per row (n = 5,000) it
    would (57 > 4.26) and the search would keep a spurious edge."""
    rng = np.random.default_rng(3)
    u = rng.normal(size=100)
    v = rng.normal(size=100)
    u = (u - u.mean()) / u.std()
    v = v - u * (v @ u) / (u @ u)
    v = (v - v.mean()) / v.std()
    r = 0.15
    v = r * u + np.sqrt(1 - r ** 2) * v
    assert np.corrcoef(u, v)[0, 1] == pytest.approx(0.15)
    item = np.repeat(np.arange(100), 50)
    user = np.arange(len(item)) % 977
    X = np.column_stack([u[item], v[item]])
    groups = (user, item)
    assert variable_levels(X, groups) == ["item", "item"]
    per_item = learn_structure(X, ["u", "v"], Constraints(), w_threshold=0.0, standardise=True, method="bic", groups=groups)
    per_row = learn_structure(X, ["u", "v"], Constraints(), w_threshold=0.0, standardise=True, method="bic")
    assert per_item.edges == {}
    assert len(per_row.edges) == 1
    sc = BICScore(X, ["u", "v"], [], ["item", "item"], groups)
    gain = sc.local(1, frozenset([0])) - sc.local(1, frozenset())
    assert gain == pytest.approx(100 / 2 * -np.log(1 - 0.15 ** 2) - 0.5 * np.log(100), abs=1e-6)


def test_majority_graph_drops_rare_pairs_orients_by_majority_and_breaks_cycles():
    stab = {("a", "b"): 0.7, ("b", "a"): 0.3,   # pair seen always, mostly a -> b
            ("b", "c"): 0.3, ("c", "b"): 0.15,  # seen in 45 %: dropped at 0.5
            ("c", "d"): 0.9, ("d", "e"): 0.8, ("e", "c"): 0.6}  # a cycle: e -> c (least frequent) goes
    g = majority_graph(list("abcde"), stab, Constraints(), 0.5)
    assert set(g) == {("a", "b"), ("c", "d"), ("d", "e")}
    g = majority_graph(list("abcde"), stab, Constraints(required=[("b", "a")]), 0.5)
    assert ("b", "a") in g and ("a", "b") not in g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scm_structure_is_close_to_the_truth(seed):
    """6-node random SCMs (no hidden confounder), 6,000 rows, the learner's default constraints:
    the BIC search with stability selection stays within SHD 2 of the true DAG, and NOTEARS on
    the same data is scored by the same independent SHD (measured, not bounded: see
    bench/bench_causal_random.py)."""
    from whyrec_datasets.scm import RandomSCMDataset
    from whyrec_causalnex.learner import CausalNexLearner

    data = RandomSCMDataset(n_nodes=6, seed=seed, n_rows=6000, mc_pairs=2000).load()
    true = {(e.source, e.target) for e in data.truth["graph"].edges}
    learner = CausalNexLearner(bootstrap=8, effect_bootstrap=0, seed=seed)
    learner.params.update(method="bic", drop_unstable=False)  # 8 resamples only: keep every majority edge
    graph = learner.learn(data)
    learned = {(e.source, e.target) for e in graph.edges}
    assert shd(learned, true) <= 2, (sorted(learned), sorted(true))
    assert shd(learned, true) == structure_scores(graph, data.truth["graph"])["shd"]
