"""Time of the causal stage on 60,000 logged rows: the learner's defaults now vs as shipped before issue 14.

The stage is what ``whyrec run`` does for a ``causalnex-bn`` step: ``learn`` (structure search
with its bootstrap), ``fit`` (discretisation, the Bayesian network's CPDs, the g-formula's
models) and ``report`` (do() of every actionable variable with ``effect_bootstrap`` intervals,
stability table, predictive quality). Data: ``--models`` random structural causal models of
the ``random-scm`` dataset (``--nodes`` observed variables, ``--rows`` logged rows), never the
simulators the learner was tuned on. Both sides run in this process on the same data, one
after the other, each timed on its own:

  before  method = "linear" (NOTEARS, standardised, lasso 0.01, threshold 0.1),
          do_estimator = "bn", drop_unstable = false: the defaults when issue 14 was filed
  after   CausalNexLearner() as shipped now (method = "bic", g-formula do(), unstable edges dropped)

CausalNex and its imports (torch, pgmpy, scikit-learn) are loaded before the first timing.
Prints seconds per stage part and the after / before ratio, and writes a JSON file.

    WHYREC_PROGRESS=0 nice .venv/bin/python bench/bench_causal_stage.py      # bench/results/causal_stage_60k.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = {"method": "linear", "do_estimator": "bn", "drop_unstable": False}


def stage(data, overrides: dict, seed: int) -> dict:
    from whyrec_causalnex.learner import CausalNexLearner

    learner = CausalNexLearner(seed=seed)
    learner.params.update(overrides)
    t0 = time.perf_counter()
    graph = learner.learn(data)
    t1 = time.perf_counter()
    learner.fit(data, graph)
    t2 = time.perf_counter()
    learner.report(data, [], total_start=t0)
    t3 = time.perf_counter()
    return {"learn": t1 - t0, "fit": t2 - t1, "report": t3 - t2, "total": t3 - t0, "edges": len(graph.edges),
            "training_rows": len(learner.table.frame) if hasattr(learner.table, "frame") else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "causal_stage_60k.json"))
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    from whyrec_datasets.scm import RandomSCMDataset

    # import CausalNex (torch, pgmpy, sklearn: seconds) before any timing, so neither side pays it
    from whyrec_causalnex import compat

    compat.apply()
    import causalnex.structure.notears  # noqa: F401

    runs = []
    for seed in range(a.seed0, a.seed0 + a.models):
        data = RandomSCMDataset(n_nodes=a.nodes, seed=seed, n_rows=a.rows, mc_pairs=2000).load()
        row = {"seed": seed, "rows": len(data.interactions)}
        for side, over in (("before", BEFORE), ("after", {})):
            row[side] = stage(data, over, seed)
        row["ratio"] = row["after"]["total"] / row["before"]["total"]
        runs.append(row)
        print(f"seed {seed}: before {row['before']['total']:.1f} s (learn {row['before']['learn']:.1f}, "
              f"report {row['before']['report']:.1f}), after {row['after']['total']:.1f} s "
              f"(learn {row['after']['learn']:.1f}, report {row['after']['report']:.1f}); ratio {row['ratio']:.2f}",
              flush=True)
    med = {side: {k: statistics.median(r[side][k] for r in runs) for k in ("learn", "fit", "report", "total")}
           for side in ("before", "after")}
    ratios = [r["ratio"] for r in runs]
    out = {"command": "python bench/bench_causal_stage.py " + " ".join(sys.argv[1:]), "python": platform.python_version(),
           "rows": a.rows, "nodes": a.nodes, "models": a.models, "before_params": BEFORE, "median_seconds": med,
           "ratio_median": statistics.median(ratios), "ratio_max": max(ratios), "runs": runs}
    print(f"\nmedian seconds  before {med['before']['total']:.1f}  after {med['after']['total']:.1f}; "
          f"after / before: median {out['ratio_median']:.2f}, max {out['ratio_max']:.2f} (goal <= 2)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
