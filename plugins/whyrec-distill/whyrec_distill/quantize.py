"""``quantize``: dynamic int8 quantisation of a torch model's linear layers.

``torch.ao.quantization.quantize_dynamic`` stores every ``nn.Linear`` weight as int8 (one
scale per tensor) and quantises activations on the fly; embeddings stay float unless
``include_embeddings`` (8-bit rows, one float scale and zero point each: recommenders are
mostly embeddings, so only this shrinks them much). A layer whose quantisation alone moves the
logit by more than ``tolerance`` on average (measured on training pairs) stays float: on
MovieLens the first layer of torch-attention's head, whose input mixes standardised counts with
small embeddings, would otherwise cost half the teacher's top-10. The result is a
``quantized-torch`` (or ``quantized-mlp``) model that runs on the CPU.

``backend``: "torch.ao" (default; ``torch.ao.quantization.quantize_dynamic``, which torch 2.13
marks deprecated and warns about) or "torchao", the API that replaces it (an optional extra:
``pip install 'whyrec-distill[torchao]'``), for torch-network models: ``scheme`` "weight-only"
(int8 weights, float activations; the faster one on a CPU) or "dynamic" (int8 activations too).
No DeprecationWarning on that path. See torchao_int8.py for the measured CPU speeds.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from whyrec.data import RecData
from whyrec.errors import RegistryError, UnsupportedError
from whyrec.progress import log, progress
from whyrec.results import CompressionReport

from .compressed import linear_layers, quantize_linear_layers
from .common import build_report, eval_settings, clone_into, require_torch_teacher, teacher_name


class Quantizer:
    """Dynamic int8 quantisation of the linear layers, then the fidelity report."""

    def __init__(
        self,
        dtype: Literal["qint8"] = "qint8",
        backend: Literal["torch.ao", "torchao"] = "torch.ao",
        scheme: Literal["weight-only", "dynamic"] = "weight-only",
        include_embeddings: bool = False,
        tolerance: float = 0.05,
        calibration_rows: int = 2000,
        eval_users: int = 100,
        k: int = 10,
        explain_users: int = 10,
        explain_k: int = 3,
        explainer: str = "auto",
        threads: int = 1,
        repeats: int = 3,
        seed: int = 0,
    ) -> None:
        if dtype != "qint8":
            raise RegistryError(f"compressor 'quantize': dtype={dtype!r}; only 'qint8' dynamic quantisation is supported")
        if backend not in ("torch.ao", "torchao"):
            raise RegistryError(f"compressor 'quantize': backend={backend!r} is not 'torch.ao' or 'torchao'")
        if scheme not in ("weight-only", "dynamic"):
            raise RegistryError(f"compressor 'quantize': scheme={scheme!r} is not 'weight-only' or 'dynamic' (torchao backend)")
        if backend == "torchao" and include_embeddings:
            raise RegistryError("compressor 'quantize': backend='torchao' quantises Linear layers only; "
                                "set include_embeddings = false or backend = 'torch.ao'")
        self.backend, self.scheme = backend, scheme
        self.settings = eval_settings("quantize", eval_users, k, explain_users, explain_k, explainer, threads, repeats, seed)
        if not tolerance >= 0 or int(calibration_rows) < 1:
            raise RegistryError(f"compressor 'quantize': tolerance={tolerance} must be >= 0 (0 quantises every layer) "
                                f"and calibration_rows={calibration_rows} >= 1")
        self.include_embeddings = bool(include_embeddings)
        self.tolerance, self.calibration_rows, self.seed = float(tolerance), int(calibration_rows), int(seed)

    def check_teacher(self, model: Any, name: str | None = None) -> str:
        """The model family, or UnsupportedError naming the methods that do apply."""
        fam = require_torch_teacher("quantize", model, name or teacher_name(model, None))
        if self.backend == "torchao":
            if fam != "torch":
                raise UnsupportedError(f"quantize: backend='torchao' applies to torch-network models; for "
                                       f"{name or teacher_name(model, None)!r} set backend = 'torch.ao'")
            from .torchao_int8 import require_torchao

            require_torchao()
        return fam

    def _calibration(self, teacher: Any, data: RecData) -> tuple[Any, np.ndarray]:
        src = data.train if data.train is not None and len(data.train) else data.interactions
        rows = src.sample(min(len(src), self.calibration_rows), random_state=self.seed)
        X = data.features(rows)
        return X, np.asarray(teacher.score_features(X[list(teacher.feature_names)]), dtype=float)

    def sensitivity(self, student: Any, teacher: Any, data: RecData) -> dict[str, float]:
        """Per Linear layer: mean |change of the logit| on ``calibration_rows`` training pairs
        when that layer alone is int8. Dynamic quantisation uses one activation scale per
        batch, so a layer whose inputs mix scales (standardised counts next to small
        embeddings) loses the small ones; such layers stay float (``tolerance``)."""
        X, ref = self._calibration(teacher, data)
        float_net = student.net.cpu().eval()
        out = {}
        for name in progress(linear_layers(float_net), desc="quantize: layer sensitivity", unit="layers"):
            student.net, _, _ = quantize_linear_layers(float_net, False, (), [name])
            student.device = torch.device("cpu")
            out[name] = float(np.mean(np.abs(student.score_features(X[list(student.feature_names)]) - ref)))
        student.net = float_net
        return out

    def network_sensitivity(self, model: Any, data: RecData) -> dict[str, float]:
        """``sensitivity`` for a torch-network model, through ``with_module``."""
        from .network import quantized_copy

        X, ref = self._calibration(model, data)
        Xm = X[list(model.feature_names)]
        out = {}
        for name in progress(linear_layers(model.torch_module()), desc="quantize: layer sensitivity", unit="layers"):
            q, _ = quantized_copy(model, [name], [], self.backend, self.scheme)
            out[name] = float(np.mean(np.abs(q.score_features(Xm) - ref)))
        return out

    def compress(self, model: Any, data: RecData, ctx: Any = None) -> tuple[Any, CompressionReport]:
        name = teacher_name(model, ctx)
        fam = self.check_teacher(model, name)
        log(f"quantize: {name} to int8 (tolerance {self.tolerance:g})")
        if fam == "torch":
            student = self._quantize_network(model, data)
        else:
            from .compressed import QuantizedMLP

            student = clone_into(QuantizedMLP, model)
            sensitivity = self.sensitivity(student, model, data) if self.tolerance > 0 else {}
            keep = [n for n, v in sensitivity.items() if v > self.tolerance]
            student._float_net = None
            student.net = student.net.cpu().eval()
            student.quantize(embeddings=self.include_embeddings,
                             layers=[n for n in linear_layers(student.net) if n not in keep])
            student.compression["sensitivity"] = sensitivity
            student.compression["tolerance"] = self.tolerance
        report = build_report(model, {"student": student}, data, self.settings, method="quantize", ctx=ctx,
                              extra={"quantization": student.compression,
                                     "roles": {"student": f"{name} with int8 linear layers ({self.backend}"
                                                          + (f", {self.scheme})" if self.backend == "torchao" else ", dynamic)")}})
        return student, report

    def _quantize_network(self, model: Any, data: RecData) -> Any:
        """A model with the torch-network capability: its module quantised, the same class."""
        from torch import nn

        from .network import adopt, called_modules, probe_rows, quantization_record, quantized_copy

        sensitivity = self.network_sensitivity(model, data) if self.tolerance > 0 else {}
        net = model.torch_module()
        layers = [n for n in linear_layers(net) if sensitivity.get(n, 0.0) <= self.tolerance]
        emb: list[str] = []
        if self.include_embeddings:  # only tables the network calls: one read through .weight must stay float
            called = called_modules(model, probe_rows(data)[list(model.feature_names)])
            emb = [n for n, m in net.named_modules() if type(m) is nn.Embedding and n in called]
        student, float_net = quantized_copy(model, layers, emb, self.backend, self.scheme)
        record = {**quantization_record(student.torch_module(), float_net, self.backend, self.scheme), "sensitivity": sensitivity,
                  "tolerance": self.tolerance}
        return adopt(student, model, "quantize", record, float_module=float_net)
