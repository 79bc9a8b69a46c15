"""The network of ``transformer-seq``: SASRec/BERT4Rec-style self-attention over the history.

Tokens are [candidate, hist_0 .. hist_{N-1}] (most recent first), each an item embedding plus
a position embedding. Every block is pre-LayerNorm multi-head self-attention and a GELU
feed-forward layer. Two objectives share one forward pass:
- **candidate scoring**: the candidate token reads the whole history, and its last hidden
  state goes with the side features (categorical embeddings, numbers) into an MLP head;
- **next item**: a history token attends only to itself and to older tokens, never to the
  candidate or to newer items, so its hidden state predicts the next (newer) item through the
  tied item embeddings (``auxiliary_loss``).

It offers the interface the torch plugin's explainers read, the same as ``AttentionNet``:
``item_emb`` is called once per forward on all tokens, ``cat_emb`` and ``num_in`` once, the
history mask is an argument, and ``forward_embedded`` runs from embeddings on. It also offers
``attention_maps``, the per-layer attention that attention rollout and flow combine.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .network import HistoryNet

NEXT_ROWS = 256  # rows of a batch that feed the next-item loss
NEXT_NEGATIVES = 128  # sampled negatives of its softmax


@dataclass
class TransformerConfig:
    item_vocab_size: int
    cat_vocab_total: int
    n_categorical: int
    n_numeric: int
    history_length: int
    embedding_dim: int = 32
    layers: int = 2
    heads: int = 2
    ff_multiplier: int = 4
    hidden: tuple[int, ...] = (64,)
    dropout: float = 0.1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


class SelfAttention(nn.Module):
    """Multi-head attention that also returns its weights [B, heads, T, T] (rollout reads them)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, uniform: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, D = x.shape
        h = self.heads
        q, k, v = self.qkv(x).view(B, T, 3, h, D // h).permute(2, 0, 3, 1, 4)  # each [B, h, T, d]
        allowed = allowed.unsqueeze(1)  # [B, 1, T, T]
        if uniform:  # the faithfulness baseline: an even average over what each token may see
            w = allowed.to(x.dtype).expand(B, h, T, T)
            w = w / w.sum(-1, keepdim=True).clamp_min(1.0)
        else:
            logits = (q @ k.transpose(-1, -2)) / math.sqrt(D // h)
            logits = logits.float().masked_fill(~allowed, -1e4)
            w = torch.softmax(logits, dim=-1).to(x.dtype) * allowed.to(x.dtype)
        y = (self.drop(w) @ v).transpose(1, 2).reshape(B, T, D)
        return self.out(y), w


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, uniform: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        a, w = self.attn(self.ln1(x), allowed, uniform)
        x = x + self.drop(a)
        x = x + self.drop(self.ff(self.ln2(x)))
        return x, w


class TransformerNet(HistoryNet):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        if cfg.embedding_dim % cfg.heads:
            raise ValueError(f"embedding_dim={cfg.embedding_dim} must be a multiple of heads={cfg.heads}")
        self.cfg = cfg
        d = cfg.embedding_dim
        self.item_emb = nn.Embedding(cfg.item_vocab_size, d, padding_idx=0)
        self.cat_emb = nn.Embedding(max(cfg.cat_vocab_total, 1), d)
        self.num_in = nn.Identity()
        self.pos_emb = nn.Embedding(cfg.history_length + 1, d)  # 0: the candidate, 1..N: history positions
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.ff_multiplier * d, cfg.dropout) for _ in range(cfg.layers))
        self.ln_out = nn.LayerNorm(d)
        width = 2 * d + d * cfg.n_categorical + cfg.n_numeric
        layers: list[nn.Module] = []
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)
        self._aux: torch.Tensor | None = None
        self._hidden: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.item_emb.weight, std=0.05)
        nn.init.normal_(self.cat_emb.weight, std=0.05)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    # -- the explainers' interface (HistoryNet's forward / embed), plus the next-item objective --
    def forward_parts(self, items: torch.Tensor, cat: torch.Tensor, num: torch.Tensor, mask: torch.Tensor,
                      uniform_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = super().forward_parts(items, cat, num, mask, uniform_attention)
        if self.training and self.cfg.history_length > 1:  # the same pass serves the next-item objective
            self._aux = self._next_item_loss(items, mask, self._hidden)
        self._hidden = None
        return out

    def forward_embedded(self, e_items: torch.Tensor, e_cat: torch.Tensor, x_num: torch.Tensor, mask: torch.Tensor,
                         uniform_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(logit [B], the candidate's last-layer attention over the history [B, N], mean of heads)."""
        h, maps = self._encode(e_items, mask, uniform_attention)
        self._hidden = h if self.training else None
        z = torch.cat([self.ln_out(h[:, 0]), e_items[:, 0], e_cat.flatten(1), x_num], dim=1)
        weights = maps[-1][:, :, 0, 1:].mean(dim=1) if maps else e_items.new_zeros(e_items.shape[0], 0)
        return self.head(z).squeeze(-1), weights

    def attention_maps(self, items: torch.Tensor, mask: torch.Tensor, uniform_attention: bool = False) -> list[torch.Tensor]:
        """Per layer, the attention weights [B, heads, 1+N, 1+N] (row = who attends)."""
        return self._encode(self.item_emb(items), mask, uniform_attention)[1]

    # -- internals ---------------------------------------------------------------------------
    def allowed(self, mask: torch.Tensor) -> torch.Tensor:
        """[B, T, T] bool: the candidate (row 0) sees itself and every filled history position; a
        history token sees itself and older filled positions only (column >= row)."""
        B, N = mask.shape
        T = N + 1
        valid = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=mask.device), mask], dim=1)  # [B, T]
        older = torch.ones(T, T, dtype=torch.bool, device=mask.device).triu()  # column >= row
        older[1:, 0] = False
        allowed = older.unsqueeze(0) & valid.unsqueeze(1)
        return allowed | torch.eye(T, dtype=torch.bool, device=mask.device).unsqueeze(0)

    def _encode(self, e_items: torch.Tensor, mask: torch.Tensor, uniform: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = e_items + self.pos_emb.weight[: e_items.shape[1]].unsqueeze(0)
        allowed = self.allowed(mask)
        maps = []
        for block in self.blocks:
            x, w = block(x, allowed, uniform)
            maps.append(w)
        return x, maps

    def _next_item_loss(self, items: torch.Tensor, mask: torch.Tensor, h: torch.Tensor) -> torch.Tensor | None:
        """Cross-entropy of each history token's hidden state (tied item embeddings as the output
        layer) against the next, newer item: position i+1 predicts the item at position i."""
        # Training rows repeat a user's history once per sampled negative: a slice of the (shuffled)
        # batch is enough, and a sampled softmax (the target against NEXT_NEGATIVES random items
        # shared by the batch) costs a fraction of the full one over every item.
        rows = slice(0, NEXT_ROWS)
        items, mask, h = items[rows], mask[rows], h[rows]
        pairs = mask[:, :-1] & mask[:, 1:]
        if not bool(pairs.any()):
            return None
        src = self.ln_out(h[:, 2:])[pairs]  # tokens of hist_1 .. hist_{N-1} (older)
        target = items[:, 1:-1][pairs]  # hist_0 .. hist_{N-2} (one step newer)
        vocab = self.item_emb.weight
        neg = torch.randint(1, vocab.shape[0], (NEXT_NEGATIVES,), device=items.device)
        logits = torch.cat([(src * vocab[target]).sum(-1, keepdim=True), src @ vocab[neg].T], dim=1)
        logits[:, 1:] = logits[:, 1:].masked_fill(neg.unsqueeze(0) == target.unsqueeze(1), -1e4)  # a negative that is the target
        return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=items.device))

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The next-item loss of the last training forward (None outside training)."""
        aux, self._aux = self._aux, None
        return aux
