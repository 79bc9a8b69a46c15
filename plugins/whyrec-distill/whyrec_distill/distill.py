"""``distill``: knowledge distillation of any registered model into a small student.

Modes (``mode``):
- ``score``: the student learns the teacher's scores over each training user's observed pairs
  plus ``candidates_per_user`` unobserved candidates (0 = all of them): a regression on the
  teacher's margins (``loss = "mse"``) or a cross-entropy on its probabilities sigma(z / T)
  (``loss = "bce"``, ``temperature`` T).
- ``ranking``: ranking distillation after Tang & Wang (KDD 2018): the student learns the real
  labels of the training pairs plus the teacher's top-``ranking_k`` unseen items per user as
  extra positives, weighted by position importance w_r ∝ exp(-r / ``ranking_lambda``) and by
  ``ranking_weight`` (alpha); binary cross-entropy.
- ``hybrid``: the score term (soft labels, bce) plus the ranking term.
- ``listwise``: per user, the student's softmax over the user's candidates learns the teacher's
  softmax(margin / T) (ListNet-style cross-entropy, plus ``pointwise_weight`` x the mse on
  margins); a ``tree-student`` learns the teacher's ranking with LightGBM's lambdarank on graded
  labels from the teacher's ranks instead. This puts the weight where the top-k is decided.

A same-size student trained on the labels alone (``baseline = true``) is measured next to the
distilled one, so the report shows what distillation itself bought.
"""
from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import pandas as pd

from whyrec.data import ITEM, LABEL, USER, RecData
from whyrec.errors import RegistryError, UnsupportedError
from whyrec.progress import log
from whyrec.results import CompressionReport

from .common import build_report, eval_settings
from .teacher import position_weights, sample_pairs, score_pairs, teacher_top_k, training_users

STUDENTS = {"mlp": "whyrec_distill.mlp:MLPStudent", "tree-student": "whyrec_distill.tree:TreeStudent"}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


class Distiller:
    """Distil a teacher into an ``mlp`` or ``tree-student`` (or any model with ``prepare`` and
    ``fit_targets``), then report its fidelity against the teacher and a label-only baseline."""

    def __init__(
        self,
        student: str = "mlp",
        student_params: dict | None = None,
        mode: Literal["score", "ranking", "hybrid", "listwise"] = "listwise",
        loss: Literal["mse", "bce"] = "mse",
        temperature: float = 0.5,
        candidates_per_user: int = 0,
        max_users: int = 0,
        ranking_k: int = 10,
        ranking_lambda: float = 5.0,
        ranking_weight: float = 0.5,
        ranking_pool: int = 0,
        pointwise_weight: float = 0.1,
        baseline: bool = True,
        eval_users: int = 100,
        k: int = 10,
        explain_users: int = 10,
        explain_k: int = 3,
        explainer: str = "auto",
        threads: int = 1,
        repeats: int = 3,
        seed: int = 0,
    ) -> None:
        if mode not in ("score", "ranking", "hybrid", "listwise"):
            raise RegistryError(f"compressor 'distill': mode={mode!r} is not one of 'score', 'ranking', 'hybrid', 'listwise'")
        if loss not in ("mse", "bce"):
            raise RegistryError(f"compressor 'distill': loss={loss!r} is not 'mse' or 'bce'")
        for key, val, lo in (("candidates_per_user", candidates_per_user, 0), ("max_users", max_users, 0),
                             ("ranking_k", ranking_k, 1), ("ranking_pool", ranking_pool, 0)):
            if int(val) < lo:
                raise RegistryError(f"compressor 'distill': {key}={val} must be >= {lo}")
        if not temperature > 0 or not ranking_lambda > 0 or not 0 <= ranking_weight or not 0 <= pointwise_weight:
            raise RegistryError(f"compressor 'distill': temperature={temperature} and ranking_lambda={ranking_lambda} "
                                f"must be > 0, ranking_weight={ranking_weight} and pointwise_weight={pointwise_weight} >= 0")
        self.settings = eval_settings("distill", eval_users, k, explain_users, explain_k, explainer, threads, repeats, seed)
        self.student = student
        self.student_params = dict(student_params or {})
        self.mode, self.loss, self.temperature = mode, loss, float(temperature)
        self.candidates_per_user, self.max_users = int(candidates_per_user), int(max_users)
        self.ranking_k, self.ranking_lambda = int(ranking_k), float(ranking_lambda)
        self.ranking_weight, self.ranking_pool = float(ranking_weight), int(ranking_pool)
        self.pointwise_weight = float(pointwise_weight)
        self.baseline = bool(baseline)
        self.seed = int(seed)

    # -- students ------------------------------------------------------------------------
    def make_student(self, host: Any = None) -> Any:
        """A fresh, untrained student of the configured kind."""
        from whyrec.plugins import lazy

        params = {"seed": self.seed, **self.student_params}
        if self.student in STUDENTS:
            cls = lazy(STUDENTS[self.student]).resolve()
        else:
            if host is None:
                from whyrec.plugins import get_host

                host = get_host()
            from whyrec.plugins import resolve_factory

            cls = resolve_factory(host.get("models", self.student, where="compressor 'distill' student: ").factory)
        try:
            obj = cls(**params)
        except TypeError as exc:
            raise RegistryError(f"compressor 'distill': student {self.student!r} rejected student_params {self.student_params}: {exc}") from exc
        if not (hasattr(obj, "prepare") and hasattr(obj, "fit_targets")):
            raise UnsupportedError(f"compressor 'distill': student {self.student!r} cannot learn from a teacher "
                                   "(it has no prepare/fit_targets); use student = 'mlp' or 'tree-student'")
        return obj

    # -- the training set ----------------------------------------------------------------
    def training_set(self, teacher: Any, data: RecData) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, str, dict]:
        """(pairs, targets, weights, loss, info) the student is trained on."""
        rng = np.random.default_rng(self.seed)
        users = training_users(data, self.max_users, rng)
        info: dict[str, Any] = {"training_users": int(len(users))}
        t0 = time.perf_counter()
        parts, targets, weights = [], [], []
        loss = {"score": self.loss, "listwise": "listnet"}.get(self.mode, "bce")
        if self.mode in ("score", "hybrid", "listwise"):
            pairs = sample_pairs(data, users, self.candidates_per_user, rng)
            z = score_pairs(teacher, data, pairs)
            parts.append(pairs)
            targets.append(z if loss in ("mse", "listnet") else _sigmoid(z / self.temperature))
            weights.append(np.ones(len(pairs)))
            info["score_pairs"] = int(len(pairs))
        if self.mode in ("ranking", "hybrid"):
            if self.mode == "ranking":
                train = data.train[data.train[USER].isin(users)]
                parts.append(train[[USER, ITEM, *data.context_names]].reset_index(drop=True))
                targets.append((pd.to_numeric(train[LABEL], errors="coerce").to_numpy(float) > 0).astype(float))
                weights.append(np.ones(len(train)))
                info["label_pairs"] = int(len(train))
            top = teacher_top_k(teacher, data, users, self.ranking_k, self.ranking_pool, rng)
            w = position_weights(self.ranking_k, self.ranking_lambda)
            # alpha * K * w_r: on average each distilled positive weighs alpha against a labelled pair
            parts.append(top[[USER, ITEM, *data.context_names]])
            targets.append(np.ones(len(top)))
            weights.append(self.ranking_weight * self.ranking_k * w[top["rank"].to_numpy() - 1])
            info["ranking_positives"] = int(len(top))
        pairs = pd.concat(parts, ignore_index=True)
        info["teacher_seconds"] = round(time.perf_counter() - t0, 3)
        info["rows"] = int(len(pairs))
        return pairs, np.concatenate(targets), np.concatenate(weights), loss, info

    # -- the compressor ------------------------------------------------------------------
    def compress(self, model: Any, data: RecData, ctx: Any = None) -> tuple[Any, CompressionReport]:
        """Distil ``model`` into a student; returns (student, report)."""
        for attr in ("feature_names", "score_features"):
            if not hasattr(model, attr):
                raise UnsupportedError(f"distill: teacher {getattr(model, 'name', model)!r} has no {attr}; it must be a whyrec model")
        host = getattr(ctx, "host", None) if ctx is not None else None
        student = self.make_student(host)  # a bad student fails before the teacher's scoring
        log(f"distill: the teacher's {self.mode} targets")
        pairs, targets, weights, loss, info = self.training_set(model, data)
        log(f"distill: training the student ({self.student}) on {len(pairs):,} pairs, loss {loss}")
        t0 = time.perf_counter()
        X = data.features(pairs)  # whole rows: context included
        student.prepare(data, X)
        if loss == "listnet":
            train_info = student.fit_targets(X, targets, loss=loss, groups=pairs[USER].to_numpy(),
                                             temperature=self.temperature, pointwise_weight=self.pointwise_weight)
        else:
            train_info = student.fit_targets(X, targets, weights, loss=loss)
        info.update({"student_seconds": round(time.perf_counter() - t0, 3), "loss": loss, "mode": self.mode,
                     "student_train": train_info})
        del X
        models = {"student": student}
        if self.baseline:
            base = self.make_student(host)
            log(f"distill: training the label-only baseline ({self.student})")
            t0 = time.perf_counter()
            base.fit(data)
            info["baseline_seconds"] = round(time.perf_counter() - t0, 3)
            models["baseline"] = base
        extra = {"student_params": self.student_params, "distillation": info,
                 "roles": {"student": f"{student.name} trained on the teacher ({self.mode} distillation)",
                           "baseline": f"{student.name} of the same size trained on the labels only"}}
        report = build_report(model, models, data, self.settings, method="distill", ctx=ctx, extra=extra)
        return student, report
