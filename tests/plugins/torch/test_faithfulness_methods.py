"""Faithfulness per method (faithfulness_methods) and attention-rollout's quality check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import WhyrecError
from whyrec.report.verdicts import verdict
from whyrec_torch.faithfulness_methods import (ALL_METHODS, deletion_areas, method_faithfulness, most_faithful,
                                               quality_result)
from whyrec_torch.history_edit import remove_positions
from whyrec_torch.rollout import AttentionRollout
from whyrec_torch.toy import make_toy_data
from whyrec_torch.transformer import TransformerSeqModel


@pytest.fixture(scope="module")
def toy():
    return make_toy_data(n_users=40, n_items=30, history_length=5, seed=0)


@pytest.fixture(scope="module")
def tmodel(toy):
    m = TransformerSeqModel(size="small", embedding_dim=16, epochs=4, device="cpu", num_threads=1, seed=0, batch_size=128)
    m.fit(toy)
    return m


@pytest.fixture(scope="module")
def pairs(tmodel):
    return pd.concat([tmodel.recommend(u, 3) for u in (1, 2, 3, 4)], ignore_index=True)


def test_every_method_gets_a_row_and_a_winner(tmodel, toy, pairs):
    res = method_faithfulness(tmodel, toy, pairs, max_pairs=6, ig_steps=8, shap_samples=8, shap_background=10, random_orders=2)
    t = res["table"]
    assert list(t["method"]) == list(ALL_METHODS)
    assert res["pairs_checked"] == 6 and set(res["times"]) == set(ALL_METHODS)
    assert ((t["tau_median"] >= -1) & (t["tau_median"] <= 1)).all()
    assert (t["random_area"] == t["random_area"].iloc[0]).all()  # one random baseline for all
    assert np.allclose(t["deletion_gain"], t["deletion_area"] - t["random_area"])
    assert res["most_faithful"] in ALL_METHODS
    # removing every history item ends every order's curve at the same rank
    c = res["deletion_curves"]
    last = c[c["fraction"] == 1.0].groupby("pair")["rank"].nunique()
    assert (last == 1).all()


def test_an_oracle_method_has_tau_one(tmodel, toy, pairs):
    def loo(model, data, enc, methods, **_):  # the leave-one-out drops themselves
        base = model.forward_encoded(enc)
        out = np.zeros(enc.mask.shape)
        for p in range(enc.mask.shape[1]):
            out[:, p] = base - model.forward_encoded(remove_positions(enc, [p]))
        return {"oracle": out * enc.mask, "reversed": -out * enc.mask}

    res = method_faithfulness(tmodel, toy, pairs, methods=("oracle", "reversed"), max_pairs=5, random_orders=1, weights_fn=loo)
    t = res["table"].set_index("method")
    assert t.loc["oracle", "tau_median"] == pytest.approx(1.0)
    assert t.loc["reversed", "tau_median"] == pytest.approx(-1.0)
    assert res["most_faithful"] == "oracle"


def test_deletion_areas_and_choice_exact():
    curves = pd.DataFrame({"pair": [0] * 4, "order": ["a", "a", "random", "random"], "fraction": [0.0, 1.0, 0.0, 1.0],
                           "rank": [1, 5, 1, 3]})
    assert deletion_areas(curves) == {"a": 2.0, "random": 1.0}
    table = pd.DataFrame({"method": ["x", "y", "z"], "tau_median": [0.9, 0.5, np.nan], "deletion_area": [1.0, 4.0, 9.0],
                          "beats_random": [False, True, True]})
    assert most_faithful(table) == "y"  # x has the higher tau but deletes no better than random
    assert most_faithful(table.assign(beats_random=False)) == "x"
    assert most_faithful(table.iloc[2:]) is None


def test_bad_method_and_sizes(tmodel, toy, pairs):
    with pytest.raises(WhyrecError, match="unknown method.*'saliency'"):
        method_faithfulness(tmodel, toy, pairs, methods=("saliency",))
    with pytest.raises(WhyrecError, match="max_pairs=0"):
        method_faithfulness(tmodel, toy, pairs, max_pairs=0)


def test_rollout_quality_reads_as_a_verdict(tmodel, toy, pairs):
    x = AttentionRollout(method="rollout")
    expl = x.explain(tmodel, toy, pairs)
    x.quality_pairs = 4
    q = x.quality(tmodel, toy, expl)
    s = q.summary
    assert s["kind"] == "faithfulness" and s["most_faithful_method"] in ALL_METHODS
    assert s["faithful"] in ("yes", "partly", "no")
    assert set(s["per_method"]) == set(ALL_METHODS)
    v = verdict(s)
    assert v is not None and s["most_faithful_method"] in v.text
    assert "per_method" in q.tables


def test_no_history_gives_unknown(tmodel, toy):
    cold = pd.DataFrame({"user": [toy.users.index.max()], "item": [1]})  # the toy's cold user has no history
    res = method_faithfulness(tmodel, toy, cold)
    assert res["pairs_checked"] == 0 and res["most_faithful"] is None
    q = quality_result(res, "rollout")
    assert q.summary["faithful"] == "unknown"
