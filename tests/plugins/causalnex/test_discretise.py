"""Discretisation into readable states."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec_causalnex.discretise import discretise, fit_states, states_table
from whyrec_causalnex.variables import VariableTable


def table(**cols) -> VariableTable:
    frame = pd.DataFrame(cols)
    kinds = {c: ("categorical" if pd.api.types.is_string_dtype(frame[c]) else "numeric") for c in frame.columns}
    return VariableTable(frame=frame, target="label", kinds=kinds, fields={c: "item" for c in frame.columns})


def test_quantile_bins_with_readable_names():
    t = table(price=np.arange(100.0), label=np.tile([0.0, 1.0], 50))
    st = fit_states(t, "quantile", bins=3)["price"]
    assert st.kind == "bins" and st.method == "quantile"
    assert st.edges == [33.0, 66.0]  # np.quantile(0..99, 1/3), (2/3)
    assert st.labels == ["low", "medium", "high"]
    assert st.counts == [33, 33, 34]
    assert [st.interval(i) for i in range(3)] == ["[-inf, 33)", "[33, 66)", "[66, inf)"]
    assert st.describe(2) == "price: high"
    assert st.transform(pd.Series([-5.0, 33.0, 65.9, 1000.0])).tolist() == [0, 1, 1, 2]


@pytest.mark.parametrize("bins,names", [(2, ["low", "high"]), (4, ["low", "medium-low", "medium-high", "high"]),
                                        (5, ["very low", "low", "medium", "high", "very high"])])
def test_level_names_by_bin_count(bins, names):
    t = table(x=np.arange(200.0), label=np.zeros(200))
    t.frame.loc[0, "label"] = 1.0
    assert fit_states(t, "quantile", bins=bins)["x"].labels == names


def test_heavily_tied_values_still_split():
    # 90 % zeros: every quantile is 0; split "0" from "above 0" instead of one useless state
    x = np.r_[np.zeros(90), np.arange(1.0, 11.0)]
    t = table(x=x, label=np.r_[np.zeros(50), np.ones(50)])
    st = fit_states(t, "quantile", bins=3)["x"]
    assert st.edges == [1.0] and st.counts == [90, 10] and st.labels == ["low", "high"]


def test_few_valued_numerics_and_the_outcome_keep_their_values():
    t = table(discount=np.tile([0.0, 1.0, 1.0], 20), label=np.tile([0.0, 1.0], 30))
    states = fit_states(t, "quantile", bins=3)
    assert states["discount"].kind == "values" and states["discount"].labels == ["0", "1"]
    assert states["discount"].counts == [20, 40]
    assert states["label"].labels == ["0", "1"]


def test_categoricals_keep_levels_and_send_unseen_levels_to_the_most_frequent():
    t = table(colour=["red"] * 5 + ["blue"] * 3 + ["green"] * 2, label=[0.0, 1.0] * 5)
    st = fit_states(t)["colour"]
    assert st.kind == "levels" and st.labels == ["blue", "green", "red"]
    new = pd.Series(["green", "purple"])
    assert st.transform(new).tolist() == [1, 2]
    assert st.unseen(new) == 1


def test_supervised_bins_follow_the_outcome():
    x = np.arange(200.0)
    y = (x > 140).astype(float)  # the outcome changes at 140.5
    t = table(x=x, label=y)
    st = fit_states(t, "supervised", bins=3)["x"]
    assert st.method == "supervised"
    assert 140.5 in st.edges
    q = fit_states(t, "quantile", bins=3)["x"]
    assert 140.5 not in q.edges


def test_supervised_falls_back_to_quantiles_without_a_split():
    rng = np.random.default_rng(0)
    # 30 rows: no split leaves 20 rows (the minimum leaf) on both sides
    t = table(x=rng.normal(size=30), label=np.tile([0.0, 1.0], 15))
    st = fit_states(t, "supervised", bins=3)["x"]
    assert st.method == "quantile (no tree split)" and len(st.labels) == 3


def test_parse_levels():
    t = table(price=np.arange(100.0), discount=np.tile([0.0, 5.0], 50), colour=["a", "b"] * 50,
              label=np.tile([0.0, 1.0], 50))
    s = fit_states(t, bins=3)
    assert s["price"].parse("High") == 2
    assert s["price"].parse("[33, 66)") == 1
    assert s["price"].parse("0") == 0
    assert s["discount"].parse("5") == 1 and s["discount"].parse("5.0") == 1
    assert s["colour"].parse("b") == 1
    with pytest.raises(ValueError, match=r"'price' has no state 'cheap'; its states are 'low' \[-inf, 33\), "
                                         r"'medium' \[33, 66\), 'high' \[66, inf\)"):
        s["price"].parse("cheap")
    with pytest.raises(ValueError, match=r"'colour' has no state 'c'; its states are 'a', 'b'"):
        s["colour"].parse("c")


def test_discretise_and_states_table():
    t = table(price=np.arange(10.0), label=np.tile([0.0, 1.0], 5))
    s = fit_states(t, bins=2)
    codes = discretise(t.frame, s)
    assert codes["price"].tolist() == [0] * 5 + [1] * 5
    assert codes["label"].tolist() == [0, 1] * 5
    tab = states_table(s)
    assert tab.loc[tab["variable"] == "price", "description"].tolist() == ["price: low", "price: high"]
    assert tab.loc[tab["variable"] == "price", "train_count"].tolist() == [5, 5]
