"""The compressed torch-attention models: ``pruned-torch`` and ``quantized-torch``.

Kept apart from compressed.py so that pruning or quantising an ``mlp`` student does not need
the whyrec-torch plugin installed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .compressed import _Pruned, _Quantized


def _torch_base() -> type:
    try:
        from whyrec_torch.model import TorchAttentionModel
    except ImportError as exc:  # pragma: no cover - only without whyrec-torch
        raise ImportError("pruned-torch / quantized-torch need the whyrec-torch plugin: pip install -e plugins/whyrec-torch") from exc
    return TorchAttentionModel


_TorchAttention = _torch_base()


class PrunedTorchModel(_Pruned, _TorchAttention):
    """torch-attention model after global magnitude pruning; weights stored sparse. Every
    explainer of torch-attention (attention maps, integrated gradients) works on it."""

    name = "pruned-torch"
    capabilities = frozenset({"differentiable", "attention", "sequence", "pruned"})
    DIRECT_WEIGHT = ("pos_emb",)  # AttentionNet adds pos_emb.weight to the history keys


class QuantizedTorchModel(_Quantized, _TorchAttention):
    """torch-attention model with dynamic int8 linear layers (CPU; attention maps still work,
    gradient explainers do not)."""

    name = "quantized-torch"
    capabilities = frozenset({"attention", "sequence", "quantized"})
    DIRECT_WEIGHT = ("pos_emb",)  # AttentionNet adds pos_emb.weight to the history keys

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.device = torch.device("cpu")  # int8 dynamic layers run on the CPU only

    @classmethod
    def load(cls, directory: str | Path, data: Any, device: str | None = "cpu") -> "QuantizedTorchModel":
        return super().load(directory, data, device="cpu")
