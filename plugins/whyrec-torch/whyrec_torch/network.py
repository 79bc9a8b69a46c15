"""The network: DIN-style target attention of the candidate item over the user's history.

Layout chosen for explainability and for the compression plugin:
- ``item_emb`` is called exactly once per forward on [candidate, hist_0 .. hist_{N-1}], so
  Captum's layer integrated gradients on it gives one attribution per position;
- ``cat_emb`` is one table for every categorical feature (offsets), also called once;
- ``num_in`` is an identity layer on the standardised numbers, so layer IG reads them too;
- the attention mask is an explicit argument: attribution methods keep it fixed at the
  explained row's mask while they interpolate embeddings (a consistent path, so
  integrated gradients' completeness holds);
- the MLP head is plain ``nn.Linear`` + ``nn.ReLU`` layers (prunable, quantisable).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class NetConfig:
    item_vocab_size: int
    cat_vocab_total: int
    n_categorical: int
    n_numeric: int
    history_length: int
    embedding_dim: int = 16
    attention_hidden: int = 32
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    position_embedding: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


class TargetAttention(nn.Module):
    """Scores each history item against the candidate: MLP([k, q, k - q, k * q]) -> softmax.

    Padded positions get weight exactly 0; an empty history gives all-zero weights (and a zero
    pooled interest vector), so cold-start users are scored from the other fields alone.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(4 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, keys: torch.Tensor, query: torch.Tensor, mask: torch.Tensor, uniform: bool = False) -> torch.Tensor:
        mask_f = mask.to(keys.dtype)
        if uniform:
            return mask_f / mask_f.sum(dim=1, keepdim=True).clamp_min(1.0)
        q = query.unsqueeze(1).expand_as(keys)
        logits = self.score(torch.cat([keys, q, keys - q, keys * q], dim=-1)).squeeze(-1)
        logits = logits.masked_fill(~mask, -1e4)
        return torch.softmax(logits.float(), dim=1).to(keys.dtype) * mask_f


class HistoryNet(nn.Module):
    """What the plugin's explainers call on a network, shared by ``AttentionNet`` and
    ``TransformerNet``: ``item_emb`` once on [candidate, history], ``cat_emb`` and ``num_in``
    once, then ``forward_embedded`` (each network's own) from the embeddings on."""

    def zero_missing_rows(self, offsets: list[int]) -> None:
        """Index 0 of every categorical feature (missing) starts at zero: with the history
        padding vector (also zero) this makes the all-missing baseline a true 'no information'
        input. Rows never looked up get exactly zero gradient, so they stay zero."""
        with torch.no_grad():
            for off in offsets:
                self.cat_emb.weight[off].zero_()

    def forward(self, items: torch.Tensor, cat: torch.Tensor, num: torch.Tensor, mask: torch.Tensor,
                uniform_attention: bool = False) -> torch.Tensor:
        """Logit per row. items [B, 1+N], cat [B, C], num [B, M], mask [B, N] bool."""
        return self.forward_parts(items, cat, num, mask, uniform_attention)[0]

    def embed(self, items: torch.Tensor, cat: torch.Tensor, num: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.item_emb(items), self.cat_emb(cat), self.num_in(num)

    def forward_parts(self, items: torch.Tensor, cat: torch.Tensor, num: torch.Tensor, mask: torch.Tensor,
                      uniform_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e_items, e_cat, x_num = self.embed(items, cat, num)
        logit, weights = self.forward_embedded(e_items, e_cat, x_num, mask, uniform_attention)
        return logit, weights, e_items


class AttentionNet(HistoryNet):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embedding_dim
        self.item_emb = nn.Embedding(cfg.item_vocab_size, d, padding_idx=0)
        self.cat_emb = nn.Embedding(max(cfg.cat_vocab_total, 1), d)
        self.num_in = nn.Identity()
        self.pos_emb = nn.Embedding(max(cfg.history_length, 1), d) if cfg.position_embedding else None
        self.attention = TargetAttention(d, cfg.attention_hidden)
        width = d * (1 + cfg.n_categorical) + cfg.n_numeric + 2 * d
        layers: list[nn.Module] = []
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.item_emb.weight, std=0.05)
        nn.init.normal_(self.cat_emb.weight, std=0.05)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        if self.pos_emb is not None:
            nn.init.normal_(self.pos_emb.weight, std=0.05)

    def forward_embedded(self, e_items: torch.Tensor, e_cat: torch.Tensor, x_num: torch.Tensor, mask: torch.Tensor,
                         uniform_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """From embeddings on: (logit [B], attention weights [B, N]). Grad-CAM differentiates
        the logit with respect to ``e_items`` through this method."""
        target, hist = e_items[:, 0], e_items[:, 1:]
        keys = hist
        if self.pos_emb is not None and hist.shape[1] > 0:
            keys = hist + self.pos_emb.weight[: hist.shape[1]].unsqueeze(0)
        if hist.shape[1] > 0:
            weights = self.attention(keys, target, mask, uniform=uniform_attention)
            pooled = (weights.unsqueeze(-1) * hist).sum(dim=1)
        else:
            weights = hist.new_zeros(hist.shape[0], 0)
            pooled = torch.zeros_like(target)
        z = torch.cat([target, e_cat.flatten(1), x_num, pooled, pooled * target], dim=1)
        return self.head(z).squeeze(-1), weights
