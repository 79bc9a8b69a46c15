"""Statistics of A/B tests on proportions. Distributions come from scipy and statsmodels.

Conventions: ``x`` successes (clicks) out of ``n`` exposures; "lift" is relative
(p_treatment / p_control - 1); intervals are two-sided at level 1 - alpha.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats as sst
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

MSPRT_REFERENCE = (
    "mixture sequential probability ratio test (mSPRT) with a normal mixture over the "
    "difference, plug-in variance: Johari, Koomen, Pekelis & Walsh, 'Always Valid Inference: "
    "Continuous Monitoring of A/B Tests', Operations Research 70(3), 2022 (arXiv:1512.04922); "
    "the confidence sequence is the set of differences the mSPRT does not reject (their Prop. 3)"
)


def wilson(x: np.ndarray | int, n: np.ndarray | int, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for x successes out of n (statsmodels)."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = proportion_confint(x, np.where(n > 0, n, 1), alpha=alpha, method="wilson")
    lo = np.where(n > 0, lo, np.nan)
    hi = np.where(n > 0, hi, np.nan)
    return lo, hi


def compare_proportions(x_t: int, n_t: int, x_c: int, n_c: int, alpha: float = 0.05) -> dict:
    """Treatment vs control: difference (Newcombe hybrid score CI), relative lift (CI from
    the log risk ratio) and the pooled two-proportion z-test."""
    p_t, p_c = x_t / n_t, x_c / n_c
    if x_t + x_c == 0 or x_t + x_c == n_t + n_c:
        z, p = 0.0, 1.0  # no variation at all: the test has nothing to reject
    else:
        z, p = proportions_ztest([x_t, x_c], [n_t, n_c], alternative="two-sided")
    d_lo, d_hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", compare="diff", alpha=alpha)
    if x_c > 0 and x_t > 0:
        r_lo, r_hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="log-adjusted", compare="ratio", alpha=alpha)
        lift, l_lo, l_hi = p_t / p_c - 1.0, r_lo - 1.0, r_hi - 1.0
    else:  # a ratio with a zero count has no finite interval
        lift = (p_t / p_c - 1.0) if p_c > 0 else math.nan
        l_lo = l_hi = math.nan
    return {"diff": p_t - p_c, "diff_ci_low": float(d_lo), "diff_ci_high": float(d_hi),
            "lift": float(lift), "lift_ci_low": float(l_lo), "lift_ci_high": float(l_hi),
            "z": float(z), "p_value": float(p)}


def srm_check(observed: Sequence[int], expected_share: Sequence[float], alpha: float = 0.001) -> dict:
    """Sample-ratio mismatch: chi-square goodness of fit of the exposures per arm against the
    planned split. A tiny p-value means the assignment (or the logging) is broken and the
    test's results should not be trusted."""
    obs = np.asarray(observed, dtype=float)
    share = np.asarray(expected_share, dtype=float)
    share = share / share.sum()
    exp = share * obs.sum()
    chi2, p = sst.chisquare(obs, exp)
    return {"chi2": float(chi2), "p_value": float(p), "alpha": alpha, "mismatch": bool(p < alpha),
            "observed": obs.astype(int).tolist(), "expected": exp.tolist(), "expected_share": share.tolist()}


def power_analysis(p_c: float, n_c: int, n_t: int, mde: float, alpha: float = 0.05, power: float = 0.8) -> dict:
    """Power of the current sample for a relative lift ``mde`` over the control rate, the
    sample size per arm that would reach ``power``, and the lift detectable now (statsmodels
    NormalIndPower on Cohen's h)."""
    out = {"mde": mde, "alpha": alpha, "target_power": power, "baseline": p_c,
           "power_at_current_n": math.nan, "n_control_needed": math.nan, "n_treatment_needed": math.nan,
           "mde_at_current_n": math.nan, "note": ""}
    target = p_c * (1.0 + mde)
    if not (0.0 < p_c < 1.0) or not (0.0 < target < 1.0):
        out["note"] = f"baseline rate {p_c:.4g} with a lift of {mde:g} is not a proportion in (0, 1); power cannot be computed"
        return out
    h = proportion_effectsize(target, p_c)
    ratio = n_t / n_c
    ana = NormalIndPower()
    out["power_at_current_n"] = float(ana.power(effect_size=h, nobs1=n_c, alpha=alpha, ratio=ratio))
    # statsmodels' root finder fails at extreme settings (e.g. alpha 0.9): NaN, a 1-element
    # array that did not converge, or a ValueError. Those figures are then NaN with a note.
    n1 = _solve(ana, effect_size=h, nobs1=None, alpha=alpha, power=power, ratio=ratio)
    h_now = _solve(ana, effect_size=None, nobs1=n_c, alpha=alpha, power=power, ratio=ratio)
    if math.isnan(n1) or math.isnan(h_now):
        out["note"] = (f"the sample size for power {power:g} at alpha {alpha:g} could not be solved "
                       "(statsmodels' root finder did not converge)")
    if not math.isnan(n1):
        out["n_control_needed"] = math.ceil(n1)
        out["n_treatment_needed"] = math.ceil(n1 * ratio)
    if not math.isnan(h_now):
        p1 = math.sin(math.asin(math.sqrt(p_c)) + h_now / 2.0) ** 2
        out["mde_at_current_n"] = p1 / p_c - 1.0
    return out


def _solve(ana: NormalIndPower, **kw) -> float:
    """solve_power's converged solution as a float; NaN when the solver fails (a NaN, an
    unconverged array or a ValueError from its bracketing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = ana.solve_power(**kw)
        except ValueError:
            return math.nan
    return float(value) if np.ndim(value) == 0 else math.nan


def cuped(y: np.ndarray, x: np.ndarray, arm_code: np.ndarray, arm_names: list[str], control: int,
          alpha: float = 0.05) -> tuple[list[dict], dict]:
    """CUPED (Deng, Xu, Kohavi & Walker, WSDM 2013): y' = y - theta (x - mean x) with theta =
    cov(x, y) / var(x) pooled over arms, then Welch t-tests of the adjusted means against the
    control (arm code ``control``). Missing covariate values take the mean (their advice for
    new units)."""
    x = np.asarray(x, dtype=float)
    missing = np.isnan(x)
    if missing.all():
        raise ValueError("the covariate is missing for every exposure")
    x = np.where(missing, np.nanmean(x), x)
    y = np.asarray(y, dtype=float)
    vx = x.var()
    theta = float(((x - x.mean()) * (y - y.mean())).mean() / vx) if vx > 0 else 0.0
    y_adj = y - theta * (x - x.mean())
    ctrl = arm_code == control
    c_raw, c_adj = DescrStatsW(y[ctrl]), DescrStatsW(y_adj[ctrl])
    rows = []
    for k, arm in enumerate(arm_names):
        if k == control:
            continue
        t = arm_code == k
        raw = CompareMeans(DescrStatsW(y[t]), c_raw)
        adj = CompareMeans(DescrStatsW(y_adj[t]), c_adj)
        lo, hi = adj.tconfint_diff(alpha=alpha, usevar="unequal")
        _, p_adj, _ = adj.ttest_ind(usevar="unequal")
        _, p_raw, _ = raw.ttest_ind(usevar="unequal")
        rows.append({"arm": arm, "diff_adjusted": float(y_adj[t].mean() - y_adj[ctrl].mean()),
                     "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p_adj),
                     "diff_unadjusted": float(y[t].mean() - y[ctrl].mean()), "p_value_unadjusted": float(p_raw),
                     "se_unadjusted": float(raw.std_meandiff_separatevar), "se_adjusted": float(adj.std_meandiff_separatevar)})

    def within(v: np.ndarray) -> float:  # variance within arms (the arm effect is not noise)
        return sum(float(v[arm_code == k].var()) * int((arm_code == k).sum()) for k in range(len(arm_names))) / len(v)

    vy = within(y)
    info = {"theta": theta, "covariate_missing": int(missing.sum()),
            "variance_reduction": float(1.0 - within(y_adj) / vy) if vy > 0 else 0.0,
            "correlation": float(np.corrcoef(x, y)[0, 1]) if vx > 0 and y.std() > 0 else 0.0}
    return rows, info


def msprt(x_t: np.ndarray, n_t: np.ndarray, x_c: np.ndarray, n_c: np.ndarray, tau: float,
          alpha: float = 0.05, min_n: int = 100) -> dict[str, np.ndarray]:
    """Always-valid p-values and confidence sequences for p_t - p_c along cumulative looks.

    At each look the mSPRT statistic with a N(0, tau^2) mixture over the difference is
    Lambda = sqrt(V / (V + tau^2)) exp(tau^2 D^2 / (2 V (V + tau^2))), D the observed
    difference and V its plug-in variance. The always-valid p-value is the running minimum
    of 1 / Lambda; stopping the first time it drops below alpha keeps the false-positive rate
    at most alpha however often the test is looked at. Looks with fewer than ``min_n``
    exposures in an arm are not tested (the normal approximation needs some data).
    """
    x_t, n_t, x_c, n_c = (np.asarray(a, dtype=float) for a in (x_t, n_t, x_c, n_c))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_t, p_c = x_t / n_t, x_c / n_c
        d = p_t - p_c
        v = p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c
        t2 = tau * tau
        ok = (n_t >= min_n) & (n_c >= min_n) & (v > 0)
        vv = np.where(ok, v, 1.0)
        log_lam = 0.5 * np.log(vv / (vv + t2)) + t2 * d * d / (2 * vv * (vv + t2))
        log_lam = np.where(ok, log_lam, 0.0)
        p_now = np.minimum(1.0, np.exp(-log_lam))
        half = np.sqrt(2 * vv * (vv + t2) / t2 * (math.log(1 / alpha) + 0.5 * np.log((vv + t2) / vv)))
    p_av = np.minimum.accumulate(p_now)
    lo = np.where(ok, d - half, -np.inf)
    hi = np.where(ok, d + half, np.inf)
    # the running intersection of a confidence sequence is still one: it only shrinks
    lo, hi = np.maximum.accumulate(lo), np.minimum.accumulate(hi)
    return {"diff": d, "log_lambda": log_lam, "p_always_valid": p_av, "cs_low": lo, "cs_high": hi, "tested": ok}


def two_proportion_p(x_t: np.ndarray, n_t: np.ndarray, x_c: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """Fixed-horizon pooled z-test p-values, vectorised (what naive daily peeking looks at)."""
    x_t, n_t, x_c, n_c = (np.asarray(a, dtype=float) for a in (x_t, n_t, x_c, n_c))
    with np.errstate(invalid="ignore", divide="ignore"):
        pool = (x_t + x_c) / (n_t + n_c)
        se = np.sqrt(pool * (1 - pool) * (1 / n_t + 1 / n_c))
        z = (x_t / n_t - x_c / n_c) / se
    p = 2 * sst.norm.sf(np.abs(z))
    return np.where(se > 0, p, 1.0)
