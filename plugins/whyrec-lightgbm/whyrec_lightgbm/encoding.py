"""Feature frame -> float matrix for LightGBM, with categories fixed at fit time.

LightGBM takes categorical features as non-negative integer codes. The codes must be the
same at fit, score and after ``load``; pandas would assign codes from whatever values a frame
happens to hold, so the categories are frozen when the model is fitted and saved as JSON.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from whyrec.errors import DataError


def _sorted_values(values: pd.Series) -> list:
    uniq = pd.unique(values.dropna())
    try:
        return sorted(uniq.tolist())
    except TypeError:  # mixed types: order by text so the order is still deterministic
        return sorted(uniq.tolist(), key=str)


def lightgbm_names(names: list[str]) -> list[str]:
    """Feature names LightGBM accepts (it refuses JSON punctuation), unique and readable."""
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


@dataclass
class FrameEncoder:
    """Turns a feature DataFrame into the float64 matrix the booster was trained on.

    categories: per categorical feature, the ordered category values; code = position,
    NaN for missing or unseen values (LightGBM sends those to the "other" side of a split).
    """

    feature_names: list[str]
    categorical: dict[str, list] = field(default_factory=dict)
    use_missing: bool = True

    @classmethod
    def fit(cls, X: pd.DataFrame, feature_names: list[str], categorical: list[str], use_missing: bool = True) -> "FrameEncoder":
        cats: dict[str, list] = {}
        for c in categorical:
            col = X[c]
            if isinstance(col.dtype, pd.CategoricalDtype):
                cats[c] = [v.item() if hasattr(v, "item") else v for v in col.cat.categories.tolist()]
            else:
                cats[c] = _sorted_values(col)
        return cls(list(feature_names), cats, use_missing)

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.feature_names) if n in self.categorical]

    def encode(self, X: pd.DataFrame, check: bool = True) -> np.ndarray:
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise DataError(f"feature frame lacks columns {missing} that the lightgbm model was trained on")
        M = np.empty((len(X), len(self.feature_names)), dtype=np.float64)
        for j, c in enumerate(self.feature_names):
            col = X[c]
            if c in self.categorical:
                M[:, j] = self._codes(col, self.categorical[c])
            else:
                M[:, j] = self._numeric(c, col)
        if check:
            self.check(M, X)
        return M

    @staticmethod
    def _codes(col: pd.Series, categories: list) -> np.ndarray:
        dt = col.dtype
        if isinstance(dt, pd.CategoricalDtype) and len(dt.categories) == len(categories) and list(dt.categories) == categories:
            codes = col.cat.codes.to_numpy()  # fast path: the frame already uses our categories
        else:
            if isinstance(dt, pd.CategoricalDtype):  # re-map by value onto the frozen categories
                codes = col.cat.set_categories(categories).cat.codes.to_numpy()
            else:
                codes = pd.Categorical(col, categories=categories).codes
        out = codes.astype(np.float64)
        out[codes < 0] = np.nan
        return out

    @staticmethod
    def _numeric(name: str, col: pd.Series) -> np.ndarray:
        dt = col.dtype
        if isinstance(dt, np.dtype) and dt.kind in "fiub":  # plain numpy numbers: no conversion needed
            return col.to_numpy(dtype=np.float64)
        if isinstance(dt, pd.CategoricalDtype):
            col = col.astype(object)
        try:
            return pd.to_numeric(col).to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            bad = next((v for v in col if not _is_number(v)), None)
            raise DataError(
                f"feature {name!r} is numeric in the schema but holds non-numeric values (e.g. {bad!r}); "
                "fix the dataset's featurizer or declare the feature categorical"
            ) from exc

    def check(self, M: np.ndarray, X: pd.DataFrame) -> None:
        """Refuse what LightGBM would silently misread: inf always, NaN when use_missing=False."""
        inf = np.isinf(M).any(axis=0)
        if inf.any():
            cols = [self.feature_names[j] for j in np.flatnonzero(inf)]
            raise DataError(f"features {cols} hold infinite values; LightGBM cannot split on them: clip or drop them in the dataset")
        if not self.use_missing:
            # NaN in a numeric column (or a missing categorical value) is silently read as 0 by
            # LightGBM with use_missing=false: say which columns instead.
            raw_nan = np.zeros(M.shape[1], dtype=bool)
            for j, c in enumerate(self.feature_names):
                raw_nan[j] = bool(X[c].isna().any())
            if raw_nan.any():
                cols = {self.feature_names[j]: int(X[self.feature_names[j]].isna().sum()) for j in np.flatnonzero(raw_nan)}
                raise DataError(
                    f"features with NaN (column: rows) {cols}: the lightgbm model was configured with "
                    "use_missing = false and cannot take missing values; fill them in the dataset or set use_missing = true"
                )

    def to_dict(self) -> dict[str, Any]:
        return {"feature_names": self.feature_names, "categorical": self.categorical, "use_missing": self.use_missing}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrameEncoder":
        return cls(list(d["feature_names"]), {k: list(v) for k, v in d["categorical"].items()}, bool(d.get("use_missing", True)))


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
