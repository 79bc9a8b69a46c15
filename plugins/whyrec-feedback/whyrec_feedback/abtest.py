"""The ``ab-test`` analyzer: compare arms (variants, or the explanation methods users saw).

Per arm: exposures, successes (clicks, or "helpful" votes), the rate with a Wilson interval.
Per treatment against the control: difference and relative lift with intervals and a
two-proportion z-test (Holm-adjusted when there are several treatments); a sample-ratio
mismatch check; power and the sample size needed for a minimum detectable effect; CUPED when
a pre-period covariate is named; and an always-valid sequential test along daily looks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from whyrec.errors import DataError
from whyrec.results import FeedbackReport

from . import stats
from .store import Events, exposures, normalise

METRICS = ("ctr", "helpful")


@dataclass
class Units:
    """One entry per exposure: its arm, success (click / helpful), time and covariate."""

    arm: pd.Series
    success: np.ndarray
    timestamp: pd.Series | None = None
    covariate: np.ndarray | None = None

    def take(self, mask: np.ndarray) -> "Units":
        ts = None if self.timestamp is None else self.timestamp[mask].reset_index(drop=True)
        return Units(self.arm[mask].reset_index(drop=True), self.success[mask], ts,
                     None if self.covariate is None else self.covariate[mask])


class ABTest:
    """A/B test of logged feedback: rates per arm with Wilson intervals, lift with a two-proportion
    test, SRM check, power, CUPED and an always-valid (mSPRT) sequential test."""

    def __init__(self, arm: str | list[str] = "variant", control: str | None = None, variants: list[str] | None = None,
                 metric: str = "ctr", expected_split: list[float] | dict | None = None, alpha: float = 0.05,
                 srm_alpha: float = 0.001, mde: float = 0.1, power: float = 0.8, covariate: str | None = None,
                 sequential: bool = True, look_every: str = "1D", n_looks: int | None = None,
                 tau: float | None = None, min_exposures: int = 100) -> None:
        """
        arm: column (or list of columns, combined as "a/b") whose values are the arms, e.g.
            "variant", or "explanation_method" to compare explanation variants.
        control: the baseline arm (default: the first arm in sorted order).
        variants: the arms the test should have; one without events is an error.
        metric: "ctr" (clicks per impression) or "helpful" (helpful votes per explanation_feedback).
        expected_split: planned share of exposures per arm (list in arm order, or {arm: share});
            default equal. Used by the sample-ratio-mismatch check.
        mde: minimum detectable effect as a relative lift (0.1 = +10%) for the power analysis.
        covariate: a numeric pre-period column (e.g. the user's clicks last month) for CUPED.
        sequential / look_every / n_looks / tau / min_exposures: the always-valid test, looked at
            every ``look_every`` (pandas frequency) of the timestamps, or at ``n_looks`` equal
            slices of the events; tau is the mixture's standard deviation over the absolute
            difference (default: mde x control rate).
        """
        if metric not in METRICS:
            raise DataError(f"ab-test: metric {metric!r} is not one of {', '.join(METRICS)}")
        if not 0 < alpha < 1 or not 0 < srm_alpha < 1:
            raise DataError(f"ab-test: alpha ({alpha}) and srm_alpha ({srm_alpha}) must be between 0 and 1")
        if not 0 < power < 1:
            raise DataError(f"ab-test: power must be between 0 and 1, got {power}")
        if mde <= 0:
            raise DataError(f"ab-test: mde is a relative lift > 0 (0.1 = +10%), got {mde}")
        if n_looks is not None and n_looks < 1:
            raise DataError(f"ab-test: n_looks must be >= 1, got {n_looks}")
        if tau is not None and tau <= 0:
            raise DataError(f"ab-test: tau must be > 0, got {tau}")
        self.arm = [arm] if isinstance(arm, str) else list(arm)
        self.control, self.variants, self.metric = control, variants, metric
        self.expected_split, self.alpha, self.srm_alpha = expected_split, alpha, srm_alpha
        self.mde, self.power, self.covariate = mde, power, covariate
        self.sequential, self.look_every, self.n_looks, self.tau = sequential, look_every, n_looks, tau
        self.min_exposures = min_exposures

    # -- the table of units: one row per exposure -------------------------------------------
    def _arm_values(self, df: pd.DataFrame, what: str) -> pd.Series:
        missing = [c for c in self.arm if c not in df.columns]
        if missing:
            raise DataError(f"ab-test: {what} have no arm column {missing} (columns: {list(df.columns)[:20]}); set arm = \"<column>\"")
        if len(self.arm) == 1:
            return df[self.arm[0]]
        return df[self.arm].astype(str).agg("/".join, axis=1).where(df[self.arm].notna().all(axis=1))

    def units(self, ev: Events) -> tuple["Units", dict]:
        if self.metric == "ctr":
            imp, info = exposures(ev)
            if not len(imp):
                raise DataError("ab-test: the events have no impressions to compute a click-through rate from "
                                "(for explanation feedback alone use metric = \"helpful\")")
            success = imp["label"].to_numpy(dtype=float)
            src = imp
        else:
            src = ev.of("explanation_feedback")
            info = {"explanation_feedback": int(len(src))}
            if not len(src):
                raise DataError("ab-test: metric \"helpful\" needs explanation_feedback events, and there are none")
            success = src["helpful"].to_numpy(dtype=float) if "helpful" in src.columns else np.full(len(src), np.nan)
            if np.isnan(success).any():
                raise DataError(f"ab-test: {int(np.isnan(success).sum())} explanation_feedback event(s) have no 'helpful' value")
        arms = self._arm_values(src, "the exposures")
        covariate = None
        if self.covariate:
            if self.covariate not in src.columns:
                raise DataError(f"ab-test: covariate column {self.covariate!r} is not in the events (columns: {list(src.columns)[:20]})")
            try:
                covariate = pd.to_numeric(src[self.covariate]).to_numpy(dtype=float)
            except (ValueError, TypeError) as exc:
                raise DataError(f"ab-test: covariate column {self.covariate!r} is not numeric ({exc})") from exc
        # plain arrays, no DataFrame: the arm stays a pandas column (categorical variants stay
        # codes, never 10M Python strings)
        units = Units(arms.reset_index(drop=True), success,
                      src["timestamp"].reset_index(drop=True) if "timestamp" in src.columns else None, covariate)
        no_arm = units.arm.isna().to_numpy()
        if no_arm.any():
            info["exposures_without_arm"] = int(no_arm.sum())
            units = units.take(~no_arm)
        return units, info

    def _arms(self, units: "Units", ev: Events) -> tuple[list, str]:
        seen = sorted(units.arm.unique().tolist(), key=str)
        by_text = {str(a): a for a in seen}  # "1" on the command line names the arm 1 of the data
        if self.variants:
            wanted = [by_text.get(str(v), v) for v in self.variants]
            for v in wanted:
                if v not in seen:
                    other = set()
                    if all(c in ev.table.columns for c in self.arm):
                        other = set(self._arm_values(ev.table, "the events").dropna().unique().tolist())
                    what = "impressions" if self.metric == "ctr" else "explanation_feedback events"
                    has = f"has events but no {what}" if v in other else "has no events"
                    raise DataError(f"ab-test: variant {v!r} {has} (arms with {what}: {', '.join(map(str, seen)) or 'none'}); "
                                    "check the variant name or remove it from `variants`")
            arms = wanted
        else:
            arms = seen
        if len(arms) < 2:
            raise DataError(f"ab-test: needs at least two arms in column {'/'.join(self.arm)!r}, found {arms}; "
                            "set arm = \"<column>\" to the column that holds the variant")
        control = by_text.get(str(self.control), self.control) if self.control is not None else arms[0]
        if control not in arms:
            raise DataError(f"ab-test: control {control!r} has no events (arms: {', '.join(map(str, arms))})")
        return arms, control

    # -- analysis ------------------------------------------------------------------------------
    def analyze(self, events: pd.DataFrame, ctx: Any = None) -> FeedbackReport:
        """Analyse an events table (see ``whyrec_feedback.store``) -> FeedbackReport."""
        ev = normalise(events, "ab-test events")
        units, unit_info = self.units(ev)
        arms, control = self._arms(units, ev)
        keep = units.arm.isin(arms).to_numpy()
        if not keep.all():
            units = units.take(keep)
        code = pd.Categorical(units.arm, categories=arms).codes
        y = units.success
        n = np.bincount(code, minlength=len(arms)).astype(int)
        x = np.bincount(code, weights=y, minlength=len(arms)).round().astype(int)
        lo, hi = stats.wilson(x, n, self.alpha)
        rate_name = "ctr" if self.metric == "ctr" else "helpful_rate"
        success_name = "clicks" if self.metric == "ctr" else "helpful"
        arm_table = pd.DataFrame({"arm": [str(a) for a in arms], "exposures": n, success_name: x,
                                  rate_name: x / n, "ci_low": lo, "ci_high": hi,
                                  "control": [a == control for a in arms]})
        ci = arms.index(control)
        comps = []
        for k, a in enumerate(arms):
            if k == ci:
                continue
            c = stats.compare_proportions(x[k], n[k], x[ci], n[ci], self.alpha)
            comps.append({"arm": str(a), "control": str(control), **c})
        comp_table = pd.DataFrame(comps)
        adj = multipletests(comp_table["p_value"], alpha=self.alpha, method="holm")[1]
        comp_table["p_value_holm"] = adj
        comp_table["significant"] = adj < self.alpha

        split = self._expected_split(arms)
        srm = stats.srm_check(n, split, self.srm_alpha)
        pw = [{"arm": str(arms[k]), **stats.power_analysis(x[ci] / n[ci], n[ci], n[k], self.mde, self.alpha, self.power)}
              for k in range(len(arms)) if k != ci]

        summary: dict[str, Any] = {
            "analyzer": "ab-test", "metric": self.metric, "arm_column": "/".join(self.arm),
            "control": str(control), "arms": [str(a) for a in arms], "alpha": self.alpha,
            "input": {**ev.info(), **unit_info},
            "per_arm": {r["arm"]: {k: r[k] for k in ("exposures", success_name, rate_name, "ci_low", "ci_high")}
                        for r in arm_table.to_dict("records")},
            "comparisons": {r["arm"]: {k: v for k, v in r.items() if k != "arm"} for r in comp_table.to_dict("records")},
            "srm": srm, "power": {r["arm"]: {k: v for k, v in r.items() if k != "arm"} for r in pw},
        }
        tables = {"arms": arm_table, "comparisons": comp_table, "power": pd.DataFrame(pw),
                  "srm": pd.DataFrame({"arm": [str(a) for a in arms], "observed": n, "expected": srm["expected"],
                                       "expected_share": srm["expected_share"]})}
        if self.covariate:
            rows, info = stats.cuped(y, units.covariate, code, [str(a) for a in arms], ci, self.alpha)
            tables["cuped"] = pd.DataFrame(rows)
            summary["cuped"] = {"covariate": self.covariate, **info,
                                "comparisons": {r["arm"]: {k: v for k, v in r.items() if k != "arm"} for r in rows}}
        if self.sequential:
            seq_table, seq_summary = self._sequential(units, code, arms, ci, x[ci] / n[ci])
            tables["sequential"] = seq_table
            summary["sequential"] = seq_summary
        expl = helpfulness(ev, self.alpha)
        if expl is not None:
            tables.update(expl[0])
            summary["explanations"] = expl[1]
        summary["conclusion"] = self._conclusion(summary, arm_table, comp_table)
        try:
            from .figures import ab_figures

            figures = ab_figures(arm_table, rate_name, tables.get("sequential"), tables.get("helpfulness"), self.metric)
        except ImportError:  # pragma: no cover - matplotlib is a dependency
            figures = {}
        return FeedbackReport(summary=summary, tables=tables, figures=figures, csv_tables=("arms", "comparisons"))

    def _expected_split(self, arms: list) -> list[float]:
        split = self.expected_split
        if split is None:
            return [1.0] * len(arms)
        if isinstance(split, dict):
            missing = [a for a in arms if a not in split and str(a) not in split]
            if missing:
                raise DataError(f"ab-test: expected_split has no share for arm(s) {missing} (given: {list(split)})")
            vals = [float(split.get(a, split.get(str(a)))) for a in arms]
        else:
            if len(split) != len(arms):
                raise DataError(f"ab-test: expected_split has {len(split)} shares for {len(arms)} arms {arms}; give one per arm")
            vals = [float(v) for v in split]
        if any(v <= 0 for v in vals):
            raise DataError(f"ab-test: expected_split shares must be > 0, got {vals}")
        return vals

    def _sequential(self, units: "Units", code: np.ndarray, arms: list, ci: int, p_c: float) -> tuple[pd.DataFrame, dict]:
        y = units.success
        ts = units.timestamp
        by_time = False
        untimed = int(ts.isna().sum()) if ts is not None else 0
        # an event without a time cannot be put in a period: the looks then slice the events in
        # log order instead (counted and reported, never a crash, never dropped from the test)
        if ts is not None and self.n_looks is None and untimed == 0 and (pd.api.types.is_datetime64_any_dtype(ts)
                                                                          or pd.api.types.is_numeric_dtype(ts)):
            try:
                step = pd.tseries.frequencies.to_offset(self.look_every)
            except ValueError as exc:
                raise DataError(f"ab-test: look_every {self.look_every!r} is not a pandas frequency such as '1D' or '6h' ({exc})") from exc
            if pd.api.types.is_numeric_dtype(ts):
                # whyrec timestamps are seconds since the epoch: bin them without building datetimes
                try:
                    period = pd.Timedelta(step).total_seconds()
                except ValueError as exc:
                    raise DataError(f"ab-test: look_every {self.look_every!r} has no fixed length; use e.g. '1D' or '12h'") from exc
                look_code, starts = pd.factorize(np.floor(ts.to_numpy(dtype=float) / period), sort=True)
                look_labels = [pd.Timestamp((b + 1) * period, unit="s", tz="UTC") for b in starts]
            else:
                look_code, bins = pd.factorize(ts.dt.floor(self.look_every), sort=True)
                look_labels = [t + step for t in bins]
            by_time = len(look_labels) > 1  # one period only: slice the events instead
            look_names = [t.isoformat() for t in look_labels]
        if not by_time:
            k = self.n_looks or 10
            order = np.argsort(ts.to_numpy(), kind="stable") if ts is not None and untimed == 0 else np.arange(len(y))
            look_code = np.empty(len(y), dtype=np.int64)
            look_code[order] = np.minimum(np.arange(len(y)) * k // max(len(y), 1), k - 1)
            look_names = [f"{100 * (j + 1) // k}% of events" for j in range(k)]
        L = len(look_names)
        flat = look_code * len(arms) + code
        nn = np.bincount(flat, minlength=L * len(arms)).reshape(L, len(arms)).cumsum(axis=0)
        xx = np.bincount(flat, weights=y, minlength=L * len(arms)).reshape(L, len(arms)).cumsum(axis=0)
        tau = self.tau if self.tau is not None else self.mde * p_c
        rows, per_arm = [], {}
        for k, a in enumerate(arms):
            if k == ci:
                continue
            if not tau > 0:
                per_arm[str(a)] = {"note": "the control rate is 0, so the default tau (mde x control rate) is 0; set tau"}
                continue
            m = stats.msprt(xx[:, k], nn[:, k], xx[:, ci], nn[:, ci], tau, self.alpha, self.min_exposures)
            naive = stats.two_proportion_p(xx[:, k], nn[:, k], xx[:, ci], nn[:, ci])
            for j in range(L):
                rows.append({"look": j + 1, "until": look_names[j], "arm": str(a), "n_arm": int(nn[j, k]),
                             "n_control": int(nn[j, ci]), "diff": float(m["diff"][j]),
                             "p_always_valid": float(m["p_always_valid"][j]), "cs_low": float(m["cs_low"][j]),
                             "cs_high": float(m["cs_high"][j]), "p_fixed_horizon": float(naive[j])})
            sig = np.flatnonzero(m["p_always_valid"] < self.alpha)
            naive_sig = np.flatnonzero(naive < self.alpha)
            per_arm[str(a)] = {
                "p_always_valid": float(m["p_always_valid"][-1]), "cs_low": float(m["cs_low"][-1]),
                "cs_high": float(m["cs_high"][-1]), "significant": bool(len(sig)),
                "first_significant_look": int(sig[0] + 1) if len(sig) else None,
                "looks_where_fixed_horizon_p_below_alpha": int(len(naive_sig)),
            }
        summary = {"method": "mSPRT", "reference": stats.MSPRT_REFERENCE, "tau": tau, "looks": L,
                   "look_every": self.look_every if by_time else f"{L} equal slices of the events",
                   "min_exposures": self.min_exposures, "arms": per_arm}
        if untimed:
            summary["events_without_timestamp"] = untimed
            summary["note"] = (f"{untimed} event(s) have no timestamp, so the looks are equal slices of the events in log "
                               "order rather than periods of time; every event still counts in the test")
        return pd.DataFrame(rows), summary

    def _conclusion(self, summary: dict, arms: pd.DataFrame, comps: pd.DataFrame) -> str:
        parts = []
        if summary["srm"]["mismatch"]:
            parts.append(f"SAMPLE RATIO MISMATCH (p = {summary['srm']['p_value']:.2g}): the split of exposures is not the planned one; "
                         "fix the assignment before trusting any result.")
        rate = "CTR" if self.metric == "ctr" else "helpful rate"
        for r in comps.to_dict("records"):
            verdict = "significant" if r["significant"] else "not significant"
            lift = "n/a" if math.isnan(r["lift"]) else f"{100 * r['lift']:+.1f}%"
            parts.append(f"{r['arm']} vs {r['control']}: {rate} difference {r['diff']:+.5f} (lift {lift}), "
                         f"p = {r['p_value']:.3g} ({verdict} at alpha {self.alpha}).")
        for a, p in summary["power"].items():
            if isinstance(p.get("power_at_current_n"), float) and not math.isnan(p["power_at_current_n"]) and p["power_at_current_n"] < self.power:
                parts.append(f"{a}: underpowered for a {100 * self.mde:.0f}% lift (power {p['power_at_current_n']:.2f}); "
                             f"needs about {p['n_control_needed']:,} control and {p['n_treatment_needed']:,} treatment exposures.")
        return " ".join(parts)


def helpfulness(ev: Events, alpha: float = 0.05) -> tuple[dict[str, pd.DataFrame], dict] | None:
    """Helpfulness rate per explanation method (and per method and format, and per arm when the
    feedback carries a variant), with Wilson intervals and a chi-square test across methods."""
    fb = ev.of("explanation_feedback")
    if not len(fb):
        return None
    if "helpful" not in fb.columns or fb["helpful"].isna().any():
        raise DataError("explanation_feedback events need a true/false 'helpful' value; "
                        f"{int(fb['helpful'].isna().sum()) if 'helpful' in fb.columns else len(fb)} have none")
    if "explanation_method" not in fb.columns or fb["explanation_method"].isna().any():
        raise DataError("explanation_feedback events need the 'explanation_method' the user saw")
    from scipy.stats import chi2_contingency

    def table(keys: list[str]) -> pd.DataFrame:
        g = fb.groupby(keys, dropna=False, sort=True)["helpful"].agg(["size", "sum"]).reset_index()
        g = g.rename(columns={"size": "feedback", "sum": "helpful"})
        g["helpful"] = g["helpful"].round().astype(int)
        g["helpful_rate"] = g["helpful"] / g["feedback"]
        g["ci_low"], g["ci_high"] = stats.wilson(g["helpful"].to_numpy(), g["feedback"].to_numpy(), alpha)
        return g

    out = {"helpfulness": table(["explanation_method"])}
    info: dict[str, Any] = {"feedback_events": int(len(fb)),
                            "helpfulness_by_method": {r["explanation_method"]: {"feedback": int(r["feedback"]), "helpful": int(r["helpful"]),
                                                                                "helpful_rate": r["helpful_rate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
                                                      for r in out["helpfulness"].to_dict("records")}}
    if "explanation_format" in fb.columns and fb["explanation_format"].notna().any():
        out["helpfulness_by_format"] = table(["explanation_method", "explanation_format"])
    if "variant" in fb.columns and fb["variant"].notna().any():
        out["helpfulness_by_variant"] = table(["variant", "explanation_method"])
    h = out["helpfulness"]
    if len(h) >= 2:
        cont = np.stack([h["helpful"].to_numpy(), (h["feedback"] - h["helpful"]).to_numpy()], axis=1)
        if (cont.sum(axis=0) > 0).all():
            chi2, p, dof, _ = chi2_contingency(cont)
            info["test_across_methods"] = {"test": "chi-square test of independence (method x helpful)",
                                           "chi2": float(chi2), "dof": int(dof), "p_value": float(p)}
        best = h.sort_values("helpful_rate", ascending=False).iloc[0]
        info["most_helpful"] = str(best["explanation_method"])
    return out, info
