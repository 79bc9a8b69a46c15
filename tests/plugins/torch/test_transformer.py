"""transformer-seq (self-attention over the history) and attention-rollout / flow."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from whyrec.errors import DataError, UnsupportedError
from whyrec.metrics import auc
from whyrec_torch.rollout import AttentionRollout, flow, layer_matrices, rollout
from whyrec_torch.toy import make_toy_data
from whyrec_torch.transformer import TransformerSeqModel
from whyrec_torch.transformer_net import TransformerConfig, TransformerNet


@pytest.fixture(scope="module")
def toy():
    return make_toy_data(n_users=60, n_items=40, history_length=5, seed=0)


@pytest.fixture(scope="module")
def tmodel(toy):
    m = TransformerSeqModel(size="small", epochs=10, device="cpu", num_threads=1, seed=0, batch_size=256)
    m.fit(toy)
    return m


# -- the network ----------------------------------------------------------------------------
def test_history_tokens_never_see_the_candidate_or_newer_items():
    net = TransformerNet(TransformerConfig(50, 10, 1, 0, history_length=4, embedding_dim=8, layers=2, heads=2, hidden=(8,)))
    mask = torch.tensor([[True, True, True, False]])
    allowed = net.allowed(mask)[0]
    # row = who attends, column = whom; token 0 is the candidate, 1.. the history (most recent first)
    want = torch.tensor([[1, 1, 1, 1, 0],   # the candidate sees every filled position
                         [0, 1, 1, 1, 0],   # hist_0 sees itself and older filled ones
                         [0, 0, 1, 1, 0],
                         [0, 0, 0, 1, 0],
                         [0, 0, 0, 0, 1]], dtype=torch.bool)  # a padded position only itself
    assert torch.equal(allowed, want)
    items = torch.tensor([[7, 3, 4, 5, 0]])
    with torch.no_grad():
        maps = net.eval().attention_maps(items, mask)
    assert len(maps) == 2 and maps[0].shape == (1, 2, 5, 5)
    assert torch.allclose(maps[0].sum(-1), torch.ones(1, 2, 5))
    assert float(maps[0].detach()[..., ~want].abs().max()) == 0.0
    # changing the candidate changes no history token's state: the next-item objective cannot peek
    h1, _ = net._encode(net.item_emb(items), mask, False)
    h2, _ = net._encode(net.item_emb(torch.tensor([[9, 3, 4, 5, 0]])), mask, False)
    assert torch.allclose(h1[:, 1:4], h2[:, 1:4]) and not torch.allclose(h1[:, 0], h2[:, 0])


def test_next_item_loss_only_in_training():
    net = TransformerNet(TransformerConfig(50, 10, 1, 0, history_length=4, embedding_dim=8, layers=1, heads=1, hidden=(8,)))
    args = (torch.tensor([[7, 3, 4, 5, 6]] * 3), torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, 0),
            torch.ones(3, 4, dtype=torch.bool))
    net.train()
    net(*args)
    aux = net.auxiliary_loss()
    assert aux is not None and aux.item() > 0 and net.auxiliary_loss() is None  # read once
    net.eval()
    net(*args)
    assert net.auxiliary_loss() is None


# -- rollout and flow, worked by hand --------------------------------------------------------
def test_rollout_and_flow_on_a_hand_worked_graph():
    # One head; with the residual (0.5 A + 0.5 I) each layer becomes [[0.5, 0.5], [0, 1]].
    m = np.array([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert np.allclose(layer_matrices([m])[0][0], [[0.5, 0.5], [0.0, 1.0]])
    assert np.allclose(rollout([m])[0], [0.5, 0.5])
    assert np.allclose(rollout([m, m])[0], [0.25, 0.75])  # (A2 A1) row 0
    assert np.allclose(flow([m])[0], [0.5, 0.5])  # one layer: the direct capacities
    # two layers: input 0 reaches the output only through (1, 0): min(0.5, 0.5); input 1 through
    # (1, 0) and (1, 1): min(0.5, 0.5) + min(1, 0.5)
    assert np.allclose(flow([m, m])[0], [0.5, 1.0])


# -- the model -------------------------------------------------------------------------------
def test_it_learns_the_toy_and_ranks_test_pairs(toy, tmodel):
    X = toy.features(toy.test)[tmodel.feature_names]
    a = auc(toy.test["label"].to_numpy(), tmodel.score_features(X))
    assert a > 0.75, a  # the toy's genre/sequel signal; a random scorer sits at 0.5
    assert tmodel.n_parameters() > 10_000 and tmodel.shape["size"] == "small"


def test_every_torch_explainer_works_on_it(toy, tmodel):
    from whyrec.plugins import get_host

    host = get_host()
    pairs = pd.concat([tmodel.recommend(u, 3) for u in (1, 2)], ignore_index=True)
    for name in ("integrated-gradients", "gradient-shap", "grad-cam", "attention-map", "history-counterfactual"):
        x = host.create("explainers", name, {})
        assert x.supports(tmodel), name
        e = x.explain(tmodel, toy, pairs)
        assert len(e.pairs) == len(pairs), name
    ig = host.create("explainers", "integrated-gradients", {"steps": 64}).explain(tmodel, toy, pairs)
    assert ig.max_additivity_error < 0.05 * float(np.abs(ig.pairs["output_value"] - ig.pairs["base_value"]).max())


@pytest.mark.parametrize("method", ["rollout", "flow", "raw"])
def test_attention_rollout_explains_history_positions(toy, tmodel, method):
    pairs = pd.concat([tmodel.recommend(u, 3) for u in (1, 2)], ignore_index=True)
    e = AttentionRollout(method=method).explain(tmodel, toy, pairs)
    w = e.attributions.to_numpy()
    mask = tmodel.encode(toy.features(pairs)[tmodel.feature_names]).mask
    assert w.shape == mask.shape and (w[~mask] == 0).all() and (w >= 0).all()
    if method == "rollout":  # shares of the candidate's output: at most everything
        assert (w.sum(axis=1) <= 1 + 1e-9).all()
    maps = tmodel.attention_layers(toy.features(pairs)[tmodel.feature_names])
    want = {"rollout": rollout(maps), "flow": flow(maps), "raw": maps[-1].mean(axis=1)[:, 0, :]}[method][:, 1:] * mask
    np.testing.assert_allclose(w, want)
    assert e.reasons and all(r for r in e.reasons)


def test_attention_rollout_refuses_a_single_layer_attention_model(toy):
    from whyrec_torch.model import TorchAttentionModel

    m = TorchAttentionModel(epochs=1, device="cpu")
    m.fit(toy)
    assert not AttentionRollout().supports(m)
    with pytest.raises(UnsupportedError, match="needs a model with the 'attention-layers' capability"):
        AttentionRollout().explain(m, toy, m.recommend(1, 2))
    with pytest.raises(UnsupportedError, match="method='max' is not one of rollout, flow, raw"):
        AttentionRollout(method="max")


def test_save_load_is_exact_and_a_mismatched_config_is_named(toy, tmodel, tmp_path):
    tmodel.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").exists()
    back = TransformerSeqModel.load(tmp_path / "m", toy, device="cpu")
    X = toy.features(toy.test.head(40))[tmodel.feature_names]
    np.testing.assert_array_equal(back.score_features(X), tmodel.score_features(X))
    other = TransformerSeqModel(size="small", layers=3, device="cpu")
    other.bind(toy, list(tmodel.feature_names))
    with pytest.raises(DataError, match=r"mismatched keys: layers: checkpoint None, this model 3"):
        other.load_checkpoint(tmp_path / "m")


def test_a_longer_history_is_cut_to_the_models_most_recent_positions(tmodel):
    longer = make_toy_data(n_users=60, n_items=40, history_length=8, seed=0)
    X = longer.features(longer.test.head(30))
    five = X[tmodel.feature_names]  # the model reads hist_0..hist_4: the five most recent
    blanked = X.copy()
    blanked[["hist_5", "hist_6", "hist_7"]] = np.nan
    np.testing.assert_array_equal(tmodel.score_features(five), tmodel.score_features(blanked[tmodel.feature_names]))


def test_size_and_device_choices(caplog, capsys):
    m = TransformerSeqModel(device="cpu")  # explicit CPU: the small preset, no message needed
    assert m.shape["size"] == "small" and m.shape["embedding_dim"] == 32
    big = TransformerSeqModel(size="large", device="cpu")
    assert big.shape == {"embedding_dim": 512, "layers": 4, "heads": 8, "hidden": [256], "size": "large"}
    if not torch.cuda.is_available():
        TransformerSeqModel()  # size auto, device auto, no CUDA: says which configuration it took
        assert "no CUDA device here, so the CPU configuration (size='small') is used" in capsys.readouterr().err
        with pytest.raises(UnsupportedError, match="transformer-seq: device='cuda' was requested but CUDA is not available"):
            TransformerSeqModel(device="cuda")
    for kw, msg in (({"size": "huge"}, "size='huge' is not one of"), ({"embedding_dim": 30, "heads": 4}, "multiple of heads=4"),
                    ({"layers": 0}, "layers=0 must be >= 1"), ({"next_item_weight": -1}, "next_item_weight=-1")):
        with pytest.raises(UnsupportedError, match=msg):
            TransformerSeqModel(device="cpu", **kw)


def test_large_preset_has_over_ten_million_parameters():
    net = TransformerNet(TransformerConfig(item_vocab_size=1684, cat_vocab_total=200, n_categorical=20, n_numeric=20,
                                           history_length=10, embedding_dim=512, layers=4, heads=8, hidden=(256,)))
    assert sum(p.numel() for p in net.parameters()) > 10_000_000
