"""transformer-seq's structured-network capability: whole blocks and heads cut out of the
network (physically smaller), saved and loaded with the smaller shape."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from whyrec.contracts import STRUCTURED_NETWORK, StructuredNetwork, TorchNetwork
from whyrec.errors import DataError, UnsupportedError
from whyrec_torch.toy import make_toy_data
from whyrec_torch.transformer import TransformerSeqModel
from whyrec_torch.transformer_net import TransformerConfig, TransformerNet


def tiny_net(layers: int = 3, heads: int = 4) -> TransformerNet:
    torch.manual_seed(0)
    cfg = TransformerConfig(50, 10, 1, 2, history_length=4, embedding_dim=8, layers=layers, heads=heads, hidden=(8,))
    return TransformerNet(cfg).eval()


def tiny_inputs(rows: int = 6) -> tuple:
    g = torch.Generator().manual_seed(1)
    items = torch.randint(1, 50, (rows, 5), generator=g)
    mask = torch.ones(rows, 4, dtype=torch.bool)
    mask[0, 2:] = False  # one short history
    return items, torch.randint(0, 10, (rows, 1), generator=g), torch.randn(rows, 2, generator=g), mask


def test_removing_heads_equals_masking_them_and_shrinks_the_matrices():
    net, x = tiny_net(), tiny_inputs()
    small = net.without_units(heads={1: [0, 2]})
    masked = copy.deepcopy(net)
    with torch.no_grad():  # head h of block 1 writes through out.weight columns h*2 .. h*2+1 (head_dim 2)
        masked.blocks[1].attn.out.weight[:, 0:2] = 0
        masked.blocks[1].attn.out.weight[:, 4:6] = 0
        assert torch.allclose(small(*x), masked(*x), atol=1e-6)
    assert small.structured_units() == {"layers": 3, "heads": [4, 2, 4]}
    assert small.cfg.layer_heads == (4, 2, 4) and small.cfg.head_dim == 2
    assert tuple(small.blocks[1].attn.qkv.weight.shape) == (3 * 2 * 2, 8)  # q, k, v of two 2-wide heads
    assert tuple(small.blocks[1].attn.out.weight.shape) == (8, 4)
    assert small.attention_maps(x[0], x[3])[1].shape[1] == 2
    assert net.structured_units() == {"layers": 3, "heads": [4, 4, 4]}  # the original is untouched


def test_removing_a_block_skips_it_exactly():
    net, x = tiny_net(), tiny_inputs()
    small = net.without_units(layers=[1])
    skipped = copy.deepcopy(net)
    skipped.blocks = torch.nn.ModuleList([skipped.blocks[0], skipped.blocks[2]])
    with torch.no_grad():
        assert torch.allclose(small(*x), skipped(*x), atol=1e-6)
    full = sum(p.numel() for p in net.parameters())
    per_block = sum(p.numel() for p in net.blocks[1].parameters())
    assert sum(p.numel() for p in small.parameters()) == full - per_block
    # the pruned config rebuilds the same network from a state dict
    again = TransformerNet(TransformerConfig.from_dict(json.loads(json.dumps(small.cfg.to_dict()))))
    again.load_state_dict(small.state_dict())


@pytest.mark.parametrize("kw, msg", [
    ({"layers": [0, 1, 2]}, "removing 3 of 3 blocks leaves none"),
    ({"heads": {0: [0, 1, 2, 3]}}, "leaves block 0 with none of its 4"),
    ({"heads": {0: [4]}}, "block 0 has heads 0..3, not [4]"),
    ({"heads": {3: [0]}}, "block(s) [3] do not exist; this network has blocks 0..2"),
    ({"layers": [-1]}, "block(s) [-1] do not exist"),
])
def test_removing_more_than_exists_is_one_clear_error(kw, msg):
    with pytest.raises(UnsupportedError) as err:
        tiny_net().without_units(**kw)
    assert msg in str(err.value) and "\n" not in str(err.value)


@pytest.fixture(scope="module")
def toy():
    return make_toy_data(n_users=30, n_items=20, history_length=4, seed=0)


@pytest.fixture(scope="module")
def model(toy):
    m = TransformerSeqModel(size="small", embedding_dim=8, layers=2, heads=2, hidden=[8], epochs=1, device="cpu",
                            num_threads=1, seed=0, batch_size=256)
    m.fit(toy)
    return m


def test_the_model_declares_the_contract(model):
    assert STRUCTURED_NETWORK in model.capabilities
    assert isinstance(model, TorchNetwork) and isinstance(model, StructuredNetwork)
    clone = model.clone_architecture(embedding_dim=4, layers=1, heads=1, hidden=[4])
    assert type(clone) is type(model) and clone.torch_module().structured_units() == {"layers": 1, "heads": [1]}
    assert clone.torch_module().cfg.embedding_dim == 4 and model.torch_module().cfg.embedding_dim == 8


def test_a_pruned_model_saves_and_loads_with_its_shape(model, toy, tmp_path):
    small = model.with_module(model.torch_module().without_units(layers=[0], heads={1: [1]}))
    small.save(tmp_path / "m")
    back = TransformerSeqModel.load(tmp_path / "m", toy, device="cpu")
    assert back.torch_module().structured_units() == {"layers": 1, "heads": [1]}
    X = toy.features(toy.test.head(12))[back.feature_names]
    assert np.allclose(back.score_features(X), small.score_features(X), atol=1e-6)
    assert back.n_parameters() == small.n_parameters() < model.n_parameters()


def test_a_saved_pruned_model_whose_config_does_not_match_its_weights(model, toy, tmp_path):
    small = model.with_module(model.torch_module().without_units(heads={0: [0]}))
    small.save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["net"]["layer_heads"] = [2, 2]  # the file says two heads in block 0, the weights hold one
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(DataError) as err:
        TransformerSeqModel.load(tmp_path / "m", toy, device="cpu")
    msg = str(err.value)
    assert "weights do not fit config.json" in msg and "blocks.0.attn.qkv.weight: shape (12, 8) in the file, (24, 8) expected" in msg
    assert "\n" not in msg
