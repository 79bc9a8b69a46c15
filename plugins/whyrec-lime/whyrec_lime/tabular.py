"""lime's classic tabular sampler (``sampler = "tabular"``): ``LimeTabularExplainer`` on a
numeric view of the feature rows, trained on the background rows.

lime perturbs each feature on its own: a numeric feature is drawn from the background's
quartile bins, a categorical one from the background's value frequencies, and the
interpretable feature is "in the same bin / category as the explained row". So its units are
always single features (field attributions are their sums). lime works on float matrices:
:class:`Codec` turns categorical, object and NaN-holding columns (history sequences) into
category codes and back, so the model sees frames of the dtypes it was built with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Codec:
    columns: list[str]
    categories: dict[str, pd.Index]      # column -> values (NaN included) coded 0..n-1
    dtypes: dict[str, Any]

    @classmethod
    def fit(cls, *frames: pd.DataFrame) -> "Codec":
        ref = pd.concat(frames, ignore_index=True)
        cats: dict[str, pd.Index] = {}
        for c in ref.columns:
            col = ref[c]
            numeric = pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)
            if isinstance(col.dtype, pd.CategoricalDtype) or not numeric or col.isna().any():
                # NaN (an empty history position) is a category of its own: lime's quartiles would drop it
                cats[c] = pd.Index(pd.unique(col.astype(object)), dtype=object)
        return cls(list(ref.columns), cats, {c: ref[c].dtype for c in ref.columns})

    @property
    def categorical(self) -> list[int]:
        return [j for j, c in enumerate(self.columns) if c in self.categories]

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        M = np.empty((len(X), len(self.columns)))
        for j, c in enumerate(self.columns):
            if c in self.categories:
                codes = self.categories[c].get_indexer(X[c].astype(object))
                if (codes < 0).any():
                    raise ValueError(f"column {c!r} holds a value the codec was not fitted on")
                M[:, j] = codes
            else:
                M[:, j] = X[c].to_numpy(dtype=float)
        return M

    def decode(self, M: np.ndarray) -> pd.DataFrame:
        out = {}
        for j, c in enumerate(self.columns):
            dt = self.dtypes[c]
            if c in self.categories:
                vals = self.categories[c].to_numpy(dtype=object)[np.rint(M[:, j]).astype(int)]
                if isinstance(dt, pd.CategoricalDtype):
                    out[c] = pd.Categorical(vals, categories=dt.categories)
                else:
                    out[c] = pd.Series(vals).astype(dt).to_numpy() if dt != object else vals
            else:
                v = M[:, j]
                out[c] = v.astype(dt) if pd.api.types.is_integer_dtype(dt) else v
        return pd.DataFrame(out)


def tabular_explainer(B: pd.DataFrame, codec: Codec, kernel_width: float | None, seed: int) -> Any:
    """A LimeTabularExplainer in regression mode over the encoded background rows."""
    from lime.lime_tabular import LimeTabularExplainer

    return LimeTabularExplainer(codec.encode(B), mode="regression", feature_names=codec.columns,
                                categorical_features=codec.categorical, discretize_continuous=True,
                                kernel_width=kernel_width, feature_selection="none", random_state=seed)


def explain_row(explainer: Any, codec: Codec, x: pd.DataFrame, f: Any, num_samples: int, alpha: float,
                seed: int) -> tuple[np.ndarray, float, float, float]:
    """(weights per feature, intercept, weighted R², surrogate prediction at x) for one row."""
    from sklearn.linear_model import Ridge

    n = len(codec.columns)
    exp = explainer.explain_instance(codec.encode(x)[0], lambda M: np.asarray(f(codec.decode(M)), dtype=float),
                                     num_features=n, num_samples=num_samples,
                                     model_regressor=Ridge(alpha=alpha, fit_intercept=True, random_state=seed))
    w = np.zeros(n)
    for j, v in exp.local_exp[1]:
        w[j] = v
    return w, float(exp.intercept[1]), float(exp.score), float(np.ravel(exp.local_pred)[0])
