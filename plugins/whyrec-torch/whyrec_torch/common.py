"""What every explainer of this plugin shares: the explained rows, their history, words."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import DataError, UnsupportedError
from whyrec.ids import value_keys

from .encoding import Encoded


def check_model(model: Any, explainer: str, need: str = "attention") -> None:
    """Explainers of this plugin read the network of a torch-attention model."""
    if not supports(model, need):
        caps = sorted(getattr(model, "capabilities", []) or [])
        raise UnsupportedError(
            f"explainer {explainer!r} needs a torch-attention model (capability {need!r} and a network); "
            f"model {getattr(model, 'name', model)!r} has capabilities {caps}; use exact-field-shapley or "
            "permutation-shap for other models"
        )


def supports(model: Any, need: str = "attention") -> bool:
    caps = getattr(model, "capabilities", frozenset()) or frozenset()
    return (need in caps and "sequence" in caps and getattr(model, "net", None) is not None
            and hasattr(model, "encode") and hasattr(model, "forward_encoded"))


@dataclass
class Rows:
    """The explained pairs with their feature rows, encodings and history items."""

    pairs: pd.DataFrame  # user, item (and rank, score when given), index 0..n-1
    X: pd.DataFrame
    enc: Encoded
    history: list[list[tuple[int, Any]]]  # per row: (position, item id), most recent first

    @property
    def cold(self) -> np.ndarray:
        return np.array([len(h) == 0 for h in self.history], dtype=bool)


def prepare(model: Any, data: RecData, pairs: pd.DataFrame) -> Rows:
    if not isinstance(pairs, pd.DataFrame) or not {USER, ITEM} <= set(pairs.columns):
        raise DataError(f"pairs to explain need columns {USER!r} and {ITEM!r}; got {list(getattr(pairs, 'columns', []))}")
    if len(pairs) == 0:
        raise DataError("no pairs to explain: the pairs table is empty")
    keep = [c for c in (USER, ITEM, "rank", "score", *data.context_names) if c in pairs.columns]
    p = pairs[keep].reset_index(drop=True)
    X = data.features(p)[model.feature_names].reset_index(drop=True)  # context travels with the row
    enc = model.encode(X)
    return Rows(p, X, enc, history_items(model, X))


def history_items(model: Any, X: pd.DataFrame) -> list[list[tuple[int, Any]]]:
    seq = model.sequence_features
    if not seq:
        return [[] for _ in range(len(X))]
    block = X[seq]
    keys = np.stack([value_keys(block[c]) for c in seq], axis=1)  # (rows, N) canonical ids, None = empty
    ids = model.item_ids_by_key()
    out = []
    for row_keys, row_vals in zip(keys, block.to_numpy(dtype=object)):
        out.append([(k, ids.get(key, val)) for k, (key, val) in enumerate(zip(row_keys, row_vals)) if key is not None])
    return out


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def base_pairs(rows: Rows, output: np.ndarray, base: np.ndarray | float) -> pd.DataFrame:
    out = rows.pairs.copy()
    out["output_value"] = np.asarray(output, dtype=float)
    out["base_value"] = np.broadcast_to(np.asarray(base, dtype=float), (len(out),)).copy()
    out["history_items"] = [len(h) for h in rows.history]
    return out


def position_table(rows: Rows, data: RecData, values: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long table: one row per (explained pair, filled history position) with item titles
    and one column per array in ``values`` (each [pairs, N])."""
    pair = np.array([i for i, h in enumerate(rows.history) for _ in h], dtype=np.int64)
    pos = np.array([p for h in rows.history for p, _ in h], dtype=np.int64)
    items = [it for h in rows.history for _, it in h]
    titles = {it: data.item_title(it) for it in set(items)}
    df = pd.DataFrame({
        "pair": pair, "user": rows.pairs[USER].to_numpy()[pair] if len(pair) else [],
        "item": rows.pairs[ITEM].to_numpy()[pair] if len(pair) else [], "position": pos,
        "history_item": pd.Series(items, dtype=object), "history_title": [titles[it] for it in items],
    })
    for name, arr in values.items():
        df[name] = np.asarray(arr, dtype=float)[pair, pos] if len(pair) else np.zeros(0)
    # ids of mixed types do not fit a Parquet column; titles carry the meaning, ids stay exact as text
    for c in ("user", "item", "history_item"):
        if df[c].dtype == object:
            df[c] = df[c].astype(str)
    return df


def join_words(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def watched_reason(items: list[tuple[str, float]], lead: str = "because you watched", fmt: str = "{:.2f}") -> str:
    return f"{lead} " + join_words([f"{title} ({fmt.format(w)})" for title, w in items])


def history_fields(data: RecData) -> set[str]:
    return {f.name for f in data.schema if f.field == "history"}


def cold_start_reasons(field_attr: pd.Series, feature_attr: pd.Series, data: RecData, row: pd.Series,
                       history_features: set[str], n: int = 3) -> list[str]:
    """Words for a user without history: the non-history fields and features that carry it."""
    fields = field_attr.drop(labels=[f for f in field_attr.index if f == "history"], errors="ignore")
    top_fields = fields.reindex(fields.abs().sort_values(ascending=False).index)
    field_words = join_words([f"{name} fields {v:+.2f}" for name, v in top_fields.head(3).items()])
    out = [f"no viewing history yet (cold start): this recommendation rests on non-history fields only ({field_words})"]
    feats = feature_attr.drop(labels=[f for f in feature_attr.index if f in history_features], errors="ignore")
    feats = feats[feats > 0].sort_values(ascending=False).head(n)
    for name, v in feats.items():
        out.append(f"{data.describe_feature(name, row.get(name), row)}: {v:+.2f}")
    return out
