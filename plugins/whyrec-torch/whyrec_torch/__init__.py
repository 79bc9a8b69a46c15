"""whyrec-torch: a DIN-style attention recommender and the explainers that read it.

Components (registered lazily so that loading plugins never imports torch):
- models ``torch-attention`` and ``transformer-seq``
- explainers ``attention-map`` (with the "is attention faithful?" quality check),
  ``integrated-gradients``, ``gradient-shap``, ``grad-cam``, ``history-counterfactual``,
  ``attention-rollout`` (transformer-seq)
"""
from __future__ import annotations

import whyrec

try:  # whyrec >= 0.1 ships lazy factories; fall back to importing on first call
    from whyrec.plugins import lazy
except ImportError:  # pragma: no cover
    import importlib

    def lazy(target: str, description: str = ""):  # type: ignore[no-redef]
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

__version__ = "0.1.0"


@whyrec.hookimpl
def register_models(register):
    register("torch-attention", lazy("whyrec_torch.model:TorchAttentionModel"),
             description="DIN-style PyTorch recommender: target attention over the user's history (CUDA when present)",
             provides=["differentiable", "attention", "sequence", "torch-network"])
    register("transformer-seq", lazy("whyrec_torch.transformer:TransformerSeqModel"),
             description="SASRec-style self-attention sequence recommender, several layers and heads, next-item + "
                         "candidate objectives (size = small on CPU, large = 10M+ parameters on a GPU)",
             provides=["differentiable", "attention", "attention-layers", "sequence", "torch-network", "structured-network"])


@whyrec.hookimpl
def register_explainers(register):
    register("attention-map", lazy("whyrec_torch.attention_map:AttentionMap"),
             description="attention weight of every history item, heat-map across the top-k, faithfulness check",
             requires=["attention", "sequence"])
    register("integrated-gradients", lazy("whyrec_torch.gradients:IntegratedGradients"),
             description="Captum layer integrated gradients on the embeddings, per feature and field, completeness gap",
             requires=["differentiable", "sequence"])
    register("gradient-shap", lazy("whyrec_torch.gradient_shap:GradientSHAP"),
             description="gradient SHAP (expected gradients) on the embeddings against training rows, per feature and field",
             requires=["differentiable", "sequence"])
    register("grad-cam", lazy("whyrec_torch.gradients:GradCAM"),
             description="Grad-CAM over history positions (gradient x activation of the history embeddings)",
             requires=["differentiable", "sequence"])
    register("attention-rollout", lazy("whyrec_torch.rollout:AttentionRollout"),
             description="attention rollout or flow across the layers of transformer-seq (Abnar & Zuidema), raw last layer kept",
             requires=["attention-layers", "sequence"])
    register("history-counterfactual", lazy("whyrec_torch.counterfactual:HistoryCounterfactual"),
             description="smallest set of history items whose removal drops the item out of the top-k",
             requires=["sequence"])


@whyrec.hookimpl
def register_report_sections(register):
    from .report import render  # whyrec.report is imported only when the section renders

    register("torch-faithfulness", render, order=52)
