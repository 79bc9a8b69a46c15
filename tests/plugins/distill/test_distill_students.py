"""The students: the mlp and tree-student models on their own."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec_distill.mlp import MLPStudent
from whyrec_distill.tree import TreeStudent


@pytest.fixture(scope="module")
def mlp(data):
    m = MLPStudent(hidden=[16], epochs=15, batch_size=64, weights_dtype="float32", seed=0)
    m.fit(data)
    return m


def test_mlp_uses_every_non_sequence_feature_and_learns(mlp, data):
    assert sorted(mlp.feature_names) == sorted(f.name for f in data.schema if f.kind != "sequence")
    assert mlp.feature_names[:3] == ["user_id", "gender", "item_id"]  # categoricals first, then numbers
    assert mlp.evaluate(data)["auc"] > 0.6  # the toy labels follow genre taste and price
    # ids with many values get id_embedding_dim=1, small categoricals embedding_dim=4
    cfg = mlp.net.cfg
    dims = dict(zip(mlp.encoder.categorical, cfg.embedding_dims))
    assert dims == {"user_id": 4, "gender": 4, "item_id": 4}  # toy: 51 users < id_threshold=100
    assert cfg.interaction is None  # no id features in the toy data at the default threshold
    big = MLPStudent(id_threshold=10, id_embedding_dim=2, epochs=1)
    big.prepare(data)
    assert dict(zip(big.encoder.categorical, big.net.cfg.embedding_dims)) == {"user_id": 2, "gender": 4, "item_id": 2}
    # user x item: the product of the two id embeddings is 2 more inputs of the head
    assert big.net.cfg.interaction == [0, 2]
    assert big.net.head[0].in_features == 2 + 4 + 2 + 2 + len(big.encoder.numeric)


def test_mlp_fit_targets_reproduces_a_teacher_margin(data):
    X = data.features(data.train[["user", "item"]])
    target = 2.0 * (X["genre_A"].to_numpy() - 0.5) - 0.3 * X["price"].to_numpy()
    m = MLPStudent(hidden=[16], epochs=60, lr=1e-2, batch_size=128, seed=1)
    m.prepare(data, X)
    before = np.mean((m.score_features(X[m.feature_names]) - target) ** 2)
    info = m.fit_targets(X[m.feature_names], target, loss="mse")
    pred = m.score_features(X[m.feature_names])
    assert info["loss"] == "mse" and info["rows"] == len(X)
    assert np.mean((pred - target) ** 2) < 0.05 * before
    assert np.corrcoef(pred, target)[0, 1] > 0.98


def test_mlp_rejects_bad_targets_and_params(data):
    m = MLPStudent(epochs=1)
    m.prepare(data)
    X = data.features(data.train[["user", "item"]].head(5))
    with pytest.raises(DataError, match="probabilities in \\[0, 1\\]"):
        m.fit_targets(X, np.array([0.0, 2.0, 0.5, 0.1, 0.2]), loss="bce")
    with pytest.raises(DataError, match="one finite target per row"):
        m.fit_targets(X, np.zeros(3))
    with pytest.raises(RegistryError, match="hidden"):
        MLPStudent(hidden=[0])
    with pytest.raises(DataError, match="history sequences"):
        MLPStudent(features=["age", "hist_0"]).prepare(data)


def test_mlp_scores_unseen_values(mlp, data):
    X = data.features(data.test[["user", "item"]].head(3)).copy()
    X["item_id"] = pd.Categorical([99999, 99998, np.nan])
    X["gender"] = ["X", None, "F"]
    assert np.isfinite(mlp.score_features(X[mlp.feature_names])).all()


def test_mlp_save_load_round_trip(mlp, data, tmp_path):
    mlp.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "encoder.json", "model.json", "weights.safetensors"]
    back = MLPStudent.load(tmp_path / "m", data)
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), mlp.score_features(X[mlp.feature_names]))


def test_mlp_refuses_pickled_weights(mlp, data, tmp_path):
    import pickle

    mlp.save(tmp_path / "m")
    (tmp_path / "m" / "weights.safetensors").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(DataError, match="pickle"):
        MLPStudent.load(tmp_path / "m", data)


def test_mlp_loaded_against_a_different_schema(mlp, other_schema_data, tmp_path):
    mlp.save(tmp_path / "m")
    with pytest.raises(DataError, match=r"missing features \['price'\].*retrain"):
        MLPStudent.load(tmp_path / "m", other_schema_data)


def test_tree_student_single_tree_fits_a_step_exactly(data):
    X = data.features(data.train[["user", "item"]])
    target = np.where(X["price"].to_numpy() > 5.0, 1.5, -0.5)
    t = TreeStudent(n_estimators=1, learning_rate=1.0, num_leaves=2, min_child_samples=1, lambda_l2=0.0)
    t.prepare(data, X)
    info = t.fit_targets(X, target, loss="mse")
    assert info["n_trees"] == 1
    assert np.abs(t.score_features(X[t.feature_names]) - target).max() < 1e-6  # labels are float32 inside LightGBM
    assert t.n_parameters() == 3  # one split, two leaves


def test_tree_student_round_trip_and_tree_shap(data, tmp_path):
    from whyrec_shap.tree import TreeShap

    X = data.features(data.train[["user", "item"]])
    t = TreeStudent(n_estimators=5, num_leaves=4)
    t.prepare(data, X)
    t.fit_targets(X, X["price"].to_numpy() * -0.3, loss="mse")
    t.save(tmp_path / "t")
    back = TreeStudent.load(tmp_path / "t", data)
    assert np.array_equal(back.score_features(X[back.feature_names]), t.score_features(X[t.feature_names]))
    ts = TreeShap()
    assert ts.supports(back)
    pairs = data.test[["user", "item"]].head(3)
    expl = ts.explain(back, data, pairs)
    assert expl.max_additivity_error < 1e-6
    # the surrogate learned price only: every attribution outside price is zero
    assert np.allclose(expl.attributions.drop(columns="price").to_numpy(float), 0.0)


def test_tree_student_loaded_against_a_different_schema(data, other_schema_data, tmp_path):
    t = TreeStudent(n_estimators=2, num_leaves=4)
    t.fit(data)
    t.save(tmp_path / "t")
    with pytest.raises(DataError, match="price"):
        TreeStudent.load(tmp_path / "t", other_schema_data)
    # a directory of the older format (a whyrec-lightgbm model) is refused in one line
    (tmp_path / "t" / "tree.json").rename(tmp_path / "t" / "lightgbm.json")
    with pytest.raises(DataError, match="saved by an older whyrec-distill .*--student tree-student --overwrite"):
        TreeStudent.load(tmp_path / "t", data)
    # a pickle where the text model belongs is never loaded
    (tmp_path / "t" / "lightgbm.json").rename(tmp_path / "t" / "tree.json")
    import pickle

    (tmp_path / "t" / "model.txt").write_bytes(pickle.dumps({"tree": 1}))
    with pytest.raises(DataError, match="model.txt is not a LightGBM text model .*never loads pickles"):
        TreeStudent.load(tmp_path / "t", data)


def test_mlp_listwise_learns_each_users_order(data):
    """ListNet on per-user groups: the student reproduces the teacher's order within users."""
    from scipy.stats import kendalltau

    pairs = data.train[["user", "item"]]
    X = data.features(pairs)
    teacher = 3.0 * X["genre_B"].to_numpy() - 0.5 * X["price"].to_numpy() + 0.1 * X["age"].to_numpy()
    m = MLPStudent(hidden=[16], epochs=60, lr=1e-2, batch_size=64, seed=0)
    m.prepare(data, X)
    info = m.fit_targets(X[m.feature_names], teacher, loss="listnet", groups=pairs["user"].to_numpy(), temperature=1.0)
    assert info["loss"] == "listnet" and info["groups"] == pairs["user"].nunique()
    pred = m.score_features(X[m.feature_names])
    taus = [kendalltau(teacher[g], pred[g]).statistic for g in pairs.groupby("user").indices.values()]
    assert np.nanmean(taus) > 0.8
    with pytest.raises(DataError, match="needs groups"):
        m.fit_targets(X[m.feature_names], teacher, loss="listnet")


def test_mlp_float16_weights_and_embedding_dims(data, tmp_path):
    m32 = MLPStudent(epochs=2, seed=0, weights_dtype="float32")
    m16 = MLPStudent(epochs=2, seed=0, embedding_dims={"user_id": 0, "item_id": 3})  # float16 is the default
    for m in (m32, m16):
        m.fit(data)
        m.save(tmp_path / m.params["weights_dtype"])
    # half the bytes for the weights
    w32, w16 = ((tmp_path / d / "weights.safetensors").stat().st_size for d in ("float32", "float16"))
    assert w16 < 0.6 * w32
    assert dict(zip(m16.encoder.categorical, m16.net.cfg.embedding_dims)) == {"user_id": 0, "gender": 4, "item_id": 3}
    # every float weight is exactly a float16 number, so the reload scores identically
    assert all(torch_equal_half(p) for p in m16.net.parameters())
    back = MLPStudent.load(tmp_path / "float16", data)
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), m16.score_features(X[m16.feature_names]))
    with pytest.raises(DataError, match="embedding_dims names \\['age'\\]"):
        MLPStudent(embedding_dims={"age": 2}).prepare(data)
    with pytest.raises(RegistryError, match="weights_dtype"):
        MLPStudent(weights_dtype="int4")


def torch_equal_half(p) -> bool:
    return bool((p.detach().half().float() == p.detach()).all())


def test_vocab_packing():
    from whyrec_distill.encoding import pack_keys, unpack_keys

    assert pack_keys(["1", "2", "3", "7", "8"]) == {"int_runs": [[1, 3], [7, 8]]}
    assert unpack_keys({"int_runs": [[1, 3], [7, 8]]}) == ["1", "2", "3", "7", "8"]
    assert pack_keys(["F", "M"]) == ["F", "M"]
    assert pack_keys(["01", "2"]) == ["01", "2"]  # not canonical integers: kept as written
    with pytest.raises(DataError, match="int runs"):
        unpack_keys({"runs": []})


def test_tree_student_listwise_is_lambdarank_per_user(data):
    from scipy.stats import kendalltau

    pairs = data.train[["user", "item"]]
    X = data.features(pairs)
    teacher = -X["price"].to_numpy()
    t = TreeStudent(n_estimators=20, num_leaves=4, min_child_samples=2)
    t.prepare(data, X)
    t.fit_targets(X, teacher, loss="listnet", groups=pairs["user"].to_numpy())
    assert "lambdarank" in t.booster.model_to_string()[:2000]
    pred = t.score_features(X[t.feature_names])
    taus = [kendalltau(teacher[g], pred[g]).statistic for g in pairs.groupby("user").indices.values()]
    assert np.nanmean(taus) > 0.6


def test_tree_student_bad_parameters_are_one_line_errors():
    with pytest.raises(RegistryError, match=r"model 'tree-student': num_leaves=1 must be >= 2"):
        TreeStudent(num_leaves=1)
    with pytest.raises(RegistryError, match=r"feature_fraction=0 in \(0, 1\]"):
        TreeStudent(feature_fraction=0)
    with pytest.raises(UnsupportedError, match="call prepare"):
        TreeStudent().fit_targets(None, np.zeros(0))
