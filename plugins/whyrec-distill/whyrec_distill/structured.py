"""Structured compression of a ``structured-network`` model (``whyrec.contracts.StructuredNetwork``).

- ``prune-structured``: whole blocks (``remove_layers``) and attention heads (``remove_heads``)
  are cut out of the network, the least important first, then the smaller network is
  fine-tuned on the teacher (listwise distillation on its scores, or pointwise on the training
  pairs). Importance is measured by ablation on ``probe_rows`` training rows: the mean squared
  change of the logits when that one unit is removed (removing a head is masking it, Michel et
  al. 2019); units go one at a time, importances measured again after each removal. Unlike the
  magnitude masks of ``prune`` the weight matrices shrink, so scoring gets faster.
- ``distill-network``: a small, untrained model of the teacher's own family
  (``clone_architecture(**shape)``: fewer blocks, heads, dimensions) learns the teacher's
  ranking by listwise distillation over each training user's candidates plus the mse on its
  margins. Being of the same family, it keeps the teacher's explainers (attention, rollout,
  gradients).

Both return an instance of the teacher's own class (``with_module`` / ``clone_architecture``),
which saves and loads as that model: its config records the smaller shape.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Literal

import numpy as np

from whyrec.contracts import STRUCTURED_NETWORK
from whyrec.data import RecData
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.progress import log
from whyrec.results import CompressionReport

from .common import build_report, eval_settings, teacher_name
from .listwise import teacher_targets, train_listwise
from .network import check_network, registered_name


def check_structured(model: Any, what: str) -> Any:
    """``model``'s module, or one line saying it lacks the structured-network capability."""
    net = check_network(model, what)
    caps = set(getattr(model, "capabilities", ()) or ())
    missing = [m for m in ("structured_units", "without_units") if not callable(getattr(net, m, None))]
    if STRUCTURED_NETWORK not in caps or missing:
        raise UnsupportedError(f"{what}: model {registered_name(model)!r} does not offer the {STRUCTURED_NETWORK!r} capability "
                               "(whole blocks and heads its network can drop, e.g. transformer-seq); "
                               "use compressor 'prune' (magnitude masks) or 'distill' instead")
    return net


def _int(name: str, comp: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < lo:
        raise RegistryError(f"compressor {comp!r}: {name}={v!r} must be an integer >= {lo}")
    return int(v)


def logits_of(net: Any, inputs: tuple) -> Any:
    import torch

    with torch.inference_mode():
        return net(*inputs).float().reshape(-1)


def ablation_importance(net: Any, inputs: tuple, unit: Literal["layers", "heads"]) -> dict:
    """{unit: mean squared change of the logits on ``inputs`` when that unit alone is removed};
    units are block indices, or (block, head) pairs."""
    z = logits_of(net, inputs)
    units = net.structured_units()
    out: dict = {}
    if unit == "layers":
        for i in range(units["layers"]):
            if units["layers"] > 1:
                out[i] = float(((logits_of(net.without_units(layers=[i]), inputs) - z) ** 2).mean())
    else:
        for i, h in enumerate(units["heads"]):
            for j in range(h if h > 1 else 0):
                out[(i, j)] = float(((logits_of(net.without_units(heads={i: [j]}), inputs) - z) ** 2).mean())
    return out


class StructuredPruner:
    """Remove ``remove_layers`` whole blocks and ``remove_heads`` attention heads (least important
    first), then fine-tune the smaller network on the teacher."""

    def __init__(
        self,
        remove_layers: int = 0,
        remove_heads: int = 0,
        probe_rows: int = 2048,
        finetune: Literal["listwise", "pointwise", "none"] = "listwise",
        finetune_epochs: int = 2,
        finetune_lr: float | None = None,
        max_users: int = 200,
        candidates_per_user: int = 0,
        temperature: float = 0.5,
        pointwise_weight: float = 0.1,
        eval_users: int = 100,
        k: int = 10,
        explain_users: int = 10,
        explain_k: int = 3,
        explainer: str = "auto",
        threads: int = 1,
        repeats: int = 3,
        seed: int = 0,
    ) -> None:
        c = "prune-structured"
        self.remove_layers = _int("remove_layers", c, remove_layers, 0)
        self.remove_heads = _int("remove_heads", c, remove_heads, 0)
        if not self.remove_layers and not self.remove_heads:
            raise RegistryError(f"compressor {c!r}: remove_layers and remove_heads are both 0; remove at least one block or head")
        self.probe_rows = _int("probe_rows", c, probe_rows, 1)
        if finetune not in ("listwise", "pointwise", "none"):
            raise RegistryError(f"compressor {c!r}: finetune={finetune!r} is not 'listwise', 'pointwise' or 'none'")
        self.finetune, self.finetune_epochs = finetune, _int("finetune_epochs", c, finetune_epochs, 0)
        if finetune_lr is not None and not finetune_lr > 0:
            raise RegistryError(f"compressor {c!r}: finetune_lr={finetune_lr} must be > 0")
        if not temperature > 0 or not pointwise_weight >= 0:
            raise RegistryError(f"compressor {c!r}: temperature={temperature} must be > 0 and pointwise_weight={pointwise_weight} >= 0")
        self.finetune_lr, self.temperature, self.pointwise_weight = finetune_lr, float(temperature), float(pointwise_weight)
        self.max_users = _int("max_users", c, max_users, 0)
        self.candidates_per_user = _int("candidates_per_user", c, candidates_per_user, 0)
        self.settings = eval_settings(c, eval_users, k, explain_users, explain_k, explainer, threads, repeats, seed)

    def check_teacher(self, model: Any, name: str | None = None) -> Any:
        """The teacher's network after checking it can lose what is asked; else one line saying why."""
        name = name or teacher_name(model, None)
        net = check_structured(model, f"prune-structured: teacher {name!r}")
        units = net.structured_units()
        n, heads = int(units["layers"]), [int(h) for h in units["heads"]]
        if self.remove_layers >= n:
            raise RegistryError(f"compressor 'prune-structured': remove_layers={self.remove_layers} but {name!r} has {n} "
                                f"block(s); at most {n - 1} can go (one must stay)")
        # the fewest heads the kept blocks can have: the blocks with most heads are the ones removed
        kept = sorted(heads)[: n - self.remove_layers]
        most = sum(kept) - len(kept)
        if self.remove_heads > most:
            raise RegistryError(f"compressor 'prune-structured': remove_heads={self.remove_heads} but {name!r} has heads "
                                f"{heads} per block; after removing {self.remove_layers} block(s) at most {most} can go "
                                "(each kept block keeps one)")
        return net

    def prune(self, net: Any, inputs: tuple) -> tuple[Any, dict]:
        """(the smaller network, what went: original block numbers and (block, head) pairs, with
        their importances), greedily, one unit at a time."""
        blocks = list(range(net.structured_units()["layers"]))  # original numbers of the current blocks
        heads = [list(range(h)) for h in net.structured_units()["heads"]]
        removed: dict[str, list] = {"layers": [], "heads": []}
        for _ in range(self.remove_layers):
            imp = ablation_importance(net, inputs, "layers")
            i = min(imp, key=lambda u: (imp[u], u))
            removed["layers"].append({"block": blocks[i], "importance": imp[i]})
            net = net.without_units(layers=[i])
            del blocks[i], heads[i]
        for _ in range(self.remove_heads):
            imp = ablation_importance(net, inputs, "heads")
            i, j = min(imp, key=lambda u: (imp[u], u))
            removed["heads"].append({"block": blocks[i], "head": heads[i][j], "importance": imp[(i, j)]})
            net = net.without_units(heads={i: [j]})
            del heads[i][j]
        return net, removed

    def compress(self, model: Any, data: RecData, ctx: Any = None) -> tuple[Any, CompressionReport]:
        name = teacher_name(model, ctx)
        net = self.check_teacher(model, name)
        src = data.train if data.train is not None and len(data.train) else data.interactions
        if src is None or not len(src):
            raise DataError(f"prune-structured: dataset {data.name!r} has no training rows to measure importance on")
        rows = src.sample(min(self.probe_rows, len(src)), random_state=self.settings.seed)
        X = data.features(rows)[list(model.feature_names)]
        inputs = model.torch_inputs(X)
        work = copy.deepcopy(net).eval()
        before = int(sum(p.numel() for p in net.parameters()))
        t0 = time.perf_counter()
        small, removed = self.prune(work, inputs)
        info: dict[str, Any] = {"removed": removed, "units_before": net.structured_units(),
                                "units_after": small.structured_units(), "importance": "ablation (mean squared logit change)",
                                "probe_rows": len(rows), "prune_seconds": round(time.perf_counter() - t0, 3)}
        student = model.with_module(small)
        log(f"prune-structured: {name} from {info['units_before']} to {info['units_after']}")
        lr = self.finetune_lr or float(getattr(model, "params", {}).get("lr") or 1e-3)
        if self.finetune == "listwise" and self.finetune_epochs:
            targets = teacher_targets(model, student, data, max_users=self.max_users, per_user=self.candidates_per_user,
                                      seed=self.settings.seed)
            info["finetune"] = train_listwise(student, targets, epochs=self.finetune_epochs, lr=lr, temperature=self.temperature,
                                              pointwise_weight=self.pointwise_weight, seed=self.settings.seed,
                                              threads=self.settings.threads, what="prune-structured")
        elif self.finetune == "pointwise" and self.finetune_epochs:
            from .prune import finetune_network

            Xt = data.features(data.train)
            z = np.asarray(model.score_features(Xt[list(model.feature_names)]), dtype=float)
            info["finetune"] = finetune_network(student, Xt[list(student.feature_names)], 1 / (1 + np.exp(-np.clip(z, -60, 60))),
                                                epochs=self.finetune_epochs, lr=lr, seed=self.settings.seed,
                                                threads=self.settings.threads)
        small.eval()
        after = int(sum(p.numel() for p in small.parameters()))
        student.compression = {"method": "prune-structured", "base_model": registered_name(model),
                               "parameters": after, "parameters_before": before,
                               **{k: v for k, v in info.items() if k != "finetune"}}
        report = build_report(model, {"student": student}, data, self.settings, method="prune-structured", ctx=ctx,
                              extra={"structured_pruning": info,
                                     "roles": {"student": f"{name} without {self.remove_layers} block(s) and "
                                                          f"{self.remove_heads} head(s), fine-tuned ({self.finetune})"}})
        return student, report


def init_from_teacher(student_net: Any, teacher_net: Any) -> dict:
    """Start each embedding table of the student from the teacher's table of the same name,
    projected on its leading principal directions (the student's width): items, categories
    and positions begin where the teacher put them, only narrower. Tables without a
    same-named, same-length, wider counterpart (with at least as many rows as the student is
    wide) keep their random start. Returns
    {table: share of the teacher table's variance the projection keeps}."""
    import torch
    from torch import nn

    teacher = dict(teacher_net.named_modules())
    out: dict[str, float] = {}
    with torch.no_grad():
        for name, mod in student_net.named_modules():
            t = teacher.get(name)
            if not (isinstance(mod, nn.Embedding) and isinstance(t, nn.Embedding)):
                continue
            W = t.weight.detach().float().cpu()
            d = mod.embedding_dim
            if W.shape[0] != mod.num_embeddings or W.shape[1] < d or W.shape[0] < d:  # d directions must exist
                continue
            centred = W - W.mean(0, keepdim=True)
            _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
            mod.weight.copy_((W @ vh[:d].T).to(mod.weight.device, mod.weight.dtype))
            if mod.padding_idx is not None:
                mod.weight[mod.padding_idx].zero_()
            out[name] = round(float((sv[:d] ** 2).sum() / (sv ** 2).sum().clamp_min(1e-12)), 4)
    return out


def round_to_half(net: Any, what: str) -> int:
    """Round every float32 parameter of ``net`` to float16 precision in place (they stay float32
    tensors, so scoring is unchanged in kind; saving stores them in 2 bytes each, losslessly).
    Returns how many values changed; refuses weights beyond float16's range."""
    import torch

    changed = 0
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dtype != torch.float32:
                continue
            if not bool(torch.isfinite(p).all()):
                raise DataError(f"{what}: parameter {name!r} has non-finite values (NaN or inf) after training; "
                                "lower lr or check the teacher's scores")
            h = p.to(torch.float16)
            if not bool(torch.isfinite(h).all()):
                raise DataError(f"{what}: parameter {name!r} has values beyond float16's range (|w| > 65504); "
                                "use storage = \"float32\"")
            r = h.to(torch.float32)
            changed += int((r != p).sum())
            p.copy_(r)
    return changed


DEFAULT_STUDENT = {"embedding_dim": 8, "layers": 2, "heads": 2, "hidden": [32]}


class NetworkDistiller:
    """Distil a ``structured-network`` teacher into a small untrained model of its own family
    (``shape``: constructor parameters such as ``embedding_dim``, ``layers``, ``heads``, ``hidden``)."""

    def __init__(
        self,
        shape: dict | None = None,
        epochs: int = 12,
        lr: float = 3e-3,
        max_users: int = 400,
        candidates_per_user: int = 0,
        temperature: float = 0.3,
        pointwise_weight: float = 0.1,
        users_per_batch: int = 4,
        init: Literal["random", "teacher"] = "teacher",
        storage: Literal["float32", "float16"] = "float16",
        ablated_share: float = 0.3,
        ablated_weight: float = 1.0,
        eval_users: int = 100,
        k: int = 10,
        explain_users: int = 10,
        explain_k: int = 3,
        explainer: str = "auto",
        threads: int = 1,
        repeats: int = 3,
        seed: int = 0,
    ) -> None:
        c = "distill-network"
        if shape is not None and not isinstance(shape, dict):
            raise RegistryError(f"compressor {c!r}: shape={shape!r} must be a table of constructor parameters, "
                                "e.g. { embedding_dim = 8, layers = 1, heads = 1 }")
        # the defaults are the configuration measured against the goal row on MovieLens-100K
        # (docs/benchmarks.md, "distill-network meets the goal row")
        self.shape = copy.deepcopy(dict(shape if shape is not None else DEFAULT_STUDENT))
        self.epochs, self.max_users = _int("epochs", c, epochs, 1), _int("max_users", c, max_users, 0)
        self.candidates_per_user = _int("candidates_per_user", c, candidates_per_user, 0)
        self.users_per_batch = _int("users_per_batch", c, users_per_batch, 1)
        if not lr > 0 or not temperature > 0 or not pointwise_weight >= 0:
            raise RegistryError(f"compressor {c!r}: lr={lr} and temperature={temperature} must be > 0, "
                                f"pointwise_weight={pointwise_weight} >= 0")
        self.lr, self.temperature, self.pointwise_weight = float(lr), float(temperature), float(pointwise_weight)
        if init not in ("random", "teacher"):
            raise RegistryError(f"compressor {c!r}: init={init!r} is not 'random' or 'teacher' "
                                "(the teacher's embedding tables projected on their principal directions)")
        if storage not in ("float32", "float16"):
            raise RegistryError(f"compressor {c!r}: storage={storage!r} is not 'float32' or 'float16'")
        self.init, self.storage = init, storage
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                      for v in (ablated_share, ablated_weight))
        if not numbers or not 0 <= ablated_share <= 1 or not ablated_weight >= 0:
            raise RegistryError(f"compressor {c!r}: ablated_share={ablated_share} must be in [0, 1] and "
                                f"ablated_weight={ablated_weight} >= 0")
        self.ablated_share, self.ablated_weight = float(ablated_share), float(ablated_weight)
        self.settings = eval_settings(c, eval_users, k, explain_users, explain_k, explainer, threads, repeats, seed)

    def make_student(self, model: Any, name: str) -> Any:
        check_structured(model, f"distill-network: teacher {name!r}")
        if not callable(getattr(model, "clone_architecture", None)):
            raise UnsupportedError(f"distill-network: teacher {name!r} has no clone_architecture(**shape); "
                                   "see whyrec.contracts.StructuredNetwork")
        try:
            return model.clone_architecture(**{"dropout": 0.0, **self.shape})
        except TypeError as exc:
            raise RegistryError(f"compressor 'distill-network': teacher {name!r} rejected shape {self.shape}: {exc}") from exc

    def compress(self, model: Any, data: RecData, ctx: Any = None) -> tuple[Any, CompressionReport]:
        name = teacher_name(model, ctx)
        student = self.make_student(model, name)  # a bad shape fails before the teacher's scoring
        log(f"distill-network: {name} -> {self.shape} ({student.n_parameters():,} parameters)")
        started = init_from_teacher(student.torch_module(), model.torch_module()) if self.init == "teacher" else {}
        init_kind = self.init
        if self.init == "teacher" and not started:  # e.g. a student wider than the teacher: nothing to project
            log(f"distill-network: init = 'teacher' found no embedding table of {name!r} to project on the student's "
                f"shape {self.shape}; the student starts from its own random initialisation")
            init_kind = "random (no teacher table fits)"
        targets = teacher_targets(model, student, data, max_users=self.max_users, per_user=self.candidates_per_user,
                                  seed=self.settings.seed, ablated_share=self.ablated_share)
        info = train_listwise(student, targets, epochs=self.epochs, lr=self.lr, temperature=self.temperature,
                              pointwise_weight=self.pointwise_weight, users_per_batch=self.users_per_batch,
                              seed=self.settings.seed, threads=self.settings.threads, ablated_weight=self.ablated_weight,
                              what="distill-network")
        info["init"] = {"kind": init_kind, "variance_kept": started}
        if self.storage == "float16":  # measured as stored: the report scores the rounded weights
            info["storage"] = {"dtype": "float16", "values_rounded": round_to_half(student.torch_module(), "distill-network")}
        student.compression = {"method": "distill-network", "base_model": registered_name(model), "shape": self.shape,
                               "init": init_kind, "storage": self.storage}
        report = build_report(model, {"student": student}, data, self.settings, method="distill-network", ctx=ctx,
                              extra={"student_shape": self.shape, "distillation": info,
                                     "roles": {"student": f"{registered_name(model)} of shape {self.shape}, "
                                                          "listwise-distilled from the teacher"}})
        return student, report


__all__ = ["NetworkDistiller", "StructuredPruner", "ablation_importance", "check_structured", "init_from_teacher", "round_to_half"]
