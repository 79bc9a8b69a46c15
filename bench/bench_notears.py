"""NOTEARS in whyrec-causalnex vs CausalNex's own from_pandas, and do-effects against the simulators.

Part 1, structure learning on random linear-Gaussian DAGs (Erdos-Renyi, ~d edges, weights
+-U(0.5, 2), unit noise): 5/10/20/40 variables x 1,000/10,000 rows, raw (centred) and
standardised data. Both sides minimise the same NOTEARS objective without L1 and threshold
|w| > 0.3:

  whyrec    whyrec_causalnex.structure.notears_weights: CausalNex ``from_numpy`` on a d x d matrix
            with the data's covariance (the loss only depends on X'X), plus a 1e-3 scale jitter
            on standardised data (breaks the symmetric saddle, see structure.py)
  causalnex causalnex.structure.notears.from_pandas on all rows (centred), run in a subprocess
            stopped after --peer-timeout seconds

BLAS is limited to one thread for both (measured: threaded OpenBLAS is 10-100x slower on these
small matrices when the 2 cores are shared). SHD counts a reversed edge once.

Part 2, the whole learner with its defaults on sim-ecommerce / sim-video / sim-finance: SHD to
the true DAG, error of P(label | do(feature = v)) against the simulator's Monte-Carlo truth,
and the SHD for a range of edge thresholds.

    .venv/bin/python bench/bench_notears.py            # writes bench/results/notears.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results" / "notears.json"


def random_dag(d: int, seed: int) -> np.ndarray:
    """W[i, j] != 0 for an edge i -> j: Erdos-Renyi with ~d edges in a random causal order."""
    rng = np.random.default_rng(seed)
    p = min(1.0, 2.0 / max(d - 1, 1))
    order = rng.permutation(d)
    W = np.zeros((d, d))
    for a in range(d):
        for b in range(a + 1, d):
            if rng.random() < p:
                W[order[a], order[b]] = rng.uniform(0.5, 2.0) * rng.choice([-1, 1])
    return W


def simulate(W: np.ndarray, n: int, seed: int) -> np.ndarray:
    import networkx as nx

    rng = np.random.default_rng(seed + 1)
    d = W.shape[0]
    X = np.zeros((n, d))
    for j in nx.topological_sort(nx.DiGraph(W)):
        X[:, j] = X @ W[:, j] + rng.normal(size=n)
    return X


def shd_parts(W_true: np.ndarray, W_est: np.ndarray, threshold: float) -> dict:
    """SHD and its parts: missing, extra and reversed edges (a reversed edge counts once)."""
    a = {(int(i), int(j)) for i, j in zip(*np.nonzero(W_true))}
    b = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.abs(W_est) > threshold))}
    missing = sum(1 for s, t in a - b if (t, s) not in b)
    extra = sum(1 for s, t in b - a if (t, s) not in a)
    reversed_ = sum(1 for s, t in b - a if (t, s) in a)
    return {"shd": missing + extra + reversed_, "missing": missing, "extra": extra, "reversed": reversed_}


def shd(W_true: np.ndarray, W_est: np.ndarray, threshold: float) -> int:
    return shd_parts(W_true, W_est, threshold)["shd"]


def prepare(X: np.ndarray, standardise: bool) -> np.ndarray:
    Xc = X - X.mean(axis=0)
    return Xc / Xc.std(axis=0) if standardise else Xc


def _peer(X: np.ndarray, q: mp.Queue) -> None:
    from threadpoolctl import threadpool_limits
    from causalnex.structure.notears import from_pandas  # imported before the clock starts

    cols = [f"x{i}" for i in range(X.shape[1])]
    t0 = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        sm = from_pandas(pd.DataFrame(X, columns=cols), w_threshold=0.0)
    W = np.zeros((X.shape[1], X.shape[1]))
    for u, v, w in sm.edges(data="weight"):
        W[cols.index(u), cols.index(v)] = w
    q.put((time.perf_counter() - t0, W))


def run_peer(X: np.ndarray, timeout: float) -> tuple[float | None, np.ndarray | None]:
    q: mp.Queue = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=_peer, args=(X, q))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.terminate()
        p.join()
        return None, None
    return q.get()


def part1(sizes, rows, peer_timeout: float, peer_max_cells: int) -> list[dict]:
    from whyrec_causalnex.structure import Constraints, notears_weights

    out = []
    # warm-up: the first call imports CausalNex / scipy pieces; keep that out of the timings
    notears_weights(np.random.default_rng(0).normal(size=(50, 3)), ["a", "b", "c"], Constraints(), standardise=True)
    for d in sizes:
        W_true = random_dag(d, seed=d)
        for n in rows:
            X = simulate(W_true, n, seed=d)
            for standardise in (False, True):
                names = [f"x{i}" for i in range(d)]
                t0 = time.perf_counter()
                W = notears_weights(X, names, Constraints(), standardise=standardise, seed=0)
                ours = time.perf_counter() - t0
                row = {"variables": d, "rows": n, "data": "standardised" if standardise else "raw (centred)",
                       "true_edges": int((W_true != 0).sum()), "whyrec_s": round(ours, 3),
                       "whyrec_shd": shd(W_true, W, 0.3), "whyrec_shd_parts": shd_parts(W_true, W, 0.3),
                       "causalnex_s": None, "causalnex_shd": None,
                       "speedup": None, "max_abs_weight_diff": None, "peer": "not run"}
                if d * n <= peer_max_cells:
                    secs, Wp = run_peer(prepare(X, standardise), peer_timeout)
                    if secs is None:
                        row["peer"] = f"stopped after {peer_timeout:.0f} s"
                    else:
                        row.update(causalnex_s=round(secs, 3), causalnex_shd=shd(W_true, Wp, 0.3),
                                   causalnex_shd_parts=shd_parts(W_true, Wp, 0.3),
                                   speedup=round(secs / ours, 1) if ours > 0 else None,
                                   max_abs_weight_diff=float(np.abs(W - Wp).max()), peer="ok")
                out.append(row)
                print(_fmt_row(row), flush=True)
    return out


def _fmt_row(r: dict) -> str:
    peer = (f"{r['causalnex_s']:8.2f} s  SHD {r['causalnex_shd']:3d}  x{r['speedup']:<7}"
            if r["causalnex_s"] is not None else f"{r['peer']:>33}")
    p = r["whyrec_shd_parts"]
    return (f"{r['variables']:3d} vars {r['rows']:6d} rows {r['data']:14s} | whyrec {r['whyrec_s']:7.2f} s  "
            f"SHD {r['whyrec_shd']:3d} (miss {p['missing']}, extra {p['extra']}, rev {p['reversed']}) | "
            f"causalnex {peer} | true edges {r['true_edges']}")


def part2(thresholds) -> list[dict]:
    from whyrec_datasets.simulators import SIMULATORS

    from whyrec_causalnex.learner import CausalNexLearner
    from whyrec_causalnex.structure import learn_structure
    from whyrec_causalnex.truth import as_graph, structure_scores
    from whyrec.causal import CausalGraph, Edge

    out = []
    for name in ("sim-ecommerce", "sim-video", "sim-finance"):
        data = SIMULATORS[name]().load()
        learner = CausalNexLearner(seed=0)  # the defaults: bootstrap 20, effect_bootstrap 30
        t0 = time.perf_counter()
        graph = learner.learn(data)
        t_learn = time.perf_counter() - t0
        learner.fit(data, graph)
        rep = learner.report(data, [])
        t_all = time.perf_counter() - t0
        truth = rep.summary["truth"]
        table = rep.tables["truth_interventions"]
        sweep = {}
        X, names = learner.table.numeric_matrix(), learner.table.names
        for th in thresholds:
            res = learn_structure(X, names, learner.constraints, w_threshold=th, standardise=True, seed=0,
                                  lasso=learner.params["lasso"])
            g = CausalGraph(names, [Edge(s, t) for s, t in res.edges])
            sweep[str(th)] = structure_scores(g, as_graph(data.truth["graph"]))["shd"]
        row = {
            "simulator": name, "true_edges": truth["structure"]["true_edges"], "shd": truth["structure"]["shd"],
            "missing": truth["structure"]["missing_edges"], "extra": truth["structure"]["extra_edges"],
            "reversed": truth["structure"]["reversed_edges"], "do_mae": truth["interventions"]["do_mae"],
            "do_max_error": truth["interventions"]["do_max_error"], "effect_mae": truth["interventions"]["effect_mae"],
            "effect_max_error": truth["interventions"]["effect_max_error"],
            "auc_test": rep.summary["predictive_quality"].get("auc"), "unstable_edges": rep.summary["unstable_edges"],
            "learn_s": round(t_learn, 1), "total_s": round(t_all, 1), "shd_by_threshold": sweep,
            "interventions": table.round(4).to_dict(orient="records"),
        }
        out.append(row)
        print(f"{name:14s} SHD {row['shd']} / {row['true_edges']} true edges (missing {row['missing']}, extra "
              f"{row['extra']}, reversed {row['reversed']}) | do-MAE {row['do_mae']:.3f} (max {row['do_max_error']:.3f}) "
              f"| effect-MAE {row['effect_mae']:.3f} | test AUC {row['auc_test']:.3f} | {row['learn_s']} s learn, "
              f"{row['total_s']} s all | SHD by threshold {sweep}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="5,10,20,40")
    ap.add_argument("--rows", default="1000,10000")
    ap.add_argument("--peer-timeout", type=float, default=120.0, help="seconds before a CausalNex run is stopped")
    ap.add_argument("--peer-max-cells", type=int, default=200_000,
                    help="run CausalNex only where variables x rows <= this (it scales with rows)")
    ap.add_argument("--skip-sims", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = [int(x) for x in args.rows.split(",")]
    t0 = time.perf_counter()
    print("Part 1: NOTEARS time and SHD (threshold 0.3), whyrec vs CausalNex from_pandas", flush=True)
    p1 = part1(sizes, rows, args.peer_timeout, args.peer_max_cells)
    p2 = [] if args.skip_sims else (print("\nPart 2: the causalnex-bn learner (defaults) on the simulators", flush=True)
                                    or part2([0.05, 0.08, 0.1, 0.15, 0.2, 0.3]))
    result = {
        "command": "python bench/bench_notears.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "python": platform.python_version(), "machine": platform.machine(), "cpus": mp.cpu_count(),
        "blas_threads": 1, "seconds": round(time.perf_counter() - t0, 1),
        "structure": p1, "simulators": p2,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwrote {RESULTS} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
