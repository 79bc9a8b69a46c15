"""Compression on MovieLens-100K: every method against its teacher, in one process.

Trains the two teachers (torch-attention, lightgbm) once, then runs
- distill torch-attention -> mlp (listwise distillation) with its same-size label-only baseline,
  and the same student by pointwise score distillation (mse on margins, 200 candidates per user),
- prune torch-attention (global magnitude, 50 % and 90 % of the linear weights, and 90 % of
  linear + embedding weights; 1 fine-tuning epoch on the teacher's probabilities),
- quantize torch-attention (dynamic int8 linear layers, sensitive layers kept float; and with
  8-bit embedding tables),
- distill lightgbm -> mlp and lightgbm -> tree-student (a 30-tree, 15-leaf surrogate),
and prints, per compressed model: size ratio (saved bytes), parameter ratio, scoring speed-up
(``score_features`` rows/s on one thread, encoding included), Jaccard@10 / recall@10 of the
teacher's top-10, Kendall tau and RBO of the full candidate rankings, AUC on the teacher's
labels, NDCG@10 against held-out positives (student vs teacher), top-3 explanation agreement
and attribution rank correlation; then checks the issue's bar (size <= 1/10, >= 5x faster,
Jaccard@10 >= 0.8, top-3 agreement >= 0.8). Writes bench/results/compress.json.

    .venv/bin/python bench/bench_compress.py            # full run (about 15-25 min on 2 busy cores)
    .venv/bin/python bench/bench_compress.py --quick    # fewer users and epochs, a smoke run
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAR = {"size_ratio": ("<=", 0.1), "speedup": (">=", 5.0), "jaccard@10": (">=", 0.8), "top3_agreement": (">=", 0.8)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer users, epochs and explained pairs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compress.json"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training and timing (default 1)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    import torch

    torch.set_num_threads(args.threads)
    from whyrec_datasets.movielens import MovieLens100K
    from whyrec_distill.distill import Distiller
    from whyrec_distill.prune import Pruner
    from whyrec_distill.quantize import Quantizer
    from whyrec_lightgbm.model import LightGBMModel
    from whyrec_torch.model import TorchAttentionModel

    q = args.quick
    ev = dict(eval_users=30 if q else 200, explain_users=3 if q else 10, explain_k=3, threads=args.threads, repeats=3)
    t0 = time.perf_counter()
    data = MovieLens100K().load()
    print(f"[bench] MovieLens-100K: {len(data.train)} train / {len(data.test)} test pairs", flush=True)

    teachers, teacher_info = {}, {}
    for name, model in (("torch-attention", TorchAttentionModel(epochs=2 if q else 5, device="cpu")),
                        ("lightgbm", LightGBMModel(n_estimators=100 if q else 300, num_threads=args.threads))):
        t = time.perf_counter()
        model.fit(data)
        teacher_info[name] = {"fit_seconds": round(time.perf_counter() - t, 1), **model.evaluate(data, max_users=200)}
        teachers[name] = model
        print(f"[bench] teacher {name}: {teacher_info[name]}", flush=True)

    mlp_params = {"epochs": 8 if q else 20}  # the mlp defaults: hidden [32], 2-d ids, float16 weights
    runs = [
        ("distill", "torch-attention", Distiller(student="mlp", student_params=mlp_params, mode="listwise", temperature=0.5, **ev)),
        ("distill-score", "torch-attention", Distiller(student="mlp", student_params=mlp_params, mode="score",
                                                        candidates_per_user=200, baseline=False, **ev)),
        ("prune-50", "torch-attention", Pruner(sparsity=0.5, finetune_epochs=1, **ev)),
        ("prune-90", "torch-attention", Pruner(sparsity=0.9, finetune_epochs=1, **ev)),
        ("prune-90-emb", "torch-attention", Pruner(sparsity=0.9, include_embeddings=True, finetune_epochs=1, **ev)),
        ("quantize", "torch-attention", Quantizer(**ev)),
        ("quantize-emb", "torch-attention", Quantizer(include_embeddings=True, **ev)),
        ("distill", "lightgbm", Distiller(student="mlp", student_params=mlp_params, mode="listwise", temperature=0.5, **ev)),
        ("distill-tree", "lightgbm", Distiller(student="tree-student", mode="listwise", **ev)),
        ("distill-tree-score", "lightgbm", Distiller(student="tree-student", mode="score", candidates_per_user=200, baseline=False, **ev)),
    ]
    rows, reports = [], {}
    for label, tname, comp in runs:
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            student, rep = comp.compress(teachers[tname], data)
        secs = round(time.perf_counter() - t, 1)
        s = rep.summary
        reports[f"{label}:{tname}"] = {"seconds": secs, "summary": s,
                                       "warnings": sorted({str(w.message)[:200] for w in caught if w.category.__name__ != "DeprecationWarning"})[:5]}
        for role in [r for r in s["models"] if r != "teacher"]:
            m = s["models"][role]
            rows.append({"method": label, "teacher": tname, "model": f"{m['name']}{' (labels only)' if role == 'baseline' else ''}",
                         "role": role, **{k: m.get(k) for k in (
                             "size_ratio", "weight_size_ratio", "parameter_ratio", "speedup", "jaccard@10", "recall@10", "kendall_tau", "rbo",
                             "teacher_auc", "ndcg@10", "top3_agreement", "attribution_rank_correlation", "bytes", "weight_bytes",
                             "parameters", "nonzero_parameters", "rows_per_second")},
                         "teacher_ndcg@10": s["models"]["teacher"]["ndcg@10"], "teacher_bytes": s["models"]["teacher"]["bytes"],
                         "teacher_rows_per_second": s["models"]["teacher"]["rows_per_second"], "explainer": s["explainer"],
                         "seconds": secs})
        print(f"[bench] {label} on {tname}: {secs}s, explainer {s['explainer']}", flush=True)

    table(rows)
    out = {"command": "python bench/bench_compress.py" + (" --quick" if q else ""), "quick": q,
           "python": platform.python_version(), "torch": torch.__version__, "threads": args.threads,
           "eval": ev, "teachers": teacher_info, "rows": rows, "reports": reports, "bar": bar(rows),
           "seconds": round(time.perf_counter() - t0, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {args.out} ({out['seconds']} s)")


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def table(rows: list[dict]) -> None:
    cols = ["method", "teacher", "model", "size_ratio", "weight_size_ratio", "speedup", "jaccard@10", "recall@10", "kendall_tau", "rbo",
            "teacher_auc", "ndcg@10", "teacher_ndcg@10", "top3_agreement", "attribution_rank_correlation"]
    heads = ["method", "teacher", "model", "size", "weights", "speed-up", "Jacc@10", "rec@10", "tau", "RBO", "AUC(T)", "NDCG@10",
             "NDCG@10(T)", "top-3 agr", "attr rho"]
    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    print("\n" + " | ".join(h.ljust(w) for h, w in zip(heads, widths)))
    print("-|-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(x.ljust(w) for x, w in zip(c, widths)))
    print("\nbar (size <= 0.1, speed-up >= 5, Jaccard@10 >= 0.8, top-3 agreement >= 0.8):")
    for r, b in zip(rows, bar(rows)):
        print(f"  {r['method']:<13} {r['teacher']:<16} {r['model']:<26} " + ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in b["met"].items()))


def bar(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        met = {}
        for key, (op, target) in BAR.items():
            v = r.get(key)
            met[key] = v is not None and (v <= target if op == "<=" else v >= target)
        out.append({"method": r["method"], "teacher": r["teacher"], "model": r["model"], "met": met})
    return out


if __name__ == "__main__":
    sys.exit(main())
