"""``prune``: global magnitude pruning of a torch model's linear layers, with fine-tuning.

All ``nn.Linear`` weights (optionally the embedding tables too) compete in one pool: the
``sparsity`` share of smallest-magnitude weights is zeroed (torch.nn.utils.prune,
``global_unstructured`` with L1 magnitude), the masked network is fine-tuned for
``finetune_epochs`` on the training pairs (targets: the teacher's own probabilities by default,
so fine-tuning restores fidelity, or the real labels), and the masks are made permanent. The
result is a ``pruned-torch`` (any model with the ``torch-network`` capability: it stays an
instance of its own class, see network.py) or ``pruned-mlp`` model, stored sparse. Layers the
network reads through ``.weight`` instead of calling them (found by running it once) stay out
of the pool: pruning masks act when a module is called.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Literal

import numpy as np
from torch import nn
from torch.nn.utils import prune as tprune

from whyrec.data import LABEL, RecData
from whyrec.errors import DataError, RegistryError
from whyrec.progress import log, progress
from whyrec.results import CompressionReport

from .common import build_report, eval_settings, clone_into, require_torch_teacher, teacher_name


def prunable(net: nn.Module, include_embeddings: bool = False, skip: tuple[str, ...] = ()) -> list[tuple[str, nn.Module]]:
    """(name, module) of every layer whose ``weight`` joins the global pruning pool. ``skip``
    names modules the network reads through ``.weight`` instead of calling them (a position
    table): pruning masks are applied when a module is called, so those must stay out."""
    kinds = (nn.Linear, nn.Embedding) if include_embeddings else (nn.Linear,)
    return [(n, m) for n, m in net.named_modules() if type(m) in kinds and n not in skip]


def global_magnitude_prune(net: nn.Module, sparsity: float, include_embeddings: bool = False,
                           skip: tuple[str, ...] = ()) -> list[str]:
    """Mask the ``sparsity`` share of smallest |weight| across all prunable layers (the masks
    stay as forward pre-hooks until ``make_permanent``). Returns the pruned tensor names."""
    layers = prunable(net, include_embeddings, skip)
    if not layers:
        raise DataError("prune: the network has no nn.Linear layers to prune")
    tprune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=tprune.L1Unstructured, amount=float(sparsity))
    return [f"{n}.weight" for n, _ in layers]


def make_permanent(net: nn.Module) -> None:
    for m in net.modules():
        if tprune.is_pruned(m) and hasattr(m, "weight_orig"):
            tprune.remove(m, "weight")


def sparsity_of(net: nn.Module, names: list[str]) -> float:
    params = dict(net.named_parameters())
    total = sum(params[n].numel() for n in names)
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    return zeros / total if total else float("nan")


class Pruner:
    """Global magnitude pruning to ``sparsity`` in (0, 1), then fine-tuning."""

    def __init__(
        self,
        sparsity: float = 0.5,
        include_embeddings: bool = False,
        finetune_epochs: int = 1,
        finetune_on: Literal["teacher", "labels"] = "teacher",
        finetune_lr: float | None = None,
        eval_users: int = 100,
        k: int = 10,
        explain_users: int = 10,
        explain_k: int = 3,
        explainer: str = "auto",
        threads: int = 1,
        repeats: int = 3,
        seed: int = 0,
    ) -> None:
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 < float(sparsity) < 1:
            raise RegistryError(f"compressor 'prune': sparsity={sparsity!r} must be strictly between 0 and 1 "
                                "(the share of weights set to zero, e.g. 0.5 or 0.9)")
        if finetune_on not in ("teacher", "labels"):
            raise RegistryError(f"compressor 'prune': finetune_on={finetune_on!r} is not 'teacher' or 'labels'")
        if int(finetune_epochs) < 0:
            raise RegistryError(f"compressor 'prune': finetune_epochs={finetune_epochs} must be >= 0")
        if finetune_lr is not None and not finetune_lr > 0:
            raise RegistryError(f"compressor 'prune': finetune_lr={finetune_lr} must be > 0")
        self.settings = eval_settings("prune", eval_users, k, explain_users, explain_k, explainer, threads, repeats, seed)
        self.sparsity, self.include_embeddings = float(sparsity), bool(include_embeddings)
        self.finetune_epochs, self.finetune_on, self.finetune_lr = int(finetune_epochs), finetune_on, finetune_lr

    def check_teacher(self, model: Any, name: str | None = None) -> str:
        """The model family, or UnsupportedError naming the methods that do apply."""
        return require_torch_teacher("prune", model, name or teacher_name(model, None))

    def compress(self, model: Any, data: RecData, ctx: Any = None) -> tuple[Any, CompressionReport]:
        name = teacher_name(model, ctx)
        fam = self.check_teacher(model, name)
        info: dict[str, Any] = {"target_sparsity": self.sparsity, "include_embeddings": self.include_embeddings,
                                "finetune_on": self.finetune_on, "finetune_epochs": self.finetune_epochs}
        if fam == "torch":  # any model with the torch-network capability
            student, net, skip = self._torch_network_copy(model, data)
        else:
            from .compressed import PrunedMLP

            student = clone_into(PrunedMLP, model)
            net, skip = student.net, student.DIRECT_WEIGHT
        names = global_magnitude_prune(net, self.sparsity, self.include_embeddings, skip)
        info["pruned_tensors"] = names
        log(f"prune: {self.sparsity:.0%} of {len(names)} weight tensors of {name} set to zero")
        if self.finetune_epochs > 0:
            t0 = time.perf_counter()
            info["finetune"] = self._finetune(student, model, data, fam)
            info["finetune_seconds"] = round(time.perf_counter() - t0, 3)
        make_permanent(net)
        net.eval()
        info["sparsity"] = sparsity_of(net, names)
        record = {k: v for k, v in info.items() if k != "finetune"}
        if fam == "torch":
            from .network import adopt

            student = adopt(student, model, "prune", record)
        else:
            student.compression = {"method": "prune", **record}
        report = build_report(model, {"student": student}, data, self.settings, method="prune", ctx=ctx,
                              extra={"pruning": info, "roles": {"student": f"{name} pruned to {self.sparsity:.0%} of its linear weights"}})
        return student, report

    def _torch_network_copy(self, model: Any, data: RecData) -> tuple[Any, nn.Module, tuple[str, ...]]:
        """(the model on a copy of its network, that network, the layers to leave alone: those
        the network reads through ``.weight`` instead of calling them)."""
        from .network import called_modules, probe_rows

        net = copy.deepcopy(model.torch_module())
        student = model.with_module(net)
        called = called_modules(student, probe_rows(data)[list(student.feature_names)])
        skip = tuple(n for n, _ in prunable(net, True) if n not in called)
        return student, net, skip

    def _targets(self, teacher: Any, data: RecData, X: Any) -> np.ndarray:
        if self.finetune_on == "teacher":
            z = np.asarray(teacher.score_features(X[list(teacher.feature_names)]), dtype=float)
            return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
        return (data.train[LABEL].to_numpy(dtype=float) > 0).astype(float)

    def _finetune(self, student: Any, teacher: Any, data: RecData, fam: str) -> dict:
        if data.train is None or len(data.train) == 0:
            raise DataError(f"prune: dataset {data.name!r} has no training pairs to fine-tune on; set finetune_epochs = 0")
        X = data.features(data.train)
        targets = self._targets(teacher, data, X)
        if fam == "torch":
            lr = self.finetune_lr or float(getattr(teacher, "params", {}).get("lr") or DEFAULT_LR)
            return finetune_network(student, X[list(student.feature_names)], targets, epochs=self.finetune_epochs, lr=lr,
                                    seed=self.settings.seed, threads=self.settings.threads)
        old_lr = student.params.get("lr")
        if self.finetune_lr is not None:
            student.params["lr"] = float(self.finetune_lr)
        try:
            return student.fit_targets(X[list(student.feature_names)], targets, epochs=self.finetune_epochs) or {}
        finally:
            student.params["lr"] = old_lr


DEFAULT_LR = 1e-3


def finetune_network(model: Any, X: Any, targets: np.ndarray, *, epochs: int, lr: float, batch_size: int = 1024,
                     seed: int = 0, threads: int = 1) -> dict:
    """Train a torch-network model's module (pruning masks in place, so pruned weights stay
    zero) on feature rows ``X`` with binary cross-entropy against ``targets`` in [0, 1]."""
    import torch

    from .threads import torch_threads

    net = model.torch_module()
    inputs = model.torch_inputs(X)
    n = len(X)
    if any(getattr(t, "shape", (n,))[0] != n for t in inputs):
        raise DataError(f"prune: model {getattr(model, 'name', model)!r}.torch_inputs() must return one row per feature row "
                        f"({n}); got shapes {[tuple(t.shape) for t in inputs]}")
    device = inputs[0].device if inputs else torch.device("cpu")
    y = torch.as_tensor(np.asarray(targets, dtype=np.float32), device=device)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=float(lr))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    losses = []
    with torch_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net.train()
        for _ in progress(range(epochs), desc="prune: fine-tuning epochs", unit="epochs"):
            perm = torch.randperm(n, generator=gen).to(device)
            total = 0.0
            for s in range(0, n, batch_size):
                idx = perm[s:s + batch_size]
                logit = net(*(t[idx] for t in inputs))
                loss = loss_fn(logit.float().reshape(-1), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / max(n, 1))
        net.eval()
    return {"epochs": int(epochs), "rows": int(n), "lr": float(lr), "train_loss": losses[-1] if losses else None}
