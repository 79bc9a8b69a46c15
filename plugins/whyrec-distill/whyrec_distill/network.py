"""Pruned and quantised copies of any ``torch-network`` model (``whyrec.contracts.TorchNetwork``).

The compressors never import the model's class. They take its network (``torch_module()``),
change a copy of it (global magnitude pruning, dynamic int8 layers) and get the compressed model
back from the model itself (``with_module(module)``): an instance of the base model's own
class, so every explainer of the base model still applies. It carries the base model's
capabilities plus "pruned" or "quantized" (a quantised model loses "differentiable": int8
layers have no gradients), ``component_name`` "pruned-torch" / "quantized-torch" and a
``compression`` record, and it saves compactly:

- the base model saves itself (its own files, its float network in ``weights.safetensors``,
  the contract's weight file);
- that file is replaced by ``weights.sparse.safetensors`` (pruned tensors as non-zero values
  and a bit mask) or ``weights.int8.safetensors`` (int8 weights, scales, zero points), and
  ``compression.json`` records the method and ``base_model``, the base's registered name.

Loading (the registered ``pruned-torch`` / ``quantized-torch`` model's ``load``) looks
``base_model`` up in the plugin registry, decodes the dense float weights into a temporary copy
of the directory, lets the base model's own ``load`` check and read it, and for int8 quantises
the network again and puts the saved int8 values back bit for bit. safetensors only, never a
pickle.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from whyrec.atomic import write_json
from whyrec.contracts import TORCH_NETWORK, TORCH_NETWORK_WEIGHTS
from whyrec.data import RecData
from whyrec.errors import DataError, UnsupportedError

from .compressed import (COMPRESSION, int8_decode_state, int8_embeddings, int8_encode_state, int8_modules,
                         linear_layers, nonzero_count, quantize_linear_layers, set_int8_weights, sparse_decode_state,
                         sparse_encode_state)
from .persist import load_tensors, read_json, save_tensors

PRUNED, QUANTIZED = "pruned-torch", "quantized-torch"
WEIGHT_FILES = {"prune": "weights.sparse.safetensors", "quantize": "weights.int8.safetensors"}
COMPONENTS = {"prune": PRUNED, "quantize": QUANTIZED}


def registered_name(model: Any) -> str:
    """The name ``model`` is registered under."""
    return getattr(model, "component_name", None) or model.name


def base_model_name(model: Any) -> str:
    """The registered model whose class ``model`` is (what ``base_model`` records): for an
    already compressed model, the one it was compressed from."""
    comp = getattr(model, "compression", None)
    if isinstance(comp, dict) and comp.get("base_model"):
        return str(comp["base_model"])
    return registered_name(model)


def check_network(model: Any, what: str) -> nn.Module:
    """``model``'s torch module, or one line saying the model lacks the torch-network contract."""
    caps = set(getattr(model, "capabilities", ()) or ())
    missing = [m for m in ("torch_module", "torch_inputs", "with_module") if not callable(getattr(model, m, None))]
    if TORCH_NETWORK not in caps or missing:
        raise UnsupportedError(f"{what}: model {registered_name(model)!r} does not offer the {TORCH_NETWORK!r} capability"
                               + (f" (it lacks {', '.join(missing)})" if missing and TORCH_NETWORK in caps else "")
                               + "; see docs/plugins.md, 'The torch-network capability'")
    module = model.torch_module()
    if not isinstance(module, nn.Module):
        raise UnsupportedError(f"{what}: model {registered_name(model)!r}.torch_module() returned "
                               f"{type(module).__name__}, not a torch nn.Module")
    return module


def called_modules(model: Any, X: pd.DataFrame) -> set[str]:
    """Names of the submodules that run when the network scores rows ``X``. A module the
    network reads through ``.weight`` instead (a position table added to the keys) is not
    among them: pruning masks and int8 tables act only on modules that are called."""
    net = model.torch_module()
    seen: set[str] = set()
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.add(n)) for n, m in net.named_modules() if n]
    was_training = net.training
    try:
        net.eval()
        with torch.inference_mode():
            net(*model.torch_inputs(X))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    return seen


def probe_rows(data: RecData, n: int = 16) -> pd.DataFrame:
    src = data.train if data.train is not None and len(data.train) else data.interactions
    return data.features(src.head(n))


def adopt(model: Any, base: Any, method: str, info: dict, float_module: nn.Module | None = None) -> Any:
    """Make ``model`` (``base.with_module(...)``) the compressed model: capabilities, name in
    the registry, the ``compression`` record, and a ``save`` that writes the compact format."""
    caps = set(base.capabilities) | {"pruned" if method == "prune" else "quantized"}
    if method == "quantize":
        caps.discard("differentiable")  # int8 dynamic layers have no gradients
    params_net = float_module if float_module is not None else model.torch_module()
    model.capabilities = frozenset(caps)
    model.component_name = COMPONENTS[method]
    model.compression = {"method": method, "base_model": info.get("base_model") or base_model_name(base),
                         "parameters": int(sum(p.numel() for p in params_net.parameters())),
                         "nonzero_parameters": nonzero_count(params_net) if method == "prune" else None,
                         **{k: v for k, v in info.items() if k not in ("method", "base_model")}}
    model._float_module = float_module
    model.save = CompressedSave(model)  # the base class's save would write dense floats
    return model


class CompressedSave:
    """``save(directory)`` of a compressed model: an object, not a bound method, so that the
    model still pickles and deep-copies (the copy saves itself)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, directory: str | Path) -> None:
        save_compressed(self.model, directory)


def save_compressed(model: Any, directory: str | Path) -> None:
    """The base model's own files, with its weight file in the compact form of the method."""
    d = Path(directory)
    comp = model.compression
    method = comp["method"]
    float_module = model._float_module if model._float_module is not None else model.torch_module()
    model.with_module(float_module).save(d)  # a plain copy: the base class's own save
    dense_path = d / TORCH_NETWORK_WEIGHTS
    if not dense_path.exists():
        raise UnsupportedError(f"{comp['base_model']!r} did not write {TORCH_NETWORK_WEIGHTS} when saved; a torch-network "
                               "model saves its module's state_dict there (docs/plugins.md)")
    dense = load_tensors(dense_path)
    if method == "prune":
        tensors = sparse_encode_state(dense, comp.get("pruned_tensors", []))
    elif comp.get("backend") == "torchao":
        from .torchao_int8 import encode_state

        tensors = encode_state(dense, model.torch_module())
    else:
        tensors = int8_encode_state(dense, model.torch_module())
    save_tensors(tensors, d / WEIGHT_FILES[method], metadata={"format": f"whyrec-distill-{method}", "version": "2"})
    dense_path.unlink()
    write_json(d / COMPRESSION, comp)


def load_compressed(directory: str | Path, data: RecData, method: str, host: Any = None) -> Any:
    """Rebuild a compressed model saved by ``save_compressed`` through its base model's
    registered class (``compression.json``'s ``base_model``)."""
    d = Path(directory)
    comp = read_json(d / COMPRESSION, f"not a saved {COMPONENTS[method]} model (no {COMPRESSION}); save it with whyrec")
    if not isinstance(comp, dict):
        raise DataError(f"{d}/{COMPRESSION}: not a compression record (a JSON object); re-save the model")
    if comp.get("method") != method:
        raise DataError(f"{d}/{COMPRESSION}: this directory holds a {comp.get('method')!r} model, not {method!r}; "
                        f"load it as {COMPONENTS.get(comp.get('method'), 'the model named in its model.json')!r}")
    base_name = comp.get("base_model")
    if not isinstance(base_name, str) or not base_name:
        raise DataError(f"{d}/{COMPRESSION}: no 'base_model' (the registered model it was compressed from); "
                        "it was saved by an older whyrec-distill: compress the model again")
    from whyrec.plugins import get_host, resolve_factory

    host = host or get_host()
    base_cls = resolve_factory(host.get("models", base_name, where=f"{d}/{COMPRESSION}: base_model: ").factory)
    weight_file = WEIGHT_FILES[method]
    where = f"{d}/{weight_file}"
    tensors = load_tensors(d / weight_file)
    torchao = method == "quantize" and comp.get("backend") == "torchao"
    if torchao:
        from . import torchao_int8

        dense = torchao_int8.decode_state(tensors, list(comp.get("quantized_layers", [])), where)
    else:
        dense = sparse_decode_state(tensors, where) if method == "prune" else int8_decode_state(tensors, comp, where)
    base = _load_with_dense(base_cls, d, data, dense, skip=(weight_file, COMPRESSION))
    net = check_network(base, f"{d}: base model {base_name!r}")
    if method == "prune":
        return adopt(base, base, method, comp)
    float_net = net.cpu().eval()
    if torchao:
        layers = list(comp.get("quantized_layers", []))
        qnet = torchao_int8.quantize_layers(float_net, layers, str(comp.get("scheme")))
        torchao_int8.set_weights(qnet, tensors, layers, where)
        return adopt(base.with_module(qnet), base, method, comp, float_module=float_net)
    qnet, _, _ = quantize_linear_layers(float_net, layers=list(comp.get("quantized_layers", [])),
                                        embedding_names=list(comp.get("quantized_embeddings") or []))
    set_int8_weights(qnet, tensors, comp, where)
    return adopt(base.with_module(qnet), base, method, comp, float_module=float_net)


def _load_with_dense(cls: Any, d: Path, data: RecData, dense: dict, skip: tuple[str, ...]) -> Any:
    """``cls.load`` on a temporary copy of ``d`` (links) holding the dense weight file."""
    tmp = Path(tempfile.mkdtemp(prefix="whyrec-distill-load-"))
    try:
        for p in d.iterdir():
            if p.name not in skip:
                os.symlink(p.resolve(), tmp / p.name)
        save_tensors(dense, tmp / TORCH_NETWORK_WEIGHTS)
        try:
            return cls.load(tmp, data)
        except DataError as exc:  # name the user's directory, not the temporary one
            raise DataError(str(exc).replace(str(tmp), str(d))) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the two operations ----------------------------------------------------------------------
def quantized_copy(model: Any, layers: list[str], embeddings: list[str], backend: str = "torch.ao",
                   scheme: str = "weight-only") -> tuple[Any, nn.Module]:
    """(``model`` with int8 ``layers`` and 8-bit ``embeddings``, on the CPU; its float twin).
    ``backend`` "torch.ao" (``quantize_dynamic``) or "torchao" (``scheme``: torchao_int8.py)."""
    float_net = copy.deepcopy(model.torch_module()).cpu().eval()
    if backend == "torchao":
        if embeddings:
            raise UnsupportedError("quantize: backend='torchao' quantises Linear layers only; set include_embeddings = false "
                                   "or backend = 'torch.ao'")
        from .torchao_int8 import quantize_layers

        return model.with_module(quantize_layers(float_net, layers, scheme)), float_net
    qnet, _, _ = quantize_linear_layers(float_net, layers=layers, embedding_names=embeddings)
    return model.with_module(qnet), float_net


def quantization_record(qnet: nn.Module, float_net: nn.Module, backend: str = "torch.ao", scheme: str = "weight-only") -> dict:
    if backend == "torchao":
        import torchao

        from .torchao_int8 import int8_layers

        names = set(int8_layers(qnet))
        return {"backend": "torchao", "torchao_version": torchao.__version__, "scheme": scheme, "dtype": "int8",
                "granularity": "per output row (symmetric)",
                "quantized_layers": [n for n in linear_layers(float_net) if n in names],
                "float_layers": [n for n in linear_layers(float_net) if n not in names], "quantized_embeddings": []}
    names = set(int8_modules(qnet))
    emb = list(int8_embeddings(qnet))  # the network's order
    return {"dtype": "qint8", "scheme": "per_tensor_symmetric (dynamic activations)",
            "quantized_layers": [n for n in linear_layers(float_net) if n in names],
            "float_layers": [n for n in linear_layers(float_net) if n not in names],
            "quantized_embeddings": emb, "embedding_scheme": "quint8, float scale and zero point per row" if emb else None,
            "engine": torch.backends.quantized.engine, "backend": "torch.ao"}


class _Registered:
    """What the registry builds for a compressed torch-network model: nothing to train; ``load``
    rebuilds a saved one through its base model."""

    METHOD = ""
    name = ""
    capabilities: frozenset = frozenset()

    def __init__(self, **params: Any) -> None:
        raise UnsupportedError(f"model {self.name!r} is made by the {self.METHOD} compressor from a fitted torch-network "
                               f"model (compressor = {{ use = \"{self.METHOD}\", teacher = \"...\" }}); it is not trained on its own")

    @classmethod
    def load(cls, directory: str | Path, data: RecData, host: Any = None) -> Any:
        return load_compressed(directory, data, cls.METHOD, host)


class PrunedNetwork(_Registered):
    """A torch-network model after global magnitude pruning (sparse safetensors)."""

    METHOD = "prune"
    name = PRUNED
    capabilities = frozenset({TORCH_NETWORK, "pruned"})  # plus the base model's, per instance


class QuantizedNetwork(_Registered):
    """A torch-network model with dynamic int8 linear layers (CPU)."""

    METHOD = "quantize"
    name = QUANTIZED
    capabilities = frozenset({TORCH_NETWORK, "quantized"})  # plus the base model's, minus "differentiable"
