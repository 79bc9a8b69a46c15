"""``lime``: LIME over fields or features for any model that scores feature rows.

For each explained (user, item) row x:

1. draw ``num_samples`` binary masks over the units (``units = "fields"`` or ``"features"``)
   and label each with the model output averaged over background rows (units.py), or, with
   ``sampler = "tabular"``, let lime's ``LimeTabularExplainer`` perturb single features;
2. fit lime's weighted ridge surrogate with ``lime.lime_base.LimeBase.explain_instance_with_data``
   (kernel sqrt(exp(-d²/w²)) on the distance to x, lime's own kernel);
3. report its local fidelity (lime's ``score``: the surrogate's weighted R² on the samples)
   and its stability (top-k overlap of the units over ``stability_seeds`` seeds); a fidelity
   below ``min_fidelity`` puts a caution first in the pair's reasons, in the summary and, via
   ``quality``, next to the reasons in the report.

The weights are in model-output units per unit switched from background to x. They promise
no sum (``additive = False``); for a model additive over the units they equal the units'
exact Shapley values (and the tests check it).
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from whyrec.data import ITEM, USER, RecData
from whyrec.errors import DataError, RegistryError, UnsupportedError
from whyrec.explanation import Explanation

from .optional import require
from .params import problems
from .units import distances, masked_outputs, model_units, sample_background, sample_masks

CAPABILITY = "score_features (it scores feature rows: score_features(X) over its feature_names)"
# Below this weighted R² a local linear surrogate explains too little of the model near the
# row for its weights to be read as "why" (docs/lime.md).
MIN_FIDELITY = 0.7


def scores_feature_rows(model: Any) -> bool:
    return callable(getattr(model, "score_features", None)) and bool(getattr(model, "feature_names", None))


class LimeExplainer:
    """LIME on the raw model output (``score_features``), with fidelity and stability."""

    name = "lime"

    def __init__(
        self,
        units: str = "fields",
        sampler: str = "mask",
        num_samples: int = 1000,
        kernel_width: float | None = None,
        alpha: float = 0.0,
        background_size: int = 50,
        top_k: int = 3,
        stability_seeds: int = 5,
        min_fidelity: float = MIN_FIDELITY,
        compare_shapley: bool = True,
        n_reasons: int = 3,
        max_rows: int = 200_000,
        seed: int = 0,
    ) -> None:
        where = "explainer 'lime'"
        bad = problems(dict(units=units, sampler=sampler, num_samples=num_samples, kernel_width=kernel_width, alpha=alpha,
                            background_size=background_size, top_k=top_k, stability_seeds=stability_seeds,
                            min_fidelity=min_fidelity, n_reasons=n_reasons, max_rows=max_rows, seed=seed))
        if bad:
            raise RegistryError(f"{where}: {bad[0]}")
        # fail when the component is built, before any data loads or a model trains
        require("lime.lime_base")
        require("sklearn.linear_model", feature=f"{where} (lime's surrogate)")
        self.params = dict(units=units, sampler=sampler, num_samples=num_samples, kernel_width=kernel_width, alpha=alpha,
                           background_size=background_size, top_k=top_k, stability_seeds=stability_seeds,
                           min_fidelity=min_fidelity, compare_shapley=compare_shapley, n_reasons=n_reasons,
                           max_rows=max_rows, seed=seed)
        self.seed = seed
        self.instance_name = self.name

    # -- support --------------------------------------------------------------------------
    def supports(self, model: Any) -> bool:
        return scores_feature_rows(model)

    def check_supported(self, model: Any) -> None:
        if self.supports(model):
            return
        mname = getattr(model, "name", type(model).__name__)
        raise UnsupportedError(f"explainer 'lime' does not support model {mname!r}: it needs the capability {CAPABILITY}, "
                               f"which {mname!r} lacks; use an explainer written for this model")

    # -- explain --------------------------------------------------------------------------
    def explain(self, model: Any, data: RecData, pairs: pd.DataFrame) -> Explanation:
        """LIME weights for every (user, item) row of ``pairs`` (whole rows: context included)."""
        self.check_supported(model)
        pairs = _check_pairs(data, pairs)
        X = data.features(pairs)[list(model.feature_names)].reset_index(drop=True)
        return self.explain_features(model, data, pairs, X)

    def explain_features(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame) -> Explanation:
        """As ``explain`` with the feature rows already built (benchmarks)."""
        self.check_supported(model)
        t0 = time.perf_counter()
        p = self.params
        pairs, X = pairs.reset_index(drop=True), X.reset_index(drop=True)
        groups = model_units(model, data, p["units"])
        n_weights = len(X.columns) if p["sampler"] == "tabular" else len(groups)
        if p["alpha"] == 0 and p["num_samples"] <= n_weights:
            # without a penalty, fewer samples than weights + intercept leave the weights undetermined
            raise RegistryError(f"explainer 'lime': num_samples={p['num_samples']} cannot determine {n_weights} weights and an "
                                f"intercept without a penalty (alpha = 0); use num_samples > {n_weights} or alpha > 0")
        f = model.score_features
        fx = np.asarray(f(X), dtype=float)
        seeds = [self.seed + s for s in range(p["stability_seeds"])]
        # each seed is a whole rerun (its own background and samples): the spread across seeds
        # is what a user rerunning with another seed would see
        backgrounds = {s: sample_background(model, data, p["background_size"], s) for s in seeds}
        B = backgrounds[self.seed]
        base = float(np.mean(np.asarray(f(B), dtype=float)))
        if p["sampler"] == "mask":
            runs = {s: _MaskRun(f, backgrounds[s], groups, p, s) for s in seeds}
            names = list(groups)
        else:
            runs = {s: _TabularRun(f, backgrounds[s], X, p, s) for s in seeds}
            names = list(X.columns)
        W = np.empty((len(seeds), len(X), len(names)))
        fit = np.empty((len(X), 3))  # intercept, score, local prediction (main seed)
        for k, s in enumerate(seeds):
            if p["sampler"] == "mask":
                results = runs[s].explain_all(X)
            else:
                results = [runs[s](i, X.iloc[[i]].reset_index(drop=True)) for i in range(len(X))]
            for i, (w, intercept, score, local) in enumerate(results):
                W[k, i] = w
                if k == 0:
                    fit[i] = (intercept, score, local)
        run = runs[self.seed]
        # units the stability, reasons and the Shapley comparison speak of (tabular weights are per feature)
        unit_W = W if p["sampler"] == "mask" or p["units"] == "features" else _sum_units(W, names, groups)
        unit_names = names if unit_W is W else list(groups)
        k_top = min(p["top_k"], len(unit_names))
        stability = _topk_overlap(unit_W, k_top) if len(seeds) > 1 else np.full(len(X), np.nan)
        fidelity = fit[:, 1]
        low = fidelity < p["min_fidelity"]
        out = _base_pairs(pairs, fx, base, data.context_names)
        out["fidelity"] = fidelity
        out["low_fidelity"] = low
        out[f"stability_top{k_top}"] = stability
        out["surrogate_intercept"] = fit[:, 0]
        out["surrogate_prediction"] = fit[:, 2]
        agreement = self._shapley_agreement(model, data, pairs, X, unit_W[0], unit_names, k_top) \
            if p["compare_shapley"] and p["units"] == "fields" else {"shapley": "not compared (units = \"features\")"
                                                                   if p["compare_shapley"] else "not compared (compare_shapley = false)"}
        for col in ("shapley_spearman", f"shapley_top{k_top}_overlap"):
            if col in agreement:
                out[col] = agreement.pop(col)
        weights = pd.DataFrame(W[0], columns=names)
        unit_frame = pd.DataFrame(unit_W[0], columns=unit_names)
        feature_level = p["sampler"] == "tabular" or p["units"] == "features"
        unit_cols = {n: [n] for n in unit_names} if feature_level and unit_W is W else groups
        reasons = _reasons(data, unit_frame, X, unit_cols, fidelity, p["min_fidelity"], p["n_reasons"])
        summary = {
            "attribution_units": "LIME surrogate weight (model output, per unit switched from background to this row)",
            "units": p["units"], "sampler": p["sampler"], "players": unit_names if len(unit_names) <= 40 else len(unit_names),
            "num_samples": p["num_samples"], "kernel_width": run.kernel_width, "background_rows": len(B),
            "fidelity_median": float(np.median(fidelity)), "fidelity_min": float(np.min(fidelity)),
            "min_fidelity": p["min_fidelity"], "low_fidelity_pairs": int(low.sum()),
            "stability_seeds": seeds, f"stability_top{k_top}_overlap_mean": None if np.isnan(stability).all() else float(np.nanmean(stability)),
            **agreement,
            "model_rows": int(sum(r.model_rows for r in runs.values())), "seconds": round(time.perf_counter() - t0, 4),
        }
        if low.any():
            summary["caution"] = (f"{int(low.sum())} of {len(X)} explanations have low local fidelity (weighted R² below "
                                  f"{p['min_fidelity']:.2f}): LIME's linear surrogate does not describe the model near those "
                                  "pairs and their weights are not a reliable reason")
        return Explanation(
            method=self.name, model=model.name, pairs=out, schema=data.schema.select([c for c in X.columns if c in data.schema]),
            attributions=weights if feature_level else None, field_attributions=None if feature_level else weights,
            feature_values=X, params={**p, "output": "model score_features (raw)"}, additive=False,
            reasons=reasons, summary=summary,
        )

    def _shapley_agreement(self, model: Any, data: RecData, pairs: pd.DataFrame, X: pd.DataFrame, W: np.ndarray,
                           names: list[str], k: int) -> dict:
        """Spearman correlation and top-k overlap of the LIME field weights with exact-field-shapley
        (asked of the plugin host by name: plugins meet only through registered components),
        on the same background."""
        try:
            import whyrec

            host = whyrec.get_host()
            if "exact-field-shapley" not in host.names("explainers"):
                return {"shapley": "not compared: exact-field-shapley is not installed (pip install whyrec-shap)"}
            exact = host.create("explainers", "exact-field-shapley",
                                {"level": "field", "background_size": self.params["background_size"], "seed": self.seed})
        except Exception as exc:  # noqa: BLE001  (the comparison is a report, never the explanation's failure)
            return {"shapley": f"not compared: exact-field-shapley could not be built ({exc})"}
        if not exact.supports(model):
            return {"shapley": "not compared: exact-field-shapley does not support this model"}
        try:
            t0 = time.perf_counter()
            phi = exact.explain_features(model, data, pairs, X).field_attributions
        except UnsupportedError as exc:  # e.g. more fields than exact Shapley evaluates
            return {"shapley": f"not compared: {exc}"}
        seconds = time.perf_counter() - t0
        if list(phi.columns) != names:
            return {"shapley": f"not compared: exact-field-shapley's players {list(phi.columns)} differ from LIME's {names}"}
        S = phi.to_numpy(float)
        rho = np.array([spearman(W[i], S[i]) for i in range(len(W))])
        overlap = np.array([len(_top(W[i], k) & _top(S[i], k)) / k for i in range(len(W))])
        return {
            "shapley_spearman": rho, f"shapley_top{k}_overlap": overlap,
            "shapley_spearman_mean": None if np.isnan(rho).all() else float(np.nanmean(rho)),
            f"shapley_top{k}_overlap_mean": float(overlap.mean()),
            "shapley_seconds": round(seconds, 4),
        }

    def with_seed(self, seed: int) -> "LimeExplainer":
        return type(self)(**{**self.params, "seed": seed})

    # -- what the runner calls after explain ----------------------------------------------
    def quality(self, model: Any, data: RecData, explanation: Explanation, ctx: Any = None):
        """Local fidelity as a verdict the report shows next to the reasons: "no" (a caution on
        every reason) when the median pair is below ``min_fidelity``, "partly" when some are."""
        from whyrec.results import StageResult

        pairs = explanation.pairs
        if "fidelity" not in pairs.columns:
            return None
        thr = float(explanation.params.get("min_fidelity", self.params["min_fidelity"]))
        fid = pairs["fidelity"].to_numpy(float)
        low = int((fid < thr).sum())
        median = float(np.median(fid))
        if median < thr:
            faithful, text = "no", (f"LIME's local surrogate fits the model poorly: median weighted R² {median:.2f} is below "
                                    f"{thr:.2f} ({low} of {len(fid)} pairs)")
        elif low:
            faithful, text = "partly", (f"LIME's local surrogate fits the model poorly for {low} of {len(fid)} pairs "
                                        f"(weighted R² below {thr:.2f}); their reasons carry a caution")
        else:
            faithful, text = "yes", f"LIME's local surrogate fits the model near every pair (weighted R² >= {thr:.2f})"
        stab = [c for c in pairs.columns if c.startswith("stability_top")]
        summary = {"faithful": faithful, "verdict": text, "fidelity_median": median, "fidelity_min": float(fid.min()),
                   "min_fidelity": thr, "low_fidelity_pairs": low,
                   **({"stability_top_k_overlap_mean": float(np.nanmean(pairs[stab[0]]))}
                      if stab and pairs[stab[0]].notna().any() else {})}
        cols = [c for c in (USER, ITEM, "rank", "fidelity", "low_fidelity", *stab, "shapley_spearman") if c in pairs.columns]
        return StageResult(summary=summary, tables={"fidelity": pairs[cols].copy()}, kind="lime-fidelity")


class _MaskRun:
    """LIME fits for one seed on masks over the units (the default sampler). Every row draws
    its masks from a fresh RandomState(seed), as if explained alone: a pair's explanation does
    not depend on which other pairs are explained with it, and the rows share one set of
    masks, whose distinct members are evaluated once for all rows in batched model calls."""

    def __init__(self, f: Any, B: pd.DataFrame, groups: dict[str, list[str]], p: dict, seed: int) -> None:
        self.f, self.B, self.groups, self.p, self.seed = f, B, groups, p, seed
        n = len(groups)
        self.kernel_width = float(p["kernel_width"] if p["kernel_width"] is not None else 0.75 * math.sqrt(n))
        self.model_rows = 0

    def kernel(self, d: np.ndarray) -> np.ndarray:
        return np.sqrt(np.exp(-(d ** 2) / self.kernel_width ** 2))  # lime_tabular's kernel

    def explain_all(self, X: pd.DataFrame) -> list[tuple[np.ndarray, float, float, float]]:
        from lime.lime_base import LimeBase
        from sklearn.utils import check_random_state

        rs = check_random_state(self.seed)
        Z = sample_masks(len(self.groups), self.p["num_samples"], rs)
        distinct, first, inv = np.unique(Z, axis=0, return_index=True, return_inverse=True)
        V = masked_outputs(self.f, X, self.B, list(self.groups.values()), distinct, self.p["max_rows"])
        self.model_rows += V.size * len(self.B)
        state = rs.get_state()  # where a lone row's RandomState stands after its draw
        out = []
        for i in range(len(X)):
            rs_i = np.random.RandomState()
            rs_i.set_state(state)
            out.append(fit_surrogate(LimeBase(self.kernel, random_state=rs_i), Z, V[i, inv.ravel()], self.p["alpha"], self.seed))
        return out


class _TabularRun:
    """LIME fits for one seed with lime's LimeTabularExplainer, built afresh for every row
    (its samplers hold RandomStates: the same row gives the same answer in any batch)."""

    def __init__(self, f: Any, B: pd.DataFrame, X: pd.DataFrame, p: dict, seed: int) -> None:
        from .tabular import Codec

        self.codec, self.B, self.p, self.seed = Codec.fit(B, X), B, p, seed
        self.model_rows = 0

        def counted(frame: pd.DataFrame) -> np.ndarray:
            self.model_rows += len(frame)
            return f(frame)

        self.f = counted
        n = len(self.codec.columns)
        self.kernel_width = float(p["kernel_width"] if p["kernel_width"] is not None else 0.75 * math.sqrt(n))

    def __call__(self, i: int, x: pd.DataFrame) -> tuple[np.ndarray, float, float, float]:
        from .tabular import explain_row, tabular_explainer

        explainer = tabular_explainer(self.B, self.codec, self.p["kernel_width"], self.seed)
        return explain_row(explainer, self.codec, x, self.f, self.p["num_samples"], self.p["alpha"], self.seed)


def fit_surrogate(base: Any, Z: np.ndarray, y: np.ndarray, alpha: float, seed: int) -> tuple[np.ndarray, float, float, float]:
    """lime's ``LimeBase.explain_instance_with_data`` on samples Z (row 0 = x) with labels y:
    (weight per unit, intercept, weighted R², surrogate prediction at x). Every unit is kept
    (feature_selection "none"): ``top_k`` chooses what is shown, not what is fitted."""
    from sklearn.linear_model import Ridge

    intercept, exp, score, local = base.explain_instance_with_data(
        Z, y[:, None], distances(Z), 0, Z.shape[1], feature_selection="none",
        model_regressor=Ridge(alpha=alpha, fit_intercept=True, random_state=seed))
    w = np.zeros(Z.shape[1])
    for j, v in exp:
        w[j] = v
    return w, float(intercept), float(score), float(np.ravel(local)[0])


# -- helpers ---------------------------------------------------------------------------------
def _check_pairs(data: RecData, pairs: pd.DataFrame) -> pd.DataFrame:
    for col in (USER, ITEM):
        if col not in pairs.columns:
            raise DataError(f"pairs to explain have no {col!r} column (columns: {list(pairs.columns)})")
    if len(pairs) == 0:
        raise DataError("no pairs to explain: the pairs table is empty")
    for col, index in ((USER, data.users.index), (ITEM, data.items.index)):
        bad = pairs.loc[~pairs[col].isin(index), col].unique().tolist()
        if bad:
            raise DataError(f"{col}s {bad[:5]} are not in dataset {data.name!r} (e.g. {index[:3].tolist()})")
    return pairs.reset_index(drop=True)


def _base_pairs(pairs: pd.DataFrame, output: np.ndarray, base: float, context: Any = ()) -> pd.DataFrame:
    cols = {c: pairs[c].to_numpy() for c in (USER, ITEM, "rank", "score", *context) if c in pairs.columns}
    cols["output_value"] = np.asarray(output, dtype=float)
    cols["base_value"] = np.full(len(pairs), base)
    return pd.DataFrame(cols)


def _sum_units(W: np.ndarray, names: list[str], groups: dict[str, list[str]]) -> np.ndarray:
    pos = {n: j for j, n in enumerate(names)}
    return np.stack([W[..., [pos[c] for c in cols]].sum(axis=-1) for cols in groups.values()], axis=-1)


def _top(w: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-np.abs(w), kind="stable")[:k].tolist())


def _topk_overlap(W: np.ndarray, k: int) -> np.ndarray:
    """Per row: the mean over pairs of seeds of |top-k(seed a) ∩ top-k(seed b)| / k (by |weight|)."""
    n_seeds, n_rows, _ = W.shape
    out = np.empty(n_rows)
    for i in range(n_rows):
        tops = [_top(W[s, i], k) for s in range(n_seeds)]
        out[i] = np.mean([len(tops[a] & tops[b]) / k for a in range(n_seeds) for b in range(a + 1, n_seeds)])
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _reasons(data: RecData, W: pd.DataFrame, X: pd.DataFrame, groups: dict[str, list[str]], fidelity: np.ndarray,
             min_fidelity: float, n: int) -> list[list[str]]:
    """Per pair: a caution first when the fidelity is low, then the ``n`` largest weights in words."""
    A = W.to_numpy(float)
    names = list(W.columns)
    out = []
    for i in range(len(A)):
        lines = []
        if fidelity[i] < min_fidelity:
            lines.append(f"Caution: low local fidelity (weighted R² {fidelity[i]:.2f} < {min_fidelity:.2f}): LIME's linear "
                         "surrogate does not describe the model near this pair; these weights are not a reliable reason")
        row = X.iloc[i]
        for j in np.argsort(-np.abs(A[i]), kind="stable")[:n]:
            if A[i, j] == 0:
                continue
            cols = groups.get(names[j], [names[j]])
            what = data.describe_feature(cols[0], row[cols[0]], row) if len(cols) == 1 and cols[0] in X.columns else f"{names[j]} features"
            lines.append(f"{what}: {'raises' if A[i, j] > 0 else 'lowers'} the score (LIME weight {A[i, j]:+.3g})")
        out.append(lines)
    return out
