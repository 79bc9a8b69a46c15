"""Fidelity and explanation-agreement figures of whyrec-distill against independent
references: brute-force pair counts (Kendall tau-b), RBO summed prefix by prefix, scikit-learn's
AUC, scipy's Spearman, occlusion worked out row by row, and the explainer choice on a host."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from whyrec.errors import RegistryError
from whyrec_distill.agreement import OCCLUSION, agreement, attributions, choose_explainer, occlusion_attributions
from whyrec_distill.fidelity import (
    SEQUENCE_UNIT, align_attributions, attribution_rank_correlation, attribution_units, jaccard_at_k, kendall_tau,
    ndcg_hr, rank_biased_overlap, ratios, recall_at_k, teacher_label_auc, teacher_labels, top_k,
    topk_feature_agreement,
)


def tau_b_brute(x, y):
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        a, b = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if a == 0 and b == 0:
            continue
        if a == 0:
            tx += 1
        elif b == 0:
            ty += 1
        elif a == b:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / math.sqrt((conc + disc + tx) * (conc + disc + ty))


@pytest.mark.parametrize("seed", [0, 1])
def test_kendall_tau_b_against_pair_counting_with_ties(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 4, 25).astype(float), rng.integers(0, 5, 25).astype(float)
    assert kendall_tau(x, y) == pytest.approx(tau_b_brute(x, y), abs=1e-12)


def test_kendall_tau_undefined_cases():
    assert math.isnan(kendall_tau([1.0], [2.0]))
    assert math.isnan(kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(kendall_tau([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert kendall_tau([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1.0)


def rbo_brute(a, b, p):
    k = min(len(a), len(b))
    X = [len(set(a[:d]) & set(b[:d])) for d in range(1, k + 1)]
    return X[-1] / k * p ** k + (1 - p) / p * sum(X[d - 1] / d * p ** d for d in range(1, k + 1))


@pytest.mark.parametrize("p", [0.5, 0.9, 0.98])
def test_rank_biased_overlap_against_prefix_by_prefix_sum(p):
    rng = np.random.default_rng(7)
    a = list(rng.permutation(30)[:12])
    b = list(rng.permutation(30)[:15])
    assert rank_biased_overlap(a, b, p) == pytest.approx(rbo_brute(a, b, p), abs=1e-12)
    assert rank_biased_overlap(a, a, p) == pytest.approx(1.0)
    assert rank_biased_overlap([1, 2, 3], [4, 5, 6], p) == 0.0


def test_rank_biased_overlap_default_p_and_bounds():
    a, b = [1, 2, 3, 4], [2, 1, 4, 3]
    assert rank_biased_overlap(a, b) == pytest.approx(rbo_brute(a, b, 0.9))
    assert math.isnan(rank_biased_overlap([], [1]))
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=r"p=.* must be in \(0, 1\)"):
            rank_biased_overlap(a, b, bad)


def test_top_k_jaccard_recall():
    assert top_k([0.1, 0.5, 0.5, 0.9], 3).tolist() == [3, 1, 2]
    assert top_k([0.1, 0.5], 5).tolist() == [1, 0]
    assert jaccard_at_k([1, 2, 3], [2, 3, 4]) == pytest.approx(2 / 4)
    assert jaccard_at_k([], []) == 1.0
    assert recall_at_k([1, 2, 3, 4], [4, 9]) == 0.25
    assert math.isnan(recall_at_k([], [1]))


def test_teacher_labels_threshold_and_median_fallback():
    lab, thr = teacher_labels([-1.0, 0.0, 0.5, 2.0])
    assert lab.tolist() == [0, 0, 1, 1] and thr == 0.0
    lab, thr = teacher_labels([1.0, 2.0, 3.0, 4.0])  # all above 0: the median splits them
    assert thr == 2.5 and lab.tolist() == [0, 0, 1, 1]
    lab, thr = teacher_labels([-4.0, -3.0, -1.0], threshold=None)
    assert thr == -3.0 and lab.tolist() == [0, 0, 1]
    lab, thr = teacher_labels([1.0, 2.0, 3.0], threshold=1.5)
    assert thr == 1.5 and lab.tolist() == [0, 1, 1]


def test_teacher_label_auc_against_sklearn():
    rng = np.random.default_rng(3)
    t = rng.normal(size=200)
    s = t + rng.normal(size=200)
    s[::5] = s[1::5]  # ties
    assert teacher_label_auc(t, s) == pytest.approx(roc_auc_score(t > 0, s))
    assert teacher_label_auc(t, s, threshold=0.7) == pytest.approx(roc_auc_score(t > 0.7, s))


def test_ndcg_hr_wrapper():
    n, h = ndcg_hr([5, 6, 7], {7}, k=3)
    assert n == pytest.approx(1 / math.log2(4)) and h == 1.0
    assert ndcg_hr([5, 6, 7], {7}, k=2) == (0.0, 0.0)
    assert ndcg_hr(list(range(12)), {11}) == (0.0, 0.0)


def test_ratios_hand_worked_and_missing():
    r = ratios({"bytes": 1000, "parameters": 50, "rows_per_second": 100.0},
               {"bytes": 250, "parameters": 10, "rows_per_second": 400.0})
    assert r == {"size_ratio": 0.25, "parameter_ratio": 0.2, "speedup": 4.0}
    r = ratios({"bytes": 0, "weight_bytes": 80}, {"bytes": 10, "parameters": 5, "weight_bytes": 20,
                                                    "rows_per_second": float("nan")})
    assert math.isnan(r["size_ratio"]) and math.isnan(r["parameter_ratio"]) and math.isnan(r["speedup"])
    assert r["weight_size_ratio"] == 0.25
    assert "weight_size_ratio" in ratios({}, {"weight_bytes": 1}) and "weight_size_ratio" not in ratios({}, {})


def test_align_attributions_union_and_history_unit():
    units, t, s = align_attributions({"a": [1.0, 2.0], "hist_0": [0.5, 0.0], "hist_1": [0.25, 1.0]},
                                     {"b": [3.0, 4.0], "a": [1.0, 1.0]}, ["hist_0", "hist_1"])
    assert units == ["a", SEQUENCE_UNIT, "b"]
    assert t.tolist() == [[1.0, 0.75, 0.0], [2.0, 1.0, 0.0]]
    assert s.tolist() == [[1.0, 0.0, 3.0], [1.0, 0.0, 4.0]]
    assert attribution_units(["x", "h"], ["h"]) == {"x": "x", "h": SEQUENCE_UNIT}
    units, t, s = align_attributions({}, {"b": [1.0, 2.0, 3.0]})
    assert units == ["b"] and t.shape == (3, 1) and s[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_topk_agreement_hand_worked_with_ties_and_k_capped():
    t = np.array([[3.0, -2.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    s = np.array([[0.0, 5.0, -4.0, 1.0], [0.0, 0.0, 2.0, 2.0]])
    # row 0: teacher top-2 {0, 1}, student {1, 2} -> 1/2; row 1: ties -> earlier first: {0, 1} vs {2, 3} -> 0
    assert topk_feature_agreement(t, s, k=2).tolist() == [0.5, 0.0]
    assert topk_feature_agreement(t, s, k=10).tolist() == [1.0, 1.0]  # k capped at the 4 units
    assert topk_feature_agreement(t[0], s[0], k=3).tolist() == [pytest.approx(2 / 3)]
    assert topk_feature_agreement(t, s).tolist() == [pytest.approx(2 / 3), pytest.approx(2 / 3)]  # default k = 3: {0,1,2} vs {2,3,0}
    with pytest.raises(ValueError, match="differ in shape"):
        topk_feature_agreement(t, s[:, :3])


def test_attribution_rank_correlation_against_scipy():
    rng = np.random.default_rng(9)
    t, s = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    s[0] = np.round(s[0])  # ties
    t[4] = 1.0  # constant row: undefined
    got = attribution_rank_correlation(t, s)
    for i in range(4):
        assert got[i] == pytest.approx(spearmanr(t[i], s[i]).statistic)
    assert math.isnan(got[4])
    s2 = s.copy()
    s2[1] = 0.0
    assert math.isnan(attribution_rank_correlation(t, s2)[1])
    with pytest.raises(ValueError, match="differ in shape"):
        attribution_rank_correlation(t, s[:, :2])


def test_agreement_table():
    ta = pd.DataFrame({"a": [3.0, 0.0], "b": [2.0, 1.0], "c": [1.0, 2.0], "d": [0.0, 3.0]})
    sa = pd.DataFrame({"a": [3.0, 3.0], "b": [1.0, 2.0], "c": [2.0, 1.0], "d": [0.0, 0.0]})
    table, units = agreement(ta, sa, [], k=2)
    assert units == ["a", "b", "c", "d"]
    assert table["top2_agreement"].tolist() == [0.5, 0.0]
    assert table["teacher_top2"].tolist() == ["a, b", "d, c"] and table["student_top2"].tolist() == ["a, c", "a, b"]
    assert table["rank_correlation"].tolist() == pytest.approx([spearmanr([3, 2, 1, 0], [3, 1, 2, 0]).statistic,
                                                                 spearmanr([0, 1, 2, 3], [3, 2, 1, 0]).statistic])
    assert list(agreement(ta, sa, [])[0].columns) == ["top3_agreement", "rank_correlation", "teacher_top3", "student_top3"]


class Linear:
    name = "lin"
    feature_names = ["x", "y", "g"]

    def score_features(self, X):
        assert list(X.columns) == self.feature_names, list(X.columns)  # exactly the model's columns
        g = X["g"].astype(object).map({"p": 1.0, "q": -1.0}).to_numpy(float)
        return 2.0 * X["x"].to_numpy(float) - 0.5 * X["y"].to_numpy(float) + g


def test_occlusion_attributions_against_row_by_row_substitution():
    X = pd.DataFrame({"x": [1.0, 3.0], "y": [2.0, -2.0], "g": pd.Categorical(["p", "q"], categories=["p", "q"]),
                      "extra": [9, 9]})
    bg = pd.DataFrame({"x": [0.0, 1.0, 5.0], "y": [1.0, 1.0, 4.0], "g": pd.Categorical(["q", "q", "p"], categories=["p", "q"])})
    m = Linear()
    got = occlusion_attributions(m, X, bg, n_background=3, seed=0)
    assert list(got.columns) == ["x", "y", "g"]
    f0 = m.score_features(X[m.feature_names])
    for i in range(2):
        for c in m.feature_names:
            rows = pd.concat([X[m.feature_names].iloc[[i]]] * 3, ignore_index=True)
            rows[c] = bg[c].to_numpy()
            if c == "g":
                rows[c] = pd.Categorical(bg[c].astype(object), categories=["p", "q"])
            assert got.at[i, c] == pytest.approx(f0[i] - m.score_features(rows).mean()), (i, c)
    # for a linear model: w_j (x_j - mean background x_j)
    assert got["x"].tolist() == pytest.approx([2.0 * (1.0 - 2.0), 2.0 * (3.0 - 2.0)])


def test_occlusion_draws_n_background_rows_without_replacement():
    X = pd.DataFrame({"x": [0.0], "y": [0.0], "g": pd.Categorical(["p"], categories=["p", "q"])})
    bg = pd.DataFrame({"x": np.arange(40.0), "y": np.zeros(40), "g": pd.Categorical(["p"] * 40, categories=["p", "q"])})
    a = occlusion_attributions(Linear(), X, bg, n_background=40, seed=1)
    assert a.at[0, "x"] == pytest.approx(2.0 * (0.0 - np.arange(40.0).mean()))  # every row exactly once
    b = occlusion_attributions(Linear(), X, bg, seed=0)
    c = occlusion_attributions(Linear(), X, bg, n_background=16, seed=0)
    assert b.equals(c)
    assert not occlusion_attributions(Linear(), X, bg, n_background=16, seed=1).equals(c)


class FakeHost:
    def __init__(self, explainers):
        self.explainers = explainers

    def names(self, kind):
        assert kind == "explainers"
        return list(self.explainers)

    def create(self, kind, name, params):
        assert kind == "explainers"
        obj = self.explainers[name]
        if isinstance(obj, Exception):
            raise obj
        obj.params = params
        return obj


class Supports:
    def __init__(self, *ok):
        self.ok = set(ok)

    def supports(self, m):
        return m in self.ok


def test_choose_explainer_on_a_host():
    host = FakeHost({"kernel-shap": Supports("t", "s"), "permutation-shap": Supports("t"),
                     "tree-shap": RuntimeError("broken"), "integrated-gradients": Supports("t", "s")})
    assert choose_explainer("occlusion", ["t"], host) == (OCCLUSION, None)
    name, obj = choose_explainer("auto", ["t", "s"], host)
    assert name == "integrated-gradients"  # tree-shap broken, then the preference order
    assert choose_explainer("auto", ["t"], host)[0] == "integrated-gradients"
    assert choose_explainer("auto", ["x"], host) == (OCCLUSION, None)
    name, obj = choose_explainer("kernel-shap", ["t", "s"], host, {"n": 5})
    assert name == "kernel-shap" and obj.params == {"n": 5}
    assert choose_explainer("kernel-shap", ["t"], host)[1].params == {}
    with pytest.raises(RegistryError, match=r"^explainer 'permutation-shap' does not support \['s'\]; use explainer = 'auto' "
                                            r"to pick one that supports the teacher and every compressed model, or 'occlusion'$"):
        choose_explainer("permutation-shap", ["t", "s"], host)
    with pytest.raises(RegistryError, match=r"'lime' for explanation agreement is not registered \(registered: kernel-shap, "
                                            r"permutation-shap, tree-shap, integrated-gradients; or use 'auto' or 'occlusion'\)$"):
        choose_explainer("lime", ["t"], host)
    with pytest.raises(RegistryError, match=r"registered: none"):
        choose_explainer("lime", ["t"], FakeHost({}))


def test_attributions_from_an_explainer_prefers_feature_attributions():
    class E:
        def __init__(self, attr, fattr):
            self.attributions, self.field_attributions = attr, fattr

    class Expl:
        def __init__(self, e):
            self.e = e

        def explain(self, model, data, pairs):
            assert list(pairs.index) == list(range(len(pairs)))
            return self.e

    pairs = pd.DataFrame({"user": [1, 2], "item": [3, 4]}, index=[5, 6])
    fa = pd.DataFrame({"user": [1.0, 2.0]}, index=[7, 8])
    a = pd.DataFrame({"x": [0.5, 0.25]}, index=[7, 8])
    got = attributions(None, None, pairs, "e", Expl(E(a, fa)), None)
    assert got.to_dict("list") == {"x": [0.5, 0.25]} and list(got.index) == [0, 1]
    got = attributions(None, None, pairs, "e", Expl(E(None, fa)), None)
    assert got.to_dict("list") == {"user": [1.0, 2.0]} and list(got.index) == [0, 1]


def test_weight_ratio_when_only_the_teacher_has_weight_bytes_and_the_unit_name():
    r = ratios({"weight_bytes": 100}, {})
    assert "weight_size_ratio" in r and math.isnan(r["weight_size_ratio"])
    assert SEQUENCE_UNIT == "history items"


def test_rank_correlation_of_a_vector_spanning_exactly_one_and_constant_sides_warn_nothing():
    import warnings

    t = np.array([[0.2, 0.9, 0.4], [1.0, 2.0, 3.0]])
    s = np.array([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]])  # row 0: range exactly 1; row 1: constant
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = attribution_rank_correlation(t, s)
    assert got[0] == pytest.approx(spearmanr(t[0], s[0]).statistic) and math.isnan(got[1])


def test_choose_explainer_defaults_to_the_installed_plugins():
    name, obj = choose_explainer("auto", [object()])  # nothing supports a bare object: occlusion
    assert (name, obj) == (OCCLUSION, None)
    with pytest.raises(RegistryError, match=r"'no-such' for explanation agreement is not registered \(registered: .*tree-shap"):
        choose_explainer("no-such", [object()])


def test_attributions_default_to_occlusion_with_seed_zero():
    X = pd.DataFrame({"x": np.arange(3.0), "y": np.ones(3), "g": pd.Categorical(["p", "q", "p"], categories=["p", "q"])})
    bg = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0), "g": pd.Categorical(["p", "q"] * 20, categories=["p", "q"])})

    class Data:
        def features(self, pairs):
            return X

    got = attributions(Linear(), Data(), pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 3]}), OCCLUSION, None, bg)
    pd.testing.assert_frame_equal(got, occlusion_attributions(Linear(), X, bg, seed=0))
    assert not got.equals(occlusion_attributions(Linear(), X, bg, seed=1))
