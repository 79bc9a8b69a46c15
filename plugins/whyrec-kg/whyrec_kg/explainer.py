"""``kg-paths``: knowledge-graph paths from the user's history items to a recommended item.

For each explained pair: the history items the model saw (the pair's ``sequence`` features)
are scored by their contribution to the model's score (scoring.py: leave-one-out for any
model, exact Shapley over the history for models with the ``sequence`` capability), the graph
paths from each to the item are found (paths.py), and the best few are kept: highest
contribution first, then the most specific fact. Each path is one fact, in the shape
``row(i)["paths"]`` carries:

    {"history_item", "history_title", "relation", "relation_label", "entity", "entity_id", "item",
     "score", "scoring", "hops", "entity_items", "history_is_head"}

The per-position contributions are the explanation's attributions (over the sequence
features), so the report and ``explain`` show them like any other explainer's.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import UnsupportedError, WhyrecError, WhyrecWarning
from whyrec.explanation import Explanation

from .params import problems
from .paths import Fact, facts_between
from .scoring import contributions, item_of_value, sees_history_items, sequence_columns


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class KGPaths:
    """Knowledge-graph paths from the user's history to the item, scored by the history item's
    contribution to the model's score."""

    def __init__(self, max_paths: int = 3, per_history_item: int = 2, scoring: str = "auto",
                 max_entity_share: float = 0.2, min_score: float | None = 0.0, history: str = "window") -> None:
        bad = problems(max_paths, per_history_item, scoring, max_entity_share, min_score, history)
        if bad:
            raise WhyrecError(bad[0])
        self.max_paths, self.per_history_item = int(max_paths), int(per_history_item)
        self.scoring, self.max_entity_share = scoring, float(max_entity_share)
        self.min_score = None if min_score is None else float(min_score)
        self.history = history

    @property
    def params(self) -> dict:
        return {"max_paths": self.max_paths, "per_history_item": self.per_history_item, "scoring": self.scoring,
                "max_entity_share": self.max_entity_share, "min_score": self.min_score, "history": self.history}

    def supports(self, model: Any) -> bool:
        return callable(getattr(model, "score_features", None)) and bool(getattr(model, "feature_names", None))

    def scoring_for(self, model: Any) -> str:
        if self.scoring != "auto":
            return self.scoring
        return "shapley" if "sequence" in getattr(model, "capabilities", ()) else "leave-one-out"

    @staticmethod
    def graph_of(data: RecData) -> Any:
        accessor = getattr(data, "knowledge_graph", None)
        graph = accessor() if callable(accessor) else None
        if graph is None:
            raise UnsupportedError(f"kg-paths: dataset {data.name!r} has no knowledge graph; use movielens-100k, or "
                                   "declare kg = \"triples.csv\" (head, relation, tail) on a table dataset")
        return graph

    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        start = time.perf_counter()
        if not self.supports(model):
            raise UnsupportedError(f"kg-paths: model {getattr(model, 'name', model)!r} does not score feature rows "
                                   "(score_features); kg-paths scores paths by editing them")
        graph = self.graph_of(data)
        seq = sequence_columns(data)
        if not seq:
            raise UnsupportedError(f"kg-paths: dataset {data.name!r} has no history sequence features, so no history item "
                                   "can be scored; set history_length > 0")
        method = self.scoring_for(model)
        rows = data.with_context(pairs) if data.context_names else pairs
        rows = rows.reset_index(drop=True)
        X = data.features(rows)
        phi, full, base = contributions(model, data, X, method)
        blind = sees_history_items(model, data, X, full) is False
        mname = getattr(model, "name", "model")
        keep_all = self.min_score is None or self.min_score == -math.inf  # asked for every path, whatever its score
        caution = None
        if blind:  # its scores say "a history this long", not "this item": no item may be named as a reason
            shown = ("paths are kept only because min_score = -inf keeps them all" if keep_all else "no path is shown")
            caution = (f"kg-paths: model {mname!r} does not tell history items apart (replacing every history item by "
                       "another changes none of its scores), so a path's score would be the effect of the history's "
                       f"length, not of the item it names; {shown}. Use a model that reads the history items "
                       "(e.g. torch-attention with id_features = true)")
            warnings.warn(caution, WhyrecWarning, stacklevel=2)
        S = X[seq].to_numpy(dtype=float, na_value=np.nan)
        linked = int(graph.summary().get("linked_items", 0)) or 1
        cap = None if self.max_entity_share >= 1 else max(1, math.ceil(self.max_entity_share * linked))

        all_paths, reasons = [], []
        with_path = supported = 0
        for p in range(len(rows)):
            user, item = rows.at[p, USER], rows.at[p, ITEM]
            scored: dict[Any, float] = {}
            for j in range(len(seq)):
                h = item_of_value(data, S[p, j])
                if h is not None and h not in scored:
                    scored[h] = float(phi[p, j])
            if self.history == "all":  # items the model does not see: removing them changes nothing
                for h in data.history(user):
                    scored.setdefault(h, 0.0)
            found = []
            for h, score in scored.items():
                for fact in facts_between(graph, h, item, cap)[:self.per_history_item]:
                    found.append(self._path(graph, data, h, item, fact, score, method))
            with_path += bool(found)
            if blind and not keep_all:
                found = []
            elif self.min_score is not None:
                found = [f for f in found if f["score"] > self.min_score]
            supported += bool(found)
            found.sort(key=lambda f: (-f["score"], f["hops"], f["entity_items"]))
            found = found[:self.max_paths]
            all_paths.append(found)
            reasons.append([self._sentence(data, f) for f in found])

        out_pairs = pd.DataFrame({USER: rows[USER].to_numpy(), ITEM: rows[ITEM].to_numpy()})
        if "rank" in rows.columns:
            out_pairs["rank"] = rows["rank"].to_numpy()
        out_pairs["output_value"] = full
        if method == "shapley":
            out_pairs["base_value"] = base  # output with the whole history removed; Shapley values sum to the gap
        attributions = pd.DataFrame(np.nan_to_num(phi, nan=0.0), columns=seq)
        seconds = time.perf_counter() - start
        n = max(len(rows), 1)
        summary = {
            "scoring": method,
            "scoring_note": ("exact Shapley value of each history item (sequence model)" if method == "shapley" else
                             "leave-one-out: score minus the score with that history item removed"),
            "pairs": len(rows), "pairs_with_path": with_path, "pairs_with_supported_path": supported,
            "coverage": with_path / n, "supported_coverage": supported / n,
            "max_entity_items": cap, "seconds": seconds, "seconds_per_pair": seconds / n,
            "graph": {k: _plain(v) for k, v in graph.summary().items()},
            "history_items_told_apart": not blind,
        }
        if caution:
            summary["caution"] = caution
        return Explanation(method="kg-paths", model=mname, pairs=out_pairs,
                           schema=data.schema.select(seq), attributions=attributions,
                           feature_values=X[seq].reset_index(drop=True), params={**self.params, "scoring_used": method},
                           additive=method == "shapley", reasons=reasons, summary=summary,
                           details={"paths": all_paths})

    @staticmethod
    def _path(graph: Any, data: RecData, h: Any, item: Any, fact: Fact, score: float, method: str) -> dict:
        return {
            "history_item": _plain(h), "history_title": data.item_title(h),
            "relation": fact.relation, "relation_label": graph.relation_label(fact.relation),
            "entity": graph.entity_label(fact.entity), "entity_id": fact.entity, "item": _plain(item),
            "score": float(score),
            "scoring": method, "hops": fact.hops, "entity_items": fact.items_linked,
            "history_is_head": fact.history_is_head,
        }

    @staticmethod
    def _sentence(data: RecData, path: dict) -> str:
        h, t, label = path["history_title"], data.item_title(path["item"]), path["relation_label"]
        if path["hops"] == 1:
            fact = f"{t} is the {label} of {h}" if path["history_is_head"] else f"{h} is the {label} of {t}"
        else:
            named = f" ({path['entity']})" if path["entity"] != path["entity_id"] else ""  # ml-100k: Freebase ids only
            fact = f"{t} has the same {label}{named}"
        return f"you liked {h}; {fact} (contribution {path['score']:+.3f}, {path['scoring']})"
