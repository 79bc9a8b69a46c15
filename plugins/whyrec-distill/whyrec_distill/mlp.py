"""``mlp``: a small torch MLP recommender over the non-sequence features, the usual student.

Categorical features (ids included) go through small embeddings (ids with many values get
``id_embedding_dim``, often 1: a learned per-id score the MLP can combine with the rest),
numeric features are standardised. The head is plain ``nn.Linear`` + ``nn.ReLU`` layers, so the
student can itself be pruned or quantised. Trained either on the dataset's labels (``fit``:
the same-size baseline without distillation) or on a teacher's targets (``fit_targets``).
Saved as safetensors + JSON (config.json, encoder.json); never pickled.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from whyrec import BaseModel
from whyrec.atomic import write_json, write_text
from whyrec.data import ITEM, LABEL, USER, RecData
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.progress import progress as show_progress

from .encoding import TabularEncoder
from .persist import WEIGHTS, load_tensors, read_json, save_tensors
from .threads import torch_threads

if TYPE_CHECKING:
    from whyrec.context import PipelineContext

FORMAT_VERSION = 1


@dataclass
class MLPConfig:
    cardinalities: list[int]
    embedding_dims: list[int]
    n_numeric: int
    hidden: list[int]
    interaction: list[int] | None = None  # two categorical positions whose embeddings are multiplied

    @property
    def input_width(self) -> int:
        extra = self.embedding_dims[self.interaction[0]] if self.interaction else 0
        return int(sum(self.embedding_dims)) + self.n_numeric + extra


class MLPNet(nn.Module):
    """Embeddings of the categorical features (dimension 0 = unused) + numbers -> MLP -> logit.

    With ``interaction`` (user and item id), the element-wise product of the two id embeddings
    is one more input, as in NeuMF: a user-item match the head need not learn to multiply."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.used = [j for j, d in enumerate(cfg.embedding_dims) if d > 0]
        self.embeddings = nn.ModuleList(nn.Embedding(cfg.cardinalities[j], cfg.embedding_dims[j]) for j in self.used)
        for e in self.embeddings:
            nn.init.normal_(e.weight, std=0.05)
        layers: list[nn.Module] = []
        width = cfg.input_width
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)

    def inputs(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        parts = [emb(cat[:, j]) for emb, j in zip(self.embeddings, self.used)]
        if self.cfg.interaction:
            a, b = (self.used.index(j) for j in self.cfg.interaction)
            parts.append(parts[a] * parts[b])
        return torch.cat([*parts, num], dim=1)

    def forward(self, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
        return self.head(self.inputs(cat, num)).squeeze(-1)


class MLPStudent(BaseModel):
    """Small MLP recommender (torch, CPU) over every non-sequence feature of the schema."""

    name = "mlp"
    capabilities = frozenset({"differentiable", "mlp"})

    def __init__(
        self,
        hidden: list[int] | None = None,
        embedding_dim: int = 4,
        id_embedding_dim: int = 2,
        id_threshold: int = 100,
        embedding_dims: dict[str, int] | None = None,
        id_interaction: bool = True,
        epochs: int = 20,
        batch_size: int = 4096,
        lr: float = 5e-3,
        weight_decay: float = 1e-6,
        features: list[str] | None = None,
        exclude: list[str] | None = None,
        seed: int = 0,
        score_batch_size: int = 65536,
        num_threads: int = 1,
        weights_dtype: Literal["float32", "float16"] = "float16",
    ) -> None:
        hidden = [32] if hidden is None else [int(h) for h in hidden]
        for key, val, lo in (("embedding_dim", embedding_dim, 0), ("id_embedding_dim", id_embedding_dim, 0),
                             ("id_threshold", id_threshold, 1), ("epochs", epochs, 1), ("batch_size", batch_size, 1),
                             ("score_batch_size", score_batch_size, 1), ("num_threads", num_threads, 0)):
            if int(val) < lo:
                raise RegistryError(f"model 'mlp': {key}={val} must be >= {lo}")
        if any(h < 1 for h in hidden):
            raise RegistryError(f"model 'mlp': hidden={hidden} must list positive layer widths")
        if not lr > 0:
            raise RegistryError(f"model 'mlp': lr={lr} must be > 0")
        if weights_dtype not in ("float32", "float16"):
            raise RegistryError(f"model 'mlp': weights_dtype={weights_dtype!r} is not 'float32' or 'float16'")
        bad = {k: v for k, v in (embedding_dims or {}).items() if not isinstance(v, int) or isinstance(v, bool) or v < 0}
        if bad:
            raise RegistryError(f"model 'mlp': embedding_dims {bad} must map feature names to dimensions >= 0")
        super().__init__(hidden=hidden, embedding_dim=int(embedding_dim), id_embedding_dim=int(id_embedding_dim),
                         id_threshold=int(id_threshold), epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                         weight_decay=float(weight_decay), features=None if features is None else list(features),
                         exclude=list(exclude or []), seed=int(seed), score_batch_size=int(score_batch_size),
                         num_threads=int(num_threads), embedding_dims=dict(embedding_dims or {}),
                         id_interaction=bool(id_interaction),
                         weights_dtype=weights_dtype)
        self.net: MLPNet | None = None
        self.encoder: TabularEncoder | None = None
        self.train_info: dict = {}

    # -- features ------------------------------------------------------------------------
    def choose_features(self, data: RecData) -> tuple[list[str], list[str]]:
        """(categorical, numeric) features used: every non-sequence one unless ``features``
        lists them, minus ``exclude``."""
        wanted, excl = self.params["features"], set(self.params["exclude"])
        unknown = sorted(({*(wanted or [])} | excl) - set(data.schema.names))
        if unknown:
            raise DataError(f"model 'mlp': features/exclude name {unknown}, which dataset {data.name!r} does not have")
        names = [f.name for f in data.schema if (wanted is None or f.name in wanted) and f.name not in excl]
        seq = [n for n in names if data.schema[n].kind == "sequence"]
        if wanted is not None and seq:
            raise DataError(f"model 'mlp': features {seq} are history sequences, which the MLP student does not read")
        names = [n for n in names if n not in seq]
        if not names:
            raise DataError(f"model 'mlp': no usable features in dataset {data.name!r}")
        cats = [n for n in names if data.schema[n].kind == "categorical"]
        nums = [n for n in names if data.schema[n].kind == "numeric"]
        return cats, nums

    def prepare(self, data: RecData, X: pd.DataFrame | None = None) -> None:
        """Bind to ``data``, fit the encoder on feature rows ``X`` (default: the training pairs)
        and build a fresh, seeded network: what ``fit`` and distillation start from."""
        cats, nums = self.choose_features(data)
        self.bind(data, [*cats, *nums])
        if X is None:
            if data.train is None or len(data.train) == 0:
                raise DataError(f"model 'mlp': dataset {data.name!r} has no training pairs to fit the encoder on")
            X = data.features(data.train)
        self.encoder = TabularEncoder.fit(X, cats, nums)
        self.net = self._build_net(self._make_config(self.encoder))

    def _make_config(self, enc: TabularEncoder) -> MLPConfig:
        p = self.params
        cards = [enc.vocabs[c].size for c in enc.categorical]
        dims = [p["id_embedding_dim"] if card > p["id_threshold"] else p["embedding_dim"] for card in cards]
        over = p.get("embedding_dims") or {}
        unknown = sorted(set(over) - set(enc.categorical))
        if unknown:
            raise DataError(f"model 'mlp': embedding_dims names {unknown}, which are not categorical features of this "
                            f"model (categorical: {enc.categorical})")
        dims = [int(over.get(c, d)) for c, d in zip(enc.categorical, dims)]
        inter = None
        if p.get("id_interaction", True):
            # the two id features (most values), when both are embedded with the same size
            ids = sorted((j for j, card in enumerate(cards) if card > p["id_threshold"] and dims[j] > 0),
                         key=lambda j: -cards[j])[:2]
            if len(ids) == 2 and dims[ids[0]] == dims[ids[1]]:
                inter = sorted(ids)
        return MLPConfig(cards, dims, len(enc.numeric), list(p["hidden"]), inter)

    def _build_net(self, cfg: MLPConfig) -> MLPNet:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.params["seed"])
            return MLPNet(cfg)

    def n_parameters(self) -> int | None:
        return None if self.net is None else int(sum(p.numel() for p in self.net.parameters()))

    # -- training ------------------------------------------------------------------------
    def fit(self, data: RecData, ctx: "PipelineContext | None" = None) -> dict:
        """Train on ``data.train`` labels (> 0 is a positive) with binary cross-entropy."""
        if data.train is None or len(data.train) == 0 or LABEL not in data.train.columns:
            raise DataError(f"model 'mlp': dataset {data.name!r} has no labelled training pairs (data.train with {LABEL!r})")
        X = data.features(data.train)
        y = (pd.to_numeric(data.train[LABEL], errors="coerce").to_numpy(dtype=float) > 0).astype(np.float32)
        if len(np.unique(y)) < 2:
            raise DataError(f"model 'mlp': the training labels of {data.name!r} hold one class only; it needs negatives")
        self.prepare(data, X)
        return self._train(X, y, None, "bce", self.params["epochs"], progress=ctx.progress if ctx else None)

    def fit_targets(self, X: pd.DataFrame, targets: np.ndarray, weights: np.ndarray | None = None,
                    loss: Literal["bce", "mse", "listnet"] = "bce", epochs: int | None = None,
                    groups: np.ndarray | None = None, temperature: float = 1.0, pointwise_weight: float = 0.0) -> dict:
        """Train the current network on feature rows and a teacher's targets: probabilities in
        [0, 1] for ``bce`` (soft labels), raw margins for ``mse``; ``weights`` per row.

        ``listnet`` is listwise distillation: per group (a user's candidates, ``groups`` gives
        each row's user), the cross-entropy between the teacher's softmax(margin / T) and the
        student's, which puts the weight where the teacher's ranking is decided, at its top;
        ``pointwise_weight`` adds that much of the ``mse`` on margins (keeps scores comparable
        across users)."""
        if self.net is None or self.encoder is None:
            raise UnsupportedError("model 'mlp': call prepare(data) (or fit/load) before fit_targets")
        t = np.asarray(targets, dtype=np.float32)
        if t.shape != (len(X),) or not np.isfinite(t).all():
            raise DataError(f"model 'mlp': fit_targets needs one finite target per row ({len(X)} rows), got shape {t.shape}")
        if loss == "bce" and np.any((t < 0) | (t > 1)):
            raise DataError("model 'mlp': bce targets must be probabilities in [0, 1]; use loss='mse' for margins")
        if loss not in ("bce", "mse", "listnet"):
            raise DataError(f"model 'mlp': loss {loss!r} is not 'bce', 'mse' or 'listnet'")
        if loss == "listnet":
            if groups is None or len(groups) != len(t):
                raise DataError("model 'mlp': loss='listnet' needs groups: one group id (the user) per row")
            if not temperature > 0 or pointwise_weight < 0:
                raise DataError(f"model 'mlp': temperature={temperature} must be > 0 and pointwise_weight={pointwise_weight} >= 0")
            return self._train_listwise(X, t, np.asarray(groups), float(temperature), float(pointwise_weight),
                                        int(epochs or self.params["epochs"]))
        w = None if weights is None else np.asarray(weights, dtype=np.float32)
        if w is not None and (w.shape != t.shape or np.any(w < 0)):
            raise DataError("model 'mlp': weights must be one non-negative number per row")
        return self._train(X, t, w, loss, int(epochs or self.params["epochs"]))

    def _train(self, X: pd.DataFrame, t: np.ndarray, w: np.ndarray | None, loss: str, epochs: int, progress: Any = None) -> dict:
        t0 = time.perf_counter()
        cat_np, num_np = self.encoder.encode(X)
        cat, num = torch.as_tensor(cat_np), torch.as_tensor(num_np)
        tt = torch.as_tensor(t)
        ww = torch.ones_like(tt) if w is None else torch.as_tensor(w)
        net, p = self.net, self.params
        opt = torch.optim.Adam(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        gen = torch.Generator().manual_seed(p["seed"])
        n, bs = len(tt), p["batch_size"]
        losses = []
        bar = (progress or show_progress)(range(epochs), desc=f"mlp student epochs ({loss})", unit="epochs")
        with torch_threads(p["num_threads"]), torch.random.fork_rng(devices=[]):
            torch.manual_seed(p["seed"])
            net.train()
            for _ in bar:
                perm = torch.randperm(n, generator=gen)
                total = 0.0
                for s in range(0, n, bs):
                    idx = perm[s:s + bs]
                    out = net(cat[idx], num[idx])
                    if loss == "bce":
                        per = nn.functional.binary_cross_entropy_with_logits(out, tt[idx], reduction="none")
                    else:
                        per = (out - tt[idx]) ** 2
                    wb = ww[idx]
                    batch_loss = (per * wb).sum() / wb.sum().clamp_min(1e-12)
                    opt.zero_grad(set_to_none=True)
                    batch_loss.backward()
                    opt.step()
                    total += float(batch_loss.detach()) * len(idx)
                losses.append(total / max(n, 1))
        net.eval()
        self._round_weights()
        self.train_info = {"epochs": epochs, "loss": loss, "rows": int(n), "final_train_loss": losses[-1] if losses else None,
                           "seconds": round(time.perf_counter() - t0, 3), "n_parameters": self.n_parameters()}
        return dict(self.train_info)

    def _train_listwise(self, X: pd.DataFrame, t: np.ndarray, groups: np.ndarray, temperature: float,
                        pointwise_weight: float, epochs: int) -> dict:
        t0 = time.perf_counter()
        cat_np, num_np = self.encoder.encode(X)
        cat, num = torch.as_tensor(cat_np), torch.as_tensor(num_np)
        codes, _ = pd.factorize(groups)
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes)
        n_groups, width = len(counts), int(counts.max())
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        slots = np.full((n_groups, width), -1, dtype=np.int64)  # row index per (group, position)
        slots[codes[order], np.arange(len(order)) - starts[codes[order]]] = order
        valid = torch.as_tensor(slots >= 0)
        slots_t = torch.as_tensor(slots)
        tt = torch.as_tensor(t, dtype=torch.float32)
        teacher = torch.full((n_groups, width), float("-inf"))
        teacher[valid] = tt[slots_t[valid]] / temperature
        target_p = torch.softmax(teacher, dim=1)  # the teacher's distribution over each user's candidates
        net, p = self.net, self.params
        opt = torch.optim.Adam(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        gen = torch.Generator().manual_seed(p["seed"])
        per_batch = max(1, p["batch_size"] // width)
        losses = []
        with torch_threads(p["num_threads"]), torch.random.fork_rng(devices=[]):
            torch.manual_seed(p["seed"])
            net.train()
            for _ in show_progress(range(epochs), desc="mlp student epochs (listnet)", unit="epochs"):
                perm = torch.randperm(n_groups, generator=gen)
                total = 0.0
                for s in range(0, n_groups, per_batch):
                    g = perm[s:s + per_batch]
                    v = valid[g]
                    rows = slots_t[g][v]
                    out = net(cat[rows], num[rows])
                    logits = torch.full(v.shape, float("-inf"))
                    logits[v] = out / temperature
                    logq = torch.log_softmax(logits, dim=1).masked_fill(~v, 0.0)
                    batch_loss = -(target_p[g] * logq).sum(dim=1).mean()
                    if pointwise_weight > 0:
                        batch_loss = batch_loss + pointwise_weight * ((out - tt[rows]) ** 2).mean()
                    opt.zero_grad(set_to_none=True)
                    batch_loss.backward()
                    opt.step()
                    total += float(batch_loss.detach()) * len(g)
                losses.append(total / n_groups)
        net.eval()
        self._round_weights()
        self.train_info = {"epochs": epochs, "loss": "listnet", "rows": int(len(t)), "groups": int(n_groups),
                           "temperature": temperature, "pointwise_weight": pointwise_weight,
                           "final_train_loss": losses[-1] if losses else None,
                           "seconds": round(time.perf_counter() - t0, 3), "n_parameters": self.n_parameters()}
        return dict(self.train_info)

    # -- scoring -------------------------------------------------------------------------
    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        """Logits for feature rows (columns: ``feature_names``; unseen ids score as unknown)."""
        if self.net is None or self.encoder is None:
            self._require_data()
            raise UnsupportedError("model 'mlp' has no network; call fit(data) first")
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X, dtype=object), columns=self.feature_names)
        if len(X) == 0:
            return np.zeros(0)
        cat_np, num_np = self.encoder.encode(X)
        bs = self.params["score_batch_size"]
        out = []
        self.net.eval()
        with torch_threads(self.params["num_threads"]), torch.inference_mode():
            for s in range(0, len(cat_np), bs):
                out.append(self.net(torch.as_tensor(cat_np[s:s + bs]), torch.as_tensor(num_np[s:s + bs])).float().numpy())
        return np.concatenate(out).astype(np.float64)

    # -- persistence ---------------------------------------------------------------------
    def config(self) -> dict:
        return {"format_version": FORMAT_VERSION, "model": "mlp", "net": asdict(self.net.cfg),
                "torch_version": torch.__version__, "train_info": self.train_info}

    def _round_weights(self) -> None:
        """With ``weights_dtype = "float16"`` the model keeps exactly the weights it saves:
        half the bytes on disk, and the scores before and after a reload are identical."""
        if self.params.get("weights_dtype") == "float16":
            with torch.no_grad():
                for prm in self.net.parameters():
                    prm.copy_(prm.half().float())

    def state_tensors(self) -> dict:
        """The tensors saved to weights.safetensors (compressed subclasses re-encode them)."""
        state = dict(self.net.state_dict())
        if self.params.get("weights_dtype") == "float16":
            state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        return state

    def _save_weights(self, directory: Path) -> None:
        if self.net is None or self.encoder is None:
            raise UnsupportedError("model 'mlp': nothing to save; call fit(data) first")
        save_tensors(self.state_tensors(), directory / WEIGHTS, metadata={"format": "whyrec-distill-mlp", "version": str(FORMAT_VERSION)})
        write_json(directory / "config.json", self.config())
        # compact JSON: the vocabularies and statistics are part of the model's size
        write_text(directory / "encoder.json", json.dumps(self.encoder.to_dict(), separators=(",", ":")))

    def _load_weights(self, directory: Path) -> None:
        d = Path(directory)
        cfg = read_json(d / "config.json", "not a saved mlp student (save it with MLPStudent.save)")
        if cfg.get("model") != "mlp" or cfg.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{d}/config.json is for model {cfg.get('model')!r} format {cfg.get('format_version')!r}, "
                            f"expected 'mlp' format {FORMAT_VERSION}")
        enc = TabularEncoder.from_dict(read_json(d / "encoder.json", "the mlp student's encoder is missing; re-save the model"))
        if enc.features != self.feature_names:
            raise DataError(f"{d}: encoder.json lists features {enc.features} but model.json lists {self.feature_names}; "
                            "the files do not belong together")
        data = self._require_data()
        wrong = [c for c in enc.categorical if data.schema[c].kind != "categorical"] + \
                [n for n in enc.numeric if data.schema[n].kind != "numeric"]
        if wrong:
            raise DataError(f"{d}: features {wrong} changed kind since the mlp student was saved; retrain it on this data")
        net_cfg = MLPConfig(**cfg["net"])
        expect = [v.size for v in (enc.vocabs[c] for c in enc.categorical)]
        if net_cfg.cardinalities != expect or net_cfg.n_numeric != len(enc.numeric):
            raise DataError(f"{d}: config.json's network shape does not match encoder.json's vocabularies; re-save the model")
        net = MLPNet(net_cfg)
        state = self.decode_state(load_tensors(d / WEIGHTS), d, net)
        exp = net.state_dict()
        bad = sorted(set(exp) ^ set(state)) + [k for k in exp if k in state and tuple(exp[k].shape) != tuple(state[k].shape)]
        if bad:
            raise DataError(f"{d}/{WEIGHTS}: tensors do not fit config.json ({bad[:5]}); re-save the model")
        net.load_state_dict(state, strict=True)
        self.encoder, self.net, self.train_info = enc, net.eval(), cfg.get("train_info", {})
        self._check_values(d)

    def decode_state(self, tensors: dict, directory: Path, net: MLPNet) -> dict:
        """The float32 state_dict from the saved tensors (float16 storage widened back)."""
        return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}

    def _check_values(self, directory: Path) -> None:
        """An id feature whose saved vocabulary matches none of the data's values (ids
        renumbered, ints turned into strings) would score every row as "unknown"."""
        data = self._require_data()
        if not self.encoder.categorical or data.train is None or len(data.train) == 0:
            return
        X = data.features(data.train.head(200))
        for c in self.encoder.categorical:
            idx = self.encoder.vocabs[c].lookup(X[c].dropna())
            if len(idx) and not (idx > 0).any():
                raise DataError(f"{directory}: categorical feature {c!r} of the saved mlp student knows values like "
                                f"{self.encoder.vocabs[c].keys[:3]} but the data holds values like {X[c].dropna().head(3).tolist()}; "
                                "the model does not match this data, retrain it")
