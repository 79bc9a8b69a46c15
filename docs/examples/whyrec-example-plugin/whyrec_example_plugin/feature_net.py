"""A small torch network over the numeric features: the template of a model that offers the
``torch-network`` capability (``whyrec.contracts.TorchNetwork``), so that other plugins can
work on its network without importing this class: ``whyrec-distill``'s ``prune`` and
``quantize`` compress it, and the compressed model is still a ``FeatureNetModel`` that every
explainer of this model explains.

The capability is four things:

- ``torch_module()``: the ``nn.Module`` that scores;
- ``torch_inputs(X)``: its input tensors for feature rows (one row per feature row);
  ``torch_module()(*torch_inputs(X))`` are the logits ``score_features(X)`` returns;
- ``with_module(module)``: a new model of this class, same parameters, data and
  standardisation, that scores with ``module`` (pruned, int8, fine-tuned ...);
- ``save`` writes ``torch_module().state_dict()`` to ``weights.safetensors`` and ``load``
  reads it back (safetensors, never a pickle).

torch and safetensors are an optional heavy dependency: the ``torch`` extra
(``pip install 'whyrec-example-plugin[torch]'``); without them, using the model is one line
that names the extra.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from whyrec import BaseModel
from whyrec.atomic import write_json
from whyrec.contracts import TORCH_NETWORK, TORCH_NETWORK_WEIGHTS, read_json
from whyrec.data import LABEL
from whyrec.errors import DataError

from .optional import require

torch = require("torch", "torch", 'model "feature-net"')  # this module loads only when the model is used
nn = torch.nn

STATS = "feature_net.json"


class FeatureNet(nn.Module):
    """Standardised numbers -> hidden ReLU layer -> one logit."""

    def __init__(self, n_inputs: int, hidden: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_inputs, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: Any) -> Any:
        return self.out(torch.relu(self.hidden(x))).squeeze(-1)


class FeatureNetModel(BaseModel):
    """A one-hidden-layer network over the numeric features (CPU), trained with binary cross-entropy."""

    name = "feature-net"
    # = provides= at registration; "torch-network": torch_module / torch_inputs / with_module
    capabilities = frozenset({"differentiable", TORCH_NETWORK})

    def __init__(self, hidden: int = 16, epochs: int = 40, lr: float = 0.02, batch_size: int = 256, seed: int = 0) -> None:
        if int(hidden) < 1 or int(epochs) < 1 or int(batch_size) < 1 or not float(lr) > 0:
            raise DataError(f"feature-net: hidden={hidden}, epochs={epochs} and batch_size={batch_size} must be >= 1 and lr={lr} > 0")
        super().__init__(hidden=int(hidden), epochs=int(epochs), lr=float(lr), batch_size=int(batch_size), seed=int(seed))
        self.net: FeatureNet | None = None
        self.mean = self.std = None

    # -- training -------------------------------------------------------------------------
    def fit(self, data, ctx=None) -> dict:
        names = data.schema.of_kind("numeric")
        if not names:
            raise DataError(f"feature-net: dataset {data.name!r} has no numeric features")
        if data.train is None or LABEL not in data.train.columns:
            raise DataError(f"feature-net: dataset {data.name!r} has no labelled training rows (data.train)")
        self.bind(data, feature_names=names)
        X = data.features(data.train)[self.feature_names]
        raw = X.to_numpy(dtype=float, na_value=np.nan)
        self.mean = np.where(np.isfinite(np.nanmean(raw, axis=0)), np.nanmean(raw, axis=0), 0.0)
        std = np.nanstd(raw, axis=0)
        self.std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        y = torch.as_tensor((data.train[LABEL].to_numpy(dtype=float) > 0).astype(np.float32))
        torch.manual_seed(self.params["seed"])
        self.net = FeatureNet(len(names), self.params["hidden"])
        (x,) = self.torch_inputs(X)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.params["lr"])
        gen = torch.Generator().manual_seed(self.params["seed"])
        loss_fn = nn.BCEWithLogitsLoss()
        self.net.train()
        for _ in range(self.params["epochs"]):
            perm = torch.randperm(len(y), generator=gen)
            for s in range(0, len(y), self.params["batch_size"]):
                idx = perm[s:s + self.params["batch_size"]]
                loss = loss_fn(self.net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        with torch.no_grad():
            final = float(loss_fn(self.net(x), y))
        return {"features": len(names), "train_logloss": final}

    # -- the torch-network capability -------------------------------------------------------
    def torch_module(self) -> Any:
        if self.net is None:
            raise DataError("feature-net is not fitted; call fit(data) or load(dir, data) first")
        return self.net

    def torch_inputs(self, X: pd.DataFrame) -> tuple:
        if self.mean is None:
            raise DataError("feature-net is not fitted; call fit(data) or load(dir, data) first")
        raw = X[self.feature_names].to_numpy(dtype=float, na_value=np.nan)
        z = (raw - self.mean) / self.std
        return (torch.as_tensor(np.where(np.isfinite(z), z, 0.0), dtype=torch.float32),)  # missing = the mean

    def with_module(self, module: Any) -> "FeatureNetModel":
        self.torch_module()
        clone = type(self)(**self.params)  # only what this class sets: nothing another plugin added
        clone.bind(self.data, list(self.feature_names))
        clone.mean, clone.std, clone.net = self.mean, self.std, module
        return clone

    # -- scoring ----------------------------------------------------------------------------
    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        net = self.torch_module()
        with torch.no_grad():
            return net(*self.torch_inputs(X)).double().numpy()

    def n_parameters(self) -> int | None:
        return None if self.net is None else int(sum(p.numel() for p in self.net.parameters()))

    # -- persistence: safetensors + JSON, never a pickle -------------------------------------
    def _save_weights(self, directory: Path) -> None:
        save_file = require("safetensors.torch", "torch", 'model "feature-net"').save_file
        state = {k: v.detach().cpu().contiguous() for k, v in self.torch_module().state_dict().items()}
        save_file(state, str(directory / TORCH_NETWORK_WEIGHTS))
        write_json(directory / STATS, {"mean": self.mean.tolist(), "std": self.std.tolist()})

    def _load_weights(self, directory: Path) -> None:
        for f in (STATS, TORCH_NETWORK_WEIGHTS):
            if not (directory / f).exists():
                raise DataError(f"{directory}: no {f}; this is not a saved feature-net model (re-save it)")
        stats = read_json(directory / STATS, "feature-net standardisation")
        load_file = require("safetensors.torch", "torch", 'model "feature-net"').load_file
        try:
            state = load_file(str(directory / TORCH_NETWORK_WEIGHTS))
        except Exception as exc:  # noqa: BLE001  (missing, truncated or not safetensors: one line)
            raise DataError(f"{directory / TORCH_NETWORK_WEIGHTS}: not a readable safetensors file ({exc}); re-save the model") from exc
        self.mean, self.std = np.asarray(stats["mean"], dtype=float), np.asarray(stats["std"], dtype=float)
        net = FeatureNet(len(self.feature_names), self.params["hidden"])
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise DataError(f"{directory / TORCH_NETWORK_WEIGHTS}: weights do not fit hidden={self.params['hidden']} "
                            f"and {len(self.feature_names)} features ({' '.join(str(exc).split())[:200]})") from exc
        self.net = net.eval()
