"""Rank-aware explanations: why item A is above (or below) item B for a user, and the
smallest set of feature changes that would move A into the user's top-k.

The difference explanation is the difference of two additive explanations of the same
method and background: sum(phi_A - phi_B) = score_A - score_B, so every unit of the score
gap is assigned to a feature. The counterfactual searches changes of A's item-side features
to the values of real items (the current top-k and B), smallest sets first, so the answer is
the minimum number of changes within that search space.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Sequence

import numpy as np
import pandas as pd

from whyrec.data import RecData
from whyrec.errors import DataError

CHANGEABLE_FIELDS = ("item", "cross", "context")


def candidate_scores(model: Any, data: RecData, user: Any, context: dict | None = None) -> pd.Series:
    """Model scores of every candidate (unseen) item of ``user``, indexed by item, in the
    given ``context`` (default: the user's latest, see ``RecData.with_context``)."""
    cands = data.candidates(user)
    pairs = data.user_pairs(user, cands, context)
    return pd.Series(np.asarray(model.score(pairs), dtype=float), index=cands)


def rank_against(others: np.ndarray, score: float | np.ndarray) -> np.ndarray:
    """1 + number of other items scoring strictly higher (``others`` any order)."""
    s = np.sort(np.asarray(others, dtype=float))
    return 1 + len(s) - np.searchsorted(s, np.asarray(score, dtype=float), side="right")


def _check_item(data: RecData, item: Any, label: str) -> Any:
    return data.check_item(item, label)


def default_changeable(model: Any, data: RecData) -> list[str]:
    """Item-side features (fields item, cross, context) except identifiers (``*_id``) and
    history sequences: what could differ between two items shown to the same user."""
    out = []
    for n in model.feature_names:
        if n not in data.schema:
            continue
        f = data.schema[n]
        if f.field in CHANGEABLE_FIELDS and f.kind != "sequence" and not n.endswith("_id"):
            out.append(n)
    return out


@dataclass
class WhyAbove:
    """Answer of :func:`why_above` (``to_dict`` is the CLI's ``--format json``)."""

    user: Any
    item_a: Any
    item_b: Any
    title_a: str
    title_b: str
    score_a: float
    score_b: float
    rank_a: int
    rank_b: int
    k: int
    n_candidates: int
    method: str
    difference: pd.DataFrame
    difference_error: float
    counterfactual: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        return self.score_a - self.score_b

    def to_dict(self) -> dict:
        return {
            "user": self.user, "item_a": self.item_a, "item_b": self.item_b, "title_a": self.title_a,
            "title_b": self.title_b, "score_a": self.score_a, "score_b": self.score_b, "gap": self.gap,
            "rank_a": self.rank_a, "rank_b": self.rank_b, "k": self.k, "n_candidates": self.n_candidates,
            "method": self.method, "difference_error": self.difference_error,
            "difference": self.difference.to_dict(orient="records"), "counterfactual": self.counterfactual,
        }

    def lines(self, top: int = 5) -> list[str]:
        """Human-readable answer."""
        above = "above" if self.gap > 0 else "below"
        out = [
            f"For user {self.user}, {self.title_a} (rank {self.rank_a}, score {self.score_a:.3f}) is {above} "
            f"{self.title_b} (rank {self.rank_b}, score {self.score_b:.3f}): gap {self.gap:+.3f} ({self.method}).",
        ]
        for r in self.difference.head(top).itertuples(index=False):
            va = f" ({_short(r.value_a)} vs {_short(r.value_b)})" if hasattr(r, "value_a") else ""
            out.append(f"  {r.unit}{va}: {r.difference:+.3f}")
        cf = self.counterfactual
        if cf.get("already_in_top_k"):
            out.append(f"{self.title_a} is already in the top {self.k}.")
        elif cf.get("found"):
            ch = "; ".join(f"{c['feature']} {_short(c['from'])} -> {_short(c['to'])} (as item {c['donor']})" for c in cf["changes"])
            out.append(f"To reach the top {self.k} (score > {cf['threshold']:.3f}): change {ch}; new score {cf['new_score']:.3f}, rank {cf['new_rank']}.")
        else:
            out.append(f"No change of up to {cf.get('max_changes')} of {cf.get('searched_features')} item-side features moves {self.title_a} into the top {self.k}.")
        return out


def _default_explainer(model: Any):
    from .exact import ExactFieldShapley
    from .tree import TreeShap

    tree = TreeShap()
    if tree.supports(model):
        return tree
    from .sampling import PermutationShap

    return PermutationShap(max_evals=2 * len(model.feature_names) + 1 + 200)


def _resolve_explainer(explainer: Any, model: Any):
    if explainer is None:
        return _default_explainer(model)
    if isinstance(explainer, str):
        import whyrec

        return whyrec.get_host().create("explainers", explainer)
    return explainer


def smallest_change(model: Any, x_a: pd.DataFrame, donors: pd.DataFrame, features: Sequence[str], threshold: float,
                    max_changes: int = 3, max_features: int = 12) -> dict:
    """Smallest set of A's features that, set to one donor item's values, lifts A's score
    above ``threshold``. Exhaustive by set size over the ``max_features`` features with the
    best single-change gain, every donor tried for every set."""
    base = float(model.score_features(x_a)[0])
    feats = [f for f in features if f in x_a.columns]
    if not feats or len(donors) == 0:
        return {"found": False, "changes": [], "searched_features": 0, "max_changes": max_changes, "threshold": threshold}

    def score_sets(sets: list[tuple[str, ...]]) -> np.ndarray:
        # rows: for each set, for each donor; A's row with the set's columns from the donor
        n_d = len(donors)
        rows = pd.concat([x_a] * (len(sets) * n_d), ignore_index=True)
        for s_i, cols in enumerate(sets):
            sl = slice(s_i * n_d, (s_i + 1) * n_d)
            for c in cols:
                col = rows[c].copy()
                col.iloc[sl] = donors[c].to_numpy() if not isinstance(donors[c].dtype, pd.CategoricalDtype) else donors[c].array
                rows[c] = col
        return np.asarray(model.score_features(rows), dtype=float).reshape(len(sets), n_d)

    single = score_sets([(f,) for f in feats])
    gain = single.max(axis=1) - base
    pool = [feats[j] for j in np.argsort(-gain, kind="stable")[:max_features]]
    for size in range(1, max_changes + 1):
        sets = list(combinations(pool, size))
        if not sets:
            break
        s = score_sets(sets)
        ok = s > threshold
        if ok.any():
            cand = np.where(ok, s, -np.inf)
            si, di = np.unravel_index(np.argmax(cand), cand.shape)
            d = donors.iloc[di]
            changes = [{"feature": c, "from": _plain(x_a[c].iloc[0]), "to": _plain(d[c]), "donor": _plain(donors.index[di])}
                       for c in sets[si]]
            return {"found": True, "changes": changes, "new_score": float(s[si, di]), "threshold": threshold,
                    "searched_features": len(pool), "max_changes": max_changes}
    return {"found": False, "changes": [], "threshold": threshold, "searched_features": len(pool), "max_changes": max_changes,
            "best_score": float(single.max()) if single.size else base}


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        try:
            return v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def smallest_change_into_top_k(model: Any, data: RecData, user: Any, item: Any, k: int = 10, max_changes: int = 3,
                               max_features: int = 12, changeable: Sequence[str] | None = None,
                               extra_donors: Sequence[Any] = (), scores: pd.Series | None = None,
                               context: dict | None = None) -> dict:
    """Counterfactual "what would have to change": the fewest item-side features of ``item``
    that, set to the values of one of the user's current top-k items (or ``extra_donors``),
    lift it above the k-th best other candidate. Returns a JSON-ready dict: ``found``,
    ``changes`` [{feature, from, to, donor, actionable}], ``new_score``, ``new_rank``,
    ``threshold``, ``already_in_top_k``, ``searched_features``, ``max_changes``. Every row is
    scored in ``context`` (default: the user's latest)."""
    user = data.check_user(user)
    item = _check_item(data, item, "")
    if scores is None:
        scores = candidate_scores(model, data, user, context)
    if k < 1 or k > len(scores):
        raise DataError(f"k={k} but user {user!r} has {len(scores)} candidate items; use 1 <= k <= {len(scores)}")
    others = scores.drop(index=item, errors="ignore")
    pair = data.user_pairs(user, [item], context)
    own = float(model.score(pair)[0])
    rest = np.sort(others.to_numpy())[::-1]
    threshold = float(rest[k - 1]) if len(rest) >= k else -np.inf
    rank = int(rank_against(others.to_numpy(), own))
    base = {"item": _plain(item), "k": k, "score": own, "rank": rank, "threshold": threshold}
    if rank <= k:
        return {**base, "already_in_top_k": True, "found": True, "changes": []}
    top_items = others.sort_values(ascending=False, kind="stable").index[:k].tolist()
    donor_items = list(dict.fromkeys(top_items + [d for d in extra_donors if d != item]))
    feats = list(changeable) if changeable is not None else default_changeable(model, data)
    unknown = [f for f in feats if f not in model.feature_names]
    if unknown:
        raise DataError(f"changeable features {unknown} are not features of model {model.name!r}")
    X = data.features(data.user_pairs(user, [item, *donor_items], context))[list(model.feature_names)]
    x_a = X.iloc[[0]].reset_index(drop=True)
    donors = X.iloc[1:].copy()
    donors.index = donor_items
    cf = smallest_change(model, x_a, donors, feats, threshold, max_changes=max_changes, max_features=max_features)
    cf = {**base, **cf, "already_in_top_k": False}
    if cf.get("found"):
        cf["new_rank"] = int(rank_against(others.to_numpy(), cf["new_score"]))
    actionable = set(data.schema.actionable())
    for c in cf.get("changes", []):
        c["actionable"] = c["feature"] in actionable
    return cf


def why_above(model: Any, data: RecData, user: Any, item_a: Any, item_b: Any, explainer: Any = None, k: int = 10,
              max_changes: int = 3, max_features: int = 12, changeable: Sequence[str] | None = None,
              context: dict | None = None) -> WhyAbove:
    """Explain the score gap between items A and B for ``user`` (difference of additive
    explanations) and find the fewest changes of A's item-side features that put A in the
    top ``k``. ``explainer``: an explainer object or registered name (default tree-shap when
    it supports the model, else permutation-shap)."""
    user = data.check_user(user)
    a = _check_item(data, item_a, "A")
    b = _check_item(data, item_b, "B")
    if a == b:
        raise DataError(f"--why-above needs two different items, got {a!r} twice")
    scores = candidate_scores(model, data, user, context)
    if k < 1 or k > len(scores):
        raise DataError(f"k={k} but user {user!r} has {len(scores)} candidate items; use 1 <= k <= {len(scores)}")
    ex = _resolve_explainer(explainer, model)
    pairs = data.user_pairs(user, [a, b], context)  # A and B in the same context
    expl = ex.explain(model, data, pairs)
    s_a, s_b = (float(v) for v in expl.pairs["output_value"])
    others = lambda it: scores.drop(index=it, errors="ignore").to_numpy()  # noqa: E731
    rank_a = int(rank_against(others(a), s_a))
    rank_b = int(rank_against(others(b), s_b))

    table = expl.attributions if expl.attributions is not None else expl.field_attributions
    diff = pd.DataFrame({"unit": table.columns, "attribution_a": table.iloc[0].to_numpy(float),
                         "attribution_b": table.iloc[1].to_numpy(float)})
    diff["difference"] = diff["attribution_a"] - diff["attribution_b"]
    if expl.attributions is not None and expl.feature_values is not None:
        diff["value_a"] = [_plain(expl.feature_values.at[0, c]) for c in diff["unit"]]
        diff["value_b"] = [_plain(expl.feature_values.at[1, c]) for c in diff["unit"]]
    diff = diff.reindex(diff["difference"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)
    base_gap = float(expl.pairs["base_value"].iloc[0] - expl.pairs["base_value"].iloc[1])
    diff_err = abs(float(diff["difference"].sum()) + base_gap - (s_a - s_b))

    cf = smallest_change_into_top_k(model, data, user, a, k=k, max_changes=max_changes, max_features=max_features,
                                    changeable=changeable, extra_donors=[b], scores=scores, context=context)
    return WhyAbove(
        user=_plain(user), item_a=_plain(a), item_b=_plain(b), title_a=data.item_title(a), title_b=data.item_title(b),
        score_a=s_a, score_b=s_b, rank_a=rank_a, rank_b=rank_b, k=k, n_candidates=int(len(scores)),
        method=expl.method, difference=diff, difference_error=diff_err, counterfactual=cf,
    )
