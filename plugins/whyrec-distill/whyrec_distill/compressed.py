"""Pruned and quantised models: the weight formats, and the ``pruned-mlp`` / ``quantized-mlp``
students. (A model with the ``torch-network`` capability, such as torch-attention, is
compressed through that contract instead: network.py, with the same formats.)

Each is its base model with the same parameters, encoder and explainability, plus a different
weight file:

- pruned (``pruned-torch``, ``pruned-mlp``): every pruned tensor is stored sparse, as its
  non-zero values (float32) and a bit mask (1 bit per element), the rest dense, in
  ``weights.sparse.safetensors``; ``compression.json`` records the sparsity reached.
- quantised (``quantized-torch``, ``quantized-mlp``): every ``nn.Linear`` is a dynamic int8
  layer; its int8 weight, scale, zero point and float bias are stored in
  ``weights.int8.safetensors`` next to the float tensors of the other layers. Optionally the
  embedding tables become 8-bit too (one float scale and zero point per row). Loading rebuilds
  the float network, quantises it with ``torch.ao.quantization.quantize_dynamic`` and puts the
  saved int8 weights back bit for bit. Quantised layers run on the CPU only and have no
  gradients, so the model drops the "differentiable" capability.

Loading goes through the base model's own loader (all its checks: schema, vocabularies,
shapes) on the decoded dense weights, in a temporary directory.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from whyrec.atomic import write_json
from whyrec.errors import DataError

from .mlp import MLPStudent
from .persist import WEIGHTS, load_tensors, read_json, save_tensors

COMPRESSION = "compression.json"
SPARSE_SEP = "::"


class _EncodedWeights:
    """Mixin: the base writes its usual files; the dense weight file is replaced by ours."""

    WEIGHT_FILE = ""
    METHOD = ""
    DIRECT_WEIGHT: tuple[str, ...] = ()  # modules the network reads via .weight instead of calling them
    compression: dict

    def _save_base(self, directory: Path) -> None:
        super()._save_weights(directory)  # type: ignore[misc]

    def _save_weights(self, directory: Path) -> None:
        d = Path(directory)
        self._save_base(d)
        dense = load_tensors(d / WEIGHTS)
        save_tensors(self.encode_tensors(dense), d / self.WEIGHT_FILE,
                     metadata={"format": f"whyrec-distill-{self.METHOD}", "version": "1"})
        (d / WEIGHTS).unlink()
        write_json(d / COMPRESSION, self.compression)

    def _load_weights(self, directory: Path) -> None:
        d = Path(directory)
        comp = read_json(d / COMPRESSION, f"not a saved {self.name} model (no {COMPRESSION}); save it with whyrec")
        if comp.get("method") != self.METHOD:
            raise DataError(f"{d}/{COMPRESSION}: this directory holds a {comp.get('method')!r} model, not {self.METHOD!r}; "
                            f"load it as the model named in its model.json")
        tensors = load_tensors(d / self.WEIGHT_FILE)
        dense = self.decode_tensors(tensors, comp, d)
        tmp = Path(tempfile.mkdtemp(prefix="whyrec-distill-load-"))
        try:
            for p in d.iterdir():
                if p.is_file() and p.name not in (self.WEIGHT_FILE, COMPRESSION):
                    os.symlink(p.resolve(), tmp / p.name)
            save_tensors(dense, tmp / WEIGHTS)
            try:
                super()._load_weights(tmp)  # type: ignore[misc]
            except DataError as exc:  # name the user's directory, not the temporary one
                raise DataError(str(exc).replace(str(tmp), str(d))) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.compression = comp
        self.after_load(tensors, comp)

    def encode_tensors(self, dense: dict) -> dict:
        raise NotImplementedError

    def decode_tensors(self, tensors: dict, comp: dict, directory: Path) -> dict:
        raise NotImplementedError

    def after_load(self, tensors: dict, comp: dict) -> None:
        pass


# -- pruning -----------------------------------------------------------------------------
def sparse_encode(t: torch.Tensor) -> dict[str, torch.Tensor]:
    a = t.detach().cpu().numpy()
    mask = a != 0
    return {"values": torch.from_numpy(np.ascontiguousarray(a[mask]).astype(np.float32)),
            "mask": torch.from_numpy(np.packbits(mask.ravel())),
            "shape": torch.tensor(a.shape, dtype=torch.int64)}


def sparse_decode(values: torch.Tensor, mask: torch.Tensor, shape: torch.Tensor, name: str) -> torch.Tensor:
    shp = tuple(int(s) for s in shape.tolist())
    n = int(np.prod(shp)) if shp else 1
    bits = np.unpackbits(mask.numpy())[:n].astype(bool)
    if bits.sum() != values.numel():
        raise DataError(f"sparse tensor {name!r}: mask marks {int(bits.sum())} values but {values.numel()} are stored; the file is corrupted")
    out = np.zeros(n, dtype=np.float32)
    out[bits] = values.numpy()
    return torch.from_numpy(out.reshape(shp))


def sparse_encode_state(dense: dict, pruned: list[str]) -> dict:
    """A state dict with every tensor named in ``pruned`` stored sparse (values, bit mask, shape)."""
    names = set(pruned)
    out = {}
    for k, v in dense.items():
        if k in names:
            for part, t in sparse_encode(v).items():
                out[f"{k}{SPARSE_SEP}{part}"] = t
        else:
            out[k] = v
    return out


def sparse_decode_state(tensors: dict, where: str) -> dict:
    """The dense state dict back from ``sparse_encode_state``'s tensors (``where``: the file, for errors)."""
    dense, sparse = {}, {}
    for k, v in tensors.items():
        if SPARSE_SEP in k:
            name, part = k.split(SPARSE_SEP, 1)
            sparse.setdefault(name, {})[part] = v
        else:
            dense[k] = v
    for name, parts in sparse.items():
        if set(parts) != {"values", "mask", "shape"}:
            raise DataError(f"{where}: sparse tensor {name!r} lacks {sorted({'values', 'mask', 'shape'} - set(parts))}")
        dense[name] = sparse_decode(parts["values"], parts["mask"], parts["shape"], name)
    return dense


def nonzero_count(net: nn.Module) -> int:
    return int(sum(int((p != 0).sum()) for p in net.parameters()))


class _Pruned(_EncodedWeights):
    WEIGHT_FILE = "weights.sparse.safetensors"
    METHOD = "prune"

    def encode_tensors(self, dense: dict) -> dict:
        return sparse_encode_state(dense, self.compression.get("pruned_tensors", []))

    def decode_tensors(self, tensors: dict, comp: dict, directory: Path) -> dict:
        return sparse_decode_state(tensors, f"{directory}/{self.WEIGHT_FILE}")

    def nonzero_parameters(self) -> int | None:
        net = getattr(self, "net", None)
        return None if net is None else nonzero_count(net)


# -- quantisation ------------------------------------------------------------------------
def _qlinear_type() -> type:
    from torch.ao.nn.quantized.dynamic import Linear as DynLinear

    return DynLinear


def linear_layers(net: nn.Module) -> list[str]:
    return [n for n, m in net.named_modules() if type(m) is nn.Linear]


def quantize_linear_layers(net: nn.Module, embeddings: bool = False, skip: tuple[str, ...] = (),
                           layers: list[str] | None = None,
                           embedding_names: list[str] | None = None) -> tuple[nn.Module, list[str], list[str]]:
    """(quantised copy of ``net``, names of the int8 Linear layers, names of the 8-bit
    embedding tables). ``layers`` picks the Linear layers (default: all). Embeddings (with
    ``embeddings``) get one float scale and zero point per row
    (``float_qparams_weight_only_qconfig``); ``skip`` names modules read through ``.weight``
    (e.g. a position table), which must stay float; ``embedding_names`` picks the tables
    instead (a saved model's list)."""
    from torch.ao.quantization import default_dynamic_qconfig, float_qparams_weight_only_qconfig, quantize_dynamic

    names = linear_layers(net) if layers is None else list(layers)
    spec: dict[Any, Any] = {n: default_dynamic_qconfig for n in names}
    if embedding_names is not None:
        emb = list(embedding_names)
    else:
        emb = [n for n, m in net.named_modules() if type(m) is nn.Embedding and n not in skip] if embeddings else []
    spec.update({n: float_qparams_weight_only_qconfig for n in emb})
    q = quantize_dynamic(copy.deepcopy(net).cpu().eval(), spec, dtype=torch.qint8)
    return q, names, emb


def int8_modules(net: nn.Module) -> dict[str, Any]:
    qt = _qlinear_type()
    return {n: m for n, m in net.named_modules() if isinstance(m, qt)}


def int8_embeddings(net: nn.Module) -> dict[str, Any]:
    from torch.ao.nn.quantized import Embedding as QEmbedding

    return {n: m for n, m in net.named_modules() if isinstance(m, QEmbedding)}


def int8_encode_state(dense: dict, qnet: nn.Module) -> dict:
    """The float twin's state dict ``dense`` with the int8 layers and 8-bit tables of ``qnet``
    in their stored form: int8 weight, scale, zero point (and float bias) per Linear; uint8
    rows with a scale and zero point each per table."""
    q, qe = int8_modules(qnet), int8_embeddings(qnet)
    out = {k: v for k, v in dense.items() if k.rsplit(".", 1)[0] not in q and k.rsplit(".", 1)[0] not in qe}
    for name, m in qe.items():
        w = m.weight()
        out[f"{name}.weight{SPARSE_SEP}uint8"] = w.int_repr().contiguous()
        out[f"{name}.weight{SPARSE_SEP}scales"] = w.q_per_channel_scales().contiguous()
        out[f"{name}.weight{SPARSE_SEP}zero_points"] = w.q_per_channel_zero_points().contiguous()
    for name, m in q.items():
        w = m.weight()
        if w.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            raise DataError(f"layer {name!r} is quantised per channel; only per-tensor int8 is saved")
        out[f"{name}.weight{SPARSE_SEP}int8"] = w.int_repr().contiguous()
        out[f"{name}.weight{SPARSE_SEP}scale"] = torch.tensor([w.q_scale()], dtype=torch.float64)
        out[f"{name}.weight{SPARSE_SEP}zero_point"] = torch.tensor([w.q_zero_point()], dtype=torch.int64)
        b = m.bias()
        if b is not None:
            out[f"{name}.bias"] = b.detach().float().contiguous()
    return out


def _embedding_qweight(tensors: dict, name: str, where: str) -> torch.Tensor:
    try:
        return torch._make_per_channel_quantized_tensor(
            tensors[f"{name}.weight{SPARSE_SEP}uint8"], tensors[f"{name}.weight{SPARSE_SEP}scales"],
            tensors[f"{name}.weight{SPARSE_SEP}zero_points"], 0)
    except KeyError as exc:
        raise DataError(f"{where}: quantised embedding {name!r} lacks {exc}; the file is corrupted") from exc


def _linear_qweight(tensors: dict, name: str, where: str) -> tuple[torch.Tensor, float, int]:
    try:
        return (tensors[f"{name}.weight{SPARSE_SEP}int8"], float(tensors[f"{name}.weight{SPARSE_SEP}scale"][0]),
                int(tensors[f"{name}.weight{SPARSE_SEP}zero_point"][0]))
    except KeyError as exc:
        raise DataError(f"{where}: quantised layer {name!r} lacks {exc}; the file is corrupted") from exc


def int8_decode_state(tensors: dict, comp: dict, where: str) -> dict:
    """A float state dict (int8 weights dequantised) that the base model's loader accepts."""
    dense = {k: v for k, v in tensors.items() if SPARSE_SEP not in k}
    for name in comp.get("quantized_layers", []):
        i8, scale, zp = _linear_qweight(tensors, name, where)
        dense[f"{name}.weight"] = (i8.to(torch.float32) - zp) * scale
    for name in comp.get("quantized_embeddings") or []:
        dense[f"{name}.weight"] = _embedding_qweight(tensors, name, where).dequantize()
    return dense


def set_int8_weights(qnet: nn.Module, tensors: dict, comp: dict, where: str) -> None:
    """Put the saved int8 / 8-bit values into the quantised network, bit for bit."""
    got = comp.get("quantized_embeddings") or []
    if sorted(int8_embeddings(qnet)) != sorted(got):
        raise DataError(f"{where}: quantised embeddings {got} do not match this network's tables "
                        f"{sorted(int8_embeddings(qnet))}; re-save the model")
    for name, m in int8_embeddings(qnet).items():
        m.set_weight(_embedding_qweight(tensors, name, where))
    for name, m in int8_modules(qnet).items():
        i8, scale, zp = _linear_qweight(tensors, name, where)
        m.set_weight_bias(torch._make_per_tensor_quantized_tensor(i8, scale, zp), tensors.get(f"{name}.bias"))


class _Quantized(_EncodedWeights):
    WEIGHT_FILE = "weights.int8.safetensors"
    METHOD = "quantize"
    _float_net: Any = None

    def quantize(self, embeddings: bool = False, layers: list[str] | None = None) -> None:
        """Replace ``net`` by its dynamic int8 version (the float network is kept as a twin
        for the parts that stay float and for saving the architecture): the Linear ``layers``
        (default all) become int8; with ``embeddings`` the embedding tables become 8-bit too."""
        self.device = torch.device("cpu")
        if self._float_net is None:
            self._float_net = self.net.cpu().eval()
        self.net, names, emb = quantize_linear_layers(self._float_net, embeddings, self.DIRECT_WEIGHT, layers)
        self.compression = {"method": "quantize", "dtype": "qint8", "scheme": "per_tensor_symmetric (dynamic activations)",
                            "quantized_layers": names, "float_layers": [n for n in linear_layers(self._float_net) if n not in names],
                            "quantized_embeddings": emb,
                            "embedding_scheme": "quint8, float scale and zero point per row" if emb else None,
                            "engine": torch.backends.quantized.engine}

    def _qmodules(self) -> dict[str, Any]:
        return int8_modules(self.net)

    def _qembeddings(self) -> dict[str, Any]:
        return int8_embeddings(self.net)

    def _save_base(self, directory: Path) -> None:
        qnet, self.net = self.net, self._float_net  # the base saves its float twin's architecture
        try:
            super()._save_base(directory)
        finally:
            self.net = qnet

    def encode_tensors(self, dense: dict) -> dict:
        return int8_encode_state(dense, self.net)

    def decode_tensors(self, tensors: dict, comp: dict, directory: Path) -> dict:
        return int8_decode_state(tensors, comp, f"{directory}/{self.WEIGHT_FILE}")

    def after_load(self, tensors: dict, comp: dict) -> None:
        self._float_net = None
        self.quantize(embeddings=bool(comp.get("quantized_embeddings")), layers=list(comp.get("quantized_layers", [])))
        self.compression = comp
        set_int8_weights(self.net, tensors, comp, self.WEIGHT_FILE)

    def n_parameters(self) -> int | None:
        net = self._float_net if self._float_net is not None else getattr(self, "net", None)
        return None if net is None else int(sum(p.numel() for p in net.parameters()))


# -- the registered classes ----------------------------------------------------------------
class PrunedMLP(_Pruned, MLPStudent):
    """MLP student after global magnitude pruning; weights stored sparse."""

    name = "pruned-mlp"
    capabilities = frozenset({"differentiable", "mlp", "pruned"})


class QuantizedMLP(_Quantized, MLPStudent):
    """MLP student with dynamic int8 linear layers (CPU)."""

    name = "quantized-mlp"
    capabilities = frozenset({"mlp", "quantized"})
