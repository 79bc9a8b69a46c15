"""history-counterfactual: rebuilding the history-derived features ("rederive") against holding
them fixed ("hold"), on the torch-attention model and recommendations of a finished run.

    .venv/bin/python bench/bench_counterfactual.py runs/<movielens run> [--users 10]

Both modes explain the same recommendations (the run's torch-attention top-k of its first
``--users`` users) in this one process, one after the other; prints CPU and wall seconds, how
many recommendations a removal set was found for, its mean size and how many sets are proven
minimal, and writes bench/results/counterfactual.json. No external peer exists for this
search; "hold" (masking the sequence input only) is the reference it is compared with.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shap_bench_common as common  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a finished run directory with a torch-attention model (the default movielens pipeline)")
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--model", default="torch-attention")
    args = ap.parse_args()

    import pandas as pd

    from whyrec.rundir import Run
    from whyrec_torch.counterfactual import HistoryCounterfactual

    run = Run(args.run)
    data, model = run.load_data(), run.load_model(args.model)
    recs = pd.read_parquet(Path(args.run) / "explanations" / f"recommendations__{args.model}.parquet")
    users = recs["user"].unique()[: args.users]
    pairs = recs[recs["user"].isin(users)].reset_index(drop=True)
    results = {}
    for mode in ("hold", "rederive"):
        t, c = time.perf_counter(), time.process_time()
        e = HistoryCounterfactual(history_features=mode).explain(model, data, pairs)
        results[mode] = {"cpu_s": round(time.process_time() - c, 2), "wall_s": round(time.perf_counter() - t, 2), **e.summary}
    print(f"history-counterfactual on {len(pairs)} recommendations of {len(users)} users ({args.run})")
    print(f"{'mode':>9} {'CPU s':>7} {'wall s':>7} {'found':>6} {'mean size':>10} {'proven minimal':>15} {'rankings':>9}")
    for mode, r in results.items():
        mean = f"{r['mean_removed']:.2f}" if r["mean_removed"] is not None else "-"
        print(f"{mode:>9} {r['cpu_s']:7.2f} {r['wall_s']:7.2f} {r['found']:6d} {mean:>10} {r['proven_minimal']:15d} {r['rankings_scored']:9d}")
    print(f"rederive / hold CPU: {results['rederive']['cpu_s'] / max(results['hold']['cpu_s'], 1e-9):.2f}x")
    path = common.write("counterfactual", {"benchmark": "history-counterfactual", "command": "bench/bench_counterfactual.py " + " ".join(sys.argv[1:]),
                                           "pairs": len(pairs), "users": len(users), "results": results, "machine": common.machine()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
