"""attention-rollout: what the candidate attends to across all layers (Abnar & Zuidema 2020).

Raw attention of the last layer says what the candidate's token read in that layer, but in a
deep model that token already mixes the history. Two ways to follow attention through the
layers, both on the heads' mean with the residual connection as 0.5 * I:
- **rollout**: the product of the layers' attention matrices, A_L ... A_1; row 0 is how much of
  each input token reaches the candidate's output;
- **flow**: the maximum flow from each input token to the candidate's output through the
  layered graph whose edge capacities are the attention weights.
Each pair's weights over its history positions are reported, with ``raw`` (last layer) kept as
a comparison. Needs a model with the ``attention-layers`` capability (transformer-seq).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from whyrec import Explanation
from whyrec.data import RecData
from whyrec.errors import UnsupportedError

from . import plots
from .common import base_pairs, position_table, prepare
from .gradients import _history_reasons

METHODS = ("rollout", "flow", "raw")


def layer_matrices(maps: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer, mean over heads plus the residual, rows renormalised: [B, T, T]."""
    out = []
    for m in maps:
        a = m.mean(axis=1)
        a = 0.5 * a + 0.5 * np.eye(a.shape[-1])[None]
        out.append(a / a.sum(axis=-1, keepdims=True))
    return out


def rollout(maps: list[np.ndarray]) -> np.ndarray:
    """[B, T]: how much of each input token reaches the output at token 0 (rows sum to 1)."""
    mats = layer_matrices(maps)
    r = mats[0]
    for a in mats[1:]:
        r = a @ r
    return r[:, 0, :]


def flow(maps: list[np.ndarray]) -> np.ndarray:
    """[B, T]: maximum flow from each input token to token 0's output, capacities = the
    layers' attention weights (Abnar & Zuidema's attention flow)."""
    import networkx as nx

    mats = layer_matrices(maps)
    B, T, _ = mats[0].shape
    L = len(mats)
    out = np.zeros((B, T))
    for b in range(B):
        g = nx.DiGraph()
        for layer, a in enumerate(mats):  # node (layer, j) -> (layer + 1, i) with capacity a[i, j]
            rows, cols = np.nonzero(a[b] > 1e-9)
            for i, j in zip(rows, cols):
                g.add_edge((layer, int(j)), (layer + 1, int(i)), capacity=float(a[b, i, j]))
        for j in range(T):
            if g.has_node((0, j)) and g.has_node((L, 0)):
                out[b, j] = nx.maximum_flow_value(g, (0, j), (L, 0))
    return out


class AttentionRollout:
    """Attention rollout or flow across the layers of transformer-seq, per history item."""

    def __init__(self, method: str = "rollout", reasons: int = 3, ig_steps_cold: int = 16, max_figures: int = 3) -> None:
        if method not in METHODS:
            raise UnsupportedError(f"attention-rollout: method={method!r} is not one of {', '.join(METHODS)}")
        self.method = method
        self.n_reasons = int(reasons)
        self.ig_steps_cold = int(ig_steps_cold)
        self.max_figures = int(max_figures)

    def supports(self, model: Any) -> bool:
        return "attention-layers" in (getattr(model, "capabilities", ()) or ()) and hasattr(model, "attention_layers")

    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        if not self.supports(model):
            raise UnsupportedError(f"attention-rollout needs a model with the 'attention-layers' capability "
                                   f"(transformer-seq); {getattr(model, 'name', model)!r} has "
                                   f"{sorted(getattr(model, 'capabilities', ()) or ())}")
        rows = prepare(model, data, pairs)
        maps = model.attention_layers(rows.X)
        logits = model.forward_encoded(rows.enc)
        every = {"rollout": rollout(maps)[:, 1:], "raw": maps[-1].mean(axis=1)[:, 0, 1:]}
        if self.method == "flow":
            every["flow"] = flow(maps)[:, 1:]
        w = every[self.method] * rows.enc.mask  # padded positions carry nothing
        seq = model.sequence_features
        expl = Explanation(method=f"attention-{self.method}", model=model.name, pairs=base_pairs(rows, logits, np.nan),
                           schema=data.schema.select(seq), attributions=pd.DataFrame(w, columns=seq),
                           params={"method": self.method, "layers": len(maps), "residual": 0.5}, additive=False)
        expl.extras["attention"] = position_table(rows, data, {k: v * rows.enc.mask for k, v in every.items()})
        expl.reasons = _history_reasons(model, data, rows, w, f"attention {self.method}", self.n_reasons, self.ig_steps_cold)
        units = {"rollout": "share of the candidate's output traced to each history token through all layers "
                            "(rollout; the candidate's own token takes the rest)",
                 "flow": "maximum attention flow from each history token to the candidate's output",
                 "raw": "last-layer attention of the candidate to each history token (mean of heads)"}
        expl.summary = {"attribution_units": units[self.method], "layers": len(maps),
                        "mean_history_share": float(np.mean(w.sum(axis=1))) if len(w) else None,
                        "cold_start_pairs": int(rows.cold.sum())}
        return expl

    def figures(self, explanation: Explanation, data: RecData) -> dict[str, Any]:
        return plots.history_heatmaps(explanation, data, "attention", self.method, f"attention {self.method}",
                                      max_users=self.max_figures)

    def quality(self, model: Any, data: RecData, explanation: Explanation, ctx: Any = None):
        """Which per-position method is most faithful on this model: Kendall τ vs leave-one-out and
        deletion area vs random for raw attention, rollout, flow, integrated gradients,
        gradient-shap and Grad-CAM (``faithfulness_methods``), as a ``kind: faithfulness``
        StageResult judging this explainer's own method."""
        from .faithfulness_methods import method_faithfulness, quality_result

        seed = int(getattr(ctx, "seed", 0) or 0) if ctx is not None else 0
        res = method_faithfulness(model, data, explanation.pairs, max_pairs=getattr(self, "quality_pairs", 20), seed=seed)
        return quality_result(res, "attention" if self.method == "raw" else self.method)
