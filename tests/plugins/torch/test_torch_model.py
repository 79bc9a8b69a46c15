"""torch-attention: training, the scoring contract, persistence and bad input."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from whyrec.context import PipelineContext
from whyrec.errors import DataError, UnsupportedError, WhyrecError
from whyrec_torch.curves import tensorboard_available
from whyrec_torch.encoding import MISSING, OOV, Vocab
from whyrec_torch.model import TorchAttentionModel

from torch_fixtures import COLD_USER


def small(**kw) -> TorchAttentionModel:
    return TorchAttentionModel(**{"epochs": 2, "device": "cpu", "num_threads": 1, **kw})


# -- training ------------------------------------------------------------------------------
def test_training_is_deterministic_on_cpu(toy):
    a, b, c = small(seed=3), small(seed=3), small(seed=4)
    for m in (a, b, c):
        m.fit(toy)
    sa, sb, sc = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    X = toy.features(toy.test[["user", "item"]])[a.feature_names]
    assert np.array_equal(a.score_features(X), b.score_features(X))


def test_fit_reports_metrics_and_learns(model, toy):
    m = model.evaluate(toy)
    assert m["auc"] > 0.7  # well above chance on the planted genre preference
    assert model.capabilities == {"differentiable", "attention", "sequence", "torch-network"}
    assert model.feature_names[0] == "item_id" and model.sequence_features == [f"hist_{k}" for k in range(5)]
    assert len(model.curves) == 12 and {"train_loss", "val_loss", "val_auc", "seconds"} <= set(model.curves[0])
    assert model.curves[-1]["train_loss"] < model.curves[0]["train_loss"]


def test_training_curves_in_run_dir(toy, tmp_path):
    ctx = PipelineContext(pipeline="t", run_dir=tmp_path, spec={"model": [{"use": "torch-attention", "name": "din"}]})
    m = small()
    m.fit(toy, ctx)
    d = tmp_path / "models" / "din"
    rows = json.loads((d / "training_curves.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (d / "training_curves.png").stat().st_size > 1000
    assert (d / "tensorboard").exists() == tensorboard_available()


def test_net_is_plain_linear_head_and_clone(model, toy):
    linears = [l for l in model.net.head if isinstance(l, torch.nn.Linear)]
    assert [l.out_features for l in linears] == [64, 32, 1]
    student = model.clone_architecture(embedding_dim=8, hidden=[16])
    assert student.net is not model.net and student.net_config.embedding_dim == 8
    assert student.n_parameters() < model.n_parameters()
    X = toy.features(toy.train[["user", "item"]])[model.feature_names]
    teacher = 1 / (1 + np.exp(-model.score_features(X)))
    student.fit_targets(X, teacher, epochs=3)
    s = student.score_features(X)
    assert np.corrcoef(s, teacher)[0, 1] > 0.5  # the student follows the teacher's soft labels
    with pytest.raises(DataError, match="one target in \\[0, 1\\] per row"):
        student.fit_targets(X, teacher * 3)


# -- scoring contract --------------------------------------------------------------------------
def test_unseen_ids_score_as_oov_and_nan_as_missing(model, toy):
    X = toy.features(pd.DataFrame({"user": [1, 1], "item": [3, 3]}))[model.feature_names]
    Y = X.astype(object)
    Y["user_id"] = [99999, "someone"]  # two different unseen users: both the OOV row
    Y["item_id"] = [12345.0, "new-film"]
    Y["hist_0"] = [777.0, "x"]
    s = model.score_features(Y)
    assert np.isfinite(s).all() and s[0] == s[1]
    assert s[0] != model.score_features(X)[0]
    enc = model.encode(Y)
    assert (enc.items[:, 0] == OOV).all() and (enc.items[:, 1] == OOV).all()
    Z = X.copy()
    Z["hist_1"] = np.nan
    assert not model.encode(Z).mask[:, 1].any() and model.encode(Z).items[0, 2] == MISSING


def test_same_id_in_any_dtype_maps_to_one_index():
    v = Vocab.fit(pd.Series([5, 7]))
    assert list(v.lookup(pd.Series([7.0, 5, np.nan, 6]))) == [3, 2, MISSING, OOV]
    assert list(v.lookup(pd.Series(["7", "x"], dtype=object))) == [3, OOV]
    assert list(v.lookup(pd.Series(pd.Categorical([7, 9])))) == [3, OOV]
    # categories are mapped once per categories index: another index must not reuse that map
    assert list(v.lookup(pd.Series(pd.Categorical([5, 9, 7], categories=[9, 5, 7])))) == [2, OOV, 3]
    shared = pd.CategoricalDtype([5, 7, 8])
    assert list(v.lookup(pd.Series(pd.Categorical.from_codes([2, 0], dtype=shared)))) == [OOV, 2]
    assert list(v.lookup(pd.Series(pd.Categorical.from_codes([1, -1], dtype=shared)))) == [3, MISSING]


def test_batched_scoring_matches_one_batch(model, toy):
    X = toy.features(toy.test[["user", "item"]])[model.feature_names]
    full = model.score_features(X)
    old = model.params["score_batch_size"]
    model.params["score_batch_size"] = 7
    try:
        chunked = model.score_features(X)
    finally:
        model.params["score_batch_size"] = old
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-5)
    assert np.allclose(model.score(toy.test[["user", "item"]]), full, atol=1e-6)


def test_attention_weights_are_a_distribution_over_filled_positions(model, toy):
    X = toy.features(pd.DataFrame({"user": [1, 2, COLD_USER], "item": [3, 4, 5]}))[model.feature_names]
    X.loc[0, "hist_2"] = np.nan  # a gap inside the history
    _, w = model.attention(X)
    filled = X[model.sequence_features].notna().to_numpy()
    assert w[0, 2] == 0.0 and np.all(w[~filled] == 0.0)
    np.testing.assert_allclose(w[:2].sum(axis=1), 1.0, atol=1e-6)
    assert np.all(w[2] == 0.0)  # cold start: no history, no weight
    enc = model.encode(X)
    _, wu = model.forward_encoded(enc, uniform_attention=True, return_attention=True)
    np.testing.assert_allclose(wu[0][filled[0]], 1.0 / filled[0].sum(), atol=1e-7)


def test_recommend_cold_start_user(model, toy):
    recs = model.recommend(COLD_USER, 5)
    assert len(recs) == 5 and list(recs["rank"]) == [1, 2, 3, 4, 5]
    assert recs["score"].is_monotonic_decreasing
    assert toy.history(COLD_USER) == []


# -- persistence ---------------------------------------------------------------------------------
def test_save_load_roundtrip(model, toy, tmp_path):
    model.save(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"weights.safetensors", "config.json", "vocab.json", "numeric_stats.json", "model.json", "training_curves.json"} <= names
    assert (tmp_path / "m" / "weights.safetensors").read_bytes()[:1] != b"\x80"  # not a pickle
    again = TorchAttentionModel.load(tmp_path / "m", toy)
    X = toy.features(toy.test[["user", "item"]])[model.feature_names]
    assert np.array_equal(again.score_features(X), model.score_features(X))
    assert again.encoder.vocab_json() == model.encoder.vocab_json()


def test_checkpoint_from_another_config_names_the_keys(model, toy, tmp_path):
    model.save(tmp_path / "m16")
    other = small(embedding_dim=8, hidden=[16])
    other.fit(toy)
    with pytest.raises(DataError) as e:
        other.load_checkpoint(tmp_path / "m16")
    msg = str(e.value)
    assert "mismatched keys" in msg and "embedding_dim: checkpoint 16, this model 8" in msg and "hidden" in msg
    # model.json edited to another configuration than the weights were saved with
    meta = json.loads((tmp_path / "m16" / "model.json").read_text())
    meta["params"]["attention_hidden"] = 7
    (tmp_path / "m16" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="attention_hidden: checkpoint 32, this model 7"):
        TorchAttentionModel.load(tmp_path / "m16", toy)


def test_weights_that_do_not_fit_the_config_are_named(model, toy, tmp_path):
    model.save(tmp_path / "m")
    other = small(embedding_dim=8)
    other.fit(toy)
    other.save(tmp_path / "o")
    (tmp_path / "m" / "weights.safetensors").write_bytes((tmp_path / "o" / "weights.safetensors").read_bytes())
    with pytest.raises(DataError, match=r"item_emb.weight: shape \(\d+, 8\) in the file, \(\d+, 16\) expected"):
        TorchAttentionModel.load(tmp_path / "m", toy)


def test_pickle_model_files_are_refused(model, toy, tmp_path):
    model.save(tmp_path / "m")
    w = tmp_path / "m" / "weights.safetensors"
    w.write_bytes(pickle.dumps({k: v.numpy() for k, v in model.net.state_dict().items()}))
    with pytest.raises(DataError, match="is a Python pickle; whyrec refuses pickled model files"):
        TorchAttentionModel.load(tmp_path / "m", toy)
    model.save(tmp_path / "n")
    torch.save(model.net, tmp_path / "n" / "model.pt")  # a whole pickled module next to the weights
    with pytest.raises(DataError, match="model.pt: this file is a torch.save"):
        TorchAttentionModel.load(tmp_path / "n", toy)


def test_missing_config_is_a_clear_error(model, toy, tmp_path):
    model.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(DataError, match="no config.json; not a saved torch-attention model"):
        TorchAttentionModel.load(tmp_path / "m", toy)


# -- devices and parameters ---------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the no-CUDA error cannot happen")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(UnsupportedError, match="device='cuda' was requested but CUDA is not available.*use device='auto'"):
        TorchAttentionModel(device="cuda")
    assert TorchAttentionModel(device="auto").device.type == "cpu"


def test_bad_parameters(toy):
    with pytest.raises(UnsupportedError, match="device='tpu' is not one of"):
        TorchAttentionModel(device="tpu")
    with pytest.raises(UnsupportedError, match="epochs=0 must be >= 1"):
        TorchAttentionModel(epochs=0)
    with pytest.raises(DataError, match="item_feature='movie' is not a feature"):
        small(item_feature="movie").fit(toy)
    with pytest.raises(DataError, match="exclude names features \\['nope'\\]"):
        small(exclude=["nope"]).fit(toy)
    with pytest.raises(UnsupportedError, match="not fitted"):
        small().score_features(pd.DataFrame({"item_id": [1]}))


def test_plugin_registers_components_lazily():
    import subprocess
    import sys

    import whyrec_torch
    from whyrec.plugins import PluginHost

    host = PluginHost()
    host.add(whyrec_torch, "whyrec-torch")
    assert host.names("models") == ["torch-attention", "transformer-seq"]
    assert host.names("explainers") == ["attention-map", "attention-rollout", "grad-cam", "gradient-shap",
                                        "history-counterfactual", "integrated-gradients"]
    m = host.create("models", "torch-attention", {"epochs": 1, "device": "cpu"})
    assert isinstance(m, TorchAttentionModel) and m.params["epochs"] == 1
    with pytest.raises(WhyrecError, match="steps=0 must be a positive integer"):
        host.create("explainers", "integrated-gradients", {"steps": 0})
    # registering (what `whyrec --help` and `whyrec plugins` do) must not import torch
    code = ("import sys, whyrec_torch; from whyrec.plugins import PluginHost; h = PluginHost(); "
            "h.add(whyrec_torch, 'whyrec-torch'); h.collect(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
