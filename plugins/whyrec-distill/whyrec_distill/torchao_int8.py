"""int8 linear layers through torchao (``quantize(backend = "torchao")``), the API that replaces
``torch.ao.quantization`` (deprecated in torch 2.10+: ``quantize_dynamic`` warns).

Schemes (``scheme``):
- ``dynamic``: int8 weights (one scale per output row) and int8 activations quantised on the
  fly per row (``Int8DynamicActivationInt8WeightConfig``);
- ``weight-only``: int8 weights, float activations (``Int8WeightOnlyConfig``).

Measured on this CPU (torch 2.13, torchao 0.18, one thread, a 64 -> 256 -> 64 MLP on 4,096 rows):
weight-only runs 1.7x faster than float, ``dynamic`` 17x slower (no fast CPU kernel in eager
mode), so ``weight-only`` is the CPU default.

Saved form (``weights.int8.safetensors``, as the torch.ao path): per layer the int8 ``qdata``,
its float ``scale`` per row and the float bias; loading quantises the rebuilt float network
again and puts the saved int8 values and scales back bit for bit. torchao is an optional extra
of this plugin (``pip install whyrec-distill[torchao]``); it is imported only here.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from whyrec.errors import DataError, UnsupportedError

SCHEMES = ("weight-only", "dynamic")
SEP = "::"


def require_torchao() -> Any:
    try:
        import torchao  # noqa: F401
        from torchao import quantization
    except ImportError as exc:
        raise UnsupportedError("quantize: backend='torchao' needs the torchao package (pip install 'whyrec-distill[torchao]', "
                               "torchao>=0.18); or set backend = 'torch.ao'") from exc
    return quantization


def config_for(scheme: str) -> Any:
    q = require_torchao()
    if scheme == "dynamic":
        return q.Int8DynamicActivationInt8WeightConfig()
    if scheme == "weight-only":
        return q.Int8WeightOnlyConfig()
    raise UnsupportedError(f"quantize: scheme={scheme!r} is not one of {', '.join(SCHEMES)}")


def quantize_layers(net: nn.Module, layers: list[str], scheme: str) -> nn.Module:
    """A CPU copy of ``net`` whose Linear ``layers`` hold int8 weights (torchao)."""
    q = require_torchao()
    out = copy.deepcopy(net).cpu().eval()
    names = set(layers)
    if names:
        q.quantize_(out, config_for(scheme), filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn in names)
    return out


def int8_layers(net: nn.Module) -> dict[str, nn.Module]:
    """Linear layers whose weight is a torchao int8 tensor (it has ``qdata`` and ``scale``)."""
    return {n: m for n, m in net.named_modules()
            if isinstance(m, nn.Linear) and hasattr(m.weight, "qdata") and hasattr(m.weight, "scale")}


def encode_state(dense: dict, qnet: nn.Module) -> dict:
    """The float twin's state dict with each int8 layer's weight as int8 values and row scales."""
    q = int8_layers(qnet)
    out = {k: v for k, v in dense.items() if not (k.endswith(".weight") and k[: -len(".weight")] in q)}
    for name, m in q.items():
        out[f"{name}.weight{SEP}int8"] = m.weight.qdata.detach().contiguous()
        out[f"{name}.weight{SEP}row_scale"] = m.weight.scale.detach().float().contiguous()
    return out


def _parts(tensors: dict, name: str, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        return tensors[f"{name}.weight{SEP}int8"], tensors[f"{name}.weight{SEP}row_scale"]
    except KeyError as exc:
        raise DataError(f"{where}: quantised layer {name!r} lacks {exc}; the file is corrupted") from exc


def decode_state(tensors: dict, layers: list[str], where: str) -> dict:
    """A float state dict (int8 weights times their row scales) the base model's loader accepts."""
    dense = {k: v for k, v in tensors.items() if SEP not in k}
    for name in layers:
        i8, scale = _parts(tensors, name, where)
        dense[f"{name}.weight"] = i8.to(torch.float32) * scale.reshape(-1, 1).to(torch.float32)
    return dense


def set_weights(qnet: nn.Module, tensors: dict, layers: list[str], where: str) -> None:
    """Put the saved int8 values and scales into the re-quantised network, bit for bit."""
    q = int8_layers(qnet)
    if sorted(q) != sorted(layers):
        raise DataError(f"{where}: int8 layers {sorted(layers)} do not match this network's {sorted(q)}; re-save the model")
    with torch.no_grad():
        for name, m in q.items():
            i8, scale = _parts(tensors, name, where)
            if i8.shape != m.weight.qdata.shape or scale.numel() != m.weight.scale.numel():
                raise DataError(f"{where}: layer {name!r} has int8 shape {tuple(i8.shape)} in the file, "
                                f"{tuple(m.weight.qdata.shape)} expected; re-save the model")
            m.weight.qdata.copy_(i8)
            m.weight.scale.copy_(scale.reshape(m.weight.scale.shape))
