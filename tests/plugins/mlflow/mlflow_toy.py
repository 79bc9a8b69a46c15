"""A small real pipeline for the MLflow tests: a dataset, an explainer with a quality report
and a causal learner that writes a graph. Registered with host.add(mlflow_toy, ...)."""
from __future__ import annotations

import numpy as np
import pandas as pd

import whyrec
from whyrec.atomic import to_json
from whyrec import CausalGraph, CausalReport, Edge, Feature, FeatureSchema, RecData, StageResult
from whyrec_example_plugin.popularity import PopularityReason


class MiniDataset:
    """Users x items with a planted item-quality effect; train/test split by time; seeded."""

    def __init__(self, n_users: int = 25, n_items: int = 20, seed: int = 0, fail: bool = False) -> None:
        self.n_users, self.n_items, self.seed, self.fail = n_users, n_items, seed, fail

    def load(self) -> RecData:
        if self.fail:
            raise whyrec.DataError("mini dataset: asked to fail (fail = true)")
        rng = np.random.default_rng(self.seed)
        users = pd.DataFrame({"age": rng.integers(18, 70, self.n_users).astype(float)},
                             index=pd.RangeIndex(1, self.n_users + 1, name="user"))
        items = pd.DataFrame({"quality": rng.normal(size=self.n_items), "title": [f"Item {i}" for i in range(1, self.n_items + 1)]},
                             index=pd.RangeIndex(1, self.n_items + 1, name="item"))
        rows = [(u, it, int(rng.random() < 1 / (1 + np.exp(-2 * items.at[it, "quality"]))), t)
                for u in users.index for t, it in enumerate(rng.choice(items.index, 10, replace=False))]
        inter = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
        schema = FeatureSchema([Feature("age", "user"), Feature("quality", "item")])
        return RecData("mini", inter, users, items, schema, train=inter[inter.timestamp < 7].reset_index(drop=True),
                       test=inter[inter.timestamp >= 7].reset_index(drop=True))


class CheckedPopularityReason(PopularityReason):
    """The sample plugin's explainer plus a quality report (additivity and coverage)."""

    def quality(self, model, data, explanation, ctx) -> StageResult:
        share = float((explanation.attributions["item_popularity"] > 0).mean())
        return StageResult(summary={"max_additivity_error": explanation.max_additivity_error, "positive_item_share": share,
                                    "pairs": len(explanation.pairs)})


class MiniCausal:
    """Writes a fixed two-edge graph with the correlation of quality and label as its weight."""

    def run(self, ctx) -> CausalReport:
        d = ctx.data
        joined = d.train.join(d.items["quality"], on="item")
        w = float(np.corrcoef(joined["quality"], joined["label"])[0, 1])
        graph = CausalGraph(nodes=["quality", "label", "age"], edges=[Edge("quality", "label", w), Edge("age", "label", 0.0)])
        return CausalReport(summary={"n_edges": 2, "quality_weight": w}, files={"graph.json": to_json(graph.to_dict())})


@whyrec.hookimpl
def register_datasets(register):
    register("mini", MiniDataset)


@whyrec.hookimpl
def register_explainers(register):
    register("popularity-checked", CheckedPopularityReason)


@whyrec.hookimpl
def register_causal_learners(register):
    register("mini-causal", MiniCausal)
