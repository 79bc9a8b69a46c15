"""The ``off-policy`` analyzer: what CTR would a different recommendation policy have had?

From logs with propensities (the logging policy's probability of each logged action) it
estimates the target policy's CTR with

- IPS   mean(w r),                    w = pi_target(a | x) / propensity
- SNIPS sum(w r) / sum(w)             (self-normalised: bounded, slightly biased)
- DM    mean(sum_a pi_target(a | x) q(x, a))   (direct method: the reward model alone)
- DR    DM + mean(w (r - q(x, a)))    (doubly robust: unbiased if either part is right)

with percentile bootstrap intervals over events (the reward model is fitted once, cross-fitted,
as in Dudik, Langford & Li 2011 and the Open Bandit Pipeline) and the effective sample size
(sum w)^2 / sum w^2 of the importance weights.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from whyrec.errors import DataError
from whyrec.results import FeedbackReport

from . import policies, reward, stats
from .store import exposures, normalise

ESTIMATORS = ("IPS", "SNIPS", "DR", "DM")
NEEDS_PROPENSITY = ("IPS", "SNIPS", "DR")
NEEDS_REWARD_MODEL = ("DR", "DM")
EXACT_BOOTSTRAP_BUDGET = 4e8  # gathers (a few seconds); above it the split Poisson bootstrap takes over


class OffPolicy:
    """Off-policy evaluation (IPS, SNIPS, DR, DM) of a target policy's CTR from logged clicks with
    propensities, with bootstrap intervals, effective sample size and a support check."""

    def __init__(self, target: str = "uniform", ranking: list | None = None, items: list | None = None,
                 logging_variant: str | None = None, reference_variant: str | None = None,
                 estimators: list[str] | None = None, bootstrap: int = 1000, alpha: float = 0.05, folds: int = 2,
                 reward_features: list[str] | None = None, reward_C: float = 1.0, seed: int = 0) -> None:
        """
        target: "uniform", "ranking" (with ``ranking``) or "model:<name>" (a model of the pipeline).
        ranking: items best first for target "ranking"; position k shows the k-th.
        items: the uniform policy's items (default: every logged item).
        logging_variant: evaluate from the events of this variant only (default: every event,
            except those of ``reference_variant``).
        reference_variant: a variant logged by the target policy itself (e.g. "random" for a
            uniform target): its on-policy CTR is the truth the estimates are compared with.
        estimators: subset of IPS, SNIPS, DR, DM (default: all).
        bootstrap: bootstrap resamples for the intervals (0 = none). alpha: 1 - interval level.
        folds: cross-fitting folds of the reward model (1 = fit and predict on all events).
        reward_features: context columns of the reward model (default: position and every
            user_feature_* column); the item is always a feature.
        reward_C: inverse L2 strength of the reward model's logistic regression.
        seed: folds and bootstrap resamples.
        """
        if not (target in ("uniform", "ranking") or (target.startswith("model:") and len(target) > 6)):
            raise DataError(f"off-policy: target {target!r} is not one of \"uniform\", \"ranking\" or \"model:<name of a pipeline model>\"")
        if ranking is not None and target != "ranking":
            raise DataError(f"off-policy: ranking is given but target is {target!r}; set target = \"ranking\" to evaluate the ranking")
        if items is not None and target != "uniform":
            raise DataError("off-policy: items (the uniform policy's action space) only applies to target = \"uniform\"")
        names = [e.upper() for e in (estimators or ESTIMATORS)]
        bad = [e for e in names if e not in ESTIMATORS]
        if bad or not names:
            raise DataError(f"off-policy: unknown estimator(s) {bad or names}; choose from {', '.join(ESTIMATORS)}")
        if bootstrap < 0:
            raise DataError(f"off-policy: bootstrap must be >= 0, got {bootstrap}")
        if not 0 < alpha < 1:
            raise DataError(f"off-policy: alpha must be between 0 and 1, got {alpha}")
        if folds < 1:
            raise DataError(f"off-policy: folds must be >= 1, got {folds}")
        if reward_C <= 0:
            raise DataError(f"off-policy: reward_C must be > 0, got {reward_C}")
        self.target, self.ranking, self.items = target, ranking, items
        self.logging_variant, self.reference_variant = logging_variant, reference_variant
        self.estimators = [e for e in ESTIMATORS if e in names]
        self.bootstrap, self.alpha, self.folds = bootstrap, alpha, folds
        self.reward_features, self.reward_C, self.seed = reward_features, reward_C, seed

    # -- choosing the events ---------------------------------------------------------------------
    def _split(self, imp: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        variants = imp["variant"] if "variant" in imp.columns else None
        seen = sorted(map(str, variants.dropna().unique())) if variants is not None else []
        for role, v in (("logging_variant", self.logging_variant), ("reference_variant", self.reference_variant)):
            if v is not None and (variants is None or not (variants == v).any()):
                raise DataError(f"off-policy: {role} {v!r} has no events (variants in the logs: {', '.join(seen) or 'none: no variant column'})")
        if self.logging_variant is not None and self.logging_variant == self.reference_variant:
            raise DataError(f"off-policy: logging_variant and reference_variant are both {self.logging_variant!r}; "
                            "the reference must be logged by the target policy, the estimate from another one")
        ref = imp[(variants == self.reference_variant).to_numpy()] if self.reference_variant is not None else None
        if self.logging_variant is not None:
            logged = imp[(variants == self.logging_variant).to_numpy()]
        elif ref is not None:
            logged = imp[(variants != self.reference_variant).to_numpy()]
        else:
            logged = imp
        if not len(logged):
            raise DataError(f"off-policy: no logged impressions to evaluate from (variants: {', '.join(seen) or 'none'})")
        return logged, ref

    def _propensity(self, logged: pd.DataFrame) -> np.ndarray | None:
        if not any(e in NEEDS_PROPENSITY for e in self.estimators):
            return None
        asked = "/".join(e for e in self.estimators if e in NEEDS_PROPENSITY)
        if "propensity" not in logged.columns or logged["propensity"].isna().all():
            raise DataError(f"off-policy: {asked} need the logging policy's propensities, but the events have no 'propensity' values "
                            f"(columns: {list(logged.columns)[:20]}); log the probability with which each item was shown, "
                            "or use estimators = [\"DM\"] (reward model only)")
        p = logged["propensity"].to_numpy(dtype=float)
        if np.isnan(p).any():
            raise DataError(f"off-policy: {int(np.isnan(p).sum())} of {len(p)} logged event(s) have no propensity; {asked} need one per event")
        if ((p <= 0) | (p > 1)).any():  # normalise() already refuses these; kept for direct callers
            raise DataError(f"off-policy: propensities must be in (0, 1]; found {p[(p <= 0) | (p > 1)][:3].tolist()}")
        return p

    def _target(self, space: policies.ItemSpace, logged: pd.DataFrame, slots: np.ndarray, positions: list, ctx: Any) -> policies.Target:
        if self.target == "uniform":
            return policies.uniform(space, self.items)
        if self.target == "ranking":
            return policies.ranking(space, self.ranking, slots, positions)
        return policies.from_model(self.target[len("model:"):], ctx, space, logged["user"], slots, len(positions))

    # -- the analysis ----------------------------------------------------------------------------
    def analyze(self, events: pd.DataFrame, ctx: Any = None) -> FeedbackReport:
        """Estimate the target policy's CTR from ``events`` (see ``whyrec_feedback.store``)."""
        ev = normalise(events, "off-policy events")
        imp, exp_info = exposures(ev)
        if not len(imp):
            raise DataError("off-policy: the events have no impressions (logged item, position, propensity, click)")
        logged, ref_rows = self._split(imp)
        p = self._propensity(logged)
        r = logged["label"].to_numpy(dtype=float)
        n = len(r)
        if logged["item"].isna().any():
            raise DataError(f"off-policy: {int(logged['item'].isna().sum())} logged event(s) have no item")
        slots, positions = policies.position_slots(logged["position"] if "position" in logged.columns else None, n)
        space = policies.ItemSpace.build(logged["item"])
        target = self._target(space, logged, slots, positions, ctx)
        # codes in order of first appearance: the same order ItemSpace.build gave the logged items
        item_code = pd.factorize(logged["item"])[0].astype(np.int64)
        pi = target.prob_of_logged(item_code)
        rng = np.random.default_rng(self.seed)

        terms: dict[str, np.ndarray] = {}
        w = None
        if p is not None:
            w = pi / p
            terms["wr"] = w * r
            terms["w"] = w
        fit_info: dict[str, Any] = {}
        if any(e in NEEDS_REWARD_MODEL for e in self.estimators):
            feats = self.reward_features
            if feats is None:
                feats = (["position"] if "position" in logged.columns else []) + sorted(c for c in logged.columns if str(c).startswith("user_feature_"))
            design = reward.build_design(logged, feats, item_code, space.n)
            cf = reward.cross_fit(design, r, self.folds, self.reward_C, rng)
            dm = self._dm(target, cf, space.n)
            terms["dm"] = dm
            if w is not None and "DR" in self.estimators:
                terms["dr"] = dm + w * (r - cf.q_logged(design))
            fit_info = {"reward_model": "logistic regression (scikit-learn), one-hot " + ", ".join(["item", *design.cat_names])
                        + (", numeric " + ", ".join(design.num_names) if design.num_names else ""),
                        "reward_features": ["item", *feats], "folds": self.folds, "C": self.reward_C}

        point = self._point(terms)
        with threadpool_limits(limits=1):  # matrix-vector products: threads only contend on a shared machine
            boot, boot_method = self._bootstrap(terms, r != 0, rng) if self.bootstrap else ({}, "none")
        reference = None
        if ref_rows is not None:
            x_ref, n_ref = int(ref_rows["label"].sum()), len(ref_rows)
            lo, hi = stats.wilson(x_ref, n_ref, self.alpha)
            reference = {"variant": str(self.reference_variant), "exposures": n_ref, "clicks": x_ref,
                         "ctr": x_ref / n_ref, "ci_low": float(lo), "ci_high": float(hi)}
        mass = target.unsupported_mass(space.n_logged)
        never = [space.items[c] for c in target.chosen_codes() if c >= space.n_logged]
        supported = mass == 0
        rows = []
        for e in self.estimators:
            lo, hi, se = boot.get(e, (math.nan, math.nan, math.nan))
            row = {"estimator": e, "value": point[e], "ci_low": lo, "ci_high": hi, "bootstrap_se": se, "supported": supported}
            if reference is not None:
                row["relative_error"] = (point[e] - reference["ctr"]) / reference["ctr"] if reference["ctr"] > 0 else math.nan
                row["covers_reference"] = bool(lo <= reference["ctr"] <= hi) if not math.isnan(lo) else None
            rows.append(row)
        est = pd.DataFrame(rows)

        summary: dict[str, Any] = {
            "analyzer": "off-policy", "target": target.name, "target_description": target.description,
            "input": {**ev.info(), **exp_info},
            "logging_variant": self.logging_variant, "logged_events": n, "logged_clicks": int(r.sum()),
            "logged_ctr": float(r.mean()), "positions": [None if v is None else _plain(v) for v in positions],
            "n_items_logged": space.n_logged, "alpha": self.alpha, "bootstrap": self.bootstrap, "interval_method": boot_method,
            "estimates": {row["estimator"]: {k: v for k, v in row.items() if k != "estimator"} for row in rows},
            "supported": supported, **fit_info,
        }
        notes = []
        if w is not None:
            ess = float(w.sum() ** 2 / (w * w).sum()) if (w > 0).any() else 0.0
            summary["weights"] = {"ess": ess, "ess_fraction": ess / n, "mean": float(w.mean()), "max": float(w.max()),
                                  "nonzero": int((w > 0).sum())}
            if ess < 100:
                notes.append(f"effective sample size is only {ess:.0f} of {n} events: the weighted estimates rest on few events")
        if not supported:
            shown = ", ".join(map(str, never[:10])) + (" ..." if len(never) > 10 else "")
            msg = (f"UNSUPPORTED: target {target.name!r} puts {100 * mass:.1f}% of its probability on {len(never)} item(s) never "
                   f"logged ({shown}); the logs hold no propensity or click for them, so IPS/SNIPS/DR cannot see those actions "
                   "and the estimates are biased (marked unsupported)")
            notes.append(msg)
            summary["unsupported"] = {"items_never_logged": [_plain(v) for v in never], "target_mass": mass, "message": msg}
        if reference is not None:
            summary["reference"] = reference
        summary["notes"] = notes
        tables = {"estimates": est, "by_position": self._by_position(terms, r, slots, positions, ref_rows)}
        if not supported:
            tables["unsupported_items"] = pd.DataFrame({"item": [str(v) for v in never]})
        try:
            from .figures import ope_figures

            figures = ope_figures(est, w if w is not None else np.zeros(0), reference, target.name)
        except ImportError:  # pragma: no cover
            figures = {}
        return FeedbackReport(summary=summary, tables=tables, figures=figures, csv_tables=("estimates",))

    def _dm(self, target: policies.Target, cf: reward.CrossFit, n_items: int) -> np.ndarray:
        """Expected reward of the target's choice in each logged context (out-of-fold model)."""
        out = np.empty(len(cf.fold))
        for k, m in enumerate(cf.models):
            rows = np.flatnonzero(cf.fold == k)
            c = cf.ctx_logit[rows]
            if target.kind == "uniform":
                beta = m.item_coef[target.support]
                inv, uniq = pd.factorize(c)  # few distinct contexts: one row of the matrix each
                vals = np.empty(len(uniq))
                step = max(1, 2_000_000 // max(len(beta), 1))
                for s in range(0, len(uniq), step):
                    vals[s:s + step] = reward._sigmoid(uniq[s:s + step, None] + beta[None, :]).mean(axis=1)
                out[rows] = vals[inv]
            else:
                out[rows] = reward._sigmoid(c + m.item_coef[target.choice[rows]])
        return out

    def _point(self, t: dict[str, np.ndarray]) -> dict[str, float]:
        out = {}
        if "wr" in t:
            out["IPS"] = float(t["wr"].mean())
            sw = t["w"].sum()
            out["SNIPS"] = float(t["wr"].sum() / sw) if sw > 0 else math.nan
        if "dr" in t:
            out["DR"] = float(t["dr"].mean())
        if "dm" in t:
            out["DM"] = float(t["dm"].mean())
        return out

    def _bootstrap(self, t: dict[str, np.ndarray], clicked: np.ndarray,
                   rng: np.random.Generator) -> tuple[dict[str, tuple[float, float, float]], str]:
        """Percentile bootstrap intervals over events.

        Exact nonparametric bootstrap when affordable: events with identical terms form
        groups and a resample is multinomial counts over the groups (the same distribution as
        resampling events), or, when there are few repeats, resampled event indices. When even
        that is too costly (millions of events with distinct propensities), a Poisson bootstrap
        that draws the clicked events exactly and the sums over the others from their moments.
        """
        keys = list(t)
        N = len(next(iter(t.values())))
        B = self.bootstrap
        # cost of one resample in "gathers": 4 per event by index, ~28 per group by multinomial
        affordable = lambda G: B * min(4 * N, 28 * G) <= EXACT_BOOTSTRAP_BUDGET  # noqa: E731
        code, G = None, 0
        for k in sorted(keys, key=lambda k: k != "w"):  # the weights first: they are the most distinct
            c, u = pd.factorize(t[k])
            if code is None:
                code, G = c.astype(np.int64), len(u)
            else:
                code, uniq = pd.factorize(code * len(u) + c)
                G = len(uniq)
            if not affordable(G):  # more keys only add groups: stop hashing millions of floats
                break
        if affordable(G):
            n_g = np.bincount(code, minlength=G)
            first = np.empty(G, dtype=np.int64)
            first[code[::-1]] = np.arange(N)[::-1]
            vals = {k: t[k][first] for k in keys}
            draws = self._draws(t, vals, n_g, N, B, 4 * N <= 28 * G, rng)
            method = f"percentile bootstrap, {B} resamples of the {N} events"
            return self._intervals(draws, np.array([0] * B)), method
        return self._poisson_split(t, clicked, rng), (
            f"Poisson bootstrap, {B} resamples (Chamandy et al. 2012): the {int(clicked.sum())} clicked events drawn exactly, "
            f"the sums over the {N - int(clicked.sum())} others from their exact bootstrap mean and covariance "
            f"(normal; the exact bootstrap of {N} distinct events x {B} resamples is too costly)")

    def _poisson_split(self, t: dict[str, np.ndarray], clicked: np.ndarray,
                       rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
        """Poisson bootstrap for many events with distinct terms. Each event gets a Poisson(1)
        count per resample; the counts are independent, so the resampled sums split into the
        events that clicked (few, heavy-tailed terms: drawn exactly) and the rest (millions of
        light terms: their resampled sums are normal with mean sum(t) and covariance sum(t t'),
        exactly the Poisson bootstrap's first two moments)."""
        keys = list(t)
        heavy = np.flatnonzero(clicked)  # IPS terms are zero without a click; DR's residual r - q is near 1 with one
        light = np.flatnonzero(~clicked)
        T = np.stack([t[k][light] for k in keys] + [np.ones(len(light))], axis=1)
        mean = T.sum(axis=0)
        cov = T.T @ T
        B = self.bootstrap
        bulk = rng.multivariate_normal(mean, cov, size=B, method="eigh")
        H = np.stack([t[k][heavy] for k in keys] + [np.ones(len(heavy))], axis=1)
        top = np.empty((B, H.shape[1]))
        step = max(1, 5_000_000 // max(len(heavy), 1))
        for s0 in range(0, B, step):
            b = min(step, B - s0)
            top[s0:s0 + b] = rng.poisson(1.0, size=(b, len(heavy))) @ H
        tot = bulk + top
        sums = {k: tot[:, j] for j, k in enumerate(keys)}
        n = tot[:, -1]
        draws = {}
        if "wr" in sums:
            draws["IPS"] = sums["wr"] / n
            draws["SNIPS"] = sums["wr"] / sums["w"]
        if "dr" in sums:
            draws["DR"] = sums["dr"] / n
        if "dm" in sums:
            draws["DM"] = sums["dm"] / n
        draws = {e: v for e, v in draws.items() if e in self.estimators}
        return self._intervals(draws, np.zeros(B, dtype=int))

    def _draws(self, t: dict[str, np.ndarray], vals: dict[str, np.ndarray], n_g: np.ndarray, N: int, B: int,
               by_index: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """B resampled values of each estimator; vals are the terms of P points, each drawn
        with probability n_g / sum(n_g), N draws per resample."""
        keys = list(vals)
        res = {e: np.empty(B) for e in ("IPS", "SNIPS", "DR", "DM")}
        P = len(next(iter(vals.values())))
        step = max(1, min(B, 5_000_000 // max(N if by_index else P, 1)))
        pv = n_g / n_g.sum()
        done = 0
        while done < B:
            b = min(step, B - done)
            sl = slice(done, done + b)
            if by_index:
                idx = rng.integers(0, N, size=(b, N))
                sums = {k: t[k][idx].sum(axis=1) for k in keys}
            else:
                cnt = rng.multinomial(N, pv, size=b).astype(float)
                sums = {k: cnt @ vals[k] for k in keys}
            if "wr" in sums:
                num, den = sums["wr"], sums["w"]
                res["IPS"][sl] = num / N
                with np.errstate(invalid="ignore", divide="ignore"):
                    res["SNIPS"][sl] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
            if "dr" in sums:
                res["DR"][sl] = sums["dr"] / N
            if "dm" in sums:
                res["DM"][sl] = sums["dm"] / N
            done += b
        have = {"IPS": "wr", "SNIPS": "wr", "DR": "dr", "DM": "dm"}
        return {e: v for e, v in res.items() if e in self.estimators and have[e] in vals}

    def _intervals(self, draws: dict[str, np.ndarray], subset: np.ndarray) -> dict[str, tuple[float, float, float]]:
        q = [100 * self.alpha / 2, 100 * (1 - self.alpha / 2)]
        out = {}
        for e, d in draws.items():
            ends, ses = [], []
            for j in np.unique(subset):  # one subset for the exact bootstrap
                dj = d[subset == j]
                ends.append(np.nanpercentile(dj, q))
                ses.append(np.nanstd(dj))
            lo, hi = np.mean(ends, axis=0)
            out[e] = (float(lo), float(hi), float(np.mean(ses)))
        return out

    def _by_position(self, t: dict[str, np.ndarray], r: np.ndarray, slots: np.ndarray, positions: list,
                     ref_rows: pd.DataFrame | None) -> pd.DataFrame:
        L = len(positions)
        cnt = np.bincount(slots, minlength=L)
        out = {"position": [_plain(p) for p in positions], "events": cnt, "logged_ctr": np.bincount(slots, r, L) / np.maximum(cnt, 1)}
        if "wr" in t:
            out["IPS"] = np.bincount(slots, t["wr"], L) / np.maximum(cnt, 1)
            sw = np.bincount(slots, t["w"], L)
            out["SNIPS"] = np.bincount(slots, t["wr"], L) / np.where(sw > 0, sw, np.nan)
        if "dr" in t:
            out["DR"] = np.bincount(slots, t["dr"], L) / np.maximum(cnt, 1)
        if "dm" in t:
            out["DM"] = np.bincount(slots, t["dm"], L) / np.maximum(cnt, 1)
        df = pd.DataFrame(out)
        if ref_rows is not None and "position" in ref_rows.columns and positions != [None]:
            g = ref_rows.groupby("position")["label"].mean()
            df["reference_ctr"] = [float(g.get(p, math.nan)) for p in positions]
        return df


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
