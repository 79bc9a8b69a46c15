"""A safetensors file whose header length starts with byte 0x80 (the pickle opcode) still loads."""
from __future__ import annotations

import json
import struct

import pytest
import torch

from whyrec.errors import DataError
from whyrec_torch.persist import check_not_pickle, load_state, save_state


def test_safetensors_with_a_0x80_header_length_is_not_taken_for_a_pickle(tmp_path):
    path = tmp_path / "w.safetensors"
    # pad the metadata until the JSON header is exactly 0x380 = 896 bytes long
    for pad in range(0, 2000):
        save_state({"w": torch.ones(2)}, path, metadata={"pad": "x" * pad})
        n = struct.unpack("<Q", path.read_bytes()[:8])[0]
        if n & 0xFF == 0x80:
            break
    assert path.read_bytes()[:1] == b"\x80"
    assert torch.equal(load_state(path)["w"], torch.ones(2))


def test_a_real_pickle_is_still_refused(tmp_path):
    path = tmp_path / "model.pt"
    import pickle

    path.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=4))
    with pytest.raises(DataError, match="a Python pickle"):
        check_not_pickle(path)
    path.write_bytes(json.dumps({}).encode())
    check_not_pickle(path)  # not a pickle: nothing to refuse


def test_weights_rounded_to_half_precision_are_stored_in_half_the_bytes_and_reload_exactly(tmp_path):
    g = torch.Generator().manual_seed(0)
    full = torch.randn(64, 32, generator=g)
    half = full.to(torch.float16).to(torch.float32)  # what a float16-stored student holds
    save_state({"w": full}, tmp_path / "full.safetensors")
    save_state({"w": half}, tmp_path / "half.safetensors")
    big, small = (tmp_path / "full.safetensors").stat().st_size, (tmp_path / "half.safetensors").stat().st_size
    assert small < 0.55 * big  # 2 bytes per value instead of 4 (plus the same small header)
    back = load_state(tmp_path / "half.safetensors")["w"]
    assert back.dtype == torch.float32 and torch.equal(back, half)
    again = load_state(tmp_path / "full.safetensors")["w"]  # not representable in float16: kept float32
    assert again.dtype == torch.float32 and torch.equal(again, full)
    save_state({"w": torch.full((3,), 1e6)}, tmp_path / "big.safetensors")  # beyond float16's range: float32
    assert torch.equal(load_state(tmp_path / "big.safetensors")["w"], torch.full((3,), 1e6))
