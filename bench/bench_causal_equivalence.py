"""Are the learned graph's remaining errors ones observational data can settle at all?

For each random SCM (the ``random-scm`` dataset, as bench_causal_random.py builds it: same seeds,
rows and learner settings, so the same graphs), the learner's default structure search runs
again and its graph is compared with the true DAG over the observed variables: SHD, and whether
the two are Markov equivalent (same skeleton and same v-structures, Verma & Pearl 1990). Two
Markov-equivalent DAGs imply the same conditional independences, so no amount of observational
data tells them apart; only domain knowledge (``required_edges``, field rules) can. The share of
each model's do-effects within 10 % of the truth is read from a bench_causal_random.py result
(``--effects``) for the same seeds.

    WHYREC_PROGRESS=0 nice .venv/bin/python bench/bench_causal_equivalence.py --rows 60000 \
        --effects bench/results/causal_random_presence60k.json      # bench/results/causal_equivalence_60k.json
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def skeleton(edges: set) -> set:
    return {frozenset(e) for e in edges}


def v_structures(edges: set) -> set:
    """(a, c, b) with a -> c <- b and a, b not adjacent (a < b)."""
    parents: dict = {}
    for s, t in edges:
        parents.setdefault(t, set()).add(s)
    sk = skeleton(edges)
    out = set()
    for c, ps in parents.items():
        for a, b in combinations(sorted(ps), 2):
            if frozenset((a, b)) not in sk:
                out.add((a, c, b))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--effects", default="", help="a bench_causal_random.py result with whyrec-gformula runs of the same seeds")
    ap.add_argument("--family", default="10")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "causal_equivalence_60k.json"))
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    from whyrec_causalnex.learner import CausalNexLearner
    from whyrec_causalnex.truth import as_graph
    from whyrec_datasets.scm import RandomSCMDataset

    within = {}
    if a.effects:
        res = json.loads(Path(a.effects).read_text())
        for r in res["families"][a.family]["whyrec-gformula"]["runs"]:
            if r.get("do_errors"):
                within[r["seed"]] = sum(e["rel_error"] <= 0.10 for e in r["do_errors"]) / len(r["do_errors"])
    rows = []
    for seed in range(a.seed0, a.seed0 + a.models):
        data = RandomSCMDataset(n_nodes=a.nodes, seed=seed, n_rows=a.rows).load()
        learner = CausalNexLearner(effect_bootstrap=0, seed=seed, max_rows=max(len(data.train), 10000))
        g = learner.learn(data)
        truth = as_graph(data.truth["graph"])
        nodes = set(g.nodes) & set(truth.nodes)
        L = {(e.source, e.target) for e in g.edges if e.source in nodes and e.target in nodes}
        T = {(e.source, e.target) for e in truth.edges if e.source in nodes and e.target in nodes}
        rev = sorted((s, t) for s, t in L if (t, s) in T)
        row = {"seed": seed, "shd": len(skeleton(L) ^ skeleton(T)) + len(rev),
               "missing": sorted(e for e in T if frozenset(e) not in skeleton(L)),
               "extra": sorted(e for e in L if frozenset(e) not in skeleton(T)), "reversed": rev,
               "same_skeleton": skeleton(L) == skeleton(T), "same_v_structures": v_structures(L) == v_structures(T),
               "within_10pct": within.get(seed)}
        row["markov_equivalent"] = row["same_skeleton"] and row["same_v_structures"]
        rows.append(row)
        w = f"{row['within_10pct']:.0%}" if row["within_10pct"] is not None else "-"
        print(f"seed {seed}: SHD {row['shd']} (missing {len(row['missing'])}, extra {len(row['extra'])}, reversed "
              f"{len(rev)}), Markov equivalent to the truth: {row['markov_equivalent']}; effects within 10 %: {w}",
              flush=True)
    eq = [r for r in rows if r["markov_equivalent"]]
    wrong = [r for r in rows if r["shd"] > 0]
    print(f"\n{len(rows)} models: {sum(r['shd'] == 0 for r in rows)} exact, {len(eq) - sum(r['shd'] == 0 for r in rows)} "
          f"wrong but Markov equivalent to the truth (reversals only data cannot settle), "
          f"{len(wrong) - (len(eq) - sum(r['shd'] == 0 for r in rows))} wrong and not equivalent")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"command": "python bench/bench_causal_equivalence.py " + " ".join(sys.argv[1:]),
                                       "rows": rows}, indent=1, default=list))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
