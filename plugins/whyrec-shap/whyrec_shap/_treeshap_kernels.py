"""numba kernels of :mod:`whyrec_shap.treeshap_engine` (imported only by it, on first use).

Compiled once per process and cached on disk (``cache=True``); ``nogil=True`` so the engine's
threads evaluate row ranges in parallel.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def build_tables(l_value, l_d, l_off, l_z, l_hoff, H):
    """H[l_hoff[leaf] + U] for every subset U of the leaf's d path features (bitmask):

    H(U) = v * prod_{j not in U} z_j * sum_{w=0}^{|U|} e_{|U|-w}(z_U) * w! (d-1-w)! / d!

    (e_q: elementary symmetric polynomial). H(all) is never read and stays 0."""
    for leaf in range(len(l_d)):
        ho = l_hoff[leaf]
        if ho < 0:
            continue
        d = l_d[leaf]
        off = l_off[leaf]
        v = l_value[leaf]
        if d == 0:
            continue
        n = 1 << d
        full = n - 1
        coef = np.empty(d)
        for w in range(d):
            c = 1.0 / d
            # w!(d-1-w)!/d! = 1 / (d * C(d-1, w))
            b = 1.0
            for q in range(w):
                b = b * (d - 1 - q) / (q + 1)
            coef[w] = c / b
        E = np.zeros((n, d + 1))  # E[U, q] = e_q(z_U)
        pin = np.empty(n)  # prod_{j in U} z_j
        card = np.zeros(n, np.int64)
        E[0, 0] = 1.0
        pin[0] = 1.0
        for U in range(1, n):
            k = 0
            while not (U >> k) & 1:
                k += 1
            prev = U ^ (1 << k)
            zk = l_z[off + k]
            card[U] = card[prev] + 1
            pin[U] = pin[prev] * zk
            E[U, 0] = 1.0
            for q in range(1, card[U] + 1):
                E[U, q] = E[prev, q] + E[prev, q - 1] * zk
        for U in range(n - 1):
            m = card[U]
            s = 0.0
            for w in range(m + 1):
                s += E[U, m - w] * coef[w]
            H[ho + U] = v * pin[full ^ U] * s
        H[ho + full] = 0.0


@njit(cache=True, nogil=True)
def shap_rows(X, r0, r1, out, t_node, t_leaf, n_feat, n_thr, n_kind, n_miss, n_defl, n_lslot, n_rslot, n_bit,
              n_cat_off, n_cat_len, cat_bits, l_value, l_d, l_off, l_feat, l_z, l_ratio, l_hoff, H, scratch,
              zero_threshold, block):
    """Add every tree's TreeSHAP values of rows r0..r1-1 of X into out (n, F).

    Per tree and row: one pass over the internal nodes in index order (a parent comes before
    its children) sets the mask of agreed path features of each node and leaf (a child on the
    side the row does not take loses its split's bit; masks[] holds a tree's nodes, then its
    leaves); then one pass over the leaves adds each one's O(d) table look-ups. Rows go in
    blocks, tree by tree, so one tree's nodes and tables stay in L1 while the block walks it."""
    masks = np.empty(scratch, np.int64)
    poly = np.empty(66)
    for b0 in range(r0, r1, block):
        b1 = min(b0 + block, r1)
        for t in range(len(t_node) - 1):
            n0, n1 = t_node[t], t_node[t + 1]
            if n1 == n0:  # a single leaf: only the expected value
                continue
            f0, f1 = t_leaf[t], t_leaf[t + 1]
            for r in range(b0, b1):
                masks[0] = -1
                for node in range(n0, n1):
                    m = masks[node - n0]
                    cold = m & n_bit[node]
                    # LightGBM 4's CategoricalDecision / NumericalDecision, written out here: as
                    # a function call (even inline="always") it costs 4x the whole pass
                    x = X[r, n_feat[node]]
                    if n_kind[node] == 1:  # categorical: NaN, negative, unseen -> right
                        left = False
                        if x > -2147483648.0 and x < 2147483648.0:  # also false for NaN; no int overflow
                            c = int(x)  # truncation toward zero, like static_cast<int>
                            if c >= 0:
                                word = c >> 5
                                if word < n_cat_len[node]:
                                    left = (cat_bits[n_cat_off[node] + word] >> (c & 31)) & 1 == 1
                    else:
                        miss = n_miss[node]  # 0 None, 1 Zero, 2 NaN
                        if np.isnan(x) and miss == 2:
                            left = n_defl[node] == 1
                        else:
                            # NaN is read as 0 unless the split's missing type is NaN, and so is
                            # |x| <= 1e-35f: LightGBM's row reader keeps only larger values
                            if np.isnan(x) or (x >= -zero_threshold and x <= zero_threshold):
                                if miss == 1:
                                    left = n_defl[node] == 1
                                else:
                                    left = 0.0 <= n_thr[node]
                            else:
                                left = x <= n_thr[node]
                    if left:
                        masks[n_lslot[node]] = m
                        masks[n_rslot[node]] = cold
                    else:
                        masks[n_lslot[node]] = cold
                        masks[n_rslot[node]] = m
                base = n1 - n0 - f0
                for leaf in range(f0, f1):
                    m = masks[base + leaf]
                    d = l_d[leaf]
                    off = l_off[leaf]
                    ho = l_hoff[leaf]
                    if ho >= 0:
                        si = m & ((np.int64(1) << d) - 1)
                        hs = H[ho + si]
                        for k in range(d):
                            # branch-free (the bit is data-dependent): in S, ratio * H(S - k);
                            # not in S, -H(S)
                            inset = (si >> k) & 1
                            h = H[ho + (si ^ (np.int64(1) << k))]
                            out[r, l_feat[off + k]] += inset * (l_ratio[off + k] * h) - (1 - inset) * hs
                    else:
                        _leaf_direct(out, r, m, d, off, l_value[leaf], l_feat, l_z, poly)


@njit(cache=True, nogil=True)
def _leaf_direct(out, r, m, d, off, v, l_feat, l_z, poly):
    """phi_i = v a_i * integral_0^1 prod_{j != i} (z_j + t a_j) dt, a_j = o_j - z_j: O(d^2) per
    feature, for the rare leaves too deep to tabulate (or with a zero cover fraction)."""
    for i in range(d):
        poly[0] = 1.0
        deg = 0
        for j in range(d):
            if j == i:
                continue
            zj = l_z[off + j]
            aj = float((m >> j) & 1) - zj
            poly[deg + 1] = poly[deg] * aj
            for q in range(deg, 0, -1):
                poly[q] = poly[q] * zj + poly[q - 1] * aj
            poly[0] = poly[0] * zj
            deg += 1
        s = 0.0
        for q in range(deg + 1):
            s += poly[q] / (q + 1)
        ai = float((m >> i) & 1) - l_z[off + i]
        out[r, l_feat[off + i]] += v * ai * s
