"""Every bad input of issue 6 gets a clear WhyrecError (one line, names the thing and the fix)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from whyrec.causal import CausalGraph, Edge
from whyrec.errors import DataError, UnsupportedError, WhyrecError
from whyrec.schema import Feature, FeatureSchema
from whyrec_causalnex.learner import CausalNexLearner


def with_item_feature(data, name: str, values, kind: str = "numeric"):
    items = data.items.copy()
    items[name] = values
    schema = FeatureSchema([*data.schema.features, Feature(name, "item", kind)])
    return dataclasses.replace(data, items=items, schema=schema)


def fast(**kw) -> CausalNexLearner:
    return CausalNexLearner(bootstrap=0, effect_bootstrap=0, seed=0, **kw)


def test_more_variables_than_the_limit(sim):
    with pytest.raises(DataError) as exc:
        fast(max_variables=4).learn(sim)
    msg = str(exc.value)
    assert "6 causal variables (5 features + the outcome 'label') exceed the limit max_variables = 4" in msg
    assert "`max_variables = 6`" in msg and "`variables = [...]`" in msg


def test_limit_counts_only_chosen_variables(sim):
    g = fast(max_variables=3, variables=["price", "discount"]).learn(sim)
    assert g.nodes == ["price", "discount", "label"]


def test_constant_column(sim):
    data = with_item_feature(sim, "stock", np.full(len(sim.items), 5.0))
    with pytest.raises(DataError, match=r"causal variable 'stock' is constant \(value 5\.0 in all 4000 training rows\).*"
                                        r"exclude = \[\"stock\"\]"):
        fast().learn(data)
    g = fast(drop_constant=True).learn(data)  # or drop it on request, with a note
    assert "stock" not in g.nodes


def test_constant_outcome(sim):
    train = sim.train.assign(label=0.0)
    with pytest.raises(DataError, match=r"the outcome 'label' is constant.*choose another `target`"):
        fast().learn(dataclasses.replace(sim, train=train))


def test_categorical_with_too_many_levels(sim):
    brands = pd.Categorical([f"brand{i % 30}" for i in range(len(sim.items))])
    data = with_item_feature(sim, "brand", brands, "categorical")
    with pytest.raises(DataError, match=r"categorical variable 'brand' has 30 levels, more than max_levels = 10.*"
                                        r"exclude = \[\"brand\"\].*raise `max_levels` to 30"):
        fast().learn(data)


def test_required_edges_forming_a_cycle(sim):
    with pytest.raises(DataError, match=r"`required_edges` form a cycle \((price -> discount -> quality -> price|"
                                        r"discount -> quality -> price -> discount|quality -> price -> discount -> quality)\)"):
        fast(required_edges=[["price", "discount"], ["discount", "quality"], ["quality", "price"]]).learn(sim)


def test_forbidden_edge_that_is_also_required(sim):
    with pytest.raises(DataError, match=r"edge 'price' -> 'label' is both required \(`required_edges`\) and forbidden "
                                        r"\(`forbidden_edges`\); remove it from one of the two lists"):
        fast(required_edges=[["price", "label"]], forbidden_edges=[["price", "label"]]).learn(sim)


def test_required_edge_against_the_defaults(sim):
    with pytest.raises(DataError, match=r"required edge 'label' -> 'price' contradicts the constraints: 'label' may "
                                        r"cause nothing because the outcome causes nothing"):
        fast(required_edges=[["label", "price"]]).learn(sim)
    with pytest.raises(DataError, match=r"nothing may cause 'age' because its field 'user' is exogenous"):
        fast(required_edges=[["price", "age"]]).learn(sim)
    with pytest.raises(DataError, match=r"contradicts the field rules: a 'item' feature may only be caused by \['item'\]"):
        fast(required_edges=[["age", "price"]], exogenous_fields=[]).learn(sim)


def test_unknown_names_in_constraints_and_variables(sim):
    with pytest.raises(DataError, match=r"`forbidden_edges` names 'prise', which is not a causal variable \(did you mean 'price'\?\)"):
        fast(forbidden_edges=[["prise", "label"]]).learn(sim)
    with pytest.raises(DataError, match=r"`required_edges`: each edge is a pair \[\"cause\", \"effect\"\] of variable names, got \['price'\]"):
        fast(required_edges=[["price"]]).learn(sim)
    with pytest.raises(DataError, match=r"causal variable 'prices' is not a feature of dataset 'toy-scm-0' \(did you mean 'price'\?\)"):
        fast(variables=["prices"]).learn(sim)
    with pytest.raises(DataError, match=r"causal variable 'item_id' is an id; ids are not causal variables"):
        fast(variables=["item_id", "price"]).learn(sim)
    with pytest.raises(DataError, match=r"`interventions` names 'colour_x', which is not a causal variable"):
        fitted_small(sim, interventions=["colour_x"]).report(sim, [])


def fitted_small(sim, **kw) -> CausalNexLearner:
    learner = fast(**kw)
    learner.fit(sim, learner.learn(sim))
    return learner


def test_intervention_on_an_unknown_node(fitted):
    with pytest.raises(DataError, match=r"unknown node 'prize' in the intervention \(did you mean 'price'\?\); the causal "
                                        r"variables are age, quality, price, discount, colour"):
        fitted.intervene({"prize": "low"})


def test_intervention_on_an_unknown_state(fitted):
    with pytest.raises(DataError, match=r"unknown state in the intervention: 'price' has no state 'cheap'; its states are "
                                        r"'low' \[-inf, 9\.\d+\), 'medium' .*'high' \[10\.\d+, inf\)"):
        fitted.intervene({"price": "cheap"})


def test_intervention_on_the_outcome(fitted):
    with pytest.raises(UnsupportedError, match=r"cannot intervene on the outcome 'label' itself"):
        fitted.intervene({"label": "1"})


def test_intervention_that_would_isolate_a_node(sim):
    """do() on a node without children (CausalNex would refuse: isolate): the error says why in words."""
    learner = fast()
    graph = CausalGraph(nodes=["quality", "price", "label"],
                        edges=[Edge("quality", "price"), Edge("quality", "label")])
    learner.fit(sim, graph)
    with pytest.raises(UnsupportedError) as exc:
        learner.intervene({"price": "low"})
    msg = str(exc.value)
    # refused before CausalNex is asked: no directed path to the outcome
    assert msg.startswith("'price' has no directed path to 'label' in the learned network (its edges: quality -> price)")
    assert "cannot change 'label' (causal effect 0, not estimated)" in msg
    assert "\n" not in msg


def test_intervention_on_a_variable_outside_the_network(fitted):
    with pytest.raises(UnsupportedError, match=r"'colour' is not connected to 'label' in the learned graph \(no edge path "
                                               r"at all\).*cannot change 'label' \(effect 0\)"):
        fitted.intervene({"colour": "red"})


def test_empty_intervention_and_unfitted_learner(fitted):
    with pytest.raises(DataError, match="empty intervention"):
        fitted.intervene({})
    with pytest.raises(UnsupportedError, match=r"causalnex-bn is not fitted: call learn\(data\) and fit\(data, graph\)"):
        CausalNexLearner().intervene({"price": "low"})


@pytest.mark.parametrize("kw,msg", [
    ({"method": "deep"}, "method must be 'linear', 'nonlinear' or 'bic', got 'deep'"),
    ({"discretiser": "kmeans"}, "discretiser must be 'quantile' or 'supervised'"),
    ({"prior": "flat"}, "prior must be 'K2' or 'BDeu'"),
    ({"do_estimator": "backdoor"}, "do_estimator must be 'gformula' or 'bn', got 'backdoor'"),
    ({"bins": 1}, "bins must be at least 2"),
    ({"ci": 95}, "ci must be between 0 and 1"),
    ({"w_threshold": -0.1}, "w_threshold must not be negative"),
    ({"max_variables": 1}, "max_variables must be at least 2"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(UnsupportedError, match=msg):
        CausalNexLearner(**kw)


def test_errors_are_whyrec_errors_without_newlines(sim):
    for kw in ({"max_variables": 3}, {"required_edges": [["price", "label"]], "forbidden_edges": [["price", "label"]]}):
        with pytest.raises(WhyrecError) as exc:
            fast(**kw).learn(sim)
        assert "\n" not in str(exc.value)
