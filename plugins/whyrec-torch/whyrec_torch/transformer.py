"""transformer-seq: a self-attention sequence recommender (SASRec/BERT4Rec style).

Same inputs, training loop, scoring, saving and explainers as ``torch-attention`` (this class
only swaps the network: ``TransformerNet``), plus the next-item objective and the per-layer
attention that ``attention-rollout`` reads, and the ``structured-network`` capability (its
network removes whole blocks and heads: ``TransformerNet.without_units``; ``clone_architecture``
gives an untrained smaller model of the same family). Size comes from ``size``:
- ``"small"``: 2 layers, 2 heads, 32 dimensions (tens of thousands of parameters with
  MovieLens' vocabulary): the CPU configuration for the demo and the tests;
- ``"large"``: 4 layers, 8 heads, 512 dimensions (over 10M parameters): for a GPU;
- ``"auto"`` (default): ``large`` where CUDA is present, ``small`` otherwise, saying so.
Explicit ``embedding_dim`` / ``layers`` / ``heads`` / ``hidden`` override the preset.
"""
from __future__ import annotations

from typing import Any

import torch

from whyrec.errors import UnsupportedError
from whyrec.progress import log

from .encoding import FeatureEncoder
from .model import TorchAttentionModel
from .transformer_net import TransformerConfig, TransformerNet

PRESETS = {
    "small": {"embedding_dim": 32, "layers": 2, "heads": 2, "hidden": [64]},
    "large": {"embedding_dim": 512, "layers": 4, "heads": 8, "hidden": [256]},
}
STRUCTURAL = ("embedding_dim", "layers", "heads", "ff_multiplier", "hidden", "dropout", "item_feature")


class TransformerSeqModel(TorchAttentionModel):
    """Self-attention over the history (several layers and heads), candidate scoring plus a
    next-item objective; CUDA and bf16 autocast when present, CPU otherwise."""

    name = "transformer-seq"
    capabilities = frozenset({"differentiable", "attention", "attention-layers", "sequence", "torch-network",
                              "structured-network"})
    net_class = TransformerNet
    config_class = TransformerConfig
    structural = STRUCTURAL

    def __init__(self, size: str = "auto", embedding_dim: int | None = None, layers: int | None = None,
                 heads: int | None = None, hidden: list[int] | None = None, ff_multiplier: int = 4,
                 next_item_weight: float = 0.5, epochs: int = 5, batch_size: int = 1024, lr: float = 2e-3,
                 dropout: float = 0.1, device: str = "auto", **kwargs: Any) -> None:
        if size not in ("auto", *PRESETS):
            raise UnsupportedError(f"transformer-seq: size={size!r} is not one of 'auto', 'small', 'large'")
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, dropout=dropout, device=device,
                         embedding_dim=1, hidden=[1], **kwargs)  # placeholders: the shape is set below
        chosen = size
        if size == "auto":
            chosen = "large" if self.device.type == "cuda" else "small"
            if self.device.type != "cuda" and device == "auto":
                log("transformer-seq: no CUDA device here, so the CPU configuration (size='small') is used; "
                    "set size='large' to train the 10M-parameter model on the CPU anyway")
        preset = PRESETS[chosen]
        given = {"embedding_dim": embedding_dim, "layers": layers, "heads": heads, "hidden": hidden}
        shape = {k: preset[k] if v is None else v for k, v in given.items()}
        shape = {**{k: int(shape[k]) for k in ("embedding_dim", "layers", "heads")}, "hidden": [int(h) for h in shape["hidden"]]}
        for key in ("embedding_dim", "layers", "heads"):
            if shape[key] < 1:
                raise UnsupportedError(f"transformer-seq: {key}={shape[key]} must be >= 1")
        if shape["embedding_dim"] % shape["heads"]:
            raise UnsupportedError(f"transformer-seq: embedding_dim={shape['embedding_dim']} must be a multiple of "
                                   f"heads={shape['heads']}")
        if int(ff_multiplier) < 1 or not 0 <= float(next_item_weight):
            raise UnsupportedError(f"transformer-seq: ff_multiplier={ff_multiplier} must be >= 1 and "
                                   f"next_item_weight={next_item_weight} >= 0")
        # params keep what was asked (size, None for "from the preset"): clones and checkpoints rebuild the same
        self.params.update(size=size, embedding_dim=embedding_dim, layers=layers, heads=heads, hidden=hidden,
                           ff_multiplier=int(ff_multiplier), next_item_weight=float(next_item_weight))
        self.shape = {**shape, "size": chosen}

    def _make_net_config(self, enc: FeatureEncoder, **overrides: Any) -> TransformerConfig:
        shape = {**self.shape, **{k: v for k, v in overrides.items() if v is not None}}
        return TransformerConfig(
            item_vocab_size=enc.item_vocab.size, cat_vocab_total=enc.cat_total, n_categorical=len(enc.categorical),
            n_numeric=len(enc.numeric), history_length=len(enc.sequence), embedding_dim=int(shape["embedding_dim"]),
            layers=int(shape["layers"]), heads=int(shape["heads"]), ff_multiplier=int(self.params["ff_multiplier"]),
            hidden=tuple(int(h) for h in shape["hidden"]), dropout=float(self.params["dropout"]),
        )

    def attention_layers(self, X: Any) -> list:
        """Per layer, attention weights [rows, heads, 1+N, 1+N] for feature rows (numpy)."""
        enc = self.encode(X)
        items, _, _, mask = self.to_tensors(enc)
        net = self.torch_module()
        was = net.training
        net.eval()
        try:
            with torch.inference_mode(), self.threads():
                maps = net.attention_maps(items, mask)
        finally:
            net.train(was)
        return [m.float().cpu().numpy() for m in maps]
