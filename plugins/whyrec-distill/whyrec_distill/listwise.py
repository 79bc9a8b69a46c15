"""Listwise distillation of a torch-network model's module on a teacher's scores.

Shared by ``prune-structured`` (fine-tuning the smaller network) and ``distill-network`` (a
small student of the teacher's own family). Per training user, the teacher scores every
unseen candidate (or ``per_user`` of them) plus the user's training pairs; the student's
softmax over the user's rows learns the teacher's softmax(margin / T) (ListNet cross-entropy,
which puts the weight where the top-k is decided), plus ``pointwise_weight`` x the mse on the
margins (keeps scores comparable across users). The student is reached only through the
``torch-network`` contract: ``torch_inputs(X)`` and ``torch_module()``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import USER, RecData
from whyrec.errors import DataError
from whyrec.progress import log, progress

from .teacher import sample_pairs, training_users
from .threads import torch_threads


@dataclass
class ListwiseTargets:
    """The student's inputs (torch tensors, one row per pair), the teacher's margins, and the
    rows of each user (``slots`` [users, longest], -1 where a user has fewer rows)."""

    inputs: tuple
    margins: np.ndarray
    slots: np.ndarray
    users: int
    rows: int
    seconds: float
    # rows with one explanation unit removed (set missing) and the teacher's margins on them:
    # the student learns how the teacher's score moves when a feature goes, what attributions read
    ablated_inputs: tuple | None = None
    ablated_margins: np.ndarray | None = None


def ablate_units(X: pd.DataFrame, sequence: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``X`` where each row has one explanation unit, drawn at random, set missing
    (NaN): a feature, or the whole history sequence at once (the units agreement compares)."""
    from .fidelity import attribution_units

    unit_of = attribution_units(list(X.columns), sequence)
    units = list(dict.fromkeys(unit_of.values()))
    pick = rng.integers(0, len(units), len(X))
    out = X.copy()
    for j, u in enumerate(units):
        rows = np.flatnonzero(pick == j)
        if not len(rows):
            continue
        for c in [f for f, v in unit_of.items() if v == u]:
            col = out[c]
            if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_float_dtype(col.dtype):
                vals = col.copy()
            else:  # ints, strings: object so a missing value fits
                vals = col.astype(object)
            vals.iloc[rows] = np.nan
            out[c] = vals
    return out


def teacher_targets(teacher: Any, student: Any, data: RecData, *, max_users: int, per_user: int, seed: int,
                    users_per_chunk: int = 32, ablated_share: float = 0.0) -> ListwiseTargets:
    """The teacher's margins on each training user's candidates, and the student's inputs for
    the same rows (featurised once, in chunks of users); with ``ablated_share`` > 0, also that
    share of the rows again with one explanation unit set missing (``ablate_units``)."""
    import torch

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    users = training_users(data, max_users, rng)
    inputs: list[list] = []
    margins, groups = [], []
    ab_inputs: list[list] = []
    ab_margins = []
    seq = list(data.schema.of_kind("sequence"))
    both = list(dict.fromkeys([*teacher.feature_names, *student.feature_names]))  # the columns an ablated row needs
    for s in progress(range(0, len(users), users_per_chunk), desc=f"teacher targets of {len(users)} users", unit="chunks"):
        pairs = sample_pairs(data, users[s:s + users_per_chunk], per_user, rng)
        X = data.features(pairs)
        margins.append(np.asarray(teacher.score_features(X[list(teacher.feature_names)]), dtype=np.float32))
        with torch.inference_mode():
            parts = student.torch_inputs(X[list(student.feature_names)])
        inputs.append([t.cpu() for t in parts])
        groups.append(pairs[USER].to_numpy())
        n_ab = int(round(ablated_share * len(X)))
        if n_ab:
            Xa = ablate_units(X.iloc[rng.choice(len(X), n_ab, replace=n_ab > len(X))][both].reset_index(drop=True), seq, rng)
            ab_margins.append(np.asarray(teacher.score_features(Xa[list(teacher.feature_names)]), dtype=np.float32))
            with torch.inference_mode():
                ab_inputs.append([t.cpu() for t in student.torch_inputs(Xa[list(student.feature_names)])])
    z = np.concatenate(margins)
    if not np.isfinite(z).all():
        raise DataError("distillation: the teacher returned non-finite scores; check the teacher model")
    cat = tuple(torch.cat([c[i] for c in inputs]) for i in range(len(inputs[0])))
    g = pd.factorize(np.concatenate(groups))[0]
    order = np.argsort(g, kind="stable")
    counts = np.bincount(g)
    slots = np.full((len(counts), int(counts.max())), -1, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for u, (a, n) in enumerate(zip(starts, counts)):
        slots[u, :n] = order[a:a + n]
    ab_cat = tuple(torch.cat([c[i] for c in ab_inputs]) for i in range(len(ab_inputs[0]))) if ab_inputs else None
    ab_z = np.concatenate(ab_margins) if ab_margins else None
    if ab_z is not None and not np.isfinite(ab_z).all():
        raise DataError("distillation: the teacher returned non-finite scores on rows with a feature missing; "
                        "set ablated_share = 0 or check the teacher model")
    return ListwiseTargets(inputs=cat, margins=z, slots=slots, users=len(counts), rows=len(z),
                           seconds=round(time.perf_counter() - t0, 3), ablated_inputs=ab_cat, ablated_margins=ab_z)


def train_listwise(student: Any, targets: ListwiseTargets, *, epochs: int, lr: float, temperature: float = 0.5,
                   pointwise_weight: float = 0.1, users_per_batch: int = 4, seed: int = 0, threads: int = 1,
                   ablated_weight: float = 1.0, what: str = "student") -> dict:
    """Train ``student.torch_module()`` on the listwise targets; returns the loss per epoch.
    Rows with a unit removed (``targets.ablated_*``), when there are any, add ``ablated_weight``
    x the mse of the student's margins on them, as many rows per step as the step's users have
    on average."""
    import torch

    net = student.torch_module()
    device = next(net.parameters()).device
    inputs = tuple(t.to(device) for t in targets.inputs)
    z = torch.as_tensor(targets.margins, device=device)
    slots = torch.as_tensor(targets.slots)
    valid = slots >= 0
    target_logits = torch.full(slots.shape, float("-inf"))
    target_logits[valid] = torch.as_tensor(targets.margins)[slots[valid]] / temperature
    target_p = torch.softmax(target_logits, dim=1).nan_to_num(0.0).to(device)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=float(lr))
    gen = torch.Generator().manual_seed(int(seed))
    losses: list[float] = []
    t0 = time.perf_counter()
    ab = targets.ablated_inputs is not None and targets.ablated_margins is not None and ablated_weight > 0
    if ab:
        ab_inputs = tuple(t.to(device) for t in targets.ablated_inputs)
        ab_z = torch.as_tensor(targets.ablated_margins, device=device)
        ab_step = max(1, int(round(len(ab_z) * users_per_batch / max(targets.users, 1))))
    aux = getattr(net, "auxiliary_loss", None)  # a network's own side objective is not the teacher's: dropped
    # Embedding rows that are exactly zero now (a family's "missing" / padding rows: the all-missing
    # baseline of integrated gradients is "no information" because of them) stay zero: the rows
    # with a unit missing look them up, and training them would move that baseline away from the
    # teacher's, whose missing rows are zero.
    zero_rows = []
    for mod in net.modules():
        if isinstance(mod, torch.nn.Embedding):
            idx = torch.nonzero((mod.weight.detach() == 0).all(dim=1)).reshape(-1)
            if len(idx):
                zero_rows.append((mod.weight, idx))
    with torch_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net.train()
        for _ in progress(range(epochs), desc=f"{what}: listwise distillation epochs", unit="epochs"):
            perm = torch.randperm(targets.users, generator=gen)
            total = 0.0
            for s in range(0, targets.users, users_per_batch):
                g = perm[s:s + users_per_batch]
                v = valid[g]
                rows = slots[g][v].to(device)
                out = net(*(t[rows] for t in inputs)).float().reshape(-1)
                if callable(aux):
                    aux()
                logits = torch.full(v.shape, float("-inf"), device=device)
                logits[v.to(device)] = out / temperature
                logq = torch.log_softmax(logits, dim=1).masked_fill(~v.to(device), 0.0)
                loss = -(target_p[g.to(device)] * logq).sum(dim=1).mean()
                if pointwise_weight > 0:
                    loss = loss + pointwise_weight * ((out - z[rows]) ** 2).mean()
                if ab:
                    pick = torch.randint(0, len(ab_z), (ab_step,), generator=gen).to(device)
                    out_ab = net(*(t[pick] for t in ab_inputs)).float().reshape(-1)
                    loss = loss + ablated_weight * ((out_ab - ab_z[pick]) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if zero_rows:
                    with torch.no_grad():
                        for w, idx in zero_rows:
                            w[idx] = 0.0
                total += float(loss.detach()) * len(g)
            losses.append(round(total / max(targets.users, 1), 6))
            log(f"{what}: epoch {len(losses)} listwise loss {losses[-1]:.4f}")
        net.eval()
    return {"epochs": int(epochs), "users": targets.users, "rows": targets.rows, "lr": float(lr), "temperature": temperature,
            "pointwise_weight": pointwise_weight,
            "ablated_rows": 0 if targets.ablated_margins is None else int(len(targets.ablated_margins)),
            "ablated_weight": float(ablated_weight) if ab else 0.0, "losses": losses, "seconds": round(time.perf_counter() - t0, 3),
            "teacher_seconds": targets.seconds}
