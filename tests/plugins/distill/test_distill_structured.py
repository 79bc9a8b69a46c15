"""prune-structured (whole blocks and heads of a structured-network model) and distill-network
(a small student of the teacher's own family)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from whyrec.errors import RegistryError, UnsupportedError
from whyrec_distill.listwise import teacher_targets, train_listwise
from whyrec_distill.structured import NetworkDistiller, StructuredPruner, ablation_importance

FAST = dict(eval_users=4, explain_users=0, repeats=1)


@pytest.fixture(scope="module")
def transformer(data):
    from whyrec_torch.transformer import TransformerSeqModel

    m = TransformerSeqModel(size="small", embedding_dim=8, layers=2, heads=2, hidden=[8], epochs=1, device="cpu",
                            num_threads=1, seed=0, batch_size=512)
    m.fit(data)
    return m


@pytest.mark.parametrize("kw, msg", [
    ({}, "remove_layers and remove_heads are both 0"),
    ({"remove_heads": -1}, "remove_heads=-1 must be an integer >= 0"),
    ({"remove_layers": 1.5}, "remove_layers=1.5 must be an integer >= 0"),
    ({"remove_heads": 1, "finetune": "sgd"}, "finetune='sgd' is not 'listwise', 'pointwise' or 'none'"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(RegistryError) as err:
        StructuredPruner(**kw)
    assert msg in str(err.value)


@pytest.mark.parametrize("kw, msg", [
    ({"remove_layers": 2}, "remove_layers=2 but 'transformer-seq' has 2 block(s); at most 1 can go"),
    ({"remove_heads": 3}, "remove_heads=3 but 'transformer-seq' has heads [2, 2] per block; after removing 0 block(s) at most 2 can go"),
    ({"remove_layers": 1, "remove_heads": 2}, "after removing 1 block(s) at most 1 can go"),
])
def test_pruning_more_than_the_network_has(transformer, data, kw, msg):
    with pytest.raises(RegistryError) as err:
        StructuredPruner(**kw, **FAST).compress(transformer, data)
    assert msg in str(err.value) and "\n" not in str(err.value)


def test_a_teacher_without_the_capability_is_refused(torch_teacher, data):
    with pytest.raises(UnsupportedError, match="does not offer the 'structured-network' capability.*use compressor 'prune'"):
        StructuredPruner(remove_heads=1, **FAST).compress(torch_teacher, data)
    with pytest.raises(UnsupportedError, match="structured-network"):
        NetworkDistiller(**FAST).compress(torch_teacher, data)


def test_ablation_importance_of_a_silent_head_is_zero(transformer, data):
    net = transformer.torch_module()
    X = data.features(data.train.head(64))[transformer.feature_names]
    inputs = transformer.torch_inputs(X)
    import copy

    silent = copy.deepcopy(net)
    with torch.no_grad():
        silent.blocks[1].attn.out.weight[:, 4:8] = 0  # head 1 of block 1 (head_dim 4) writes nothing
    imp = ablation_importance(silent, inputs, "heads")
    assert set(imp) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert imp[(1, 1)] == 0.0 and min(v for u, v in imp.items() if u != (1, 1)) > 0
    pruned, removed = StructuredPruner(remove_heads=1, **FAST).prune(silent, inputs)
    assert removed["heads"] == [{"block": 1, "head": 1, "importance": 0.0}]
    assert pruned.structured_units() == {"layers": 2, "heads": [2, 1]}


def test_prune_structured_gives_a_smaller_model_of_the_same_class(transformer, data, tmp_path):
    student, rep = StructuredPruner(remove_layers=1, remove_heads=1, finetune="none", **FAST).compress(transformer, data)
    assert type(student) is type(transformer)
    assert student.torch_module().structured_units() == {"layers": 1, "heads": [1]}
    assert transformer.torch_module().structured_units() == {"layers": 2, "heads": [2, 2]}
    info = rep.summary["structured_pruning"]
    assert len(info["removed"]["layers"]) == 1 and len(info["removed"]["heads"]) == 1
    s = rep.summary["models"]["student"]
    assert s["parameters"] == student.n_parameters() < transformer.n_parameters()
    assert s["parameter_ratio"] == pytest.approx(student.n_parameters() / transformer.n_parameters())


def test_listwise_training_moves_the_student_towards_the_teacher(transformer, data):
    student = transformer.clone_architecture(embedding_dim=4, layers=1, heads=1, hidden=[4], dropout=0.0)
    targets = teacher_targets(transformer, student, data, max_users=6, per_user=0, seed=0)
    assert targets.users == 6 and targets.slots.shape[0] == 6 and (targets.slots >= 0).sum() == targets.rows
    assert sorted(targets.slots[targets.slots >= 0].tolist()) == list(range(targets.rows))
    info = train_listwise(student, targets, epochs=4, lr=1e-2, seed=0)
    assert info["losses"][-1] < info["losses"][0]


def test_distill_network(transformer, data):
    with pytest.raises(RegistryError, match="shape=.*must be a table"):
        NetworkDistiller(shape=[8, 1])
    with pytest.raises(RegistryError, match="rejected shape"):
        NetworkDistiller(shape={"width": 3}, **FAST).compress(transformer, data)
    student, rep = NetworkDistiller(shape={"embedding_dim": 4, "layers": 1, "heads": 1, "hidden": [4]}, epochs=1,
                                    max_users=4, **FAST).compress(transformer, data)
    assert type(student) is type(transformer) and student.torch_module().cfg.embedding_dim == 4
    assert rep.summary["models"]["student"]["parameters"] == student.n_parameters()
    assert np.isfinite(rep.summary["models"]["student"]["jaccard@10"])


def test_bad_init_and_storage_are_refused():
    with pytest.raises(RegistryError, match="init='pca' is not 'random' or 'teacher'"):
        NetworkDistiller(init="pca")
    with pytest.raises(RegistryError, match="storage='int4' is not 'float32' or 'float16'"):
        NetworkDistiller(storage="int4")


def test_teacher_init_projects_each_embedding_table_on_its_principal_directions(transformer):
    from whyrec_distill.structured import init_from_teacher

    student = transformer.clone_architecture(embedding_dim=4, layers=1, heads=1, hidden=[4])
    s_net, t_net = student.torch_module(), transformer.torch_module()
    kept = init_from_teacher(s_net, t_net)
    assert "item_emb" in kept and 0 < kept["item_emb"] <= 1
    W = t_net.item_emb.weight.detach()
    centred = W - W.mean(0, keepdim=True)
    _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
    assert torch.allclose(s_net.item_emb.weight, W @ vh[:4].T, atol=1e-5)
    assert torch.equal(s_net.item_emb.weight[0], torch.zeros(4))  # the padding row stays zero
    assert kept["item_emb"] == pytest.approx(float((sv[:4] ** 2).sum() / (sv ** 2).sum()), abs=1e-4)
    assert set(kept) == {"item_emb", "cat_emb", "pos_emb"}  # every table of the family, nothing else


def test_float16_storage_halves_the_weights_and_the_report_scores_what_is_saved(transformer, data, tmp_path):
    shape = {"embedding_dim": 4, "layers": 1, "heads": 1, "hidden": [4]}
    kw = dict(shape=shape, epochs=1, max_users=4, **FAST)
    s32, r32 = NetworkDistiller(storage="float32", **kw).compress(transformer, data)
    s16, r16 = NetworkDistiller(storage="float16", init="teacher", **kw).compress(transformer, data)
    m32, m16 = r32.summary["models"]["student"], r16.summary["models"]["student"]
    assert m16["parameters"] == m32["parameters"]
    # 2 bytes a value instead of 4 (the safetensors header, a few hundred bytes, is the same)
    assert abs((m32["weight_bytes"] - m16["weight_bytes"]) - 2 * m16["parameters"]) < 64
    assert r16.summary["distillation"]["storage"]["values_rounded"] > 0
    assert r16.summary["distillation"]["init"]["kind"] == "teacher"
    # what is saved is what was scored: a reload scores bit for bit the same
    X = data.features(data.test.head(50))[s16.feature_names]
    s16.save(tmp_path / "s16")
    back = type(s16).load(tmp_path / "s16", data)
    assert np.array_equal(back.score_features(X), s16.score_features(X))
    for p in s16.torch_module().parameters():
        assert torch.equal(p, p.to(torch.float16).to(torch.float32))


def test_ablate_units_sets_exactly_one_unit_missing_per_row(transformer, data):
    from whyrec_distill.listwise import ablate_units

    X = data.features(data.train.head(300))[transformer.feature_names].reset_index(drop=True)
    seq = list(data.schema.of_kind("sequence"))
    A = ablate_units(X, seq, np.random.default_rng(0))
    assert list(A.columns) == list(X.columns) and len(A) == len(X)
    changed = (A.isna() & ~X.isna())
    units_hit = []
    for i in range(len(X)):
        cols = set(changed.columns[changed.iloc[i].to_numpy()])
        if cols & set(seq):
            assert cols <= set(seq)  # the history goes as one unit, nothing else with it
            units_hit.append("history")
        else:
            assert len(cols) <= 1  # one feature (already missing: nothing changes)
            units_hit.extend(cols)
    assert len(set(units_hit)) > 3  # the unit is drawn at random, not always the same


def test_ablated_rows_teach_the_student_the_teachers_response_to_a_missing_feature(transformer, data):
    def ablated_mse(weight: float) -> tuple[float, dict]:
        torch.manual_seed(0)
        student = transformer.clone_architecture(embedding_dim=4, layers=1, heads=1, hidden=[4], dropout=0.0)
        targets = teacher_targets(transformer, student, data, max_users=6, per_user=30, seed=0, ablated_share=0.5)
        assert targets.ablated_margins is not None and len(targets.ablated_margins) == round(0.5 * targets.rows)
        cat = student.torch_module().cat_emb.weight
        missing = torch.nonzero((cat.detach() == 0).all(dim=1)).reshape(-1)
        assert len(missing) == len(student.encoder.categorical)  # each categorical's "missing" row starts at zero
        info = train_listwise(student, targets, epochs=10, lr=1e-2, seed=0, users_per_batch=1, ablated_weight=weight)
        # the ablated rows look the missing rows up; they stay zero (the all-missing baseline of
        # integrated gradients stays "no information", as the teacher's)
        assert torch.equal(cat.detach()[missing], torch.zeros(len(missing), cat.shape[1]))
        with torch.no_grad():
            out = student.torch_module()(*targets.ablated_inputs).reshape(-1)
        return ((out - torch.as_tensor(targets.ablated_margins)) ** 2).mean().item(), info

    with_rows, info = ablated_mse(1.0)
    without, info0 = ablated_mse(0.0)
    assert info["ablated_rows"] > 0 and info["ablated_weight"] == 1.0 and info0["ablated_weight"] == 0.0
    assert with_rows < 0.8 * without  # the rows with a feature missing are learned only when they are used
    with pytest.raises(RegistryError, match="ablated_share=1.5 must be in"):
        NetworkDistiller(ablated_share=1.5)
    with pytest.raises(RegistryError, match="ablated_share=0.3 must be in .* ablated_weight=heavy"):
        NetworkDistiller(ablated_share=0.3, ablated_weight="heavy")
