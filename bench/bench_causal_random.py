"""Causal structure and do-effects on random SCMs the project was never tuned on.

For each of ``--models`` random SCMs (whyrec_datasets.scm.random_scm) per family (10 observed
nodes; 10 nodes with one hidden confounder; optionally 15-20 nodes), the ``random-scm`` dataset
is sampled (``--rows`` interactions) and every variant below learns a graph from the same
training rows, fits the same Bayesian network on it (whyrec's discretisation and CausalNex
``BayesianNetwork``) and answers do() for the actionable variables:

  whyrec-default      CausalNexLearner() as shipped (NOTEARS linear, standardised, lasso 0.01,
                      threshold 0.1, 20 pigeonhole bootstraps, unstable edges kept)
  causalnex-tutorial  plain CausalNex as its tutorial uses it: ``from_pandas`` on the
                      label-encoded raw columns, ``w_threshold = 0.8``, no constraints
  causalnex-careful   the same on standardised columns with ``w_threshold = 0.1``
  true-graph          the same Bayesian network on the true DAG (what discretisation alone costs)
  + the variants in EXTRA (e.g. whyrec-bic: structure.py's "bic" method), by name in --variants;
  each sets ``do_estimator``: "bn" answers do() with the network for the state holding the value
  (every variant before the g-formula), "gformula" with the g-formula at the value itself
  (whyrec-gformula = the learner's defaults now, true-graph-gformula = the g-formula on the true DAG)

Reported per family and variant: SHD to the true DAG over observed variables (median, IQR, max),
the relative error of each do-effect (effect between an intervention value and the first one)
of the actionable variables where |true effect| >= 0.02, and seconds per model. The plain
CausalNex variants run ``from_numpy`` on a d x d matrix with the same Gram matrix as the data
(NOTEARS' loss depends on the data only through X'X/n: same optimum; bench_notears.py measures
this), so they cost the same as whyrec's runs.

    nice -n 10 .venv/bin/python bench/bench_causal_random.py --models 20 --rows 10000
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

BASE_VARIANTS = ["whyrec-default", "causalnex-tutorial", "causalnex-careful"]
# extra variants: learner parameter overrides (set after construction, so methods the learner
# does not validate yet can be measured)
# "unstable_rule": which edges drop_unstable removes ("direction": below the threshold in this
# orientation, the rule of every variant measured before it existed; "presence": the pair joined
# either way in fewer resamples than the threshold, the default now)
# "do_estimator": the Bayesian network's answer for the state holding the value ("bn", the
# estimator before the g-formula) or the g-formula at the value ("gformula", the default now)
EXTRA = {
    "whyrec-default": {"method": "linear", "drop_unstable": False, "do_estimator": "bn"},
    "whyrec-stable": {"method": "linear", "drop_unstable": True, "do_estimator": "bn", "unstable_rule": "direction"},
    "whyrec-bic": {"method": "bic", "drop_unstable": True, "stability_threshold": 0.6, "do_estimator": "bn", "unstable_rule": "direction"},
    "whyrec-bic-keep": {"method": "bic", "drop_unstable": False, "do_estimator": "bn"},
    "whyrec-bic-7": {"method": "bic", "drop_unstable": True, "stability_threshold": 0.7, "do_estimator": "bn", "unstable_rule": "direction"},
    "whyrec-gformula": {"method": "bic", "drop_unstable": True, "stability_threshold": 0.6, "do_estimator": "gformula",
                        "unstable_rule": "presence"},
    "whyrec-gformula-direction": {"method": "bic", "drop_unstable": True, "stability_threshold": 0.6,
                                  "do_estimator": "gformula", "unstable_rule": "direction"},
    "whyrec-gformula-keep": {"method": "bic", "drop_unstable": False, "do_estimator": "gformula"},
    "true-graph": {"do_estimator": "bn"},
    "true-graph-gformula": {"do_estimator": "gformula"},
    "causalnex-tutorial": {"do_estimator": "bn"},
    "causalnex-careful": {"do_estimator": "bn"},
}
# variants whose structure search is another's (only drop_unstable / stability_threshold differ):
# learned once per model, the unstable edges dropped afterwards exactly as the learner does
SAME_SEARCH = {"whyrec-stable": "whyrec-default", "whyrec-bic": "whyrec-bic-keep", "whyrec-bic-7": "whyrec-bic-keep",
               "whyrec-gformula": "whyrec-bic-keep", "whyrec-gformula-keep": "whyrec-bic-keep",
               "whyrec-gformula-direction": "whyrec-bic-keep"}


def gram_root(X: np.ndarray, standardise: bool) -> np.ndarray:
    """R (d x d) with R'R/d = X'X/n of the raw columns (tutorial: no centring) or of the
    standardised ones."""
    X = np.asarray(X, float)
    if standardise:
        sd = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    d = X.shape[1]
    G = X.T @ X / len(X)
    lam, V = np.linalg.eigh((G + G.T) / 2)
    return np.sqrt(d) * (np.sqrt(np.clip(lam, 0, None))[:, None] * V.T)


def causalnex_plain(table, standardise: bool, threshold: float):
    from causalnex.structure.notears import from_numpy
    from whyrec.causal import CausalGraph, Edge
    from whyrec_causalnex.structure import single_threaded_blas

    names = table.names
    R = gram_root(table.numeric_matrix(), standardise)
    with warnings.catch_warnings(), single_threaded_blas():
        warnings.simplefilter("ignore")
        sm = from_numpy(R, w_threshold=threshold)
    edges = [Edge(names[int(u)], names[int(v)], float(w)) for u, v, w in sm.edges(data="weight")]
    return CausalGraph(nodes=list(names), edges=edges)


def relative_errors(errors) -> list[dict]:
    out = []
    for feat, g in errors.groupby("feature", sort=False):
        g = g.reset_index(drop=True)
        for k in range(1, len(g)):
            te = float(g.loc[k, "expected_effect"])
            if abs(te) >= 0.02:
                out.append({"feature": feat, "value": g.loc[k, "value"], "true_effect": te,
                            "effect": float(g.loc[k, "effect"]),
                            "rel_error": abs(float(g.loc[k, "effect"]) - te) / abs(te),
                            "path": bool(g.loc[k, "path_to_outcome"])})
    return out


def run_variant(variant: str, data, seed: int, learned: dict | None = None) -> dict:
    from whyrec_causalnex.learner import CausalNexLearner
    from whyrec_causalnex.network import IsolateError  # noqa: F401
    from whyrec_causalnex.truth import intervention_errors, structure_scores, as_graph

    t0 = time.perf_counter()
    learner = CausalNexLearner(effect_bootstrap=0, seed=seed, max_rows=max(len(data.train), 10000))
    if variant in EXTRA:
        learner.params.update(EXTRA[variant])
    if variant.startswith("whyrec") and learned is not None and variant in SAME_SEARCH and SAME_SEARCH[variant] not in learned:
        base = SAME_SEARCH[variant]  # run the shared search once, as its own variant would
        bl = CausalNexLearner(effect_bootstrap=0, seed=seed, max_rows=max(len(data.train), 10000))
        bl.params.update(EXTRA[base])
        tb = time.perf_counter()
        bl.learn(data)
        learned[base] = (bl.table, bl.structure, time.perf_counter() - tb, bl.constraints)
        t0 = time.perf_counter()
    if variant.startswith("true-graph"):  # the true DAG: the error left to the estimator
        from whyrec.causal import CausalGraph, Edge
        table = learner._train_table(data)
        learner.table, learner._data_name = table, data.name
        graph = CausalGraph(nodes=list(table.names), edges=[Edge(e.source, e.target) for e in data.truth["graph"].edges])
    elif variant.startswith("whyrec"):
        base = SAME_SEARCH.get(variant, variant)
        if learned is not None and base in learned:
            from whyrec.causal import CausalGraph, Edge
            table, structure, t_learn, constraints = learned[base]
            learner.table, learner._data_name, learner.structure = table, data.name, structure
            p = learner.params
            from whyrec_causalnex.structure import unstable_to_drop
            drop = set(unstable_to_drop(list(structure.edges), structure.stability, p["stability_threshold"],
                                        set(map(tuple, constraints.required)), p["unstable_rule"])) if p["drop_unstable"] else set()
            keep = {e: w for e, w in structure.edges.items() if e not in drop}
            graph = CausalGraph(nodes=list(table.names), edges=[Edge(a, b, w) for (a, b), w in keep.items()])
            t0 -= t_learn  # the search's time counts for this variant too
        else:
            graph = learner.learn(data)
            if learned is not None and not learner.params["drop_unstable"]:
                learned[variant] = (learner.table, learner.structure, time.perf_counter() - t0, learner.constraints)
    else:
        table = learner._train_table(data)
        learner.table, learner._data_name = table, data.name
        graph = causalnex_plain(table, standardise=variant.endswith("careful"),
                                threshold=0.1 if variant.endswith("careful") else 0.8)
        if not graph.is_acyclic():  # thresholding a NOTEARS solution can leave a cycle
            from whyrec_causalnex.structure import Constraints, threshold_edges
            names = graph.nodes
            W = np.zeros((len(names), len(names)))
            for e in graph.edges:
                W[names.index(e.source), names.index(e.target)] = e.weight
            from whyrec.causal import CausalGraph, Edge
            kept = threshold_edges(W, names, 0.0, Constraints())
            graph = CausalGraph(nodes=names, edges=[Edge(s, t, w) for (s, t), w in kept.items()])
    t_struct = time.perf_counter() - t0
    learner.fit(data, graph)
    struct = structure_scores(graph, as_graph(data.truth["graph"]))
    errs = intervention_errors(data.truth, learner.net, learner.states, learner.baseline,
                               learner.point_do if learner.do_model is not None else None)
    rel = relative_errors(errs)
    return {"variant": variant, "shd": struct["shd"], "missing": len(struct["missing_edges"]),
            "extra": len(struct["extra_edges"]), "reversed": len(struct["reversed_edges"]),
            "true_edges": struct["true_edges"], "learned_edges": struct["learned_edges"],
            "do_errors": rel, "structure_seconds": round(t_struct, 3),
            "seconds": round(time.perf_counter() - t0, 3)}


def dist(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    a = np.asarray(xs, float)
    return {"n": int(len(a)), "median": float(np.median(a)), "q25": float(np.quantile(a, 0.25)),
            "q75": float(np.quantile(a, 0.75)), "max": float(a.max()), "mean": float(a.mean())}


def summarise(rows: list[dict]) -> dict:
    rel = [e["rel_error"] for r in rows for e in r["do_errors"]]
    return {"models": len(rows), "shd": dist([r["shd"] for r in rows]),
            "missing": dist([r["missing"] for r in rows]), "extra": dist([r["extra"] for r in rows]),
            "reversed": dist([r["reversed"] for r in rows]),
            "do_rel_error": dist(rel), "do_within_10pct": float(np.mean(np.asarray(rel) <= 0.10)) if rel else None,
            "seconds": dist([r["seconds"] for r in rows])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--families", default="10,10h1", help="comma list: NODES or NODEShHIDDEN, e.g. 10,10h1,16")
    ap.add_argument("--variants", default=",".join(BASE_VARIANTS))
    ap.add_argument("--mc", type=int, default=100_000, help="Monte Carlo interactions per true do-value")
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--out", default=str(RESULTS / "causal_random.json"))
    ap.add_argument("--merge", nargs="+", help="merge these result files into --out (no run)")
    a = ap.parse_args(argv)
    if a.merge:
        return merge(a.merge, a.out)
    from whyrec_datasets.scm import RandomSCMDataset
    from whyrec_causalnex import compat

    compat.apply()
    variants = [v for v in a.variants.split(",") if v]
    results: dict = {"command": "python bench/bench_causal_random.py " + " ".join(sys.argv[1:] if argv is None else argv),
                     "python": platform.python_version(), "rows": a.rows, "models": a.models, "families": {}}
    t_all = time.perf_counter()
    for fam in a.families.split(","):
        nodes, _, hid = fam.partition("h")
        n_nodes, n_hidden = int(nodes), int(hid or 0)
        per: dict[str, list] = {v: [] for v in variants}
        for m in range(a.models):
            seed = a.seed0 + m
            data = RandomSCMDataset(n_nodes=n_nodes, seed=seed, n_rows=a.rows, n_hidden=n_hidden, mc_pairs=a.mc).load()
            learned: dict = {}
            # searches first, the variants that reuse them after
            for v in sorted(variants, key=lambda x: x in SAME_SEARCH):
                try:
                    r = run_variant(v, data, seed, learned)
                except Exception as exc:  # a failure is a result too
                    r = {"variant": v, "error": f"{type(exc).__name__}: {exc}"}
                r["seed"] = seed
                per[v].append(r)
                print(f"{fam:>6} seed {seed} {v:<20} " + (f"SHD {r['shd']:>2} (m{r['missing']} e{r['extra']} r{r['reversed']}"
                      f" of {r['true_edges']}) do-err {np.median([e['rel_error'] for e in r['do_errors']] or [np.nan]):.3f}"
                      f" {r['seconds']:.1f}s" if "error" not in r else r["error"]), flush=True)
            results["families"][fam] = {v: {"summary": summarise([r for r in rows if "error" not in r]),
                                             "errors": [r for r in rows if "error" in r], "runs": rows}
                                        for v, rows in per.items()}
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(results, indent=1, default=str) + "\n")  # after every model
    results["seconds"] = round(time.perf_counter() - t_all, 1)
    return report(results, a.out)


def merge(paths: list[str], out: str) -> int:
    """One table from several runs (e.g. seed ranges run as separate processes)."""
    merged: dict = {"command": [], "families": {}, "seconds": 0.0}
    for p in paths:
        r = json.loads(Path(p).read_text())
        merged["command"].append(r["command"])
        merged["seconds"] += r.get("seconds", 0.0) or 0.0
        for k in ("python", "rows"):
            merged[k] = r.get(k)
        for fam, fv in r["families"].items():
            for v, d in fv.items():
                merged["families"].setdefault(fam, {}).setdefault(v, {"runs": []})["runs"].extend(d["runs"])
    for fam, fv in merged["families"].items():
        for v, d in fv.items():
            runs = sorted(d["runs"], key=lambda r: r["seed"])
            fv[v] = {"summary": summarise([r for r in runs if "error" not in r]),
                     "errors": [r for r in runs if "error" in r], "runs": runs}
        merged["models"] = max(len(d["runs"]) for d in fv.values())
    return report(merged, out)


def report(results: dict, out: str) -> int:
    print()
    print(f"{'family':<7} {'variant':<20} {'SHD med [IQR] max':<20} {'miss/extra/rev (mean)':<22} "
          f"{'do rel err med [IQR] (n)':<30} {'<=10%':>6} {'s/model':>8}")
    for fam, fv in results["families"].items():
        for v, d in fv.items():
            s = d["summary"]
            if not s["models"]:
                print(f"{fam:<7} {v:<20} all failed: {d['errors'][:1]}")
                continue
            sh, de = s["shd"], s["do_rel_error"]
            dtxt = (f"{de['median']:.2f} [{de['q25']:.2f}, {de['q75']:.2f}] ({de['n']})" if de["n"] else "-")
            w10 = f"{s['do_within_10pct']:.0%}" if s["do_within_10pct"] is not None else "-"
            print(f"{fam:<7} {v:<20} {sh['median']:>4.1f} [{sh['q25']:.0f}, {sh['q75']:.0f}] {sh['max']:>3.0f}      "
                  f"{s['missing']['mean']:.1f}/{s['extra']['mean']:.1f}/{s['reversed']['mean']:.1f}              "
                  f"{dtxt:<30} {w10:>6} {s['seconds']['median']:>8.1f}")
    print("\n| family | variant | models | SHD median [IQR] max | missing / extra / reversed (mean) | "
          "do-effect rel. error median [IQR] (n) | within 10% | s / model (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for fam, fv in results["families"].items():
        for v, d in fv.items():
            s = d["summary"]
            if not s["models"]:
                continue
            sh, de = s["shd"], s["do_rel_error"]
            dtxt = f"{de['median']:.2f} [{de['q25']:.2f}, {de['q75']:.2f}] ({de['n']})" if de["n"] else "-"
            w10 = f"{s['do_within_10pct']:.0%}" if s["do_within_10pct"] is not None else "-"
            print(f"| {fam} | {v} | {s['models']} | {sh['median']:.1f} [{sh['q25']:.0f}, {sh['q75']:.0f}] {sh['max']:.0f} | "
                  f"{s['missing']['mean']:.1f} / {s['extra']['mean']:.1f} / {s['reversed']['mean']:.1f} | {dtxt} | {w10} | "
                  f"{s['seconds']['median']:.1f} |")
    by_size(results)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"\nwrote {out} ({results['seconds']} s)")
    return 0


SIZE_BANDS = ((0.02, 0.05, "0.02 <= \\|effect\\| < 0.05"), (0.05, 0.1, "0.05 to 0.1"), (0.1, float("inf"), ">= 0.1"))


def by_size(results: dict) -> None:
    """Share of the do-effects within 10 % of the truth, by size of the true effect."""
    print("\n| family | variant | " + " | ".join(b[2] for b in SIZE_BANDS) + " |")
    print("| --- | --- |" + " --- |" * len(SIZE_BANDS))
    for fam, fv in results["families"].items():
        for v, d in fv.items():
            errs = [e for r in d["runs"] if "error" not in r for e in r["do_errors"]]
            cells = []
            for lo, hi, _ in SIZE_BANDS:
                band = [e for e in errs if lo <= abs(e["true_effect"]) < hi]
                ok = sum(e["rel_error"] <= 0.10 for e in band)
                cells.append(f"{ok / len(band):.0%} of {len(band)}" if band else "-")
            print(f"| {fam} | {v} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
