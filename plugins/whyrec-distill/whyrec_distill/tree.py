"""``tree-student``: a shallow LightGBM surrogate of a teacher (one decision tree with
``n_estimators = 1, learning_rate = 1.0``), the interpretable student.

It trains LightGBM itself, on its own encoding (no other plugin is imported): categorical
features become codes of a vocabulary frozen at ``prepare`` (the mlp student's ``Vocab``:
12, 12.0 and "12" are one id; a value never seen is missing), numeric ones stay as they are
(NaN is LightGBM's missing). It offers what tree explainers look for ("tree" with a LightGBM
``booster``, ``encode`` and ``predict_margin``), so ``tree-shap`` explains it. ``fit`` trains
on the dataset's labels (the baseline without distillation); ``fit_targets`` fits the teacher:
a regression on its margins (``mse``) or a cross-entropy on its probabilities (``bce``), with
per-row weights, or lambdarank on its per-user ranking (``listnet``). Saved as LightGBM's text
model plus JSON, never pickled.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from whyrec import BaseModel
from whyrec.atomic import write_json, write_text
from whyrec.contracts import read_json
from whyrec.data import LABEL, RecData
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.progress import progress

from .encoding import UNKNOWN, Vocab, pack_keys, unpack_keys

FORMAT = "whyrec-distill-tree"


def lightgbm_names(names: list[str]) -> list[str]:
    """Feature names LightGBM accepts (no JSON punctuation), unique and readable."""
    out, seen = [], set()
    for n in names:
        s = re.sub(r"[^0-9A-Za-z_]", "_", str(n)) or "f"
        base, k = s, 1
        while s in seen:
            k += 1
            s = f"{base}_{k}"
        seen.add(s)
        out.append(s)
    return out


class TreeEncoder:
    """Feature rows -> the float matrix the booster sees: categorical codes 0..n-1 (NaN for
    missing or unseen), numbers as floats."""

    def __init__(self, feature_names: list[str], vocabs: dict[str, Vocab]) -> None:
        self.feature_names, self.vocabs = list(feature_names), dict(vocabs)

    @classmethod
    def fit(cls, X: pd.DataFrame, feature_names: list[str], categorical: list[str]) -> "TreeEncoder":
        return cls(feature_names, {c: Vocab.fit(X[c]) for c in categorical})

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.feature_names) if n in self.vocabs]

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise DataError(f"feature rows lack columns {missing} that the tree-student was trained on")
        M = np.empty((len(X), len(self.feature_names)), dtype=np.float64)
        for j, n in enumerate(self.feature_names):
            if n in self.vocabs:
                idx = self.vocabs[n].lookup(X[n]).astype(np.float64)
                M[:, j] = np.where(idx == UNKNOWN, np.nan, idx - 1)
            else:
                try:
                    M[:, j] = pd.to_numeric(X[n], errors="raise").to_numpy(dtype=float, na_value=np.nan)
                except (TypeError, ValueError) as exc:
                    raise DataError(f"numeric feature {n!r} holds non-numeric values ({exc}); declare it categorical or fix the featurizer") from exc
        return M

    def to_dict(self) -> dict:
        return {"feature_names": self.feature_names, "vocabs": {c: pack_keys(v.keys) for c, v in self.vocabs.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "TreeEncoder":
        try:
            return cls(list(d["feature_names"]), {c: Vocab(unpack_keys(k)) for c, k in d["vocabs"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"encoder description is incomplete ({exc!r}); re-save the model") from exc


class TreeStudent(BaseModel):
    """Shallow gradient-boosted (or single) tree surrogate over every non-sequence feature."""

    name = "tree-student"
    capabilities = frozenset({"tree", "lightgbm", "categorical", "surrogate"})

    def __init__(self, n_estimators: int = 30, num_leaves: int = 15, learning_rate: float = 0.2,
                 min_child_samples: int = 20, lambda_l2: float = 1.0, feature_fraction: float = 1.0,
                 max_cat_to_onehot: int = 4, cat_smooth: float = 10.0, num_threads: int = 1, seed: int = 0,
                 features: list[str] | None = None) -> None:
        for key, val, lo in (("n_estimators", n_estimators, 1), ("num_leaves", num_leaves, 2),
                             ("min_child_samples", min_child_samples, 1), ("num_threads", num_threads, 1)):
            if int(val) < lo:
                raise RegistryError(f"model 'tree-student': {key}={val} must be >= {lo}")
        if not learning_rate > 0 or not lambda_l2 >= 0 or not 0 < feature_fraction <= 1:
            raise RegistryError(f"model 'tree-student': learning_rate={learning_rate} must be > 0, lambda_l2={lambda_l2} "
                                f">= 0 and feature_fraction={feature_fraction} in (0, 1]")
        super().__init__(n_estimators=int(n_estimators), num_leaves=int(num_leaves), learning_rate=float(learning_rate),
                         min_child_samples=int(min_child_samples), lambda_l2=float(lambda_l2),
                         feature_fraction=float(feature_fraction), max_cat_to_onehot=int(max_cat_to_onehot),
                         cat_smooth=float(cat_smooth), num_threads=int(num_threads), seed=int(seed),
                         features=None if features is None else list(features))
        self.booster: lgb.Booster | None = None
        self.encoder: TreeEncoder | None = None
        self.train_info: dict = {}

    # -- features ----------------------------------------------------------------------------
    def _choose_features(self, data: RecData) -> list[str]:
        wanted = self.params["features"]
        if wanted is None:
            names = [f.name for f in data.schema if f.kind != "sequence"]
        else:
            bad = [n for n in wanted if n not in data.schema or data.schema[n].kind == "sequence"]
            if bad:
                raise DataError(f"model 'tree-student': features {bad} are not non-sequence features of dataset {data.name!r}")
            names = list(wanted)
        if not names:
            raise DataError(f"model 'tree-student': dataset {data.name!r} has no non-sequence features")
        return names

    def prepare(self, data: RecData, X: pd.DataFrame | None = None) -> None:
        """Bind to ``data`` and freeze the categorical encoding on feature rows ``X``."""
        names = self._choose_features(data)
        self.bind(data, names)
        if X is None:
            if data.train is None or len(data.train) == 0:
                raise DataError(f"model 'tree-student': dataset {data.name!r} has no training pairs")
            X = data.features(data.train)
        cats = [n for n in names if data.schema[n].kind == "categorical"]
        self.encoder = TreeEncoder.fit(X[names], names, cats)

    def lgb_params(self) -> dict[str, Any]:
        p = self.params
        return {"learning_rate": p["learning_rate"], "num_leaves": p["num_leaves"], "min_data_in_leaf": p["min_child_samples"],
                "lambda_l2": p["lambda_l2"], "feature_fraction": p["feature_fraction"],
                "max_cat_to_onehot": p["max_cat_to_onehot"], "cat_smooth": p["cat_smooth"],
                "num_threads": p["num_threads"], "seed": p["seed"], "deterministic": True, "verbose": -1}

    # -- training ----------------------------------------------------------------------------
    def fit(self, data: RecData, ctx: Any = None) -> dict:
        """Train on ``data.train``'s labels (> 0 is a positive): the label-only baseline."""
        train = data.train
        if train is None or len(train) == 0 or LABEL not in train.columns:
            raise DataError(f"model 'tree-student': dataset {data.name!r} has no labelled training pairs")
        X = data.features(train)
        self.prepare(data, X)
        y = (pd.to_numeric(train[LABEL], errors="coerce").to_numpy(dtype=float) > 0).astype(float)
        if len(np.unique(y)) < 2:
            raise DataError(f"model 'tree-student': the training labels of {data.name!r} hold one class only; it needs negatives")
        return self.fit_targets(X, y, loss="bce")

    def fit_targets(self, X: pd.DataFrame, targets: np.ndarray, weights: np.ndarray | None = None,
                    loss: Literal["bce", "mse", "listnet"] = "mse", epochs: int | None = None,
                    groups: np.ndarray | None = None, temperature: float = 1.0, pointwise_weight: float = 0.0) -> dict:
        """Fit the teacher's targets: margins (``mse``: L2 regression) or probabilities
        (``bce``: LightGBM's cross_entropy objective). ``listnet`` (listwise, needs ``groups``)
        becomes lambdarank on graded labels from the teacher's rank within each group:
        ranks 1-5 -> 4, 6-10 -> 3, 11-20 -> 2, 21-50 -> 1, the rest 0. ``epochs``,
        ``temperature`` and ``pointwise_weight`` do not apply to trees."""
        if self.encoder is None:
            raise UnsupportedError("model 'tree-student': call prepare(data) (or fit/load) before fit_targets")
        if loss not in ("bce", "mse", "listnet"):
            raise DataError(f"model 'tree-student': loss {loss!r} is not 'bce', 'mse' or 'listnet'")
        t = np.asarray(targets, dtype=float)
        if t.shape != (len(X),) or not np.isfinite(t).all():
            raise DataError(f"model 'tree-student': fit_targets needs one finite target per row ({len(X)} rows)")
        if loss == "bce" and np.any((t < 0) | (t > 1)):
            raise DataError("model 'tree-student': bce targets must be probabilities in [0, 1]; use loss='mse' for margins")
        t0 = time.perf_counter()
        M = self.encoder.encode(X[self.feature_names])
        params = {**self.lgb_params(), "objective": "cross_entropy" if loss == "bce" else "regression",
                  "metric": "cross_entropy" if loss == "bce" else "l2"}
        group_sizes = None
        if loss == "listnet":
            if groups is None or len(groups) != len(t):
                raise DataError("model 'tree-student': loss='listnet' needs groups: one group id (the user) per row")
            codes, _ = pd.factorize(np.asarray(groups))
            order = np.lexsort((-t, codes))  # by group, then the teacher's score, best first
            M, t, codes = M[order], t[order], codes[order]
            group_sizes = np.bincount(codes)
            starts = np.r_[0, np.cumsum(group_sizes)[:-1]]
            rank = np.arange(len(t)) - starts[codes] + 1
            t = np.select([rank <= 5, rank <= 10, rank <= 20, rank <= 50], [4, 3, 2, 1], 0).astype(float)
            weights = None
            params.update(objective="lambdarank", metric="ndcg", eval_at=[10])
        ds = lgb.Dataset(M, t, group=group_sizes, weight=None if weights is None else np.asarray(weights, float),
                         feature_name=lightgbm_names(self.feature_names),
                         categorical_feature=self.encoder.categorical_indices, free_raw_data=True, params={"verbose": -1})
        rounds = int(self.params["n_estimators"])
        bar = progress(total=rounds, desc="tree-student boosting rounds", unit="trees")
        try:
            booster = lgb.train(params, ds, num_boost_round=rounds, callbacks=[lambda env: bar.update(1)])
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"tree-student could not fit the targets: {exc}") from exc
        finally:
            bar.close()
        self.booster = lgb.Booster(model_str=booster.model_to_string())
        self.train_info = {"n_trees": int(self.booster.num_trees()), "rows": int(len(t)), "loss": loss,
                           "seconds": round(time.perf_counter() - t0, 3), "n_parameters": self.n_parameters()}
        return dict(self.train_info)

    # -- scoring -----------------------------------------------------------------------------
    def _require_booster(self) -> lgb.Booster:
        if self.booster is None or self.encoder is None:
            raise UnsupportedError("model 'tree-student' has no trees; call fit(data) or fit_targets first")
        return self.booster

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix the booster sees (categorical features as frozen codes)."""
        self._require_booster()
        return self.encoder.encode(X)

    def predict_margin(self, M: np.ndarray) -> np.ndarray:
        booster = self._require_booster()
        if len(M) == 0:
            return np.zeros(0)
        return booster.predict(M, raw_score=True, num_threads=1 if len(M) < 1000 else self.params["num_threads"])

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        """Raw margin for each row of ``X`` (columns: ``feature_names``)."""
        return self.predict_margin(self.encode(X))

    def n_parameters(self) -> int | None:
        if self.booster is None:
            return None
        return int(sum(t["num_leaves"] * 2 - 1 for t in self.booster.dump_model()["tree_info"]))

    # -- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path, data: RecData) -> "TreeStudent":
        d = Path(directory)
        if (d / "lightgbm.json").exists() and not (d / "tree.json").exists():
            raise DataError(f"{d}: a tree-student saved by an older whyrec-distill (in whyrec-lightgbm's format); "
                            "distil the teacher again (whyrec compress RUN --method distill --student tree-student --overwrite)")
        return super().load(d, data)  # type: ignore[return-value]

    def _save_weights(self, directory: Path) -> None:
        booster = self._require_booster()
        write_text(directory / "model.txt", booster.model_to_string())
        write_json(directory / "tree.json", {"format": FORMAT, "lightgbm_version": lgb.__version__,
                                             "encoder": self.encoder.to_dict(), "train_info": self.train_info})

    def _load_weights(self, directory: Path) -> None:
        meta_path, model_path = directory / "tree.json", directory / "model.txt"
        for p in (meta_path, model_path):
            if not p.exists():
                raise DataError(f"{directory}: no {p.name}; this is not a saved tree-student model")
        meta = read_json(meta_path, "tree-student description")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataError(f"{meta_path}: not a {FORMAT} description; re-save the model")
        encoder = TreeEncoder.from_dict(meta.get("encoder") or {})
        if encoder.feature_names != self.feature_names:
            raise DataError(f"{directory}: tree.json lists features {encoder.feature_names} but model.json lists {self.feature_names}")
        data = self._require_data()
        changed = [n for n in self.feature_names if (n in encoder.vocabs) != (data.schema[n].kind == "categorical")]
        if changed:
            raise DataError(f"{directory}: features {changed} changed between categorical and numeric since the model was saved; retrain on this data")
        try:
            booster = lgb.Booster(model_str=model_path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:  # a binary file (a pickle, say) where the text model belongs: never loaded
            raise DataError(f"{model_path} is not a LightGBM text model (binary content); whyrec never loads pickles: "
                            "retrain or re-save the model") from exc
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"{model_path} is not a readable LightGBM text model: {exc}") from exc
        if booster.num_feature() != len(self.feature_names):
            raise DataError(f"{model_path} has {booster.num_feature()} features but tree.json lists {len(self.feature_names)}; "
                            "the files do not belong together")
        self.booster, self.encoder, self.train_info = booster, encoder, meta.get("train_info", {})
