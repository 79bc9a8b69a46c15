"""Interventional TreeSHAP for LightGBM boosters, categorical splits included.

Why this exists: shap 0.51 parses a LightGBM categorical split into a float "bitmask"
threshold (sum of 2**(category-1)), which cannot represent the category sets LightGBM uses,
so ``shap.TreeExplainer(booster, data, feature_perturbation="interventional")`` fails its own
additivity check (or crashes) as soon as the model has a categorical split. Recommenders
always do (user and item ids). Path-dependent TreeSHAP is unaffected: shap delegates it to
LightGBM's ``pred_contrib``.

Algorithm (Lundberg et al. 2020, "independent" TreeSHAP, vectorised over all explained x
background pairs): for one reference row b the coalition game v(S) = f(x_S, b_~S) of a tree
is a sum over leaves. A leaf is reached by hybrid rows iff, for every feature f on its path,
the path is consistent with x's value (f taken from x) or b's. Features consistent only with
x form Px (must be in S), only with b form Pb (must be out of S); the leaf adds
value * 1[Px in S, Pb out of S], whose Shapley values are
  +value * (|Px|-1)! |Pb|! / (|Px|+|Pb|)!  for each feature of Px,
  -value * |Px|! (|Pb|-1)! / (|Px|+|Pb|)!  for each feature of Pb.
Averaging over the background gives the interventional SHAP values; they add up exactly to
f(x) - mean_b f(b).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np

ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold


@dataclass
class _Leaf:
    value: float
    path: list[tuple[int, bool]]  # (split node index, goes left)


@dataclass
class _Tree:
    feature: np.ndarray  # per split node
    leaves: list[_Leaf]
    nodes: list[dict]


def has_categorical_splits(booster) -> bool:
    def walk(node: dict) -> bool:
        if "split_index" not in node:
            return False
        return node.get("decision_type") == "==" or walk(node["left_child"]) or walk(node["right_child"])

    return any(walk(t["tree_structure"]) for t in booster.dump_model()["tree_info"])


def _parse(tree_info: dict) -> _Tree:
    nodes: list[dict] = []
    leaves: list[_Leaf] = []

    def walk(node: dict, path: list[tuple[int, bool]]) -> None:
        if "split_index" not in node:
            leaves.append(_Leaf(float(node.get("leaf_value", 0.0)), list(path)))
            return
        k = len(nodes)
        nodes.append(node)
        walk(node["left_child"], path + [(k, True)])
        walk(node["right_child"], path + [(k, False)])

    walk(tree_info["tree_structure"], [])
    return _Tree(np.array([n["split_feature"] for n in nodes], dtype=int), leaves, nodes)


def _goes_left(node: dict, v: np.ndarray) -> np.ndarray:
    """LightGBM's decision (Tree::NumericalDecision / CategoricalDecision) for column v."""
    if node["decision_type"] == "==":
        cats = np.array([int(c) for c in str(node["threshold"]).split("||")], dtype=np.int64)
        ok = ~np.isnan(v)
        iv = np.where(ok, np.nan_to_num(v, nan=-1), -1).astype(np.int64)
        return ok & (iv >= 0) & np.isin(iv, cats)
    missing = node.get("missing_type", "None")
    if missing != "NaN":
        v = np.where(np.isnan(v), 0.0, v)
    if missing == "Zero":
        is_missing = np.abs(v) <= ZERO_THRESHOLD
    elif missing == "NaN":
        is_missing = np.isnan(v)
    else:
        is_missing = np.zeros(len(v), dtype=bool)
    with np.errstate(invalid="ignore"):
        left = v <= float(node["threshold"])
    return np.where(is_missing, bool(node["default_left"]), left)


def _weights(depth: int) -> tuple[np.ndarray, np.ndarray]:
    n = depth + 1
    wp = np.zeros((n, n))
    wm = np.zeros((n, n))
    for a in range(n):
        for b in range(n - a):
            if a + b == 0:
                continue
            if a > 0:
                wp[a, b] = factorial(a - 1) * factorial(b) / factorial(a + b)
            if b > 0:
                wm[a, b] = factorial(a) * factorial(b - 1) / factorial(a + b)
    return wp, wm


def interventional_shap(booster, X: np.ndarray, B: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, float]:
    """SHAP values (n_x, n_features) of the raw margin against background B, and the base
    value mean_b f(b). ``chunk`` bounds the explained rows handled at once (memory)."""
    X = np.asarray(X, dtype=float)
    B = np.asarray(B, dtype=float)
    trees = [_parse(t) for t in booster.dump_model()["tree_info"]]
    depth = max((len(l.path) for t in trees for l in t.leaves), default=0)
    wp, wm = _weights(depth)
    base = float(np.mean(booster.predict(B, raw_score=True)))
    phi = np.zeros((len(X), X.shape[1]))
    n_b = len(B)
    step = max(1, chunk // max(n_b, 1))
    for t in trees:
        if not t.nodes:
            continue  # a stump adds the same constant to every row: no attribution
        dx_all = np.stack([_goes_left(n, X[:, n["split_feature"]]) for n in t.nodes])
        db = np.stack([_goes_left(n, B[:, n["split_feature"]]) for n in t.nodes])
        for leaf in t.leaves:
            feats = sorted({t.feature[k] for k, _ in leaf.path})
            slot = {f: j for j, f in enumerate(feats)}
            path = [(slot[t.feature[k]], k, left) for k, left in leaf.path]
            okb = np.ones((len(feats), n_b), dtype=bool)
            for j, k, left in path:
                okb[j] &= db[k] == left
            for i0 in range(0, len(X), step):
                dx = dx_all[:, i0 : i0 + step]
                okx = np.ones((len(feats), dx.shape[1]), dtype=bool)
                for j, k, left in path:
                    okx[j] &= dx[k] == left
                A = okx[:, :, None]
                Bm = okb[:, None, :]
                reach = np.all(A | Bm, axis=0)  # (n_x, n_b)
                if not reach.any():
                    continue
                inx = A & ~Bm
                inb = ~A & Bm
                px, pb = inx.sum(0), inb.sum(0)
                gp = np.where(reach, wp[px, pb], 0.0)
                gm = np.where(reach, wm[px, pb], 0.0)
                contrib = (inx * gp[None]).sum(2) - (inb * gm[None]).sum(2)  # (feats, n_x)
                phi[i0 : i0 + step, feats] += leaf.value * contrib.T / n_b
    return phi, base
