"""whyrec's own path-dependent TreeSHAP for LightGBM boosters (numba), equal to ``pred_contrib``.

The algorithm (after FastTreeSHAP v2, Yang 2022; our derivation and code). For one leaf with
value v, let P be the distinct features on its root path (d of them), z_j the product of the
cover ratios count(child)/count(node) of the path's splits on feature j, and S the features
on which the row x follows every split of the path. Path-dependent TreeSHAP is the Shapley
value of the game g(Q) = v * prod_{j in Q} [j in S] * prod_{j in P \\ Q} z_j summed over
leaves. Written through its Harsanyi dividends, the value of feature i is

    phi_i = v (o_i - z_i) * integral_0^1 prod_{j != i} (z_j + t (o_j - z_j)) dt,  o_j = [j in S]

and with H(U) = v * prod_{j in P \\ U} z_j * integral (1-t)^(d-1-|U|) prod_{j in U} (z_j + t(1-z_j)) dt

    phi_i = -H(S)                          for i not in S,
    phi_i = (1 - z_i) / z_i * H(S \\ {i})  for i in S.

H depends on the row only through the subset, so it is tabulated once per model for every
leaf (2^d values; the MovieLens model has d <= 11, 1.6 MB in all) and a row costs one pass over
each tree's nodes (which gives S for every leaf as a bitmask) plus O(d) per leaf, instead of the
O(d^2) path extensions of TreeSHAP. H expands into positive terms only (elementary symmetric
polynomials of z times Beta integrals w!(d-1-w)!/d!), so it is computed without cancellation.
Leaves with more than ``MAX_TABLE_DEPTH`` distinct features are evaluated directly, O(d^3).

Decisions follow LightGBM 4's ``NumericalDecision`` / ``CategoricalDecision`` exactly: NaN is
read as 0 unless the split's missing type is NaN, and so is any |x| <= 1e-35f (LightGBM's row
reader drops such values, in ``predict`` and ``pred_contrib`` alike); missing values (NaN, or 0
for missing type Zero) take the split's default direction; categorical values are truncated to
int, NaN and negatives go right, otherwise left iff the category is in the split's set.

numba is imported only here, when an engine is built; kernels are compiled once per process
and cached on disk (``cache=True``), and they release the GIL, so threads run them in parallel.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from whyrec.errors import UnsupportedError, DataError

MAX_TABLE_DEPTH = 16  # 2^16 doubles per leaf at most; deeper leaves are computed directly
MIN_ROWS_PER_THREAD = 32  # below this a thread hand-off costs more than the rows
ROW_BLOCK = 32  # rows that walk one tree before the next (see _treeshap_kernels.shap_rows)
ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float)

_NUMERIC, _CATEGORICAL = 0, 1
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}


# -- the booster as flat arrays -------------------------------------------------------------
class _Flat:
    """Flat node and leaf arrays of every tree, filled by :func:`_flatten`."""

    def __init__(self) -> None:
        self.n_feat: list[int] = []
        self.n_thr: list[float] = []
        self.n_kind: list[int] = []
        self.n_miss: list[int] = []
        self.n_defl: list[int] = []
        self.n_left: list[int] = []
        self.n_right: list[int] = []
        self.n_slot: list[int] = []
        self.n_cat_off: list[int] = []
        self.n_cat_len: list[int] = []
        self.cat_bits: list[int] = []
        self.l_value: list[float] = []
        self.l_d: list[int] = []
        self.l_off: list[int] = []
        self.l_feat: list[int] = []
        self.l_z: list[float] = []
        self.max_depth = 0
        self.max_unique = 0


def _count(node: dict) -> float:
    return float(node["internal_count"] if "split_index" in node else node["leaf_count"])


def _category_bits(threshold: str) -> list[int]:
    cats = [int(c) for c in str(threshold).split("||") if c != ""]
    words = [0] * (max(cats) // 32 + 1 if cats else 0)
    for c in cats:
        words[c // 32] |= 1 << (c % 32)
    return words


def _flatten(tree: dict, flat: _Flat) -> float:
    """Append one tree to ``flat``; returns its expected value (LightGBM's ``ExpectedValue``)."""
    root = tree["tree_structure"]
    if "split_index" not in root:  # a single leaf: only the expected value
        return float(root["leaf_value"])
    total = float(root["internal_count"])
    leaves: list[tuple[int, float]] = []

    def visit(node: dict, depth: int, feats: list[int], zs: list[float]) -> int:
        flat.max_depth = max(flat.max_depth, depth)
        if "split_index" not in node:
            if "leaf_coeff" in node:
                raise UnsupportedError("treeshap engine: linear trees (linear_tree = true) are not supported; "
                                       "use engine = \"shap\"")
            leaf = len(flat.l_value)
            flat.l_value.append(float(node["leaf_value"]))
            flat.l_d.append(len(feats))
            flat.l_off.append(len(flat.l_feat))
            flat.l_feat.extend(feats)
            flat.l_z.extend(zs)
            flat.max_unique = max(flat.max_unique, len(feats))
            leaves.append((int(node["leaf_index"]), float(node["leaf_count"]) / total * float(node["leaf_value"])))
            return ~leaf
        i = len(flat.n_feat)
        f = int(node["split_feature"])
        slot = feats.index(f) if f in feats else len(feats)
        flat.n_feat.append(f)
        flat.n_slot.append(slot)
        if node["decision_type"] == "==":
            bits = _category_bits(node["threshold"])
            flat.n_kind.append(_CATEGORICAL)
            flat.n_thr.append(0.0)
            flat.n_cat_off.append(len(flat.cat_bits))
            flat.n_cat_len.append(len(bits))
            flat.cat_bits.extend(bits)
        elif node["decision_type"] == "<=":
            flat.n_kind.append(_NUMERIC)
            flat.n_thr.append(float(node["threshold"]))
            flat.n_cat_off.append(0)
            flat.n_cat_len.append(0)
        else:
            raise UnsupportedError(f"treeshap engine: split decision_type {node['decision_type']!r} is not a LightGBM "
                                   "numerical ('<=') or categorical ('==') split; use engine = \"shap\"")
        flat.n_miss.append(_MISSING[str(node.get("missing_type", "None"))])
        flat.n_defl.append(1 if node.get("default_left", False) else 0)
        flat.n_left.append(0)
        flat.n_right.append(0)
        w = _count(node)
        for side, store in (("left_child", flat.n_left), ("right_child", flat.n_right)):
            child = node[side]
            ratio = _count(child) / w
            if slot < len(feats):  # the feature is already on the path: its fraction multiplies
                z2 = list(zs)
                z2[slot] *= ratio
                store[i] = visit(child, depth + 1, feats, z2)
            else:
                store[i] = visit(child, depth + 1, feats + [f], zs + [ratio])
        return i

    visit(root, 0, [], [])
    # LightGBM sums leaf_count/total * value in leaf-index order
    return float(sum(v for _, v in sorted(leaves)))


class TreeShapEngine:
    """Path-dependent TreeSHAP of one LightGBM booster's raw margin.

    ``shap_values(X, threads)`` returns (phi (n, F), expected value), equal to the booster's
    ``predict(X, pred_contrib=True)`` (phi = its first F columns, base = its last) to
    floating-point rounding. Build with :meth:`for_booster` (cached on the booster).
    """

    def __init__(self, dump: dict) -> None:
        if int(dump.get("num_tree_per_iteration", 1)) != 1:
            raise UnsupportedError("treeshap engine: multiclass boosters (num_tree_per_iteration "
                                   f"{dump['num_tree_per_iteration']}) are not supported; use engine = \"shap\"")
        trees = dump["tree_info"]
        self.n_features = int(dump["max_feature_idx"]) + 1
        self.feature_names = list(dump.get("feature_names", []))
        flat = _Flat()
        expected = 0.0
        t_node, t_leaf = [0], [0]
        for t in trees:
            expected += _flatten(t, flat)
            t_node.append(len(flat.n_feat))
            t_leaf.append(len(flat.l_value))
        if flat.max_unique > 63:
            raise UnsupportedError(f"treeshap engine: a leaf path has {flat.max_unique} distinct features (at most 63); "
                                   "use engine = \"shap\"")
        # boosting = "rf": LightGBM's raw score and pred_contrib both sum the trees (no average)
        self.expected_value = expected
        self.n_trees = len(trees)
        self.max_depth = flat.max_depth
        self.max_unique = flat.max_unique
        i64, f64 = np.int64, np.float64
        self.t_node = np.asarray(t_node, i64)
        self.t_leaf = np.asarray(t_leaf, i64)
        self.n_feat = np.asarray(flat.n_feat, i64)
        self.n_thr = np.asarray(flat.n_thr, f64)
        self.n_kind = np.asarray(flat.n_kind, np.int8)
        self.n_miss = np.asarray(flat.n_miss, np.int8)
        self.n_defl = np.asarray(flat.n_defl, np.int8)
        # children as indices into a tree's scratch masks: its nodes, then its leaves
        tree_of = np.repeat(np.arange(len(trees)), np.diff(self.t_node))
        n0, n_count, f0 = self.t_node[:-1][tree_of], np.diff(self.t_node)[tree_of], self.t_leaf[:-1][tree_of]
        self.n_lslot, self.n_rslot = (
            np.where(c >= 0, c - n0, n_count + (~c) - f0).astype(i64)
            for c in (np.asarray(flat.n_left, i64), np.asarray(flat.n_right, i64)))
        self.n_bit = ~(np.int64(1) << np.asarray(flat.n_slot, i64))  # clears the split's path feature
        self.scratch = int(max(np.diff(self.t_node) + np.diff(self.t_leaf), default=1)) + 1
        self.n_cat_off = np.asarray(flat.n_cat_off, i64)
        self.n_cat_len = np.asarray(flat.n_cat_len, i64)
        self.cat_bits = np.asarray(flat.cat_bits, np.uint32)
        self.l_value = np.asarray(flat.l_value, f64)
        self.l_d = np.asarray(flat.l_d, i64)
        self.l_off = np.asarray(flat.l_off, i64)
        self.l_feat = np.asarray(flat.l_feat, i64)
        self.l_z = np.asarray(flat.l_z, f64)
        self.l_ratio = np.where(self.l_z > 0, (1.0 - self.l_z) / np.where(self.l_z > 0, self.l_z, 1.0), 0.0)
        # a leaf whose path has a zero cover fraction cannot use the ratio form: computed directly
        zero_z = np.zeros(len(self.l_d), bool)
        zero_z[np.repeat(np.arange(len(self.l_d)), self.l_d)[self.l_z <= 0]] = True
        table = (self.l_d <= MAX_TABLE_DEPTH) & ~zero_z
        sizes = np.where(table, 1 << np.minimum(self.l_d, MAX_TABLE_DEPTH), 0)
        self.l_hoff = np.where(table, np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes, -1).astype(i64)
        k = _kernels()
        self.H = np.zeros(int(sizes.sum()), f64)
        k.build_tables(self.l_value, self.l_d, self.l_off, self.l_z, self.l_hoff, self.H)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def for_booster(cls, booster: Any) -> "TreeShapEngine":
        """The engine of ``booster`` (the trees ``booster.predict`` uses by default: the best
        iteration when there is one), built once and kept on the booster object."""
        key = (int(booster.current_iteration()), int(getattr(booster, "best_iteration", 0) or 0))
        hit = getattr(booster, "_whyrec_treeshap", None)
        if hit is not None and hit[0] == key:
            return hit[1]
        engine = cls(booster.dump_model())
        try:
            booster._whyrec_treeshap = (key, engine)
        except AttributeError:  # a booster-like object without a __dict__: no cache
            pass
        return engine

    # -- evaluation -------------------------------------------------------------------------
    def shap_values(self, X: Any, threads: int = 1) -> tuple[np.ndarray, float]:
        """(phi (n, F), expected value) for the rows of the float matrix ``X`` (n, F).

        threads: 1 runs in the calling thread; n > 1 splits the rows over n threads (at least
        MIN_ROWS_PER_THREAD rows each); 0 uses every CPU."""
        M = np.asarray(X, dtype=np.float64)
        if M.ndim != 2 or M.shape[1] != self.n_features:
            raise DataError(f"treeshap engine: expected a matrix of {self.n_features} feature columns "
                            f"(the booster's features), got shape {M.shape}; pass model.encode(X)")
        M = np.ascontiguousarray(M)
        n = len(M)
        out = np.zeros((n, self.n_features), np.float64)
        if n == 0:
            return out, self.expected_value
        k = _kernels()
        args = (self.t_node, self.t_leaf, self.n_feat, self.n_thr, self.n_kind, self.n_miss, self.n_defl, self.n_lslot,
                self.n_rslot, self.n_bit, self.n_cat_off, self.n_cat_len, self.cat_bits, self.l_value, self.l_d,
                self.l_off, self.l_feat, self.l_z, self.l_ratio, self.l_hoff, self.H, self.scratch, ZERO_THRESHOLD,
                ROW_BLOCK)
        threads = int(threads) if threads else (os.cpu_count() or 1)
        parts = max(1, min(threads, n // MIN_ROWS_PER_THREAD))
        if parts == 1:
            k.shap_rows(M, 0, n, out, *args)
            return out, self.expected_value
        bounds = np.linspace(0, n, parts + 1).astype(int)
        pool = _pool(parts)
        futures = [pool.submit(k.shap_rows, M, int(a), int(b), out, *args) for a, b in zip(bounds[:-1], bounds[1:])]
        for fu in futures:
            fu.result()
        return out, self.expected_value


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool(n: int) -> ThreadPoolExecutor:
    """One process-wide pool, grown when more threads are asked for."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < n:  # noqa: SLF001
            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="whyrec-treeshap")
        return _POOL


_KERNELS = None


def _kernels():
    """The numba kernels, compiled (or loaded from numba's disk cache) on first use."""
    global _KERNELS
    if _KERNELS is None:
        from . import _treeshap_kernels

        _KERNELS = _treeshap_kernels
    return _KERNELS


def warm_up() -> float:
    """Compile or load the kernels now (seconds taken): a server calls this at start-up."""
    import time

    t = time.perf_counter()
    dump = {"max_feature_idx": 0, "tree_info": [{"tree_structure": {
        "split_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "<=", "default_left": True,
        "missing_type": "NaN", "internal_count": 2,
        "left_child": {"leaf_index": 0, "leaf_value": -1.0, "leaf_count": 1},
        "right_child": {"leaf_index": 1, "leaf_value": 1.0, "leaf_count": 1}}}]}
    engine = TreeShapEngine(dump)
    engine.shap_values(np.array([[0.0], [1.0]]))
    return time.perf_counter() - t
