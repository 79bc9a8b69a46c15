"""The feature-net model: the torch-network capability (torch_module, torch_inputs,
with_module, weights.safetensors), its save/load, and its optional `torch` extra."""
from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from whyrec.contracts import TORCH_NETWORK, TorchNetwork
from whyrec.errors import DataError, UnsupportedError

torch = pytest.importorskip("torch")  # the [torch] extra; the test below checks the message without it

from whyrec_example_plugin.feature_net import FeatureNetModel  # noqa: E402


@pytest.fixture(scope="module")
def fitted(data) -> FeatureNetModel:
    torch.set_num_threads(1)
    model = FeatureNetModel(hidden=8, epochs=30)
    model.fit(data)
    return model


def test_it_learns_the_planted_effects(fitted, data):
    assert fitted.feature_names == ["age", "price", "quality"]
    assert fitted.evaluate(data)["auc"] > 0.7
    X = data.features(data.test.head(50))
    better = X.assign(quality=X["quality"] + 1.0)
    assert (fitted.score_features(better) > fitted.score_features(X)).mean() > 0.9  # quality raises the click odds


def test_it_offers_the_torch_network_capability(fitted, data, host):
    assert TORCH_NETWORK in fitted.capabilities and host.get("models", "feature-net").provides == fitted.capabilities
    assert isinstance(fitted, TorchNetwork)
    X = data.features(data.test.head(20))[fitted.feature_names]
    net = fitted.torch_module()
    (x,) = fitted.torch_inputs(X)
    assert x.shape == (20, 3)
    with torch.no_grad():
        np.testing.assert_allclose(net(x).double().numpy(), fitted.score_features(X))
    # with_module: the same model on another network; the original keeps its own
    other = type(net)(3, 8)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    copy = fitted.with_module(other)
    assert type(copy) is FeatureNetModel and copy.torch_module() is other and fitted.torch_module() is net
    np.testing.assert_allclose(copy.score_features(X), 0.0)
    assert copy.feature_names == fitted.feature_names and copy.params == fitted.params


def test_saved_as_safetensors_and_reloaded_to_the_same_scores(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").exists()
    back = FeatureNetModel.load(tmp_path / "m", data)
    rows = data.test.head(30)
    np.testing.assert_array_equal(back.score(rows), fitted.score(rows))


def test_a_pickle_in_place_of_the_weights_is_refused(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    (tmp_path / "m" / "weights.safetensors").write_bytes(pickle.dumps({"hidden.weight": 0}))
    with pytest.raises(DataError, match="weights.safetensors: not a readable safetensors file"):
        FeatureNetModel.load(tmp_path / "m", data)


def test_weights_of_another_size_are_refused(fitted, data, tmp_path):
    fitted.save(tmp_path / "m")
    import json

    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["params"]["hidden"] = 4
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="weights do not fit hidden=4"):
        FeatureNetModel.load(tmp_path / "m", data)


def test_without_torch_the_model_names_the_extra(monkeypatch, host):
    monkeypatch.delitem(sys.modules, "whyrec_example_plugin.feature_net", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(UnsupportedError) as err:
        host.create("models", "feature-net")
    assert str(err.value) == ("model \"feature-net\" needs torch, which is not installed; "
                              "install the extra: pip install 'whyrec-example-plugin[torch]'")
