"""The reward model of the direct-method and doubly robust estimators.

A logistic regression (scikit-learn) of the click on one-hot context features (position and
user features), the item and any numeric features. It is additive in the logit, so
q(x, a) = sigmoid(c(x) + b_a): the context part c is computed once per event and the item
part b once per item, which makes "expected reward of every item in this context" a cheap
broadcast instead of n_events x n_items model calls.

Cross-fitting: the events are split into ``folds`` random folds and each event's predictions
come from the model fitted on the other folds, so DR's correction term is not fitted to the
noise it corrects (Chernozhukov et al. 2018). Events with identical features are aggregated
(clicks and non-clicks as two weighted rows) before fitting: the same likelihood, far fewer rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits
from whyrec.errors import DataError

MAX_CATEGORIES = 64  # integer columns with at most this many values are one-hot encoded


@dataclass
class Design:
    """Integer-coded context features, numeric features and the item code of each event."""

    cat: np.ndarray            # (n, d_cat) int64 codes
    cat_sizes: list[int]
    cat_names: list[str]
    num: np.ndarray | None     # (n, d_num) standardised floats
    num_names: list[str]
    item: np.ndarray           # (n,) item codes in [0, n_items)
    n_items: int

    @property
    def n_cols(self) -> int:
        return sum(self.cat_sizes) + self.n_items + (0 if self.num is None else self.num.shape[1])


def build_design(df: pd.DataFrame, features: list[str], item_codes: np.ndarray, n_items: int) -> Design:
    cat, sizes, cat_names, num, num_names = [], [], [], [], []
    for f in features:
        if f not in df.columns:
            raise DataError(f"off-policy: reward feature {f!r} is not a column of the events (columns: {list(df.columns)[:20]})")
        s = df[f]
        numeric = pd.api.types.is_numeric_dtype(s) and s.dtype != bool
        if not numeric or f == "position" or s.nunique(dropna=False) <= MAX_CATEGORIES:
            codes, uniq = pd.factorize(s, use_na_sentinel=False)
            cat.append(codes.astype(np.int64))
            sizes.append(len(uniq))
            cat_names.append(f)
        else:
            v = s.to_numpy(dtype=float)
            v = np.where(np.isnan(v), np.nanmean(v), v)
            sd = v.std()
            num.append((v - v.mean()) / (sd if sd > 0 else 1.0))
            num_names.append(f)
    n = len(df)
    return Design(np.stack(cat, axis=1) if cat else np.zeros((n, 0), np.int64), sizes, cat_names,
                  np.stack(num, axis=1) if num else None, num_names, np.asarray(item_codes, np.int64), n_items)


def _row_keys(d: Design, rows: np.ndarray) -> np.ndarray | None:
    """One int64 key per event for (categorical features, item); None when they do not fit."""
    sizes = d.cat_sizes + [d.n_items]
    if float(np.prod([float(s) for s in sizes])) >= 2.0 ** 62:
        return None
    key = np.zeros(len(rows), dtype=np.int64)
    for j, s in enumerate(d.cat_sizes):
        key = key * s + d.cat[rows, j]
    return key * d.n_items + d.item[rows]


def _matrix(d: Design, rows: np.ndarray) -> sparse.csr_matrix:
    offsets = np.cumsum([0] + d.cat_sizes)
    cols = [d.cat[rows, j] + offsets[j] for j in range(len(d.cat_sizes))]
    cols.append(d.item[rows] + offsets[-1])
    n = len(rows)
    k = len(cols)
    indices = np.stack(cols, axis=1).ravel()
    data = np.ones(n * k)
    indptr = np.arange(0, n * k + 1, k)
    m = sparse.csr_matrix((data, indices, indptr), shape=(n, sum(d.cat_sizes) + d.n_items))
    if d.num is not None:
        m = sparse.hstack([m, sparse.csr_matrix(d.num[rows])], format="csr")
    return m


@dataclass
class FoldModel:
    intercept: float
    cat_coef: list[np.ndarray]
    item_coef: np.ndarray
    num_coef: np.ndarray | None

    def context_logit(self, d: Design, rows: np.ndarray) -> np.ndarray:
        out = np.full(len(rows), self.intercept)
        for j, coef in enumerate(self.cat_coef):
            out += coef[d.cat[rows, j]]
        if self.num_coef is not None and d.num is not None:
            out += d.num[rows] @ self.num_coef
        return out


def fit_fold(d: Design, rows: np.ndarray, y: np.ndarray, C: float) -> FoldModel:
    from sklearn.linear_model import LogisticRegression

    yr = y[rows]
    clicks, total = float(yr.sum()), len(rows)
    zeros = [np.zeros(s) for s in d.cat_sizes]
    num0 = None if d.num is None else np.zeros(d.num.shape[1])
    if clicks == 0 or clicks == total:  # one class only: the smoothed constant rate
        rate = (clicks + 0.5) / (total + 1.0)
        return FoldModel(float(np.log(rate / (1 - rate))), zeros, np.zeros(d.n_items), num0)
    key = _row_keys(d, rows) if d.num is None else None
    if key is not None:
        inv, uniq = pd.factorize(key)
        first = np.zeros(len(uniq), dtype=np.int64)
        first[inv[::-1]] = np.arange(len(inv))[::-1]  # first event of each feature combination
        n_g = np.bincount(inv, minlength=len(uniq)).astype(float)
        x_g = np.bincount(inv, weights=yr, minlength=len(uniq))
        X1 = _matrix(d, rows[first])
        X = sparse.vstack([X1, X1], format="csr")
        target = np.r_[np.ones(len(uniq)), np.zeros(len(uniq))]
        weight = np.r_[x_g, n_g - x_g]
        keep = weight > 0
        X, target, weight = X[keep], target[keep], weight[keep]
    else:
        X, target, weight = _matrix(d, rows), yr, None
    lr = LogisticRegression(C=C, max_iter=2000, tol=1e-6)
    # a small problem: BLAS threads only contend (on a busy 2-core machine L-BFGS-B ran 80x slower)
    with threadpool_limits(limits=1):
        lr.fit(X, target, sample_weight=weight)
    coef = lr.coef_.ravel()
    offsets = np.cumsum([0] + d.cat_sizes)
    cat_coef = [coef[offsets[j]:offsets[j + 1]] for j in range(len(d.cat_sizes))]
    item_coef = coef[offsets[-1]:offsets[-1] + d.n_items]
    num_coef = coef[offsets[-1] + d.n_items:] if d.num is not None else None
    return FoldModel(float(lr.intercept_[0]), cat_coef, item_coef, num_coef)


@dataclass
class CrossFit:
    fold: np.ndarray             # (n,) fold of each event
    models: list[FoldModel]      # model k was fitted on the events outside fold k
    ctx_logit: np.ndarray        # (n,) context part of the logit, from the event's out-of-fold model

    def q_logged(self, d: Design) -> np.ndarray:
        item_part = np.empty(len(self.fold))
        for k, m in enumerate(self.models):
            idx = self.fold == k
            item_part[idx] = m.item_coef[d.item[idx]]
        return _sigmoid(self.ctx_logit + item_part)


def cross_fit(d: Design, y: np.ndarray, folds: int, C: float, rng: np.random.Generator) -> CrossFit:
    n = len(y)
    if folds < 2:
        fold = np.zeros(n, dtype=np.int64)
        models = [fit_fold(d, np.arange(n), y, C)]
    else:
        fold = rng.integers(0, folds, n)
        models = [fit_fold(d, np.flatnonzero(fold != k), y, C) for k in range(folds)]
    ctx = np.empty(n)
    for k, m in enumerate(models):
        rows = np.flatnonzero(fold == k)
        ctx[rows] = m.context_logit(d, rows)
    return CrossFit(fold, models, ctx)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
