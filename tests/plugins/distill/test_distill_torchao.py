"""quantize(backend = "torchao"): int8 linear layers through torchao, the API that replaces the
deprecated torch.ao.quantization; no DeprecationWarning, saved and loaded bit for bit."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from whyrec.errors import RegistryError, UnsupportedError
from whyrec_distill.network import QuantizedNetwork
from whyrec_distill.quantize import Quantizer

torchao = pytest.importorskip("torchao", reason="the optional extra whyrec-distill[torchao] is not installed")
FAST = dict(eval_users=4, explain_users=0, repeats=1, tolerance=0.0)


@pytest.mark.parametrize("scheme", ["weight-only", "dynamic"])
def test_torchao_int8_without_deprecation_warning_and_bit_for_bit_reload(torch_teacher, data, tmp_path, scheme):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        student, rep = Quantizer(backend="torchao", scheme=scheme, **FAST).compress(torch_teacher, data)
    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []
    comp = student.compression
    linear = [n for n, m in torch_teacher.torch_module().named_modules() if type(m) is torch.nn.Linear]
    assert comp["backend"] == "torchao" and comp["scheme"] == scheme and comp["quantized_layers"] == linear
    assert "quantized" in student.capabilities and "differentiable" not in student.capabilities
    for name in linear:  # int8 values, one scale per output row
        w = student.torch_module().get_submodule(name).weight
        assert w.qdata.dtype == torch.int8 and w.scale.numel() == w.qdata.shape[0]
    student.save(tmp_path / "q")
    assert not (tmp_path / "q" / "weights.safetensors").exists()
    back = QuantizedNetwork.load(tmp_path / "q", data)
    for name in linear:
        a, b = back.torch_module().get_submodule(name).weight, student.torch_module().get_submodule(name).weight
        assert torch.equal(a.qdata, b.qdata) and torch.equal(a.scale, b.scale)
    X = data.features(data.test.head(30))[back.feature_names]
    assert np.array_equal(back.score_features(X), student.score_features(X))
    assert np.abs(student.score_features(X) - torch_teacher.score_features(X)).max() < 0.1


def test_torchao_bad_settings(lgb_teacher, data):
    with pytest.raises(RegistryError, match="backend='tflite' is not 'torch.ao' or 'torchao'"):
        Quantizer(backend="tflite")
    with pytest.raises(RegistryError, match="scheme='int4' is not 'weight-only' or 'dynamic'"):
        Quantizer(backend="torchao", scheme="int4")
    with pytest.raises(RegistryError, match="quantises Linear layers only"):
        Quantizer(backend="torchao", include_embeddings=True)
    with pytest.raises(UnsupportedError, match="quantize"):
        Quantizer(backend="torchao", **FAST).compress(lgb_teacher, data)
