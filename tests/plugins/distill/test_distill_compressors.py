"""The compressors: distill, prune, quantize, their reports and their bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from distill_toy import FAST

from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec_distill import fidelity as F
from whyrec_distill.common import StudentLargerWarning
from whyrec_distill.distill import Distiller
from whyrec_distill.prune import Pruner
from whyrec_distill.quantize import Quantizer
from whyrec_distill.teacher import position_weights


@pytest.fixture(scope="module")
def distilled(torch_teacher, data):
    return Distiller(student="mlp", student_params={"hidden": [16], "epochs": 20, "batch_size": 256}, **FAST).compress(torch_teacher, data)


# -- distill --------------------------------------------------------------------------------
def test_distill_report_has_every_fidelity_figure(distilled, torch_teacher):
    student, rep = distilled
    assert student.name == "mlp" and rep.kind == "compression"
    s = rep.summary
    assert s["method"] == "distill" and s["teacher"] == "torch-attention" and s["explainer"] == "occlusion"
    assert set(s["models"]) == {"teacher", "student", "baseline"}
    for role in ("student", "baseline"):
        m = s["models"][role]
        for key in ("jaccard@10", "recall@10", "kendall_tau", "rbo", "teacher_auc", "ndcg@10", "hr@10", "bytes",
                    "parameters", "rows_per_second", "size_ratio", "parameter_ratio", "speedup", "top3_agreement",
                    "attribution_rank_correlation"):
            assert m.get(key) is not None, (role, key)
        assert 0 <= m["jaccard@10"] <= 1 and 0 <= m["rbo"] <= 1
    assert set(s["bar"]) == {"size_ratio <= 0.1", "speedup >= 5", "jaccard@10 >= 0.8", "top3_agreement >= 0.8"}
    assert {"fidelity", "per_user", "agreement", "bar"} <= set(rep.tables)
    assert {"fidelity", "scores"} <= set(rep.figures)
    # the summary's figures are the per-user means of the tables
    pu = rep.tables["per_user"]
    assert s["models"]["student"]["jaccard@10"] == pytest.approx(pu[pu["model"] == "student"]["jaccard@10"].mean())


def test_distill_figures_match_recommend(distilled, torch_teacher, data):
    """Recompute one user's Jaccard@10 and RBO from the models' own recommend()."""
    student, rep = distilled
    pu = rep.tables["per_user"]
    row = pu[pu["model"] == "student"].iloc[0]
    u = row["user"]
    n = len(data.candidates(u))
    t = torch_teacher.recommend(u, n)
    st = student.recommend(u, n)
    assert row["jaccard@10"] == pytest.approx(F.jaccard_at_k(t["item"][:10], st["item"][:10]))
    assert row["rbo"] == pytest.approx(F.rank_biased_overlap(list(t["item"]), list(st["item"])))


def test_distillation_beats_the_same_size_student_on_labels(distilled):
    _, rep = distilled
    m = rep.summary["models"]
    # learning the teacher's scores reproduces its ranking better than learning the labels
    assert m["student"]["kendall_tau"] > m["baseline"]["kendall_tau"] + 0.1
    assert m["student"]["teacher_auc"] > m["baseline"]["teacher_auc"]


def test_distilled_student_saves_and_reloads(distilled, data, tmp_path):
    from whyrec_distill.mlp import MLPStudent

    student, rep = distilled
    student.save(tmp_path / "s")
    rep.save(tmp_path / "r")
    assert (tmp_path / "r" / "fidelity.csv").exists() and (tmp_path / "r" / "fidelity.png").exists()
    back = MLPStudent.load(tmp_path / "s", data)
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), student.score_features(X[student.feature_names]))


def test_ranking_distillation_training_set(torch_teacher, data):
    d = Distiller(mode="ranking", ranking_k=4, ranking_lambda=2.0, ranking_weight=0.5, max_users=10, baseline=False)
    pairs, targets, weights, loss, info = d.training_set(torch_teacher, data)
    assert loss == "bce"
    n_lab, n_top = info["label_pairs"], info["ranking_positives"]
    assert n_top == 10 * 4 and len(pairs) == n_lab + n_top
    # labelled pairs keep their labels with weight 1; the teacher's top-4 are positives with
    # weight alpha * K * w_r, w_r = exp(-r/2) / sum
    w = position_weights(4, 2.0)
    assert np.allclose(weights[:n_lab], 1.0)
    assert np.allclose(targets[n_lab:], 1.0)
    assert np.allclose(weights[n_lab:n_lab + 4], 0.5 * 4 * w)
    # ...and they are the teacher's best unseen items of that user
    u = pairs.iloc[n_lab]["user"]
    assert list(pairs.iloc[n_lab:n_lab + 4]["item"]) == list(torch_teacher.recommend(u, 4)["item"])


def test_position_weights_exact():
    w = position_weights(3, 1.0)
    e = np.exp([-1.0, -2.0, -3.0])
    assert np.allclose(w, e / e.sum())


def test_distill_lightgbm_into_a_tree_uses_tree_shap(lgb_teacher, data):
    student, rep = Distiller(student="tree-student", student_params={"n_estimators": 10, "num_leaves": 4},
                             baseline=False, **{**FAST, "explainer": "auto"}).compress(lgb_teacher, data)
    assert student.name == "tree-student"
    assert rep.summary["explainer"] == "tree-shap"  # exact, and the same method for both
    assert 0 <= rep.summary["models"]["student"]["top3_agreement"] <= 1


def test_student_larger_than_teacher_is_warned(lgb_teacher, data):
    with pytest.warns(StudentLargerWarning, match="not smaller than its teacher"):
        _, rep = Distiller(student="mlp", student_params={"hidden": [256, 256], "epochs": 1}, candidates_per_user=5,
                           baseline=False, **{**FAST, "explain_users": 0}).compress(lgb_teacher, data)
    assert rep.summary["warnings"] and "choose a smaller student" in rep.summary["warnings"][0]


def test_distill_bad_parameters():
    with pytest.raises(RegistryError, match="mode='fast'"):
        Distiller(mode="fast")
    with pytest.raises(RegistryError, match="temperature"):
        Distiller(temperature=0)
    with pytest.raises(RegistryError, match="candidates_per_user=-1"):
        Distiller(candidates_per_user=-1)
    with pytest.raises(RegistryError, match="rejected student_params"):
        Distiller(student_params={"no_such": 1}).make_student()


# -- prune ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True])
def test_sparsity_outside_zero_one(bad):
    with pytest.raises(RegistryError, match="strictly between 0 and 1"):
        Pruner(sparsity=bad)


@pytest.mark.parametrize("cls", [Pruner, Quantizer])
def test_prune_and_quantize_refuse_lightgbm_and_name_what_applies(cls, lgb_teacher, data):
    method = cls.__name__.lower().replace("pruner", "prune").replace("quantizer", "quantize")
    with pytest.raises(UnsupportedError) as err:
        cls().compress(lgb_teacher, data)
    msg = str(err.value)
    assert f"{method}: teacher 'lightgbm' is a LightGBM tree model" in msg
    assert "methods that apply to 'lightgbm': distill" in msg and "tree-student" in msg


@pytest.fixture(scope="module")
def pruned(torch_teacher, data):
    return Pruner(sparsity=0.7, finetune_epochs=1, **FAST).compress(torch_teacher, data)


def test_prune_reaches_the_target_sparsity_on_linear_layers_only(pruned, torch_teacher):
    from torch import nn

    student, rep = pruned
    # the base model's own class, registered as pruned-torch, with its capabilities plus "pruned"
    assert type(student) is type(torch_teacher) and student.component_name == "pruned-torch"
    assert student.capabilities == torch_teacher.capabilities | {"pruned"}
    lin = [m.weight for m in student.net.modules() if type(m) is nn.Linear]
    n = sum(w.numel() for w in lin)
    zeros = sum(int((w == 0).sum()) for w in lin)
    assert zeros == round(0.7 * n)  # global L1 pruning zeroes exactly that many; fine-tuning keeps them zero
    assert rep.summary["pruning"]["sparsity"] == pytest.approx(zeros / n)
    # embeddings are not pruned (fine-tuning moves them, but adds no zeros)
    for emb in ("item_emb", "cat_emb"):
        assert int((getattr(student.net, emb).weight == 0).sum()) == int((getattr(torch_teacher.net, emb).weight == 0).sum())
    assert student.compression["nonzero_parameters"] == sum(int((p != 0).sum()) for p in torch_teacher.net.parameters()) - zeros
    assert rep.summary["models"]["student"]["nonzero_parameters"] == student.compression["nonzero_parameters"]
    # the teacher itself was not pruned
    assert all(int((m.weight == 0).sum()) == 0 for m in torch_teacher.net.modules() if type(m) is nn.Linear)


def test_pruned_model_round_trip_is_exact_and_smaller(pruned, torch_teacher, data, tmp_path):
    from whyrec_distill.network import PrunedNetwork

    student, _ = pruned
    student.save(tmp_path / "p")
    torch_teacher.save(tmp_path / "t")
    assert not (tmp_path / "p" / "weights.safetensors").exists()
    assert (tmp_path / "p" / "weights.sparse.safetensors").stat().st_size < (tmp_path / "t" / "weights.safetensors").stat().st_size
    back = PrunedNetwork.load(tmp_path / "p", data)
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), student.score_features(X[student.feature_names]))
    assert back.compression["method"] == "prune"


def test_pruned_model_works_with_the_torch_explainers(pruned, data):
    from whyrec_torch.gradients import IntegratedGradients

    student, _ = pruned
    ig = IntegratedGradients()
    assert ig.supports(student)
    expl = ig.explain(student, data, student.recommend(data.user_ids[0], 2))
    assert len(expl.pairs) == 2 and expl.attributions is not None


def test_pruned_model_loaded_against_a_different_schema(pruned, other_schema_data, tmp_path):
    from whyrec_distill.network import PrunedNetwork

    pruned[0].save(tmp_path / "p")
    with pytest.raises(DataError, match=r"missing features \['price'\]"):
        PrunedNetwork.load(tmp_path / "p", other_schema_data)


def test_loading_a_pruned_directory_as_quantized_says_so(pruned, data, tmp_path):
    from whyrec_distill.network import QuantizedNetwork

    pruned[0].save(tmp_path / "p")
    with pytest.raises(DataError, match="holds a 'prune' model, not 'quantize'"):
        QuantizedNetwork.load(tmp_path / "p", data)


# -- quantize -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quantized(torch_teacher, data):
    return Quantizer(**FAST).compress(torch_teacher, data)


def test_quantize_makes_linear_layers_int8(quantized, torch_teacher, data):
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    student, rep = quantized
    assert type(student) is type(torch_teacher) and student.component_name == "quantized-torch"
    assert student.capabilities == (torch_teacher.capabilities - {"differentiable"}) | {"quantized"}
    q = [n for n, m in student.net.named_modules() if isinstance(m, QLinear)]
    assert q and q == rep.summary["quantization"]["quantized_layers"]
    X = data.features(data.test[["user", "item"]])
    diff = np.abs(student.score_features(X[student.feature_names]) - torch_teacher.score_features(X[torch_teacher.feature_names]))
    assert 0 < diff.max() < 0.1  # int8 rounding: close, not equal
    assert student.compression["parameters"] == torch_teacher.n_parameters()
    assert rep.summary["models"]["student"]["parameters"] == torch_teacher.n_parameters()
    assert rep.summary["models"]["student"]["jaccard@10"] > 0.6


def test_quantized_round_trip_is_bit_exact(quantized, torch_teacher, data, tmp_path):
    from whyrec_distill.network import QuantizedNetwork

    student, _ = quantized
    student.save(tmp_path / "q")
    torch_teacher.save(tmp_path / "t")
    assert (tmp_path / "q" / "weights.int8.safetensors").stat().st_size < (tmp_path / "t" / "weights.safetensors").stat().st_size
    back = QuantizedNetwork.load(tmp_path / "q", data)
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), student.score_features(X[student.feature_names]))


def test_quantized_model_loaded_against_a_different_schema(quantized, other_schema_data, tmp_path):
    from whyrec_distill.network import QuantizedNetwork

    quantized[0].save(tmp_path / "q")
    with pytest.raises(DataError, match=r"missing features \['price'\]"):
        QuantizedNetwork.load(tmp_path / "q", other_schema_data)


def test_quantize_and_prune_an_mlp_student(distilled, data, tmp_path):
    from whyrec_distill.compressed import PrunedMLP, QuantizedMLP

    mlp, _ = distilled
    q, qrep = Quantizer(**{**FAST, "explain_users": 0}).compress(mlp, data)
    p, _ = Pruner(sparsity=0.5, finetune_epochs=0, **{**FAST, "explain_users": 0}).compress(mlp, data)
    assert (q.name, p.name) == ("quantized-mlp", "pruned-mlp")
    X = data.features(data.test[["user", "item"]])
    for model, cls in ((q, QuantizedMLP), (p, PrunedMLP)):
        model.save(tmp_path / model.name)
        back = cls.load(tmp_path / model.name, data)
        assert np.array_equal(back.score_features(X[back.feature_names]), model.score_features(X[model.feature_names]))
    with pytest.raises(UnsupportedError, match="already quantised"):
        Pruner(**FAST).compress(q, data)
    assert math.isfinite(qrep.summary["models"]["student"]["kendall_tau"])


def test_quantize_embeddings_too(quantized, torch_teacher, data, tmp_path):
    from torch.ao.nn.quantized import Embedding as QEmbedding

    from whyrec_distill.network import QuantizedNetwork

    q, rep = Quantizer(include_embeddings=True, **{**FAST, "explain_users": 0}).compress(torch_teacher, data)
    assert q.compression["quantized_embeddings"] == ["item_emb", "cat_emb"]  # pos_emb is read via .weight: stays float
    assert isinstance(q.net.item_emb, QEmbedding) and not isinstance(q.net.pos_emb, QEmbedding)
    q.save(tmp_path / "qe")
    quantized[0].save(tmp_path / "q")
    # 1 byte per value plus a float scale and zero point per row, instead of 4 bytes per value
    from safetensors.torch import load_file

    t = load_file(str(tmp_path / "qe" / "weights.int8.safetensors"))
    assert t["item_emb.weight::uint8"].dtype == torch.uint8 and "item_emb.weight" not in t
    assert t["item_emb.weight::scales"].shape == (t["item_emb.weight::uint8"].shape[0],)
    assert (tmp_path / "qe" / "weights.int8.safetensors").stat().st_size < (tmp_path / "q" / "weights.int8.safetensors").stat().st_size
    back = QuantizedNetwork.load(tmp_path / "qe", data)
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), q.score_features(X[q.feature_names]))
    assert rep.summary["models"]["student"]["size_ratio"] < quantized[1].summary["models"]["student"]["size_ratio"]


def test_prune_embeddings_with_fine_tuning(torch_teacher, data, tmp_path):
    from whyrec_distill.network import PrunedNetwork

    p, rep = Pruner(sparsity=0.8, include_embeddings=True, finetune_epochs=1, **{**FAST, "explain_users": 0}).compress(torch_teacher, data)
    names = rep.summary["pruning"]["pruned_tensors"]
    assert "item_emb.weight" in names and "cat_emb.weight" in names
    assert "pos_emb.weight" not in names  # read through .weight by the network: pruning hooks would never run
    assert rep.summary["pruning"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    p.save(tmp_path / "p")
    back = PrunedNetwork.load(tmp_path / "p", data)
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), p.score_features(X[p.feature_names]))


def test_quantize_keeps_sensitive_layers_float(torch_teacher, data, tmp_path):
    from torch import nn
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    from whyrec_distill.network import QuantizedNetwork

    layers = [n for n, m in torch_teacher.net.named_modules() if type(m) is nn.Linear]
    everything, _ = Quantizer(tolerance=0, **{**FAST, "explain_users": 0}).compress(torch_teacher, data)
    assert everything.compression["quantized_layers"] == layers and everything.compression["float_layers"] == []
    assert everything.compression["sensitivity"] == {}
    # a tolerance no layer meets: every Linear stays float, and the sensitivities say why
    strict, _ = Quantizer(tolerance=1e-12, **{**FAST, "explain_users": 0}).compress(torch_teacher, data)
    sens = strict.compression["sensitivity"]
    assert sorted(sens) == sorted(layers) and all(v > 1e-12 for v in sens.values())
    assert strict.compression["quantized_layers"] == [] and strict.compression["float_layers"] == layers
    # in between: exactly the layers above the tolerance stay float, and that survives a reload
    mid = sorted(sens.values())[len(sens) // 2]
    part, _ = Quantizer(tolerance=mid, **{**FAST, "explain_users": 0}).compress(torch_teacher, data)
    kept = [n for n, m in part.net.named_modules() if type(m) is nn.Linear]
    assert kept == [n for n in layers if part.compression["sensitivity"][n] > mid]
    part.save(tmp_path / "q")
    back = QuantizedNetwork.load(tmp_path / "q", data)
    assert [n for n, m in back.net.named_modules() if isinstance(m, QLinear)] == part.compression["quantized_layers"]
    X = data.features(data.test[["user", "item"]])
    assert np.array_equal(back.score_features(X[back.feature_names]), part.score_features(X[part.feature_names]))
    with pytest.raises(RegistryError, match="tolerance"):
        Quantizer(tolerance=-1)
