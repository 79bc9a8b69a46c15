"""Benchmark of whyrec-feedback: the ab-test and off-policy analyzers next to their peers.

Cases (one process, run one after the other; wall seconds and peak resident memory above the
memory before the case):

1. OBD: the real Open Bandit sample. Off-policy estimate of the uniform-random policy from the
   BTS logs against the random logs' on-policy CTR (the issue's validation): every estimator's
   value, interval and relative error, whyrec next to the Open Bandit Pipeline (obp 0.4.1:
   IPW/SNIPW/DR with its RegressionModel, 1,000 bootstrap resamples). IPS/SNIPS must equal obp's
   IPW/SNIPW exactly (the same formula on the same weights).
2. ab-test on 10,000,000 generated events (whyrec_feedback.simulate: two logging policies as
   arms). Peer: the minimal hand analysis, a pandas groupby and statsmodels' two-proportion
   z-test and Wilson intervals. Results must agree.
3. off-policy on the same 10,000,000 events (uniform target from the 5M skewed logs, truth known
   exactly). obp needs an action_dist array of n x 80 items x 3 positions floats (9.6 GB for 5M
   events), so it runs on a 50,000-event subsample for the throughput ratio.
4. off-policy on 10,000,000 events whose propensities all differ (as BTS logs' do): the exact
   bootstrap would cost events x resamples, so whyrec switches to its split Poisson bootstrap.

    .venv/bin/python bench/bench_feedback.py             # writes bench/results/feedback.json
    .venv/bin/python bench/bench_feedback.py --events 1000000

obp is not a whyrec dependency. For the peer columns install it (and the two modules it
imports) into a side folder:

    .venv/bin/pip install --no-deps --target .cache/bench-peers obp==0.4.1 seaborn==0.13.2 mypy_extensions==1.0.0
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("WHYREC_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS (Linux >= 4.0)
    except OSError:
        pass


class Case:
    """Times a block and records the peak memory it added."""

    def __enter__(self):
        gc.collect()
        reset_peak()
        self.base = rss_mb()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.peak_mb = rss_mb("VmHWM") - self.base
        return False


def import_obp():
    try:
        import obp  # noqa: F401
    except ImportError:
        side = ROOT / ".cache" / "bench-peers"
        if side.is_dir():
            sys.path.insert(0, str(side))
    try:
        import obp.ope as ope

        return ope
    except ImportError as exc:
        print(f"obp not available ({exc}); peer columns are skipped. See the docstring to install it.", file=sys.stderr)
        return None


# -- 1. OBD --------------------------------------------------------------------------------------
def obd_case(ope) -> dict:
    from whyrec_datasets.openbandit import OpenBandit

    from whyrec_feedback.offpolicy import OffPolicy

    events = OpenBandit(policy="both", test_fraction=0.0).load().interactions
    ref = events[events["variant"] == "random"]["label"].mean()
    with Case() as c:
        rep = OffPolicy(logging_variant="bts", reference_variant="random", bootstrap=1000, seed=0).analyze(events)
    out = {"events": int((events["variant"] == "bts").sum()), "reference_ctr": float(ref), "whyrec_seconds": c.seconds,
           "whyrec_peak_mb": c.peak_mb, "reference": rep.summary["reference"], "ess": rep.summary["weights"]["ess"],
           "whyrec": {e: {k: v[k] for k in ("value", "ci_low", "ci_high", "relative_error", "covers_reference")}
                      for e, v in rep.summary["estimates"].items()}}
    if ope is None:
        return out
    from sklearn.linear_model import LogisticRegression

    bts = events[events["variant"] == "bts"].reset_index(drop=True)
    n, n_items, L = len(bts), 80, 3
    action = bts["item"].to_numpy()
    pos = bts["position"].to_numpy() - 1
    r = bts["label"].to_numpy()
    ps = bts["propensity"].to_numpy()
    ctx_x = pd.get_dummies(bts[[f"user_feature_{k}" for k in range(4)]].astype(str)).to_numpy(float)
    with Case() as c:
        ad = np.full((n, n_items, L), 1.0 / n_items)
        reg = ope.RegressionModel(n_actions=n_items, len_list=L, base_model=LogisticRegression(C=1.0, max_iter=1000),
                                  action_context=np.eye(n_items), fitting_method="normal")
        q = reg.fit_predict(context=ctx_x, action=action, reward=r, position=pos, n_folds=2, random_state=0)
        res = {}
        for name, est, kw in (("IPS", ope.InverseProbabilityWeighting(), {}),
                              ("SNIPS", ope.SelfNormalizedInverseProbabilityWeighting(), {}),
                              ("DR", ope.DoublyRobust(), {"estimated_rewards_by_reg_model": q})):
            args = dict(reward=r, action=action, position=pos, pscore=ps, action_dist=ad, **kw)
            v = est.estimate_policy_value(**args)
            ci = est.estimate_interval(**args, alpha=0.05, n_bootstrap_samples=1000, random_state=0)
            res[name] = {"value": float(v), "ci_low": float(ci["95.0% CI (lower)"]), "ci_high": float(ci["95.0% CI (upper)"]),
                         "relative_error": float((v - ref) / ref)}
            res[name]["covers_reference"] = bool(res[name]["ci_low"] <= ref <= res[name]["ci_high"])
    out.update(obp=res, obp_seconds=c.seconds, obp_peak_mb=c.peak_mb,
               ips_equal=abs(res["IPS"]["value"] - out["whyrec"]["IPS"]["value"]) < 1e-12,
               snips_equal=abs(res["SNIPS"]["value"] - out["whyrec"]["SNIPS"]["value"]) < 1e-12)
    return out


# -- 2. ab-test at scale ------------------------------------------------------------------------
def ab_case(events: pd.DataFrame) -> dict:
    from statsmodels.stats.proportion import proportion_confint, proportions_ztest

    from whyrec_feedback.abtest import ABTest

    with Case() as c:
        rep = ABTest(control="random").analyze(events)
    s = rep.summary
    with Case() as p:  # the peer: what one writes by hand
        g = events.groupby("variant", observed=True)["label"].agg(["sum", "size"])
        lo, hi = proportion_confint(g["sum"], g["size"], method="wilson")
        z, pval = proportions_ztest([g.loc["skewed", "sum"], g.loc["random", "sum"]], [g.loc["skewed", "size"], g.loc["random", "size"]])
    agree = (int(g.loc["skewed", "sum"]) == s["per_arm"]["skewed"]["clicks"]
             and abs(pval - s["comparisons"]["skewed"]["p_value"]) < 1e-12
             and abs(lo["random"] - s["per_arm"]["random"]["ci_low"]) < 1e-15)
    return {"events": len(events), "whyrec_seconds": c.seconds, "whyrec_peak_mb": c.peak_mb, "peer_seconds": p.seconds,
            "peer_peak_mb": p.peak_mb, "agree": bool(agree), "lift": s["comparisons"]["skewed"]["lift"],
            "p_value": s["comparisons"]["skewed"]["p_value"], "looks": s["sequential"]["looks"],
            "p_always_valid": s["sequential"]["arms"]["skewed"]["p_always_valid"]}


# -- 3./4. off-policy at scale ------------------------------------------------------------------
def ope_case(events: pd.DataFrame, truth: float, label: str) -> dict:
    from whyrec_feedback.offpolicy import OffPolicy

    with Case() as c:
        rep = OffPolicy(logging_variant="skewed", reference_variant="random", bootstrap=1000, seed=0).analyze(events)
    s = rep.summary
    return {"case": label, "events": len(events), "logged_events": s["logged_events"], "whyrec_seconds": c.seconds,
            "whyrec_peak_mb": c.peak_mb, "interval_method": s["interval_method"], "truth": truth,
            "estimates": {e: {"value": v["value"], "ci_low": v["ci_low"], "ci_high": v["ci_high"],
                              "error_vs_truth": (v["value"] - truth) / truth,
                              "covers_truth": bool(v["ci_low"] <= truth <= v["ci_high"])} for e, v in s["estimates"].items()}}


def obp_throughput(ope, events: pd.DataFrame, n: int) -> dict:
    """obp and whyrec on the same n logged events (IPS/SNIPS/DR + 1,000-resample intervals)."""
    from sklearn.linear_model import LogisticRegression

    from whyrec_feedback.offpolicy import OffPolicy

    logged = events[events["variant"] == "skewed"].head(n).reset_index(drop=True)
    with Case() as w:
        OffPolicy(bootstrap=1000, seed=0).analyze(logged)
    out = {"events": len(logged), "whyrec_seconds": w.seconds, "whyrec_peak_mb": w.peak_mb}
    if ope is None:
        return out
    n_items, L = 80, 3
    action, pos = logged["item"].to_numpy(), logged["position"].to_numpy() - 1
    r, ps = logged["label"].to_numpy(), logged["propensity"].to_numpy()
    ctx_x = pd.get_dummies(logged[["user_feature_0", "user_feature_1"]].astype(str)).to_numpy(float)
    with Case() as c:
        ad = np.full((len(logged), n_items, L), 1.0 / n_items)
        reg = ope.RegressionModel(n_actions=n_items, len_list=L, base_model=LogisticRegression(C=1.0, max_iter=1000),
                                  action_context=np.eye(n_items), fitting_method="normal")
        q = reg.fit_predict(context=ctx_x, action=action, reward=r, position=pos, n_folds=2, random_state=0)
        for est, kw in ((ope.InverseProbabilityWeighting(), {}), (ope.SelfNormalizedInverseProbabilityWeighting(), {}),
                        (ope.DoublyRobust(), {"estimated_rewards_by_reg_model": q})):
            args = dict(reward=r, action=action, position=pos, pscore=ps, action_dist=ad, **kw)
            est.estimate_policy_value(**args)
            est.estimate_interval(**args, n_bootstrap_samples=1000, random_state=0)
    out.update(obp_seconds=c.seconds, obp_peak_mb=c.peak_mb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--obp-events", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "feedback.json")
    args = ap.parse_args()
    from whyrec_feedback.simulate import simulate_events

    ope = import_obp()
    results: dict = {"events": args.events, "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    import matplotlib.figure  # noqa: F401  (imports are not part of any timing)
    import sklearn.linear_model  # noqa: F401
    import statsmodels.stats.proportion  # noqa: F401

    print("OBD ...", file=sys.stderr, flush=True)
    results["obd"] = obd_case(ope)
    print(f"generating {args.events:,} events ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    sim = simulate_events(args.events, seed=0)
    results["generate_seconds"] = time.perf_counter() - t0
    print("ab-test ...", file=sys.stderr, flush=True)
    results["ab_test"] = ab_case(sim.events)
    print("off-policy ...", file=sys.stderr, flush=True)
    results["off_policy"] = ope_case(sim.events, sim.truth["uniform"], "propensity per (item, position)")
    print(f"obp vs whyrec on {args.obp_events:,} logged events ...", file=sys.stderr, flush=True)
    results["obp_throughput"] = obp_throughput(ope, sim.events, args.obp_events)
    print("off-policy, distinct propensities ...", file=sys.stderr, flush=True)
    jitter = sim.events.assign(propensity=sim.events["propensity"] * (1 + 1e-9 * np.random.default_rng(1).random(len(sim.events))))
    del sim
    results["off_policy_distinct"] = ope_case(jitter, results["off_policy"]["truth"], "every propensity distinct")
    del jitter

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    report(results)
    print(f"\nwrote {args.out}")


def report(res: dict) -> None:
    o = res["obd"]
    print(f"\nOBD: uniform random estimated from {o['events']:,} BTS-logged events; truth = on-policy CTR of the random "
          f"logs {o['reference_ctr']:.4f} [{o['reference']['ci_low']:.4f}, {o['reference']['ci_high']:.4f}], ESS {o['ess']:.0f}")
    print(f"{'estimator':<10}{'whyrec':>10}{'95% interval':>22}{'rel. error':>11}{'covers':>8} |{'obp':>10}{'95% interval':>22}{'rel. error':>11}")
    for e, w in o["whyrec"].items():
        line = f"{e:<10}{w['value']:>10.5f}{'[%.5f, %.5f]' % (w['ci_low'], w['ci_high']):>22}{w['relative_error']:>+11.1%}{str(w['covers_reference']):>8} |"
        b = o.get("obp", {}).get(e)
        line += f"{b['value']:>10.5f}{'[%.5f, %.5f]' % (b['ci_low'], b['ci_high']):>22}{b['relative_error']:>+11.1%}" if b else f"{'-':>10}"
        print(line)
    if "obp" in o:
        print(f"IPS == obp IPW: {o['ips_equal']}, SNIPS == obp SNIPW: {o['snips_equal']}; "
              f"time whyrec {o['whyrec_seconds']:.2f}s vs obp {o['obp_seconds']:.2f}s")
    print(f"\n{'case':<58}{'events':>12}{'whyrec s':>10}{'peer':>34}{'peer s':>9}{'ratio':>8}{'whyrec MB':>11}")
    a = res["ab_test"]
    print(f"{'ab-test (arms, Wilson, z-test, SRM, power, mSPRT looks)':<58}{a['events']:>12,}{a['whyrec_seconds']:>10.2f}"
          f"{'pandas groupby + statsmodels':>34}{a['peer_seconds']:>9.2f}{a['whyrec_seconds'] / a['peer_seconds']:>8.1f}{a['whyrec_peak_mb']:>11.0f}")
    t = res["obp_throughput"]
    if "obp_seconds" in t:
        print(f"{'off-policy IPS/SNIPS/DR/DM + 1000-bootstrap':<58}{t['events']:>12,}{t['whyrec_seconds']:>10.2f}"
              f"{'obp 0.4.1 IPW/SNIPW/DR + intervals':>34}{t['obp_seconds']:>9.2f}{t['whyrec_seconds'] / t['obp_seconds']:>8.2f}{t['whyrec_peak_mb']:>11.0f}")
    for key in ("off_policy", "off_policy_distinct"):
        c = res[key]
        print(f"{'off-policy, ' + c['case']:<58}{c['events']:>12,}{c['whyrec_seconds']:>10.2f}{'obp: action_dist too large':>34}"
              f"{'-':>9}{'-':>8}{c['whyrec_peak_mb']:>11.0f}")
    c = res["off_policy"]
    print(f"\n10M generated events: truth {c['truth']:.5f}; " + "; ".join(
        f"{e} {v['value']:.5f} [{v['ci_low']:.5f}, {v['ci_high']:.5f}] err {v['error_vs_truth']:+.2%}" for e, v in c["estimates"].items()))
    for key in ("off_policy", "off_policy_distinct"):
        c = res[key]
        print(f"{c['case']}: intervals by {c['interval_method']}; DR {c['estimates']['DR']['value']:.5f} "
              f"[{c['estimates']['DR']['ci_low']:.5f}, {c['estimates']['DR']['ci_high']:.5f}]")
    print(f"ab-test agrees with the peer: {a['agree']}; lift {a['lift']:+.3f}, p {a['p_value']:.2g}, "
          f"always-valid p {a['p_always_valid']:.2g} over {a['looks']} daily looks")


if __name__ == "__main__":
    main()
