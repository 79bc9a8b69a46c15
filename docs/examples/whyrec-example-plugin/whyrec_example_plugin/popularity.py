"""The popularity model and its exact explainer (imported only when used)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from whyrec import BaseModel, Explanation


class PopularityModel(BaseModel):
    """Most-popular baseline: log(1 + positives of the item) + weight * log(1 + user activity)."""

    name = "popularity"
    # additive: the score is a sum of per-feature terms; popularity-terms: it has terms(pairs),
    # what popularity-reason reads (a capability of this plugin's own, declared at registration too)
    capabilities = frozenset({"additive", "popularity-terms"})

    def __init__(self, user_weight: float = 0.1) -> None:
        super().__init__(user_weight=user_weight)
        self.user_weight = user_weight

    def fit(self, data, ctx=None) -> dict:
        self.bind(data, feature_names=[])
        pos = data.train[data.train["label"] > 0]
        self.item_pop = pos.groupby("item").size().reindex(data.item_ids, fill_value=0)
        self.user_act = pos.groupby("user").size().reindex(data.user_ids, fill_value=0)
        return {"items_with_positives": int((self.item_pop > 0).sum())}

    def terms(self, pairs: pd.DataFrame) -> pd.DataFrame:
        item = np.log1p(self.item_pop.reindex(pairs["item"]).fillna(0).to_numpy(float))
        user = self.user_weight * np.log1p(self.user_act.reindex(pairs["user"]).fillna(0).to_numpy(float))
        return pd.DataFrame({"item_popularity": item, "user_activity": user})

    def score(self, pairs: pd.DataFrame) -> np.ndarray:
        return self.terms(pairs).sum(axis=1).to_numpy()

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError("the popularity model scores pairs, not feature rows")

    def _save_weights(self, directory: Path) -> None:
        pd.DataFrame({"item": self.item_pop.index, "n": self.item_pop.to_numpy()}).to_parquet(directory / "item_pop.parquet")
        pd.DataFrame({"user": self.user_act.index, "n": self.user_act.to_numpy()}).to_parquet(directory / "user_act.parquet")

    def _load_weights(self, directory: Path) -> None:
        ip = pd.read_parquet(directory / "item_pop.parquet")
        ua = pd.read_parquet(directory / "user_act.parquet")
        self.item_pop = pd.Series(ip["n"].to_numpy(), index=ip["item"].to_numpy())
        self.user_act = pd.Series(ua["n"].to_numpy(), index=ua["user"].to_numpy())


class PopularityReason:
    """Exact additive explanation of the popularity model: its two terms."""

    def supports(self, model) -> bool:
        return isinstance(model, PopularityModel)

    def explain(self, model, data, pairs: pd.DataFrame) -> Explanation:
        terms = model.terms(pairs)
        from whyrec import Feature, FeatureSchema

        schema = FeatureSchema([Feature("item_popularity", "item"), Feature("user_activity", "user")])
        out = pairs[["user", "item"]].copy()
        out["output_value"] = terms.sum(axis=1).to_numpy()
        out["base_value"] = 0.0
        reasons = [[f"{int(np.expm1(t)):d} users liked {data.item_title(i)}"] for t, i in zip(terms["item_popularity"], pairs["item"])]
        return Explanation(method="popularity-reason", model=model.name, pairs=out, schema=schema,
                           attributions=terms, reasons=reasons)
