"""Validation against a simulator's ground truth (``RecData.truth``).

``truth = {"graph": CausalGraph, "outcome": "label", "interventions": {feature: {"values": [...],
"expected_outcome": [...]}}}``: the true DAG, and for some features the expected outcome (click
probability) when the feature is set to each value. We report the structural Hamming distance
of the learned graph to the true one over the variables both share, and for each true
intervention value the error of the network's P(outcome | do(feature = state holding the
value)), plus the error of the *effect* between values (differences cancel the baseline).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from whyrec.causal import CausalGraph, Edge

from .discretise import VariableStates
from .network import FittedNetwork


def as_graph(g: Any) -> CausalGraph:
    if isinstance(g, CausalGraph):
        return g
    if isinstance(g, dict):
        return CausalGraph.from_dict(g)
    if hasattr(g, "edges") and hasattr(g, "nodes"):  # a networkx DiGraph
        return CausalGraph(nodes=list(g.nodes), edges=[Edge(u, v) for u, v in g.edges])
    raise TypeError(f"truth graph of unsupported type {type(g).__name__}")


def structure_scores(learned: CausalGraph, true: CausalGraph) -> dict:
    """SHD and edge precision/recall over the nodes both graphs share."""
    common = [n for n in learned.nodes if n in set(true.nodes)]
    keep = set(common)
    a = CausalGraph(common, [e for e in learned.edges if e.source in keep and e.target in keep])
    b = CausalGraph(common, [e for e in true.edges if e.source in keep and e.target in keep])
    la, lb = a.edge_set(), b.edge_set()
    reversed_ = {(s, t) for s, t in la - lb if (t, s) in lb}
    missing = {(s, t) for s, t in lb - la if (t, s) not in la}
    extra = {(s, t) for s, t in la - lb if (t, s) not in lb}
    tp = len(la & lb)
    return {
        "shd": int(a.shd(b)),
        "nodes_compared": len(common),
        "true_edges": len(lb),
        "learned_edges": len(la),
        "correct_edges": tp,
        "reversed_edges": sorted(map(list, reversed_)),
        "missing_edges": sorted(map(list, missing)),
        "extra_edges": sorted(map(list, extra)),
        "precision": tp / len(la) if la else float("nan"),
        "recall": tp / len(lb) if lb else float("nan"),
        "true_nodes_not_variables": sorted(n for n in true.nodes if n not in set(learned.nodes)),
    }


def intervention_errors(
    truth: dict,
    net: FittedNetwork | None,
    states: dict[str, VariableStates],
    baseline: float,
    answer: Any = None,
) -> pd.DataFrame:
    """One row per true intervention value: the state holding it, the network's
    P(outcome | do(state)) (or ``answer(feature, value)``: the learner's do() in data units, e.g.
    the g-formula), the expected outcome, the absolute error, and the same for the effect
    against the feature's first listed value."""
    rows = []
    for feat, spec in (truth.get("interventions") or {}).items():
        if feat not in states:
            continue
        values = list(spec.get("values", []))
        expected = [float(v) for v in spec.get("expected_outcome", [])]
        if not values or len(values) != len(expected):
            continue
        st = states[feat]
        codes = st.transform(pd.Series(values))
        path = net is not None and feat in net.variables and net.has_path(feat)
        preds = []
        for v, code in zip(values, codes):
            if answer is not None:
                preds.append(float(answer(feat, v)))
            else:
                preds.append(float(net.do_outcome({feat: int(code)})[net.positive_state]) if path else baseline)
        for i, (v, code, p, e) in enumerate(zip(values, codes, preds, expected)):
            rows.append({
                "feature": feat, "value": v, "state": st.labels[int(code)], "p_do": p, "expected": e,
                "abs_error": abs(p - e), "effect": p - preds[0], "expected_effect": e - expected[0],
                "effect_abs_error": abs((p - preds[0]) - (e - expected[0])), "path_to_outcome": path,
            })
    return pd.DataFrame(rows, columns=["feature", "value", "state", "p_do", "expected", "abs_error", "effect",
                                       "expected_effect", "effect_abs_error", "path_to_outcome"])


def summarise_errors(errors: pd.DataFrame) -> dict:
    if errors.empty:
        return {"interventions_compared": 0}
    eff = errors[errors.groupby("feature").cumcount() > 0]  # the first value of each feature is the reference
    return {
        "interventions_compared": int(len(errors)),
        "features_compared": sorted(errors["feature"].unique().tolist()),
        "do_mae": float(errors["abs_error"].mean()),
        "do_max_error": float(errors["abs_error"].max()),
        "effect_mae": float(eff["effect_abs_error"].mean()) if len(eff) else float("nan"),
        "effect_max_error": float(eff["effect_abs_error"].max()) if len(eff) else float("nan"),
    }


def truth_scores(truth: dict | None, graph: CausalGraph, net: FittedNetwork | None, states: dict[str, VariableStates],
                 baseline: float, answer: Any = None) -> tuple[dict, pd.DataFrame]:
    if not truth:
        return {}, pd.DataFrame()
    out: dict[str, Any] = {}
    if truth.get("graph") is not None:
        out["structure"] = structure_scores(graph, as_graph(truth["graph"]))
    errors = intervention_errors(truth, net, states, baseline, answer)
    out["interventions"] = summarise_errors(errors)
    return out, errors


__all__ = ["structure_scores", "intervention_errors", "truth_scores", "as_graph"]
