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

Structured pruning (the ``structured-network`` capability, ``whyrec.contracts.StructuredNetwork``):
``structured_units()`` says how many blocks and heads per block there are, and
``without_units(layers=..., heads=...)`` returns a new, physically smaller network without the
given blocks and heads (their weight rows and columns cut out, the rest copied), so a pruned
network is faster, not just sparser. The config records the heads kept per block
(``layer_heads``) and the width of one head (``head_dim``), so a pruned network saves and loads
like any other.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from whyrec.errors import UnsupportedError

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
    layer_heads: tuple[int, ...] | None = None  # heads kept per block (structured pruning); None: ``heads`` each
    head_dim: int | None = None  # width of one head; None: embedding_dim // heads

    def heads_per_layer(self) -> list[int]:
        return list(self.layer_heads) if self.layer_heads is not None else [self.heads] * self.layers

    def dim_head(self) -> int:
        return int(self.head_dim) if self.head_dim is not None else self.embedding_dim // self.heads

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["layer_heads"] = None if self.layer_heads is None else list(self.layer_heads)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        if d.get("layer_heads") is not None:
            d["layer_heads"] = tuple(int(h) for h in d["layer_heads"])
        return cls(**d)


class SelfAttention(nn.Module):
    """Multi-head attention that also returns its weights [B, heads, T, T] (rollout reads them)."""

    def __init__(self, dim: int, heads: int, dropout: float, head_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads if head_dim is None else int(head_dim)
        inner = heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner)  # rows: [q heads | k heads | v heads], head_dim rows per head
        self.out = nn.Linear(inner, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, uniform: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, D = x.shape
        h, dh = self.heads, self.head_dim
        q, k, v = self.qkv(x).view(B, T, 3, h, dh).permute(2, 0, 3, 1, 4)  # each [B, h, T, dh]
        allowed = allowed.unsqueeze(1)  # [B, 1, T, T]
        if uniform:  # the faithfulness baseline: an even average over what each token may see
            w = allowed.to(x.dtype).expand(B, h, T, T)
            w = w / w.sum(-1, keepdim=True).clamp_min(1.0)
        else:
            logits = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
            logits = logits.float().masked_fill(~allowed, -1e4)
            w = torch.softmax(logits, dim=-1).to(x.dtype) * allowed.to(x.dtype)
        y = (self.drop(w) @ v).transpose(1, 2).reshape(B, T, h * dh)
        return self.out(y), w

    def without_heads(self, drop: list[int]) -> "SelfAttention":
        """A copy without the heads ``drop``: their q/k/v rows and output columns cut out, so the
        kept heads compute exactly what they did (removing a head = masking it, Michel et al. 2019)."""
        keep = [i for i in range(self.heads) if i not in set(drop)]
        dim, dh = self.qkv.in_features, self.head_dim
        new = SelfAttention(dim, len(keep), self.drop.p, dh).to(self.qkv.weight.device, self.qkv.weight.dtype)
        inner = self.heads * dh
        head_rows = torch.cat([torch.arange(i * dh, (i + 1) * dh) for i in keep])
        rows = torch.cat([part * inner + head_rows for part in range(3)])
        with torch.no_grad():
            new.qkv.weight.copy_(self.qkv.weight[rows])
            new.qkv.bias.copy_(self.qkv.bias[rows])
            new.out.weight.copy_(self.out.weight[:, head_rows])
            new.out.bias.copy_(self.out.bias)
        return new


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int, dropout: float, head_dim: int | None = None) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout, head_dim)
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
        if cfg.head_dim is None and cfg.embedding_dim % cfg.heads:
            raise ValueError(f"embedding_dim={cfg.embedding_dim} must be a multiple of heads={cfg.heads}")
        per_layer = cfg.heads_per_layer()
        if len(per_layer) != cfg.layers or min(per_layer, default=1) < 1:
            raise ValueError(f"layer_heads={cfg.layer_heads} must give >= 1 head for each of the {cfg.layers} layers")
        self.cfg = cfg
        d = cfg.embedding_dim
        self.item_emb = nn.Embedding(cfg.item_vocab_size, d, padding_idx=0)
        self.cat_emb = nn.Embedding(max(cfg.cat_vocab_total, 1), d)
        self.num_in = nn.Identity()
        self.pos_emb = nn.Embedding(cfg.history_length + 1, d)  # 0: the candidate, 1..N: history positions
        self.blocks = nn.ModuleList(Block(d, h, cfg.ff_multiplier * d, cfg.dropout, cfg.dim_head()) for h in per_layer)
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

    # -- structured pruning (whyrec.contracts.StructuredNetwork) ---------------------------------
    def structured_units(self) -> dict:
        """{"layers": blocks, "heads": heads of each block}: what ``without_units`` can remove."""
        return {"layers": len(self.blocks), "heads": [b.attn.heads for b in self.blocks]}

    def without_units(self, layers: list[int] | tuple[int, ...] = (), heads: dict[int, list[int]] | None = None) -> "TransformerNet":
        """A new, smaller network without the blocks ``layers`` and the heads ``heads``
        ({block: [head, ...]}, numbered as in this network); the rest of the weights copied.
        At least one block must stay, and at least one head in each block kept."""
        units = self.structured_units()
        n, per = units["layers"], units["heads"]
        layers = sorted({int(i) for i in layers})
        heads = {int(k): sorted({int(h) for h in v}) for k, v in (heads or {}).items() if len(v)}
        bad = [i for i in [*layers, *heads] if not 0 <= i < n]
        if bad:
            raise UnsupportedError(f"transformer-seq: block(s) {bad} do not exist; this network has blocks 0..{n - 1}")
        if len(layers) >= n:
            raise UnsupportedError(f"transformer-seq: removing {len(layers)} of {n} blocks leaves none; keep at least one")
        for i, hs in heads.items():
            if i in layers:
                continue
            if any(not 0 <= h < per[i] for h in hs):
                raise UnsupportedError(f"transformer-seq: block {i} has heads 0..{per[i] - 1}, not {hs}")
            if len(hs) >= per[i]:
                raise UnsupportedError(f"transformer-seq: removing heads {hs} leaves block {i} with none of its {per[i]}; "
                                       "remove the block instead (layers) or keep a head")
        kept = [i for i in range(n) if i not in layers]
        cfg = TransformerConfig.from_dict({**self.cfg.to_dict(), "layers": len(kept), "head_dim": self.cfg.dim_head(),
                                           "layer_heads": [per[i] - len(heads.get(i, [])) for i in kept]})
        dev = self.item_emb.weight.device
        new = TransformerNet(cfg).to(dev)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("blocks.")}
        new.load_state_dict(state, strict=False)
        for j, i in enumerate(kept):
            block = copy.deepcopy(self.blocks[i])
            if heads.get(i):
                block.attn = self.blocks[i].attn.without_heads(heads[i])
            new.blocks[j] = block
        new.train(self.training)
        return new

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
