"""Explanation agreement: explain the same recommendations with the teacher and a compressed
model, then compare the attributions (top-3 features, rank correlation).

One explainer is used for every model compared, the first of a preference list that
supports them all (``tree-shap`` for two tree models, ``integrated-gradients`` for two
torch-attention networks, then the model-agnostic ``permutation-shap`` and ``kernel-shap``).
When none is installed, or none supports every model, the built-in ``occlusion`` attribution
is used: feature j gets f(x) - mean_b f(x with x_j := background_b[j]) over background
rows drawn from the training pairs (not additive; cheap and defined for any model).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import RegistryError

from .fidelity import align_attributions, attribution_rank_correlation, topk_feature_agreement

AUTO_ORDER = ("tree-shap", "integrated-gradients", "permutation-shap", "kernel-shap")
OCCLUSION = "occlusion"


def choose_explainer(name: str, models: Sequence[Any], host: Any = None, params: dict | None = None) -> tuple[str, Any]:
    """(explainer name, explainer object or None for the built-in occlusion)."""
    if name == OCCLUSION:
        return OCCLUSION, None
    if host is None:
        from whyrec.plugins import get_host

        host = get_host()
    registered = host.names("explainers")
    if name != "auto":
        if name not in registered:
            raise RegistryError(f"explainer {name!r} for explanation agreement is not registered "
                                f"(registered: {', '.join(registered) or 'none'}; or use 'auto' or 'occlusion')")
        obj = host.create("explainers", name, params or {})
        bad = [getattr(m, "name", str(m)) for m in models if not obj.supports(m)]
        if bad:
            raise RegistryError(f"explainer {name!r} does not support {bad}; use explainer = 'auto' to pick one that "
                                "supports the teacher and every compressed model, or 'occlusion'")
        return name, obj
    for cand in AUTO_ORDER:
        if cand not in registered:
            continue
        try:
            obj = host.create("explainers", cand, {})
        except Exception:  # noqa: BLE001  (a broken optional explainer must not stop the report)
            continue
        if all(obj.supports(m) for m in models):
            return cand, obj
    return OCCLUSION, None


def occlusion_attributions(model: Any, X: pd.DataFrame, background: pd.DataFrame, n_background: int = 16,
                           seed: int = 0) -> pd.DataFrame:
    """Per pair and feature: score drop when the feature takes background values (averaged)."""
    names = list(model.feature_names)
    Xm = X[names].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    bg = background[names].iloc[rng.choice(len(background), min(n_background, len(background)), replace=False)].reset_index(drop=True)
    n, B, F = len(Xm), len(bg), len(names)
    f0 = model.score_features(Xm)
    big = Xm.iloc[np.repeat(np.arange(n), F * B)].reset_index(drop=True)
    for j, c in enumerate(names):
        # rows of pair i, feature j occupy [i*F*B + j*B, i*F*B + (j+1)*B)
        rows = (np.arange(n)[:, None] * F * B + j * B + np.arange(B)[None, :]).ravel()
        col = big[c]
        vals = np.tile(bg[c].to_numpy(dtype=object), n)
        if isinstance(col.dtype, pd.CategoricalDtype):
            new = col.astype(object).to_numpy(copy=True)
            new[rows] = vals
            big[c] = pd.Categorical(new, categories=col.cat.categories)
        else:
            arr = col.to_numpy(copy=True)
            arr[rows] = vals.astype(arr.dtype)
            big[c] = arr
    s = model.score_features(big).reshape(n, F, B).mean(axis=2)
    return pd.DataFrame(f0[:, None] - s, columns=names)


def attributions(model: Any, data: RecData, pairs: pd.DataFrame, explainer_name: str, explainer: Any,
                 background: pd.DataFrame | None, seed: int = 0) -> pd.DataFrame:
    """Per-feature attributions [pairs, features] of ``model`` for ``pairs``."""
    if explainer is None:
        X = data.features(pairs)  # whole rows: context included
        return occlusion_attributions(model, X, background, seed=seed)
    expl = explainer.explain(model, data, pairs.reset_index(drop=True))
    if expl.attributions is not None:
        return expl.attributions.reset_index(drop=True)
    return expl.field_attributions.reset_index(drop=True)


def agreement(teacher_attr: pd.DataFrame, student_attr: pd.DataFrame, sequence_features: Sequence[str],
              k: int = 3) -> tuple[pd.DataFrame, list[str]]:
    """Per pair: top-k feature agreement and Spearman correlation of the attributions."""
    units, t, s = align_attributions({c: teacher_attr[c].to_numpy(float) for c in teacher_attr.columns},
                                     {c: student_attr[c].to_numpy(float) for c in student_attr.columns},
                                     sequence_features)
    top = topk_feature_agreement(t, s, k)
    rho = attribution_rank_correlation(t, s)
    t_top = [", ".join(units[j] for j in np.argsort(-np.abs(r), kind="stable")[:k]) for r in t]
    s_top = [", ".join(units[j] for j in np.argsort(-np.abs(r), kind="stable")[:k]) for r in s]
    return pd.DataFrame({f"top{k}_agreement": top, "rank_correlation": rho, f"teacher_top{k}": t_top,
                         f"student_top{k}": s_top}), units
