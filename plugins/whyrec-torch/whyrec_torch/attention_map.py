"""attention-map: the attention weight of every history item, per recommendation."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from whyrec import Explanation
from whyrec.data import RecData
from whyrec.errors import WhyrecError

from . import plots
from .common import base_pairs, check_model, position_table, prepare, supports
from .gradients import _history_reasons


class AttentionMap:
    """Attention weights of the candidate over the user's history ("because you watched
    Star Wars (0.41) and Return of the Jedi (0.22)"), a heat-map across the top-k, and a
    check of whether attention is a faithful explanation for this model (``quality``)."""

    def __init__(self, reasons: int = 3, ig_steps_cold: int = 16, max_figures: int = 3, quality_pairs: int = 20,
                 quality_ig_steps: int = 32, random_orders: int = 3, check: bool = True, seed: int = 0) -> None:
        if quality_pairs < 1 or random_orders < 1 or quality_ig_steps < 1:
            raise WhyrecError(f"attention-map: quality_pairs={quality_pairs}, random_orders={random_orders} and "
                              f"quality_ig_steps={quality_ig_steps} must be >= 1")
        self.n_reasons = int(reasons)
        self.ig_steps_cold = int(ig_steps_cold)
        self.max_figures = int(max_figures)
        self.quality_pairs = int(quality_pairs)
        self.quality_ig_steps = int(quality_ig_steps)
        self.random_orders = int(random_orders)
        self.check = bool(check)
        self.seed = int(seed)

    def supports(self, model: Any) -> bool:
        return supports(model, "attention")

    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        check_model(model, "attention-map", "attention")
        rows = prepare(model, data, pairs)
        logits, w = model.forward_encoded(rows.enc, return_attention=True)
        seq = model.sequence_features
        out = base_pairs(rows, logits, np.nan)
        expl = Explanation(method="attention-map", model=model.name, pairs=out, schema=data.schema.select(seq),
                           attributions=pd.DataFrame(w, columns=seq), params={"weights": "softmax over filled history positions"},
                           additive=False)
        expl.extras["attention"] = position_table(rows, data, {"weight": w})
        expl.reasons = _history_reasons(model, data, rows, w, "attention", self.n_reasons, self.ig_steps_cold)
        filled = rows.enc.mask.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.nansum(np.where(w > 0, w * np.log(w), 0.0), axis=1)
            norm_ent = np.where(filled > 1, ent / np.log(np.maximum(filled, 2)), np.nan)
        expl.summary = {
            "attribution_units": "attention weight (0 to 1; sums to 1 over the history)",
            "cold_start_pairs": int((filled == 0).sum()),
            "mean_max_weight": float(np.nanmean(np.where(filled > 0, w.max(axis=1) if w.shape[1] else 0.0, np.nan))) if (filled > 0).any() else None,
            "mean_normalised_entropy": float(np.nanmean(norm_ent)) if np.isfinite(norm_ent).any() else None,
        }
        return expl

    def figures(self, explanation: Explanation, data: RecData) -> dict[str, Any]:
        return plots.history_heatmaps(explanation, data, "attention", "weight", "attention", max_users=self.max_figures)

    def quality(self, model: Any, data: RecData, explanation: Explanation, ctx: Any = None):
        """Is attention faithful? Kendall τ against leave-one-out effects, deletion curves
        (attention vs integrated gradients vs random order), a uniform-attention baseline and a
        plain-words verdict, as a ``whyrec.StageResult``."""
        if not self.check:
            return None
        from .faithfulness import attention_faithfulness

        seed = self.seed if ctx is None else int(getattr(ctx, "seed", self.seed))
        return attention_faithfulness(model, data, explanation, max_pairs=self.quality_pairs, ig_steps=self.quality_ig_steps,
                                      random_orders=self.random_orders, seed=seed)
