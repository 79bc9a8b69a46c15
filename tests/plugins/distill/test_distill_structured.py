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
