"""torch-attention: a Deep-Interest-Network-style recommender over a whyrec FeatureSchema.

Inputs: the candidate item id and every categorical feature through embeddings, numeric
features standardised with training statistics, and the user's history (schema features of
kind "sequence", most recent first, NaN padding) read by target attention of the candidate.
Trained with binary cross-entropy on ``data.train`` (which holds the sampled negatives).
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from whyrec import BaseModel
from whyrec.atomic import write_json
from whyrec.data import LABEL, RecData
from whyrec.errors import DataError, UnsupportedError
from whyrec.ids import value_keys

from .curves import CurveLogger, plot_curves
from .device import resolve_device
from .encoding import OOV, Encoded, FeatureEncoder, NumericStats, Vocab
from .network import AttentionNet, NetConfig
from .persist import WEIGHTS, check_not_pickle, load_state, save_state, state_mismatch

if TYPE_CHECKING:
    from whyrec.context import PipelineContext

FORMAT_VERSION = 1
# Set by ``load``: the device a saved model runs on now (the saved parameter says where it trained).
_LOAD_DEVICE: ContextVar[str | None] = ContextVar("whyrec_torch_load_device", default=None)
# Constructor parameters that fix the network's shape: a checkpoint must agree on all of them.
STRUCTURAL = ("embedding_dim", "attention_hidden", "hidden", "dropout", "position_embedding", "item_feature")


class TorchAttentionModel(BaseModel):
    """DIN-style target attention recommender (PyTorch); CUDA when present, CPU otherwise."""

    name = "torch-attention"
    # "torch-network": torch_module / torch_inputs / with_module (whyrec.contracts.TorchNetwork)
    capabilities = frozenset({"differentiable", "attention", "sequence", "torch-network"})
    # The network and its config class, and the parameters that fix its shape: a subclass with
    # another network (transformer-seq) changes these three and keeps training, scoring and saving.
    net_class: type = AttentionNet
    config_class: type = NetConfig
    structural: tuple[str, ...] = STRUCTURAL

    def __init__(
        self,
        epochs: int = 5,
        batch_size: int = 1024,
        lr: float = 3e-3,
        weight_decay: float = 1e-6,
        embedding_dim: int = 16,
        attention_hidden: int = 32,
        hidden: list[int] | None = None,
        dropout: float = 0.1,
        position_embedding: bool = True,
        oov_rate: float = 0.02,
        validation_fraction: float = 0.1,
        item_feature: str = "item_id",
        exclude: list[str] | None = None,
        seed: int = 0,
        device: str = "auto",
        amp: bool = True,
        score_batch_size: int = 8192,
        tensorboard: bool | None = None,
        num_threads: int | None = 1,
    ) -> None:
        hidden = [64, 32] if hidden is None else [int(h) for h in hidden]
        super().__init__(
            epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, embedding_dim=embedding_dim,
            attention_hidden=attention_hidden, hidden=hidden, dropout=dropout, position_embedding=position_embedding,
            oov_rate=oov_rate, validation_fraction=validation_fraction, item_feature=item_feature,
            exclude=list(exclude or []), seed=seed, device=device, amp=amp, score_batch_size=score_batch_size,
            tensorboard=tensorboard, num_threads=num_threads,
        )
        for key, val, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("embedding_dim", embedding_dim, 1),
                             ("attention_hidden", attention_hidden, 1), ("score_batch_size", score_batch_size, 1)):
            if int(val) < lo:
                raise UnsupportedError(f"torch-attention: {key}={val} must be >= {lo}")
        if not 0 <= dropout < 1 or not 0 <= oov_rate < 1 or not 0 <= validation_fraction < 0.9:
            raise UnsupportedError(
                f"torch-attention: dropout={dropout}, oov_rate={oov_rate} must be in [0, 1) and "
                f"validation_fraction={validation_fraction} in [0, 0.9)"
            )
        self.device = resolve_device(_LOAD_DEVICE.get() or device, who=self.name)
        self.net: AttentionNet | None = None
        self.encoder: FeatureEncoder | None = None
        self.curves: list[dict] = []
        self._item_ids: dict[str, Any] | None = None

    # -- configuration -------------------------------------------------------------------
    @property
    def net_config(self) -> NetConfig:
        if self.net is None:
            raise UnsupportedError("torch-attention is not fitted or loaded; call fit(data) or load(dir, data) first")
        return self.net.cfg

    def _make_net_config(self, enc: FeatureEncoder, **overrides: Any) -> NetConfig:
        p = {**self.params, **overrides}
        return NetConfig(
            item_vocab_size=enc.item_vocab.size, cat_vocab_total=enc.cat_total, n_categorical=len(enc.categorical),
            n_numeric=len(enc.numeric), history_length=len(enc.sequence), embedding_dim=int(p["embedding_dim"]),
            attention_hidden=int(p["attention_hidden"]), hidden=tuple(int(h) for h in p["hidden"]),
            dropout=float(p["dropout"]), position_embedding=bool(p["position_embedding"]),
        )

    def build_net(self, config: NetConfig | dict | None = None) -> AttentionNet:
        """A freshly initialised network (seeded) from ``config`` (default: this model's)."""
        cfg = config if isinstance(config, self.config_class) else (self.config_class.from_dict(config) if config else self.net_config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.params["seed"]))
            net = self.net_class(cfg)
        if self.encoder is not None:
            net.zero_missing_rows(self.encoder.cat_offsets)
        return net.to(self.device)

    def clone_architecture(self, **overrides: Any) -> "TorchAttentionModel":
        """A new, untrained model on the same data, vocabularies and numeric statistics, with
        some constructor parameters changed (e.g. ``embedding_dim=8, hidden=[16]``): the
        starting point for a distilled or pruned student."""
        self._require_data()
        if self.encoder is None:
            raise UnsupportedError("torch-attention is not fitted or loaded; nothing to clone")
        params = {**self.params, **overrides}
        clone = type(self)(**params)
        clone.bind(self.data, list(self.feature_names))
        clone.encoder = self.encoder
        clone.net = clone.build_net(clone._make_net_config(self.encoder))
        return clone

    def n_parameters(self) -> int | None:
        return None if self.net is None else int(sum(p.numel() for p in self.net.parameters()))

    # -- the torch-network capability (whyrec.contracts.TorchNetwork) ---------------------
    def torch_module(self) -> nn.Module:
        """The network that scores: ``net(*torch_inputs(X))`` is ``score_features(X)``'s logits."""
        if self.net is None:
            raise UnsupportedError("torch-attention is not fitted or loaded; call fit(data) or load(dir, data) first")
        return self.net

    def torch_inputs(self, X: pd.DataFrame) -> tuple[torch.Tensor, ...]:
        """(items, categorical, numeric, history mask) tensors for feature rows, on this model's device."""
        return self.to_tensors(self.encode(X))

    def with_module(self, module: nn.Module) -> "TorchAttentionModel":
        """A new model of this class on the same data, encoder and parameters that scores with
        ``module`` (an AttentionNet, or one a compressor changed: pruned, int8) on the device
        ``module`` lives on. Only what the class itself sets is carried over."""
        self._require_data()
        self.torch_module()
        tensors = [*module.parameters(), *module.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")
        token = _LOAD_DEVICE.set(str(device))  # params["device"] records where it trained, not where it runs
        try:
            clone = type(self)(**self.params)
        finally:
            _LOAD_DEVICE.reset(token)
        clone.bind(self.data, list(self.feature_names))
        clone.encoder = self.encoder
        clone.curves = list(self.curves)
        clone.net = module
        return clone

    # -- features ------------------------------------------------------------------------
    def _choose_features(self, data: RecData) -> tuple[str, list[str], list[str], list[str]]:
        item_f = self.params["item_feature"]
        excl = set(self.params["exclude"])
        unknown = sorted(excl - set(data.schema.names))
        if unknown:
            raise DataError(f"torch-attention: exclude names features {unknown} that dataset {data.name!r} does not have")
        if item_f not in data.schema:
            cats = data.schema.of_kind("categorical")
            raise DataError(
                f"torch-attention: item_feature={item_f!r} is not a feature of dataset {data.name!r}; "
                f"set item_feature to the categorical item-id feature (categorical features: {cats})"
            )
        use = [f for f in data.schema if f.name not in excl]
        cats = [f.name for f in use if f.kind == "categorical" and f.name != item_f]
        nums = [f.name for f in use if f.kind == "numeric"]
        seq = [f.name for f in use if f.kind == "sequence"]
        return item_f, cats, nums, seq

    def encode(self, X: pd.DataFrame) -> Encoded:
        if self.encoder is None:
            raise UnsupportedError("torch-attention is not fitted or loaded; call fit(data) or load(dir, data) first")
        return self.encoder.encode(X)

    def to_tensors(self, enc: Encoded) -> tuple[torch.Tensor, ...]:
        dev = self.device
        return (torch.as_tensor(enc.items, device=dev), torch.as_tensor(enc.cat, device=dev),
                torch.as_tensor(enc.num, device=dev), torch.as_tensor(enc.mask, device=dev))

    @property
    def sequence_features(self) -> list[str]:
        return [] if self.encoder is None else list(self.encoder.sequence)

    def item_ids_by_key(self) -> dict[str, Any]:
        """Canonical id key -> the dataset's own item id (so 50.0 read from a row is item 50)."""
        if self._item_ids is None:
            ids = self._require_data().item_ids
            self._item_ids = dict(zip(value_keys(pd.Series(ids)), ids))
        return self._item_ids

    def item_id(self, value: Any) -> Any:
        """The dataset's own item id for a value read from a feature row (50.0 -> 50)."""
        (key,) = value_keys(pd.Series([value], dtype=object))
        return self.item_ids_by_key().get(key, value)

    # -- training ------------------------------------------------------------------------
    def fit(self, data: RecData, ctx: "PipelineContext | None" = None) -> dict:
        """Train on ``data.train`` (labels > 0 are positives). Returns training metrics."""
        if data.train is None or len(data.train) == 0 or LABEL not in data.train.columns:
            raise DataError(f"torch-attention: dataset {data.name!r} has no labelled training pairs (data.train with a {LABEL!r} column)")
        item_f, cats, nums, seq = self._choose_features(data)
        self.bind(data, [item_f, *cats, *nums, *seq])
        self._item_ids = None
        # The whole train table goes to the featurizer: point-in-time featurizers read its timestamps.
        X = data.features(data.train)[self.feature_names]
        y = (data.train[LABEL].to_numpy(dtype=float) > 0).astype(np.float32)
        if len(np.unique(y)) < 2:
            raise DataError(f"torch-attention: data.train of {data.name!r} holds only one class; it needs sampled negatives")
        rng = np.random.default_rng(int(self.params["seed"]))
        n_val = int(round(len(X) * float(self.params["validation_fraction"])))
        order = rng.permutation(len(X))
        val_idx, tr_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        Xtr = X.iloc[tr_idx]
        self.encoder = FeatureEncoder(
            item_feature=item_f, categorical=cats, numeric=nums, sequence=seq,
            item_vocab=Vocab.fit(Xtr[item_f], *(Xtr[c] for c in seq)),
            cat_vocabs={c: Vocab.fit(Xtr[c]) for c in cats},
            stats=NumericStats.fit(Xtr, nums),
        )
        enc = self.encoder.encode(X)
        self.net = self.build_net(self._make_net_config(self.encoder))
        logger = CurveLogger(self._curve_dir(ctx), tensorboard=self.params["tensorboard"])
        info = self._train(enc.take(tr_idx), y[tr_idx], enc.take(val_idx) if n_val else None, y[val_idx] if n_val else None,
                           epochs=int(self.params["epochs"]), logger=logger, progress=ctx.progress if ctx else None)
        self.curves = logger.rows
        logger.flush()
        return {**info, "train_rows": int(len(tr_idx)), "validation_rows": int(n_val), "device": str(self.device),
                "n_parameters": self.n_parameters(), "history_length": len(seq)}

    def fit_targets(self, X: pd.DataFrame, targets: np.ndarray, epochs: int | None = None) -> dict:
        """Train the current network on feature rows and targets in [0, 1] (soft labels from a
        teacher work: BCE with logits takes probabilities). Used by distillation."""
        if self.net is None:
            raise UnsupportedError("torch-attention: fit_targets needs a built network (fit, load or clone_architecture first)")
        t = np.asarray(targets, dtype=np.float32)
        if t.shape != (len(X),) or np.any((t < 0) | (t > 1)) or not np.isfinite(t).all():
            raise DataError(f"torch-attention: fit_targets needs one target in [0, 1] per row ({len(X)} rows), got shape {t.shape}")
        logger = CurveLogger(None)
        info = self._train(self.encode(X), t, None, None, epochs=int(epochs or self.params["epochs"]), logger=logger)
        self.curves = logger.rows
        return info

    def _curve_dir(self, ctx: "PipelineContext | None") -> Path | None:
        if ctx is None or getattr(ctx, "run_dir", None) is None:
            return None
        # The runner saves a model into run_dir/models/<instance name>; find ours in the spec.
        names = [e.get("name") for e in (getattr(ctx, "spec", None) or {}).get("model", []) if e.get("use") == self.name]
        inst = names[0] if len(names) == 1 and names[0] else getattr(self, "component_name", None) or self.name
        return ctx.stage_dir(f"models/{inst}")

    @contextmanager
    def threads(self) -> Iterator[None]:
        """Run with ``num_threads`` intra-op CPU threads (None: torch's default). Small
        networks on a busy machine run faster on one thread than on contended cores."""
        n = self.params.get("num_threads")
        if not n or self.device.type != "cpu":
            yield
            return
        prev = torch.get_num_threads()
        torch.set_num_threads(int(n))
        try:
            yield
        finally:
            torch.set_num_threads(prev)

    @contextmanager
    def _deterministic(self) -> Iterator[None]:
        # CPU runs are bitwise repeatable; on CUDA deterministic kernels need CUBLAS_WORKSPACE_CONFIG
        # and cost speed, so they are left to the user there.
        if self.device.type != "cpu":
            yield
            return
        prev = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev)

    def _autocast(self):
        if self.device.type == "cuda" and self.params["amp"]:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _train(self, tr: Encoded, ytr: np.ndarray, va: Encoded | None, yva: np.ndarray | None, *, epochs: int,
               logger: CurveLogger, progress: Any = None) -> dict:
        from whyrec.metrics import auc

        net = self.net
        seed = int(self.params["seed"])
        bs = int(self.params["batch_size"])
        oov_rate = float(self.params["oov_rate"])
        offsets = torch.as_tensor(self.encoder.cat_offsets, dtype=torch.long, device=self.device)
        items, cat, num, mask = self.to_tensors(tr)
        y = torch.as_tensor(ytr, device=self.device)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.params["lr"]), weight_decay=float(self.params["weight_decay"]))
        loss_fn = nn.BCEWithLogitsLoss()
        gen = torch.Generator(device="cpu").manual_seed(seed)
        n = len(ytr)
        epoch_secs = []
        bar = progress(range(epochs), desc=f"{self.name} epochs") if progress else range(epochs)
        with self.threads(), self._deterministic(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for epoch in bar:
                t0 = time.perf_counter()
                net.train()
                perm = torch.randperm(n, generator=gen).to(self.device)
                total, count = 0.0, 0
                for s in range(0, n, bs):
                    idx = perm[s:s + bs]
                    bi, bc = items[idx], cat[idx]
                    if oov_rate > 0:
                        # id dropout: teaches the OOV rows what "an id never seen in training" means
                        di = torch.rand(bi.shape, generator=gen).to(self.device) < oov_rate
                        bi = torch.where(di & (bi != 0), torch.full_like(bi, OOV), bi)
                        dc = torch.rand(bc.shape, generator=gen).to(self.device) < oov_rate
                        bc = torch.where(dc & (bc != offsets), offsets + OOV, bc)
                    with self._autocast():
                        logit = net(bi, bc, num[idx], mask[idx])
                    loss = loss_fn(logit.float(), y[idx])
                    aux = net.auxiliary_loss() if hasattr(net, "auxiliary_loss") else None
                    if aux is not None:  # a second objective of the network (transformer-seq: next item)
                        loss = loss + float(self.params.get("next_item_weight", 0.0)) * aux.float()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                    count += len(idx)
                secs = time.perf_counter() - t0
                epoch_secs.append(secs)
                row = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "seconds": secs}
                if va is not None and len(va):
                    pv = self.forward_encoded(va)
                    pv_t = torch.as_tensor(pv, dtype=torch.float32)
                    row["val_loss"] = float(loss_fn(pv_t, torch.as_tensor(yva)))
                    row["val_auc"] = auc(yva, pv)
                logger.log(row)
        net.eval()
        last = logger.rows[-1] if logger.rows else {}
        return {"epochs": epochs, "seconds_per_epoch": float(np.mean(epoch_secs)) if epoch_secs else None,
                **{k: v for k, v in last.items() if k in ("train_loss", "val_loss", "val_auc")}}

    # -- scoring -------------------------------------------------------------------------
    def forward_encoded(self, enc: Encoded, uniform_attention: bool = False, return_attention: bool = False,
                        batch_size: int | None = None) -> Any:
        """Logits (float64) for encoded rows, in batches; with ``return_attention`` also the
        attention weights [rows, N]. ``uniform_attention`` replaces the learned weights by a
        uniform average over the history (the faithfulness baseline)."""
        if self.net is None:
            raise UnsupportedError("torch-attention is not fitted or loaded; call fit(data) or load(dir, data) first")
        net = self.net
        was_training = net.training
        if was_training:  # toggling walks every module: only when needed
            net.eval()
        bs = int(batch_size or self.params["score_batch_size"])
        out, att = [], []
        with torch.inference_mode(), self.threads():
            for s in range(0, len(enc), bs):
                t = self.to_tensors(enc.take(slice(s, s + bs)))
                logit, w, _ = net.forward_parts(*t, uniform_attention=uniform_attention)
                out.append(logit.float().cpu().numpy())
                if return_attention:
                    att.append(w.float().cpu().numpy())
        if was_training:
            net.train()
        logits = np.concatenate(out).astype(np.float64) if out else np.zeros(0)
        if return_attention:
            n_hist = len(self.encoder.sequence)
            return logits, (np.concatenate(att) if att else np.zeros((0, n_hist)))
        return logits

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        """Logits for feature rows. Accepts any values: unseen ids score as OOV, NaN as missing."""
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X, dtype=object), columns=self.feature_names)
        return self.forward_encoded(self.encode(X))

    def attention(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(logits, attention weights [rows, N]) for feature rows."""
        return self.forward_encoded(self.encode(X), return_attention=True)

    # -- persistence ---------------------------------------------------------------------
    def config(self) -> dict:
        """Everything needed to rebuild the network (config.json)."""
        return {
            "format_version": FORMAT_VERSION,
            "model": self.name,
            "net": self.net_config.to_dict(),
            "encoder": self.encoder.config(),
            "structural_params": {k: self.params[k] for k in self.structural},
            "torch_version": torch.__version__,
        }

    def _save_weights(self, directory: Path) -> None:
        if self.net is None or self.encoder is None:
            raise UnsupportedError("torch-attention: nothing to save; call fit(data) first")
        save_state(self.net.state_dict(), directory / WEIGHTS, metadata={"format": "whyrec-torch", "version": str(FORMAT_VERSION)})
        write_json(directory / "config.json", self.config())
        write_json(directory / "vocab.json", self.encoder.vocab_json())
        write_json(directory / "numeric_stats.json", self.encoder.stats_json())
        if self.curves:
            write_json(directory / "training_curves.json", self.curves)
            from whyrec.atomic import write_figure

            write_figure(directory / "training_curves.png", plot_curves(self.curves))

    def _load_weights(self, directory: Path) -> None:
        self.load_checkpoint(directory)

    def load_checkpoint(self, directory: str | Path) -> None:
        """Load config, vocabularies and weights from a model directory into this model.

        The checkpoint's structural configuration must match this model's parameters (and, if
        this model already has a network, its shapes); a mismatch names every differing key."""
        d = Path(directory)
        for p in d.iterdir() if d.is_dir() else []:
            if p.suffix in (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt") and p.is_file():
                check_not_pickle(p)
        cfg_path = d / "config.json"
        if not cfg_path.exists():
            raise DataError(f"{d}: no config.json; not a saved torch-attention model (save with TorchAttentionModel.save)")
        try:
            cfg = json.loads(cfg_path.read_text())
            vocab = json.loads((d / "vocab.json").read_text())
            stats = json.loads((d / "numeric_stats.json").read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{d}: config.json, vocab.json or numeric_stats.json is missing or not JSON ({exc}); re-save the model") from exc
        if cfg.get("model") != self.name or cfg.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{d}: config.json is for model {cfg.get('model')!r} format {cfg.get('format_version')!r}, "
                            f"expected {self.name!r} format {FORMAT_VERSION}")
        diffs = []
        for k in self.structural:
            saved, want = cfg["structural_params"].get(k), self.params.get(k)
            if saved != want:
                diffs.append(f"{k}: checkpoint {saved!r}, this model {want!r}")
        if self.net is not None:
            for k, v in self.net.cfg.to_dict().items():
                if cfg["net"].get(k) != v and not any(s.startswith(k + ":") for s in diffs):
                    diffs.append(f"net.{k}: checkpoint {cfg['net'].get(k)!r}, this model {v!r}")
        enc = FeatureEncoder.from_json(cfg["encoder"], vocab, stats)
        wrong = [c for c in [enc.item_feature, *enc.categorical, *enc.numeric, *enc.sequence] if c not in self.feature_names] if self.feature_names else []
        if wrong:
            diffs.append(f"features in the checkpoint but not in this model: {wrong}")
        net_cfg = self.config_class.from_dict(cfg["net"])
        if enc.item_vocab.size != net_cfg.item_vocab_size or enc.cat_total != net_cfg.cat_vocab_total:
            diffs.append("vocab.json does not match config.json's vocabulary sizes")
        if diffs:
            raise DataError(f"{d}: checkpoint does not match this model's configuration; mismatched keys: " + "; ".join(diffs))
        state = load_state(d / WEIGHTS)
        net = self.net_class(net_cfg)
        bad = state_mismatch(net.state_dict(), state)
        if bad:
            raise DataError(f"{d}/{WEIGHTS}: weights do not fit config.json: " + "; ".join(bad))
        net.load_state_dict(state, strict=True)
        self.encoder = enc
        self.net = net.to(self.device).eval()
        self._item_ids = None
        curves = d / "training_curves.json"
        self.curves = json.loads(curves.read_text()) if curves.exists() else []

    @classmethod
    def load(cls, directory: str | Path, data: RecData, device: str | None = "auto") -> "TorchAttentionModel":
        """Rebuild a saved model on ``data``. Weights are device-independent: ``device``
        (default "auto") picks where it runs now, whatever it was trained on; None keeps the
        saved choice. ``params["device"]`` keeps recording the training device."""
        token = _LOAD_DEVICE.set(device)
        try:
            return super().load(Path(directory), data)
        finally:
            _LOAD_DEVICE.reset(token)
