"""The ``lightgbm`` model: a gradient-boosted click or ranking model over the FeatureSchema.

It uses every non-sequence feature of the dataset (sequence columns are item ids by history
position, which trees cannot use meaningfully), categorical ones natively. ``score_features``
returns the raw margin (log-odds for ``binary``, the ranking score for ``lambdarank``): the
quantity every explainer explains. Saved as LightGBM's text model plus JSON, never pickled.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from whyrec import BaseModel
from whyrec.atomic import write_json, write_text
from whyrec.data import ITEM, LABEL, USER, RecData
from whyrec.contracts import read_json
from whyrec.errors import DataError, RegistryError

from .encoding import FrameEncoder, lightgbm_names

OBJECTIVES = ("binary", "lambdarank")
SMALL_BATCH = 1000  # rows below which prediction runs on one thread


class LightGBMModel(BaseModel):
    """LightGBM recommender: ``binary`` (click/like) or ``lambdarank`` (per-user ranking).

    Parameters are the registry.toml keys. ``valid_fraction`` of the training rows (of the
    training *users* for lambdarank, so each query stays whole) is held out for early
    stopping after ``early_stopping_rounds`` rounds without improvement (0 disables it).
    ``features`` restricts the model to a subset of the schema (default: all non-sequence).
    ``use_missing = false`` makes NaN an error naming the column instead of LightGBM's
    silent NaN -> 0.
    """

    name = "lightgbm"
    capabilities = frozenset({"tree", "lightgbm", "categorical"})

    def __init__(
        self,
        objective: str = "binary",
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        feature_fraction: float = 0.9,
        bagging_fraction: float = 1.0,
        lambda_l2: float = 1.0,
        early_stopping_rounds: int = 30,
        valid_fraction: float = 0.1,
        use_missing: bool = True,
        max_cat_to_onehot: int = 4,
        cat_smooth: float = 10.0,
        num_threads: int = 1,  # OpenMP spin-waits make >1 thread much slower on busy or 2-core machines
        seed: int = 0,
        features: list[str] | None = None,
    ) -> None:
        if objective not in OBJECTIVES:
            raise RegistryError(f"model 'lightgbm': objective {objective!r} is not one of {list(OBJECTIVES)}")
        if n_estimators < 1:
            raise RegistryError(f"model 'lightgbm': n_estimators must be >= 1, got {n_estimators}")
        if not learning_rate > 0:
            raise RegistryError(f"model 'lightgbm': learning_rate must be > 0, got {learning_rate}")
        if num_leaves < 2:
            raise RegistryError(f"model 'lightgbm': num_leaves must be >= 2, got {num_leaves}")
        if not 0 <= valid_fraction < 1:
            raise RegistryError(f"model 'lightgbm': valid_fraction must be in [0, 1), got {valid_fraction}")
        if early_stopping_rounds < 0:
            raise RegistryError(f"model 'lightgbm': early_stopping_rounds must be >= 0, got {early_stopping_rounds}")
        super().__init__(
            objective=objective, n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
            min_child_samples=min_child_samples, feature_fraction=feature_fraction, bagging_fraction=bagging_fraction,
            lambda_l2=lambda_l2, early_stopping_rounds=early_stopping_rounds, valid_fraction=valid_fraction,
            use_missing=use_missing, max_cat_to_onehot=max_cat_to_onehot, cat_smooth=cat_smooth,
            num_threads=num_threads, seed=seed, features=None if features is None else list(features),
        )
        self.booster: lgb.Booster | None = None
        self.encoder: FrameEncoder | None = None
        self.train_info: dict = {}

    # -- features -------------------------------------------------------------------------
    def _choose_features(self, data: RecData) -> list[str]:
        wanted = self.params["features"]
        if wanted is None:
            names = [f.name for f in data.schema if f.kind != "sequence"]
        else:
            unknown = [n for n in wanted if n not in data.schema]
            seq = [n for n in wanted if n in data.schema and data.schema[n].kind == "sequence"]
            if unknown or seq:
                raise DataError(
                    f"model 'lightgbm': features {unknown} are not in dataset {data.name!r}"
                    if unknown else f"model 'lightgbm': features {seq} are sequence columns, which a tree model cannot use"
                )
            names = list(wanted)
        if not names:
            raise DataError(f"dataset {data.name!r} has no non-sequence features for the lightgbm model")
        return names

    def lgb_params(self) -> dict[str, Any]:
        p = self.params
        out = {
            "objective": p["objective"], "learning_rate": p["learning_rate"], "num_leaves": p["num_leaves"],
            "min_data_in_leaf": p["min_child_samples"], "feature_fraction": p["feature_fraction"],
            "bagging_fraction": p["bagging_fraction"], "bagging_freq": 1 if p["bagging_fraction"] < 1 else 0,
            "lambda_l2": p["lambda_l2"], "use_missing": p["use_missing"], "max_cat_to_onehot": p["max_cat_to_onehot"],
            "cat_smooth": p["cat_smooth"], "num_threads": p["num_threads"], "seed": p["seed"],
            "deterministic": True, "verbose": -1,
        }
        if p["objective"] == "binary":
            out["metric"] = "binary_logloss"
        else:
            out["metric"] = "ndcg"
            out["eval_at"] = [10]
        return out

    # -- training -------------------------------------------------------------------------
    def fit(self, data: RecData, ctx: Any = None) -> dict:
        """Train on ``data.train``; returns best iteration, validation loss and sizes."""
        t0 = time.perf_counter()
        train = data.train
        if train is None or len(train) == 0:
            raise DataError(f"dataset {data.name!r} has no training pairs (data.train is empty)")
        if LABEL not in train.columns:
            raise DataError(f"dataset {data.name!r}: training table has no {LABEL!r} column (columns: {list(train.columns)})")
        y = pd.to_numeric(train[LABEL], errors="coerce").to_numpy(dtype=float)
        if np.isnan(y).any():
            raise DataError(f"dataset {data.name!r}: column {LABEL!r} of the training table has {int(np.isnan(y).sum())} missing or non-numeric labels")

        names = self._choose_features(data)
        self.bind(data, names)
        X = data.features(train)[names]  # whole rows: context columns are features too
        cats = [n for n in names if data.schema[n].kind == "categorical"]
        self.encoder = FrameEncoder.fit(X, names, cats, use_missing=self.params["use_missing"])
        M = self.encoder.encode(X)

        objective = self.params["objective"]
        if objective == "binary":
            y = (y > 0).astype(float)
            if len(np.unique(y)) < 2:
                raise DataError(f"dataset {data.name!r}: training labels are all {int(y[0])}; a binary model needs both classes")
        else:
            if (y < 0).any() or not np.allclose(y, np.round(y)):
                raise DataError(f"dataset {data.name!r}: lambdarank needs non-negative integer relevance labels in {LABEL!r}")
        users = train[USER].to_numpy()

        rng = np.random.default_rng(self.params["seed"])
        vf = self.params["valid_fraction"]
        use_valid = vf > 0 and self.params["early_stopping_rounds"] > 0
        if use_valid and objective == "lambdarank":
            uniq = np.unique(users)
            n_valid = max(1, int(round(vf * len(uniq))))
            valid = np.isin(users, rng.choice(uniq, n_valid, replace=False))
        elif use_valid:
            valid = rng.random(len(y)) < vf
        else:
            valid = np.zeros(len(y), dtype=bool)
        if use_valid and (valid.all() or not valid.any()):
            raise DataError(f"dataset {data.name!r}: valid_fraction={vf} leaves an empty training or validation split ({len(y)} rows)")

        lgb_names = lightgbm_names(names)
        cat_idx = self.encoder.categorical_indices

        def dataset(mask: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
            Xm, ym, um = M[mask], y[mask], users[mask]
            group = None
            if objective == "lambdarank":  # queries must be contiguous: sort rows by user
                order = np.argsort(pd.factorize(um)[0], kind="stable")
                Xm, ym, um = Xm[order], ym[order], um[order]
                group = pd.Series(um).groupby(pd.factorize(um)[0], sort=True).size().to_numpy()
            return lgb.Dataset(Xm, ym, group=group, feature_name=lgb_names, categorical_feature=cat_idx,
                               reference=reference, free_raw_data=True)

        dtrain = dataset(~valid)
        valid_sets, callbacks, evals = [], [], {}
        if use_valid:
            dvalid = dataset(valid, reference=dtrain)
            valid_sets = [dvalid]
            callbacks += [lgb.early_stopping(self.params["early_stopping_rounds"], verbose=False), lgb.record_evaluation(evals)]
        bar = ctx.progress(total=self.params["n_estimators"], desc="lightgbm") if ctx is not None else None
        if bar is not None:
            callbacks.append(lambda env: bar.update(1))
        try:
            booster = lgb.train(self.lgb_params(), dtrain, num_boost_round=self.params["n_estimators"],
                                valid_sets=valid_sets, valid_names=["valid"][: len(valid_sets)], callbacks=callbacks)
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"lightgbm could not train on dataset {data.name!r}: {exc}") from exc
        finally:
            if bar is not None:
                bar.close()
        best = booster.best_iteration if use_valid and booster.best_iteration > 0 else booster.current_iteration()
        # Keep exactly the trees that score: explainers, save and load then agree without num_iteration.
        text = booster.model_to_string(num_iteration=best)
        hidden = set(data.params.get("redacted_features") or ())
        if hidden:  # privacy.redact_fields: the saved model must not carry those features' raw min/max
            text = _without_value_ranges(text, [n in hidden for n in names])
        self.booster = lgb.Booster(model_str=text)
        metric = "binary_logloss" if objective == "binary" else "ndcg@10"
        info: dict[str, Any] = {
            "best_iteration": int(best),
            "n_trees": int(self.booster.num_trees()),
            "train_rows": int((~valid).sum()),
            "valid_rows": int(valid.sum()),
            "features": len(names),
            "categorical_features": [names[i] for i in cat_idx],
            "seconds": round(time.perf_counter() - t0, 3),
        }
        if use_valid:
            info[f"valid_{metric}"] = float(evals["valid"][metric][best - 1])
        self.train_info = info
        return info

    # -- scoring --------------------------------------------------------------------------
    def _require_booster(self) -> lgb.Booster:
        if self.booster is None or self.encoder is None:
            self._require_data()
            raise DataError("model 'lightgbm' has no trees; call fit(data) first")
        return self.booster

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """The float matrix the booster sees (categorical features as frozen codes)."""
        self._require_booster()
        return self.encoder.encode(X)

    def predict_threads(self, n_rows: int) -> int:
        """Threads for a prediction of ``n_rows``: one for small batches (a recommendation
        request), where waking an OpenMP team costs more than the trees."""
        return 1 if n_rows < SMALL_BATCH else self.params["num_threads"]

    def predict_margin(self, M: np.ndarray) -> np.ndarray:
        """Raw margin of already encoded rows."""
        booster = self._require_booster()
        if len(M) == 0:
            return np.zeros(0)
        return booster.predict(M, raw_score=True, num_threads=self.predict_threads(len(M)))

    def score_features(self, X: pd.DataFrame) -> np.ndarray:
        """Raw margin for each row of ``X`` (columns: ``feature_names``)."""
        self._require_booster()
        return self.predict_margin(self.encoder.encode(X))

    def n_parameters(self) -> int | None:
        if self.booster is None:
            return None
        dump = self.booster.dump_model()
        return int(sum(t["num_leaves"] * 2 - 1 for t in dump["tree_info"]))

    # -- persistence ----------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        booster = self._require_booster()
        write_text(directory / "model.txt", booster.model_to_string())
        write_json(directory / "lightgbm.json", {
            "format": "lightgbm-text",
            "lightgbm_version": lgb.__version__,
            "lightgbm_feature_names": booster.feature_name(),
            "encoder": self.encoder.to_dict(),
            "train_info": self.train_info,
        })

    def _load_weights(self, directory: Path) -> None:
        meta_path, model_path = directory / "lightgbm.json", directory / "model.txt"
        for p in (meta_path, model_path):
            if not p.exists():
                raise DataError(f"{directory}: no {p.name}; this is not a saved lightgbm model")
        meta = read_json(meta_path, "LightGBM model description")
        encoder = FrameEncoder.from_dict(meta["encoder"])
        if encoder.feature_names != self.feature_names:
            raise DataError(f"{directory}: lightgbm.json lists features {encoder.feature_names} but model.json lists {self.feature_names}")
        try:
            booster = lgb.Booster(model_str=model_path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:  # a binary file (a pickle, say) where the text model belongs: never loaded
            raise DataError(f"{directory}/model.txt is not a LightGBM text model (binary content: {exc.reason}); "
                            "whyrec loads LightGBM text models only, never pickles: retrain or re-save the model") from exc
        except lgb.basic.LightGBMError as exc:
            raise DataError(f"{directory}/model.txt is not a readable LightGBM text model: {exc}") from exc
        if booster.num_feature() != len(self.feature_names) or booster.feature_name() != meta["lightgbm_feature_names"]:
            raise DataError(
                f"{directory}/model.txt has features {booster.feature_name()} but lightgbm.json expects "
                f"{meta['lightgbm_feature_names']}; the files do not belong together"
            )
        data = self._require_data()
        wrong_kind = [n for n in encoder.categorical if data.schema[n].kind != "categorical"]
        wrong_kind += [n for n in self.feature_names if n not in encoder.categorical and data.schema[n].kind == "categorical"]
        if wrong_kind:
            raise DataError(f"{directory}: features {wrong_kind} changed between categorical and numeric since the model was saved; retrain on this data")
        self.booster, self.encoder, self.train_info = booster, encoder, meta.get("train_info", {})
        self._check_categories(directory)

    def _check_categories(self, directory: Path) -> None:
        """A categorical feature whose saved categories match none of the data's values
        (ids re-numbered, ints become strings) would score every row as "unseen"."""
        data = self._require_data()
        if not self.encoder.categorical or data.train is None or len(data.train) == 0:
            return
        sample = data.train.head(200)
        X = data.features(sample)
        for c, cats in self.encoder.categorical.items():
            col = X[c].dropna()
            if len(col) and not pd.Series(col.astype(object)).isin(cats).any():
                raise DataError(
                    f"{directory}: categorical feature {c!r} of the saved model knows values like {cats[:3]} but the "
                    f"data holds values like {col.astype(object).head(3).tolist()}; the model does not match this data, retrain it"
                )


def _without_value_ranges(model_text: str, hide: list[bool]) -> str:
    """LightGBM's ``feature_infos`` line records each numeric feature's training [min:max]
    (raw values of two rows) and each categorical's values; it is informational (prediction,
    dump_model and SHAP use the trees' thresholds), so hidden features get "none" there."""
    lines = model_text.split("\n")
    for k, line in enumerate(lines):
        if line.startswith("feature_infos="):
            infos = line[len("feature_infos="):].split(" ")
            if len(infos) == len(hide):
                lines[k] = "feature_infos=" + " ".join("none" if h else v for v, h in zip(infos, hide))
            break
    return "\n".join(lines)
