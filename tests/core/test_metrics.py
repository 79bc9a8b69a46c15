"""whyrec.metrics against independent references: scikit-learn's roc_auc_score (ties included)
and NDCG/HR worked by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from whyrec.data import ITEM, LABEL, USER
from whyrec.metrics import auc, evaluate_model, ndcg_hr_at_k


def test_auc_matches_sklearn_without_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = rng.normal(size=200) + labels
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auc_matches_sklearn_with_heavy_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = rng.integers(0, 4, 300).astype(float) + 0.5 * labels  # few distinct scores: many ties
    assert len(np.unique(scores)) < 10
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_hand_counted_pairs_with_a_tie():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4), (0.8>0.1), (0.4=0.4: half), (0.4>0.1)
    assert auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert roc_auc_score([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)


def test_auc_all_tied_is_one_half_and_order_does_not_matter():
    assert auc([0, 1, 0, 1, 1], [2.0] * 5) == pytest.approx(0.5)
    assert auc([1, 1, 1, 0, 0], [2.0] * 5) == pytest.approx(0.5)


def test_auc_perfect_and_inverted():
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0


def test_auc_counts_positive_labels_as_any_value_above_zero():
    # ratings-like labels: 2 and 5 are positives, 0 and -1 negatives
    assert auc([2, 5, 0, -1], [0.9, 0.8, 0.1, 0.2]) == 1.0
    assert auc(np.array([2, 5, 0, -1]), [0.1, 0.2, 0.9, 0.8]) == 0.0


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0]])
def test_auc_is_nan_when_one_class_is_missing(labels):
    assert math.isnan(auc(labels, [0.1, 0.5, 0.9]))


def test_ndcg_hr_hand_worked():
    # relevant at positions 1 and 3 (0-based) of the top 4: dcg = 1/log2(3) + 1/log2(5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    n, h = ndcg_hr_at_k(["a", "b", "c", "d", "e"], {"b", "d"}, k=4)
    assert n == pytest.approx(dcg / ideal)
    assert h == 1.0


def test_ndcg_hr_cut_at_k():
    # the only relevant item is ranked 3rd: outside the top 2
    assert ndcg_hr_at_k(["a", "b", "c"], {"c"}, k=2) == (0.0, 0.0)
    n, h = ndcg_hr_at_k(["a", "b", "c"], {"c"}, k=3)
    assert (n, h) == (pytest.approx(1 / math.log2(4)), 1.0)


def test_ndcg_ideal_is_capped_by_k_and_by_relevant_count():
    # 3 relevant, k=2, both top slots relevant: perfect
    assert ndcg_hr_at_k(["a", "b", "x"], {"a", "b", "c"}, k=2) == (pytest.approx(1.0), 1.0)
    # 1 relevant ranked first with k=10: perfect (the ideal has one term, not ten)
    assert ndcg_hr_at_k(["a"] + list("bcdefghij"), {"a"}, k=10) == (pytest.approx(1.0), 1.0)


def test_ndcg_first_position_has_full_gain():
    assert ndcg_hr_at_k(["a", "b"], {"a", "z"}, k=2)[0] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_ndcg_hr_default_k_is_ten():
    items = [f"i{j}" for j in range(12)]
    assert ndcg_hr_at_k(items, {"i10"}) == (0.0, 0.0)
    n, h = ndcg_hr_at_k(items, {"i9"})
    assert n == pytest.approx(1 / math.log2(11)) and h == 1.0


def test_ndcg_hr_no_relevant_items():
    assert ndcg_hr_at_k(["a", "b"], set(), k=2) == (0.0, 0.0)


class _TableModel:
    """Scores from a fixed table; recommends the best-scored unseen items of a user."""

    def __init__(self, scores: dict, seen: dict) -> None:
        self.scores, self.seen = scores, seen
        self.recommended: list = []

    def score(self, pairs: pd.DataFrame) -> np.ndarray:
        return np.array([self.scores[(u, i)] for u, i in zip(pairs[USER], pairs[ITEM])], dtype=float)

    def recommend(self, user, k: int) -> pd.DataFrame:
        self.recommended.append((user, k))
        cand = sorted(((s, i) for (u, i), s in self.scores.items() if u == user and i not in self.seen.get(user, ())),
                      reverse=True)
        return pd.DataFrame({ITEM: [i for _, i in cand[:k]]})


class _Data:
    """The part of RecData that evaluate_model reads: the test rows and each user's candidates."""

    def __init__(self, test, items=("a", "b", "c")):
        self.test = test
        self.items = np.array(items, dtype=object)

    def candidates(self, user):
        return self.items


def _toy():
    test = pd.DataFrame({USER: [1, 1, 2, 2, 3], ITEM: ["a", "b", "a", "c", "b"], LABEL: [1, 0, 0, 1, 1]})
    scores = {(1, "a"): 0.9, (1, "b"): 0.2, (1, "c"): 0.5, (2, "a"): 0.8, (2, "b"): 0.1, (2, "c"): 0.3,
              (3, "a"): 0.7, (3, "b"): 0.6, (3, "c"): 0.1}
    return test, _TableModel(scores, {})


def test_evaluate_model_hand_worked():
    test, model = _toy()
    out = evaluate_model(model, _Data(test), k=2)
    labels, scores = test[LABEL].to_numpy(), model.score(test)
    assert out["auc"] == pytest.approx(roc_auc_score(labels, scores))
    # user 1: recs a, c -> relevant a first: ndcg 1, hit; user 2: recs a, c -> c second: ndcg 1/log2(3), hit;
    # user 3: recs a, b -> b second: ndcg 1/log2(3), hit
    assert out["ndcg@2"] == pytest.approx((1 + 2 / math.log2(3)) / 3)
    assert out["hr@2"] == 1.0
    assert out["eval_users"] == 3
    assert sorted(model.recommended) == [(1, 2), (2, 2), (3, 2)]
    assert set(out) == {"auc", "ndcg@2", "hr@2", "eval_users"}


def test_evaluate_model_hit_rate_counts_misses():
    test, model = _toy()
    out = evaluate_model(model, _Data(test), k=1)
    # top 1: user 1 -> a (hit), user 2 -> a (miss: c is relevant), user 3 -> a (miss)
    assert out["hr@1"] == pytest.approx(1 / 3)
    assert out["ndcg@1"] == pytest.approx(1 / 3)


def test_evaluate_model_samples_at_most_max_users_reproducibly():
    test, model = _toy()
    out = evaluate_model(model, _Data(test), k=2, max_users=2, seed=0)
    assert out["eval_users"] == 2 and len(model.recommended) == 2
    again = _toy()[1]
    assert evaluate_model(again, _Data(test), k=2, max_users=2, seed=0) == out
    assert model.recommended == again.recommended
    full = evaluate_model(_toy()[1], _Data(test), k=2, max_users=3)
    assert full["eval_users"] == 3
    assert evaluate_model(_toy()[1], _Data(test), k=2, max_users=None)["eval_users"] == 3


def test_evaluate_model_default_k_and_user_cap():
    test, model = _toy()
    out = evaluate_model(model, _Data(test, items=[f"x{j}" for j in range(12)]))
    assert {"ndcg@10", "hr@10"} <= set(out) and out["eval_users"] == 3
    assert all(k == 10 for _, k in model.recommended)


def test_evaluate_model_without_test_rows_is_empty():
    assert evaluate_model(_toy()[1], _Data(None)) == {}
    assert evaluate_model(_toy()[1], _Data(_toy()[0].iloc[:0])) == {}


def test_evaluate_model_without_positives_gives_nan_ranking_metrics():
    test = pd.DataFrame({USER: [1, 2], ITEM: ["a", "b"], LABEL: [0, 0]})
    out = evaluate_model(_toy()[1], _Data(test), k=2)
    assert math.isnan(out["auc"]) and math.isnan(out["ndcg@2"]) and math.isnan(out["hr@2"])
    assert out["eval_users"] == 0


def test_auc_with_a_single_positive_or_a_single_negative():
    assert auc([1, 0, 0], [0.9, 0.5, 0.1]) == 1.0
    assert auc([0, 1, 1], [0.9, 0.5, 0.1]) == 0.0
    assert auc([1, 0, 1, 0, 0], [0.3, 0.3, 0.9, 0.1, 0.5]) == pytest.approx(roc_auc_score([1, 0, 1, 0, 0], [0.3, 0.3, 0.9, 0.1, 0.5]))


def test_auc_one_class_missing_returns_nan_without_dividing_by_zero():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(auc([0, 0], [0.1, 0.2])) and math.isnan(auc([1, 1], [0.1, 0.2]))


def _many_users(n_users: int):
    users = list(range(n_users))
    test = pd.DataFrame({USER: users * 2, ITEM: ["a"] * n_users + ["b"] * n_users, LABEL: [1] * n_users + [0] * n_users})
    scores = {(u, i): s for u in users for i, s in (("a", 0.9), ("b", 0.1))}
    return test, _TableModel(scores, {})


def test_evaluate_model_caps_at_200_users_by_default():
    test, model = _many_users(201)
    out = evaluate_model(model, _Data(test), k=1)
    assert out["eval_users"] == 200 and len(model.recommended) == 200


def test_evaluate_model_samples_users_without_replacement():
    test, model = _many_users(50)
    out = evaluate_model(model, _Data(test), k=1, max_users=40)
    users = [u for u, _ in model.recommended]
    assert out["eval_users"] == 40 and len(set(users)) == 40


def test_evaluate_model_default_seed_is_zero():
    picks = {}
    for seed in (None, 0, 1):
        test, model = _many_users(30)
        evaluate_model(model, _Data(test), k=1, max_users=5, **({} if seed is None else {"seed": seed}))
        picks[seed] = [u for u, _ in model.recommended]
    assert picks[None] == picks[0] and picks[0] != picks[1]


class _SeenAll(_Data):
    """User 2 has interacted with every item: nothing to rank."""

    def candidates(self, user):
        return self.items[:0] if user == 2 else self.items[:2]


def test_evaluate_model_skips_users_without_candidates_and_caps_k_by_them():
    test, model = _toy()
    out = evaluate_model(model, _SeenAll(test), k=5)
    assert sorted(model.recommended) == [(1, 2), (3, 2)]  # user 2 skipped, the users after it still ranked
    # user 1: a first (ndcg 1); user 3: recs a, b -> b second (1 / log2(3))
    assert out["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert out["hr@5"] == 1.0
