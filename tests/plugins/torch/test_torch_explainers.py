"""attention-map, integrated-gradients, grad-cam and history-counterfactual, each checked against
an independent computation."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch

from whyrec import Explanation
from whyrec.errors import UnsupportedError, WhyrecError
from whyrec_torch.attention_map import AttentionMap
from whyrec_torch.counterfactual import HistoryCounterfactual
from whyrec_torch.gradients import GradCAM, IntegratedGradients, ig_attributions

from torch_fixtures import COLD_USER, rank_without, rows_without


# -- attention-map ---------------------------------------------------------------------------
def test_attention_map_weights_reasons_and_figures(model, toy, pairs, tmp_path):
    ex = AttentionMap(max_figures=4)
    e = ex.explain(model, toy, pairs)
    X = toy.features(pairs[["user", "item"]])[model.feature_names]
    logits, w = model.attention(X)
    np.testing.assert_allclose(e.attributions.to_numpy(), w, atol=0)
    np.testing.assert_allclose(e.pairs["output_value"], logits)
    tab = e.extras["attention"]
    assert set(tab.columns) >= {"pair", "position", "history_title", "weight"}
    row0 = tab[tab["pair"] == 0].sort_values("weight", ascending=False).iloc[0]
    assert e.reasons[0][0].startswith(f"because you watched {row0['history_title']} ({row0['weight']:.2f})")
    assert row0["history_title"] == toy.item_title(int(X.loc[0, model.sequence_features[int(row0["position"])]]))
    cold = e.pairs.index[e.pairs["user"] == COLD_USER]
    assert len(cold) == 4 and e.summary["cold_start_pairs"] == 4
    for i in cold:
        assert e.reasons[i][0].startswith("no viewing history yet (cold start): this recommendation rests on non-history fields")
        assert "history" not in e.reasons[i][0].split("only (")[1]  # the fields named are not the history
    figs = ex.figures(e, toy)
    assert sorted(figs) == [f"attention_user_{u}" for u in (1, 2, 3, COLD_USER)]
    e.save(tmp_path / "a")
    back = Explanation.load(tmp_path / "a")
    assert back.reasons == e.reasons and len(back.extras["attention"]) == len(tab)


def test_explainers_refuse_other_models(toy):
    class Plain:
        name = "plain"
        capabilities = frozenset({"tree"})
        feature_names = ["item_id"]

    for ex in (AttentionMap(), IntegratedGradients(), GradCAM(), HistoryCounterfactual()):
        assert not ex.supports(Plain())
        with pytest.raises(UnsupportedError, match="needs a torch-attention model.*exact-field-shapley"):
            ex.explain(Plain(), toy, pd.DataFrame({"user": [1], "item": [2]}))


# -- integrated gradients ----------------------------------------------------------------------
def manual_ig(model, X, n):
    """Midpoint-rule integrated gradients written out with plain autograd (no Captum)."""
    net, enc = model.net, model.encode(X)
    items, cat, num, mask = model.to_tensors(enc)
    off = torch.as_tensor(model.encoder.cat_offsets).unsqueeze(0).expand_as(cat)
    with torch.no_grad():
        ex = net.embed(items, cat, num)
        eb = net.embed(torch.zeros_like(items), off, torch.zeros_like(num))
    grads = [torch.zeros_like(t) for t in ex]
    for a in (np.arange(n) + 0.5) / n:
        wgt = 1.0 / n
        parts = [(b + a * (x - b)).requires_grad_(True) for x, b in zip(ex, eb)]
        logit, _ = net.forward_embedded(*parts, mask)
        for g, p in zip(grads, torch.autograd.grad(logit.sum(), parts)):
            g += wgt * p
    return [((x - b) * g).detach().numpy() for x, b, g in zip(ex, eb, grads)]


def test_integrated_gradients_match_a_manual_implementation(model, toy, pairs):
    X = toy.features(pairs[["user", "item"]])[model.feature_names]
    res = ig_attributions(model, model.encode(X), steps=20, method="riemann_middle")
    a_items, a_cat, a_num = manual_ig(model, X, 20)
    np.testing.assert_allclose(res["items"], a_items.sum(-1), atol=2e-6)
    np.testing.assert_allclose(res["cat"], a_cat.sum(-1), atol=2e-6)
    np.testing.assert_allclose(res["num"], a_num, atol=2e-6)


def test_integrated_gradients_explanation(model, toy, pairs):
    e32 = IntegratedGradients(steps=32).explain(model, toy, pairs)
    e128 = IntegratedGradients(steps=128).explain(model, toy, pairs)
    X = toy.features(pairs[["user", "item"]])[model.feature_names]
    np.testing.assert_allclose(e32.pairs["output_value"], model.score_features(X), atol=1e-5)
    # completeness gap = |base + sum(attr) - output|, Captum's own delta agrees
    gap = np.abs(e32.pairs["base_value"] + e32.attributions.sum(axis=1) - e32.pairs["output_value"])
    np.testing.assert_allclose(e32.pairs["additivity_error"], gap, atol=1e-12)
    np.testing.assert_allclose(e32.pairs["additivity_error"], np.abs(e32.pairs["captum_delta"]), atol=1e-4)
    assert e128.max_additivity_error < 5e-3 and e128.summary["completeness_gap_max"] == e128.max_additivity_error
    # per field = sum of its features; padded history positions get exactly nothing
    for f, cols in toy.schema.select(model.feature_names).groups().items():
        np.testing.assert_allclose(e32.field_attributions[f], e32.attributions[cols].sum(axis=1), atol=1e-12)
    padded = X[model.sequence_features].isna().to_numpy()
    assert np.all(e32.attributions[model.sequence_features].to_numpy()[padded] == 0.0)
    cold = e32.pairs.index[e32.pairs["user"] == COLD_USER]
    assert all(e32.reasons[i][0].startswith("no viewing history yet (cold start)") for i in cold)
    assert all("hist_len" not in " ".join(e32.reasons[i]) for i in cold)


def test_integrated_gradients_refuses_captums_biased_trapezoid():
    with pytest.raises(WhyrecError, match="riemann_trapezoid.*sum to \\(n-1\\)/n"):
        IntegratedGradients(method="riemann_trapezoid")


@pytest.mark.parametrize("steps", [0, -5, 2.5, True])
def test_integrated_gradients_steps_must_be_positive(steps, model, toy):
    with pytest.raises(WhyrecError, match=f"steps={steps!r} must be a positive integer"):
        IntegratedGradients(steps=steps)
    with pytest.raises(WhyrecError, match="must be a positive integer"):
        ig_attributions(model, model.encode(toy.features(pd.DataFrame({"user": [1], "item": [2]}))[model.feature_names]), steps=steps)


# -- Grad-CAM ------------------------------------------------------------------------------------
def test_grad_cam_matches_captum_gradient_x_activation(model, toy, pairs):
    from captum.attr import LayerGradientXActivation

    e = GradCAM().explain(model, toy, pairs)
    X = toy.features(pairs[["user", "item"]])[model.feature_names]
    items, cat, num, mask = model.to_tensors(model.encode(X))
    ref = LayerGradientXActivation(lambda i, c, n, m: model.net(i, c, n, m), model.net.item_emb).attribute(
        (items, cat, num), additional_forward_args=(mask,))
    np.testing.assert_allclose(e.attributions.to_numpy(), ref.sum(-1)[:, 1:].detach().numpy(), atol=1e-6)
    cam = e.extras["grad_cam"]
    sums = cam.groupby("pair")["cam"].sum()
    assert np.all(np.isclose(sums, 1.0) | np.isclose(sums, 0.0)) and (cam["cam"] >= 0).all()
    assert set(cam["pair"]) == set(e.pairs.index[e.pairs["history_items"] > 0])
    assert sorted(GradCAM().figures(e, toy)) == ["grad_cam_user_1", "grad_cam_user_2", "grad_cam_user_3"]


# -- history counterfactual -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["rederive", "hold"])
def test_history_counterfactual_is_verified_independently(seq_model, toy, mode):
    m = seq_model
    pairs = pd.concat([m.recommend(u, 4) for u in (1, 2, 3, 4, 5, COLD_USER)], ignore_index=True)
    e = HistoryCounterfactual(history_features=mode).explain(m, toy, pairs)
    assert e.params["history_features"] == e.summary["history_features"] == mode
    re = mode == "rederive"
    found = e.pairs.index[e.pairs["found"] & (e.pairs["removed_count"] > 0)]
    assert len(found) >= 1
    for i in found:
        p = e.pairs.loc[i]
        removed = [k for k, c in enumerate(m.sequence_features) if e.attributions.at[i, c] == 1.0]
        assert len(removed) == p["removed_count"]
        assert rank_without(m, toy, p["user"], p["item"], removed, re) == p["new_rank"] > p["k"]
        assert rank_without(m, toy, p["user"], p["item"], [], re) == p["original_rank"] == p["rank"]
        if p["minimal"] == "verified":  # no smaller set drops it: check every one of them
            filled = [k for k in range(len(m.sequence_features)) if not np.isnan(toy.features(pairs.loc[[i], ["user", "item"]])[m.sequence_features[k]].iloc[0])]
            for size in range(1, len(removed)):
                for sub in combinations(filled, size):
                    assert rank_without(m, toy, p["user"], p["item"], sub, re) <= p["k"]
        assert e.reasons[i][0].startswith("if you had not watched ") and f"to #{int(p['new_rank'])}" in e.reasons[i][0]
    cold = e.pairs.index[e.pairs["user"] == COLD_USER]
    assert all(e.reasons[i][0].startswith("no viewing history yet (cold start)") for i in cold)
    assert not e.pairs.loc[cold, "found"].any()
    stays = e.pairs.index[~e.pairs["found"] & (e.pairs["history_items"] > 0)]
    for i in stays:  # "not possible" means: even the whole history removed keeps it in the top-k
        p = e.pairs.loc[i]
        assert rank_without(m, toy, p["user"], p["item"], range(int(p["history_items"])), re) == p["new_rank"] <= p["k"]
    assert "counterfactual_sizes" in HistoryCounterfactual().figures(e, toy)


def test_rederived_removal_changes_what_the_history_fed(model, toy):
    """With the genre features in the model, "had you not watched A" moves hist_len and
    genre_match too: the rederived edit scores like the hand-built rows, the held one does not."""
    from whyrec_torch.history_edit import HistoryEditor, UserCandidates

    user = 1
    uc = UserCandidates.build(model, toy, user, HistoryEditor.choose(model, toy, "auto"))
    assert uc.editor.mode == "rederive"
    held = UserCandidates.build(model, toy, user, HistoryEditor.choose(model, toy, "hold"))
    filled = [k for k in range(toy.history_length) if not np.isnan(uc.X.at[0, f"hist_{k}"])]
    assert len(filled) >= 2
    got = uc.scores(model, [[], filled[:2]])
    want_rows = toy.features(pd.DataFrame({"user": np.repeat(user, len(uc.items)), "item": uc.items}))
    assert np.allclose(got[0], model.score_features(want_rows[model.feature_names]), atol=1e-5)
    # the same removal, by hand
    assert np.allclose(got[1], model.score_features(rows_without(model, toy, user, filled[:2], rederive=True)), atol=1e-5)
    assert not np.allclose(got[1], model.score_features(rows_without(model, toy, user, filled[:2], rederive=False)), atol=1e-5)
    assert not np.allclose(got[1], held.scores(model, [filled[:2]])[0])
    assert uc.X["hist_len"].iloc[0] == len(filled)  # the editor leaves the cached rows alone


def test_toy_rederive_reproduces_the_featurizer(toy):
    X = toy.features(toy.test[["user", "item"]].head(40))
    assert toy.rederive_history(X).equals(X)


def test_history_counterfactual_bad_parameters():
    with pytest.raises(WhyrecError, match="k=0 must be >= 1"):
        HistoryCounterfactual(k=0)
    with pytest.raises(WhyrecError, match="max_removals=0 must be >= 1"):
        HistoryCounterfactual(max_removals=0)
    with pytest.raises(WhyrecError, match="history_features='sometimes' must be"):
        HistoryCounterfactual(history_features="sometimes")
