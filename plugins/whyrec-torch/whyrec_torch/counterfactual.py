"""history-counterfactual: the smallest set of history items whose removal drops the item
out of the user's top-k, with the rank it falls to ("if you had not watched A and B ...").

Search: greedy — at each step remove the history item whose removal lowers the item's score
most — until the item is out of the top-k (checked on the user's best ``watch`` candidates, a
lower bound of the true rank, so a drop seen there is certain), then verification of the rank
on all the user's candidates, pruning of items the set does not need, and an exhaustive check
of every smaller set while that stays within ``exhaustive_budget`` rankings (then the set is
reported as proven minimal). Rankings are cached per user: the explained items of one user
share them. Removing history is not monotone (emptying the whole history also moves the other
candidates), so the search stops at the first set that works rather than bisecting.
Removal masks the item in the sequence input and, with ``history_features = "rederive"`` (the
default where the dataset can), rebuilds the features derived from the history (MovieLens: genre
shares, history length, genre match), so "had you not watched A" changes everything A fed; with
``"hold"`` those keep their values and the answer is about the sequence channel alone.
"""
from __future__ import annotations

from itertools import combinations
from math import comb
from typing import Any

import numpy as np
import pandas as pd

from whyrec import Explanation
from whyrec.data import ITEM, USER, RecData
from whyrec.errors import WhyrecError

from .common import base_pairs, check_model, join_words, prepare, supports
from .history_edit import HistoryEditor, UserCandidates


class HistoryCounterfactual:
    """Smallest set of history items whose removal drops the recommended item out of the top-k."""

    def __init__(self, k: int | None = None, max_removals: int | None = None, exhaustive_budget: int = 16,
                 watch: int = 200, history_features: str = "auto") -> None:
        if k is not None and int(k) < 1:
            raise WhyrecError(f"history-counterfactual: k={k} must be >= 1 (or unset: the explained top-k)")
        if max_removals is not None and int(max_removals) < 1:
            raise WhyrecError(f"history-counterfactual: max_removals={max_removals} must be >= 1 (or unset: the whole history)")
        self.k = None if k is None else int(k)
        self.max_removals = None if max_removals is None else int(max_removals)
        self.exhaustive_budget = max(int(exhaustive_budget), 0)
        if int(watch) < 1:
            raise WhyrecError(f"history-counterfactual: watch={watch} must be >= 1")
        self.watch = int(watch)
        if history_features not in ("auto", "rederive", "hold"):
            raise WhyrecError(f"history-counterfactual: history_features={history_features!r} must be 'auto', "
                              "'rederive' (rebuild the features derived from the history) or 'hold' (keep them)")
        self.history_features = history_features

    def supports(self, model: Any) -> bool:
        return supports(model, "sequence")

    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        check_model(model, "history-counterfactual", "sequence")
        rows = prepare(model, data, pairs)
        editor = HistoryEditor.choose(model, data, self.history_features)
        seq = model.sequence_features
        n = len(rows.pairs)
        logits = model.forward_encoded(rows.enc)
        res = {c: np.full(n, np.nan) for c in ("k", "original_rank", "new_rank", "removed_count")}
        found = np.zeros(n, dtype=bool)
        minimal = np.array(["n/a"] * n, dtype=object)
        removed_mask = np.zeros((n, len(seq)))
        path_rows: list[dict] = []
        reasons_at: dict[int, list[str]] = {}
        scored = 0
        for user, idx in rows.pairs.groupby(USER, sort=False).groups.items():
            idx = list(idx)
            uc = UserCandidates.build(model, data, user, editor, data.context_of(rows.pairs.loc[idx[0]]))
            k = self.k or (int(rows.pairs.loc[idx, "rank"].max()) if "rank" in rows.pairs.columns else len(idx))
            k = min(k, len(uc.items))
            for i in idx:
                item = rows.pairs.at[i, ITEM]
                title = data.item_title(item)
                res["k"][i] = k
                t = uc.index_of(item)
                if t is None:
                    reasons_at[i] = [f"{title} is not among your unseen items, so there is no ranking to change"]
                    continue
                r0 = int(uc.ranks(model, [[]], [t])[0])
                res["original_rank"][i] = r0
                hist = rows.history[i]
                if not hist:
                    res["new_rank"][i] = r0
                    reasons_at[i] = [f"no viewing history yet (cold start): {title} is at #{r0} from non-history fields "
                                    "alone, so no history item can be removed to change it"]
                    continue
                if r0 > k:
                    res["new_rank"][i], res["removed_count"][i] = r0, 0
                    found[i], minimal[i] = True, "verified"
                    reasons_at[i] = [f"{title} is already outside your top-{k} (#{r0})"]
                    continue
                row_X = data.features(rows.pairs.loc[[i]]).reset_index(drop=True) if editor.mode == "rederive" else None
                S, rank, steps = self._search(model, editor, uc, rows.enc.take([i]), row_X, t, [p for p, _ in hist], k)
                by_pos = dict(hist)
                for step, (pos, score, rk) in enumerate(steps, 1):
                    path_rows.append({"pair": i, "step": step, "position": pos, "history_title": data.item_title(by_pos[pos]),
                                      "item_logit_after": score, "rank_lower_bound": rk})
                if rank > k:
                    S, rank, proven = self._minimise(model, uc, t, S, [p for p, _ in hist], k)
                    found[i] = True
                    minimal[i] = "verified" if proven else "greedy"
                    res["removed_count"][i] = len(S)
                    removed_mask[i, S] = 1.0
                    names = [data.item_title(by_pos[p]) for p in S]
                    reasons_at[i] = [f"if you had not watched {join_words(names)}, {title} would drop from #{r0} to #{rank} "
                                    f"(out of your top-{k})"]
                else:
                    reasons_at[i] = [f"even without {'any of your' if len(S) == len(hist) else f'{len(S)} of your'} "
                                    f"{len(hist)} history items {title} stays in your top-{k} (#{rank}): it rests on "
                                    "non-history fields"]
                res["new_rank"][i] = rank
            scored += uc.scored
        reasons = [reasons_at.get(i, []) for i in range(n)]
        out = base_pairs(rows, logits, np.nan)
        for c, v in res.items():
            out[c] = v
        out["found"] = found
        out["minimal"] = minimal
        expl = Explanation(method="history-counterfactual", model=model.name, pairs=out, schema=data.schema.select(seq),
                           attributions=pd.DataFrame(removed_mask, columns=seq),
                           params={"k": self.k, "max_removals": self.max_removals, "exhaustive_budget": self.exhaustive_budget, "watch": self.watch,
                                   "history_features": editor.mode,
                                   "removal": ("mask the item in the sequence input and rebuild the features derived from the history"
                                               if editor.mode == "rederive" else
                                               "mask the item in the sequence input; features derived from the history keep their values")},
                           additive=False, reasons=reasons)
        expl.extras["greedy_path"] = pd.DataFrame(path_rows, columns=["pair", "step", "position", "history_title", "item_logit_after", "rank_lower_bound"])
        with_hist = out["history_items"].to_numpy() > 0
        real = found & (res["removed_count"] > 0)  # not counting items already outside a smaller k
        expl.summary = {
            "attribution_units": "removed in the counterfactual (1 = yes, 0 = no)",
            "pairs": n, "with_history": int(with_hist.sum()), "found": int(real.sum()),
            "already_outside_top_k": int((found & (res["removed_count"] == 0)).sum()),
            "not_possible": int((with_hist & ~found & ~np.isnan(res["original_rank"])).sum()),
            "mean_removed": float(np.mean(res["removed_count"][real])) if real.any() else None,
            "proven_minimal": int((real & (minimal == "verified")).sum()),
            "rankings_scored": scored,
            "history_features": editor.mode,
        }
        return expl

    def _search(self, model: Any, editor: HistoryEditor, uc: UserCandidates, row: Any, row_X: pd.DataFrame | None,
                t: int, positions: list[int], k: int) -> tuple[list[int], int, list[tuple[int, float, float]]]:
        """Greedy: each step removes the history item whose removal lowers the item's logit
        most (scored on the item's own row), then checks the rank. The check runs on the user's
        best ``watch`` candidates first — a lower bound of the true rank, so "out of the top-k"
        there is out of the top-k for certain — and on all candidates only when the cheap check
        cannot decide. Returns (set, exact rank after removing it, greedy path)."""
        limit = len(positions) if self.max_removals is None else min(self.max_removals, len(positions))
        head, where = uc.head(model, self.watch, keep=[t])
        th = int(where[t])
        S: list[int] = []
        path: list[tuple[int, float, float]] = []
        while len(S) < limit:
            remaining = [p for p in positions if p not in S]
            scores = model.forward_encoded(editor.apply_many(row, row_X, [S + [p] for p in remaining]))
            best = int(np.argmin(scores))
            S.append(remaining[best])
            lower = int(head.ranks(model, [S], [th])[0])
            path.append((remaining[best], float(scores[best]), float(lower)))
            if lower > k:
                break
        return S, int(uc.ranks(model, [S], [t])[0]), path

    def _minimise(self, model: Any, uc: UserCandidates, t: int, S: list[int], positions: list[int], k: int
                  ) -> tuple[list[int], int, bool]:
        """Drop items the set does not need (judged on the watched head: certain when it says
        the item stays out), then look for a smaller set exhaustively on all candidates while
        the number of rankings stays within budget. Returns (set, exact rank, proven minimal)."""
        head, where = uc.head(model, self.watch, keep=[t])
        th = int(where[t])
        changed = True
        while changed and len(S) > 1:
            changed = False
            subsets = [[p for p in S if p != q] for q in S]
            ranks = head.ranks(model, subsets, [th] * len(subsets))
            ok = np.flatnonzero(ranks > k)
            if len(ok):
                S = subsets[ok[np.argmax(ranks[ok])]]
                changed = True
        rank = int(uc.ranks(model, [S], [t])[0])
        budget = self.exhaustive_budget
        for size in range(1, len(S)):
            m = comb(len(positions), size)
            if m > budget:
                return S, rank, False
            budget -= m
            subsets = [list(c) for c in combinations(positions, size)]
            ranks = uc.ranks(model, subsets, [t] * len(subsets))
            ok = np.flatnonzero(ranks > k)
            if len(ok):
                best = ok[np.argmax(ranks[ok])]
                return subsets[best], int(ranks[best]), True
        return S, rank, True

    def figures(self, explanation: Explanation, data: RecData) -> dict[str, Any]:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        p = explanation.pairs
        sizes = p.loc[p["found"] & (p["history_items"] > 0), "removed_count"].dropna().astype(int)
        not_found = int(((~p["found"]) & (p["history_items"] > 0)).sum())
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        counts = sizes.value_counts().sort_index()
        labels = [str(s) for s in counts.index] + (["not possible"] if not_found else [])
        values = list(counts.to_numpy()) + ([not_found] if not_found else [])
        ax.bar(labels, values, color=["tab:blue"] * len(counts) + (["tab:gray"] if not_found else []))
        ax.set_xlabel("history items to remove to drop the item out of the top-k")
        ax.set_ylabel("recommendations")
        ax.set_title("history counterfactuals")
        fig.tight_layout()
        return {"counterfactual_sizes": fig}
