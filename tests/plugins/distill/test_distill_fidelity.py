"""Fidelity metrics against values worked out by hand."""
import math

import numpy as np
import pytest

from whyrec_distill.fidelity import (
    SEQUENCE_UNIT, align_attributions, attribution_rank_correlation, jaccard_at_k, kendall_tau, ndcg_hr,
    rank_biased_overlap, ratios, recall_at_k, teacher_label_auc, teacher_labels, top_k, topk_feature_agreement,
)


def test_top_k_is_stable_like_recommend():
    assert top_k([0.1, 0.5, 0.5, 0.9], 3).tolist() == [3, 1, 2]


def test_jaccard_and_recall():
    assert jaccard_at_k([1, 2, 3], [2, 3, 4]) == 0.5  # 2 shared of 4 distinct
    assert jaccard_at_k([1, 2], [1, 2]) == 1.0
    assert jaccard_at_k([1], [2]) == 0.0
    assert recall_at_k([1, 2, 3, 4], [2, 4, 9, 10]) == 0.5
    assert math.isnan(recall_at_k([], [1]))


def test_kendall_tau_one_swap_of_four():
    # 6 pairs, 5 concordant, 1 discordant: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_rank_biased_overlap_exact():
    # X1=0, X2=2, X3=3, p=.5: 3/3*.125 + 1*(0 + 2/2*.25 + 3/3*.125) = .5
    assert rank_biased_overlap(list("abc"), list("bac"), p=0.5) == pytest.approx(0.5)
    # X1=1, X2=1: 1/2*.25 + 1*(1*.5 + 1/2*.25) = .75
    assert rank_biased_overlap(list("ab"), list("ac"), p=0.5) == pytest.approx(0.75)
    assert rank_biased_overlap(list("abcdef"), list("abcdef"), p=0.9) == pytest.approx(1.0)
    assert rank_biased_overlap(list("abc"), list("xyz"), p=0.9) == 0.0
    with pytest.raises(ValueError, match="p=1"):
        rank_biased_overlap("ab", "ab", p=1)


def test_teacher_labels_and_auc():
    lab, thr = teacher_labels([2.0, -1.0, 1.0, -2.0])
    assert lab.tolist() == [1, 0, 1, 0] and thr == 0.0
    # positives score .9 and .2, negatives .1 and .3: 3 of 4 pairs ordered right
    assert teacher_label_auc([2.0, -1.0, 1.0, -2.0], [0.9, 0.1, 0.2, 0.3]) == pytest.approx(0.75)
    # all margins positive: the median becomes the threshold
    lab, thr = teacher_labels([1.0, 2.0, 3.0, 4.0])
    assert lab.tolist() == [0, 0, 1, 1] and thr == 2.5


def test_ndcg_hr():
    ndcg, hr = ndcg_hr([5, 6, 7], {6}, k=3)
    assert ndcg == pytest.approx(1 / math.log2(3)) and hr == 1.0
    assert ndcg_hr([5, 6, 7], {9}, k=3) == (0.0, 0.0)


def test_ratios():
    r = ratios({"bytes": 1000, "parameters": 200, "rows_per_second": 1000.0},
               {"bytes": 100, "parameters": 10, "rows_per_second": 5000.0})
    assert r == {"size_ratio": 0.1, "parameter_ratio": 0.05, "speedup": 5.0}
    assert math.isnan(ratios({"bytes": 0}, {"bytes": 5})["size_ratio"])
    assert ratios({"weight_bytes": 400}, {"weight_bytes": 20})["weight_size_ratio"] == 0.05


def test_topk_agreement_and_rank_correlation():
    t = np.array([[3.0, -2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    s = np.array([[2.0, 0.0, -4.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    # row 0: teacher top-2 {0, 1}, student top-2 {2, 0} -> 1/2; row 1 identical -> 1
    assert topk_feature_agreement(t, s, k=2).tolist() == [0.5, 1.0]
    rc = attribution_rank_correlation(np.array([[1, 2, 3, 4], [1, 1, 2, 0]])[:, :3],
                                      np.array([[4, 3, 2, 1], [1, 2, 3, 0]])[:, :3])
    # [1,2,3] vs [4,3,2] -> -1; tied ranks [1.5,1.5,3] vs [1,2,3] -> 1.5/sqrt(3)
    assert rc[0] == pytest.approx(-1.0) and rc[1] == pytest.approx(1.5 / math.sqrt(3))
    assert math.isnan(attribution_rank_correlation([[1, 1, 1]], [[1, 2, 3]])[0])
    with pytest.raises(ValueError, match="shape"):
        topk_feature_agreement(np.zeros((1, 3)), np.zeros((1, 4)))


def test_align_attributions_merges_the_history_sequence():
    units, t, s = align_attributions({"age": [1.0], "hist_0": [0.5], "hist_1": [0.25]},
                                     {"age": [2.0], "genre": [3.0]}, sequence_features=["hist_0", "hist_1"])
    assert units == ["age", SEQUENCE_UNIT, "genre"]
    assert t.tolist() == [[1.0, 0.75, 0.0]] and s.tolist() == [[2.0, 0.0, 3.0]]
