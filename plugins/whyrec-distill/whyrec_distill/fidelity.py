"""Fidelity of a compressed model to its teacher: pure functions over scores and rankings.

Everything here is numpy/scipy only (no torch, no model objects), so each figure of the
fidelity report has a definition one can test against values worked out by hand:

- ``teacher_label_auc``: AUC of the student's scores against the teacher's own decisions;
- ``jaccard_at_k`` / ``recall_at_k``: overlap of the two top-k lists;
- ``kendall_tau`` / ``rank_biased_overlap``: agreement of the full candidate rankings;
- ``ndcg_hr``: NDCG@k and HR@k of one model against real held-out interactions;
- ``ratios``: size, parameter and throughput ratios;
- ``topk_feature_agreement`` / ``attribution_rank_correlation``: do the two models explain
  the same recommendation with the same features?
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "top_k", "jaccard_at_k", "recall_at_k", "kendall_tau", "rank_biased_overlap", "teacher_labels",
    "teacher_label_auc", "ndcg_hr", "ratios", "topk_feature_agreement", "attribution_rank_correlation",
    "attribution_units", "align_attributions",
]


# -- rankings ------------------------------------------------------------------------------
def top_k(scores: Sequence[float], k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first; ties keep the earlier index (stable),
    exactly as ``BaseModel.recommend`` orders candidates."""
    s = np.asarray(scores, dtype=float)
    return np.argsort(-s, kind="stable")[:k]


def jaccard_at_k(a: Iterable, b: Iterable) -> float:
    """|A ∩ B| / |A ∪ B| of two top-k lists (1.0 for two empty lists)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return 1.0 if not union else len(sa & sb) / len(union)


def recall_at_k(reference: Iterable, other: Iterable) -> float:
    """Share of the reference (teacher) top-k that also appears in the other top-k list."""
    ref = set(reference)
    return float("nan") if not ref else len(ref & set(other)) / len(ref)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two score vectors over the same candidates (ties handled);
    NaN when either vector is constant."""
    from scipy.stats import kendalltau

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(kendalltau(x, y).statistic)


def rank_biased_overlap(a: Sequence, b: Sequence, p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap (Webber, Moffat & Zobel 2010, eq. 32) of two rankings
    (lists of ids, best first, no repeats).

    RBO_ext = X_k/k * p^k + (1-p)/p * sum_{d=1..k} X_d/d * p^d, where X_d is the overlap of
    the two depth-d prefixes and k the common evaluation depth (the shorter list's length).
    Two identical rankings give 1, disjoint ones 0; ``p`` sets how top-heavy it is (the
    expected depth a reader looks at is 1/(1-p): 10 for the default 0.9).
    """
    if not 0 < p < 1:
        raise ValueError(f"rank_biased_overlap: p={p} must be in (0, 1)")
    a, b = list(a), list(b)
    k = min(len(a), len(b))
    if k == 0:
        return float("nan")
    # X_d for every d in one pass: an item joins the overlap at depth max(rank in a, rank in b)
    pos_b = {item: i for i, item in enumerate(b[:k])}
    joins = np.zeros(k + 1, dtype=np.int64)
    for i, item in enumerate(a[:k]):
        j = pos_b.get(item)
        if j is not None:
            joins[max(i, j) + 1] += 1
    x = np.cumsum(joins)[1:]  # x[d-1] = X_d
    d = np.arange(1, k + 1)
    pd_ = p ** d
    return float(x[-1] / k * p ** k + (1 - p) / p * np.sum(x / d * pd_))


# -- labels and accuracy -------------------------------------------------------------------
def teacher_labels(teacher_scores: Sequence[float], threshold: float | None = 0.0) -> tuple[np.ndarray, float]:
    """The teacher's own click decisions: 1 where its margin exceeds ``threshold`` (0 = a
    probability of 0.5 for a logit). When that leaves one class empty, the median margin is
    the threshold instead (so the AUC stays defined); returns (labels, threshold used)."""
    t = np.asarray(teacher_scores, dtype=float)
    thr = 0.0 if threshold is None else float(threshold)
    lab = t > thr
    if lab.all() or not lab.any():
        thr = float(np.median(t))
        lab = t > thr
    return lab.astype(np.int64), thr


def teacher_label_auc(teacher_scores: Sequence[float], student_scores: Sequence[float], threshold: float | None = 0.0) -> float:
    """AUC of the student's scores on the teacher's labels (see ``teacher_labels``)."""
    from whyrec.metrics import auc

    lab, _ = teacher_labels(teacher_scores, threshold)
    return auc(lab, np.asarray(student_scores, dtype=float))


def ndcg_hr(ranked_items: Sequence, relevant: set, k: int = 10) -> tuple[float, float]:
    """NDCG@k and HR@k of one ranked list against the held-out relevant items."""
    from whyrec.metrics import ndcg_hr_at_k

    return ndcg_hr_at_k(list(ranked_items), set(relevant), k)


def ratios(teacher: dict, student: dict) -> dict:
    """Student/teacher ratios of size and parameters, and the scoring speed-up.

    Both dicts may hold ``bytes``, ``parameters``, ``rows_per_second`` (and ``weight_bytes``,
    giving ``weight_size_ratio``); a figure missing or zero on either side gives NaN.
    ``speedup`` = student throughput / teacher throughput.
    """
    def div(num: float | None, den: float | None) -> float:
        if num is None or den is None or den == 0 or (isinstance(num, float) and math.isnan(num)):
            return float("nan")
        return float(num) / float(den)

    out = {
        "size_ratio": div(student.get("bytes"), teacher.get("bytes")),
        "parameter_ratio": div(student.get("parameters"), teacher.get("parameters")),
        "speedup": div(student.get("rows_per_second"), teacher.get("rows_per_second")),
    }
    if "weight_bytes" in student or "weight_bytes" in teacher:
        out["weight_size_ratio"] = div(student.get("weight_bytes"), teacher.get("weight_bytes"))
    return out


# -- explanation agreement -----------------------------------------------------------------
SEQUENCE_UNIT = "history items"


def attribution_units(features: Sequence[str], sequence_features: Iterable[str] = ()) -> dict[str, str]:
    """Map each feature to the unit explanations are compared on: itself, except that every
    position of the history sequence (hist_0 .. hist_N-1) becomes one unit, "history items"
    (one model may read the sequence position by position, the other not at all)."""
    seq = set(sequence_features)
    return {f: (SEQUENCE_UNIT if f in seq else f) for f in features}


def align_attributions(teacher: "dict[str, np.ndarray]", student: "dict[str, np.ndarray]",
                       sequence_features: Iterable[str] = ()) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Put two per-feature attribution tables (feature -> values over the same pairs) on the
    union of their units; a unit one model does not use gets attribution 0 there, so a
    student that ignores a feature the teacher relies on loses agreement for it.

    Returns (units, teacher matrix [pairs, units], student matrix [pairs, units])."""
    seq = list(sequence_features)
    tu = attribution_units(list(teacher), seq)
    su = attribution_units(list(student), seq)
    units: list[str] = []
    for u in [*tu.values(), *su.values()]:
        if u not in units:
            units.append(u)
    n = len(next(iter(teacher.values()))) if teacher else len(next(iter(student.values())))

    def matrix(attr: dict, unit_of: dict) -> np.ndarray:
        m = np.zeros((n, len(units)))
        for f, v in attr.items():
            m[:, units.index(unit_of[f])] += np.asarray(v, dtype=float)
        return m

    return units, matrix(teacher, tu), matrix(student, su)


def _top_sets(m: np.ndarray, k: int) -> list[set]:
    order = np.argsort(-np.abs(m), axis=1, kind="stable")[:, :k]
    return [set(r) for r in order]


def topk_feature_agreement(teacher: np.ndarray, student: np.ndarray, k: int = 3) -> np.ndarray:
    """Per pair: |top-k units of the teacher ∩ top-k units of the student| / k, units ranked by
    absolute attribution (ties: the earlier unit first). Matrices are [pairs, units]."""
    t, s = np.atleast_2d(np.asarray(teacher, float)), np.atleast_2d(np.asarray(student, float))
    if t.shape != s.shape:
        raise ValueError(f"attribution matrices differ in shape: {t.shape} vs {s.shape}; align them first")
    k = min(k, t.shape[1])
    return np.array([len(a & b) / k for a, b in zip(_top_sets(t, k), _top_sets(s, k))], dtype=float)


def attribution_rank_correlation(teacher: np.ndarray, student: np.ndarray) -> np.ndarray:
    """Per pair: Spearman rank correlation of the two signed attribution vectors (NaN where
    either is constant)."""
    from scipy.stats import rankdata

    t, s = np.atleast_2d(np.asarray(teacher, float)), np.atleast_2d(np.asarray(student, float))
    if t.shape != s.shape:
        raise ValueError(f"attribution matrices differ in shape: {t.shape} vs {s.shape}; align them first")
    out = np.full(len(t), np.nan)
    for i, (a, b) in enumerate(zip(t, s)):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        ra, rb = rankdata(a), rankdata(b)
        out[i] = float(np.corrcoef(ra, rb)[0, 1])
    return out
