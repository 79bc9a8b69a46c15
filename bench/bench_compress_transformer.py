"""Compression from a transformer-seq teacher (and from torch-attention) on MovieLens-100K, one process.

Teachers: transformer-seq in a medium CPU configuration (``--dim`` 64, ``--layers`` 2,
``--heads`` 4 by default: big enough for "a tenth of it" to mean something) trained
``--epochs``, and torch-attention (its defaults). For each, on the same evaluation users
(``eval_users`` test users, seed 0, every compressor's fidelity report draws the same ones):
- distill -> mlp, listwise (the teacher's softmax over each user's candidates) and score
  (mse on margins, 200 candidates per user); distill -> tree-student (listwise);
- prune: global magnitude pruning of the linear weights, 90 % (1 fine-tuning epoch);
- quantize: dynamic int8 linear layers (sensitive layers kept float); quantize-torchao /
  quantize-torchao-dynamic: the same through torchao (weight-only / dynamic int8), no deprecation;
- prune-layers / prune-heads / prune-heads-layers (a teacher with the structured-network
  capability): ``prune-structured`` removes 1 block / half the heads / 1 block and all heads but
  one, least important first (ablation), then fine-tunes listwise on the teacher;
- distill-net: ``distill-network`` with its defaults (the ``--net-*`` flags: a transformer-seq of
  ``--student-dim`` 8, 2 blocks x 2 heads, hidden [32], the teacher's embeddings as its start,
  rows with a unit missing, float16 storage), listwise-distilled on the teacher's scores over each
  training user's candidates.
Per compressed model: size ratio (saved bytes), parameter ratio, scoring speed-up
(``score_features`` rows/s on one thread), Jaccard@10 with the teacher's top-10, top-3
explanation agreement, NDCG@10 vs the teacher's; then each row against the goal row:
size <= 0.1, parameters <= 0.1, speed-up >= 5, Jaccard@10 >= 0.8, top-3 agreement >= 0.8.

    WHYREC_PROGRESS=0 nice .venv/bin/python bench/bench_compress_transformer.py   # bench/results/compress_transformer.json
    .venv/bin/python bench/bench_compress_transformer.py --data toy --quick       # a smoke run (seconds)
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
BAR = {"size_ratio": ("<=", 0.1), "parameter_ratio": ("<=", 0.1), "speedup": (">=", 5.0), "jaccard@10": (">=", 0.8),
       "top3_agreement": (">=", 0.8)}
KEYS = ("size_ratio", "weight_size_ratio", "parameter_ratio", "speedup", "jaccard@10", "recall@10", "kendall_tau", "rbo",
        "ndcg@10", "top3_agreement", "attribution_rank_correlation", "bytes", "parameters", "rows_per_second")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1, help="transformer teacher epochs")
    ap.add_argument("--ta-epochs", type=int, default=3, help="torch-attention teacher epochs")
    ap.add_argument("--eval-users", type=int, default=100)
    ap.add_argument("--explain-users", type=int, default=30)
    ap.add_argument("--max-users", type=int, default=300, help="users whose candidates the listwise distillation reads (0: all)")
    ap.add_argument("--student-epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--student-dim", type=int, default=8, help="embedding_dim of the distill-net student")
    ap.add_argument("--net-epochs", type=int, default=12, help="epochs of the distill-net student")
    ap.add_argument("--net-users", type=int, default=400, help="training users of distill-net and the structured fine-tune")
    ap.add_argument("--net-temperature", type=float, default=0.3, help="listwise temperature of distill-net")
    ap.add_argument("--net-layers", type=int, default=2, help="blocks of the distill-net student")
    ap.add_argument("--net-heads", type=int, default=2, help="heads of the distill-net student")
    ap.add_argument("--net-hidden", default="32", help="head MLP of the distill-net student, e.g. 16 or 32,16 (empty: 2 x dim)")
    ap.add_argument("--net-init", choices=("random", "teacher"), default="teacher", help="distill-net's init")
    ap.add_argument("--net-ablated", type=float, default=0.3, help="distill-net's ablated_share (rows with a unit missing)")
    ap.add_argument("--net-ablated-weight", type=float, default=1.0, help="distill-net's ablated_weight")
    ap.add_argument("--net-storage", choices=("float32", "float16"), default="float16", help="distill-net's storage")
    ap.add_argument("--also-explainers", default="",
                    help="comma list: top-3 agreement of each student also under these explainers, on the same pairs")
    ap.add_argument("--save-dir", default="", help="save each compressed model here (label/)")
    ap.add_argument("--teacher-dir", default="", help="load the transformer teacher from here if saved, else train and save it "
                                                      "(safetensors; so several student runs share one teacher)")
    ap.add_argument("--teachers", default="transformer-seq,torch-attention")
    ap.add_argument("--methods", default="distill,distill-score,distill-tree,prune-90,quantize,prune-layers,prune-heads,"
                                         "prune-heads-layers,distill-net")
    ap.add_argument("--seed", type=int, default=0, help="seed of the evaluation users, the students' training users and init")
    ap.add_argument("--data", choices=("movielens", "toy"), default="movielens")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compress_transformer.json"))
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    import torch

    torch.set_num_threads(args.threads)
    from whyrec_distill.distill import Distiller
    from whyrec_distill.prune import Pruner
    from whyrec_distill.quantize import Quantizer
    from whyrec_torch.model import TorchAttentionModel
    from whyrec_torch.transformer import TransformerSeqModel

    q = args.quick
    ev = dict(eval_users=20 if q else args.eval_users, explain_users=3 if q else args.explain_users, explain_k=3,
              threads=args.threads, repeats=1 if q else 3, seed=args.seed)
    t0 = time.perf_counter()
    if args.data == "toy":
        from whyrec_torch.toy import make_toy_data

        data = make_toy_data(n_users=80, n_items=40, history_length=6, seed=0)
    else:
        from whyrec_datasets.movielens import MovieLens100K

        data = MovieLens100K().load()
    print(f"[bench] {data.name}: {len(data.train)} train / {len(data.test)} test pairs", flush=True)

    want = [t.strip() for t in args.teachers.split(",") if t.strip()]
    teachers, info = {}, {}
    for name in want:
        if name == "transformer-seq":
            m = TransformerSeqModel(size="small", embedding_dim=args.dim, layers=args.layers, heads=args.heads,
                                    hidden=[args.dim], epochs=args.epochs, device="cpu", num_threads=args.threads, seed=0)
        else:
            m = TorchAttentionModel(epochs=args.ta_epochs, device="cpu", num_threads=args.threads, seed=0)
        t = time.perf_counter()
        saved = Path(args.teacher_dir) / name if args.teacher_dir and name == "transformer-seq" else None
        if saved is not None and (saved / "config.json").exists():
            net = json.loads((saved / "config.json").read_text())["net"]
            fit = json.loads((saved / "bench_fit.json").read_text())
            have = {"embedding_dim": net.get("embedding_dim"), "layers": net.get("layers"), "heads": net.get("heads"),
                    "epochs": fit.get("epochs", args.epochs), "data": fit.get("data", args.data)}
            want = {"embedding_dim": args.dim, "layers": args.layers, "heads": args.heads, "epochs": args.epochs,
                    "data": args.data}
            if have != want:  # a cached teacher of another shape would silently change every figure
                sys.exit(f"--teacher-dir {saved}: the saved teacher is {have}, this run asks for {want}; "
                         "use another directory")
            m = type(m).load(saved, data, device="cpu")
            m.params["num_threads"] = args.threads
            print(f"[bench] teacher {name} loaded from {saved}", flush=True)
        else:
            fit = m.fit(data) or {}
            fit = {"seconds": round(time.perf_counter() - t, 1), "seconds_per_epoch": fit.get("seconds_per_epoch"),
                   "epochs": args.epochs, "data": args.data}
            if saved is not None:
                m.save(saved)
                (saved / "bench_fit.json").write_text(json.dumps(fit))
        info[name] = {"fit_seconds": fit.get("seconds"), "seconds_per_epoch": fit.get("seconds_per_epoch"),
                      "loaded_from": str(saved) if saved is not None else None,
                      "n_parameters": m.n_parameters(), **m.evaluate(data, max_users=200)}
        teachers[name] = m
        print(f"[bench] teacher {name}: {info[name]}", flush=True)

    mlp = {"epochs": 4 if q else args.student_epochs}
    methods = [s.strip() for s in args.methods.split(",") if s.strip()]
    factories = {
        "distill": lambda: Distiller(student="mlp", student_params=mlp, mode="listwise", temperature=0.5, baseline=False,
                                     max_users=args.max_users, **ev),
        "distill-score": lambda: Distiller(student="mlp", student_params=mlp, mode="score", candidates_per_user=200,
                                           baseline=False, **ev),
        # a wider student (still under a tenth of the teacher), a sharper listwise target, more users
        "distill-wide": lambda: Distiller(student="mlp", student_params={**mlp, "epochs": 2 * mlp["epochs"], "hidden": [64],
                                                                           "id_embedding_dim": 4}, mode="listwise",
                                          temperature=0.2, baseline=False, max_users=max(args.max_users, 500), **ev),
        # listwise plus a pairwise term on the teacher's top-k (relaxed ranking distillation, as DE-RRD)
        "distill-hybrid": lambda: Distiller(student="mlp", student_params={**mlp, "epochs": 2 * mlp["epochs"], "hidden": [64],
                                                                             "id_embedding_dim": 4}, mode="hybrid",
                                            temperature=0.2, baseline=False, max_users=max(args.max_users, 500), **ev),
        "distill-tree": lambda: Distiller(student="tree-student", mode="listwise", baseline=False, max_users=args.max_users, **ev),
        "prune-90": lambda: Pruner(sparsity=0.9, finetune_epochs=1, **ev),
        "quantize": lambda: Quantizer(**ev),
        # the non-deprecated API (torchao, optional extra): int8 weights only / int8 activations too
        "quantize-torchao": lambda: Quantizer(backend="torchao", scheme="weight-only", **ev),
        "quantize-torchao-dynamic": lambda: Quantizer(backend="torchao", scheme="dynamic", **ev),
    }
    from whyrec_distill.structured import NetworkDistiller, StructuredPruner

    heads = args.heads * args.layers
    pu = 40 if q else args.net_users
    factories.update({
        "prune-layers": lambda: StructuredPruner(remove_layers=1, finetune_epochs=1 if q else 2, max_users=pu, **ev),
        "prune-heads": lambda: StructuredPruner(remove_heads=heads // 2, finetune_epochs=1 if q else 2, max_users=pu, **ev),
        "prune-heads-layers": lambda: StructuredPruner(remove_layers=args.layers - 1, remove_heads=args.heads - 1,
                                                       finetune_epochs=1 if q else 2, max_users=pu, **ev),
        "distill-net": lambda: NetworkDistiller(shape={"embedding_dim": args.student_dim, "layers": args.net_layers,
                                                       "heads": args.net_heads,
                                                       "hidden": [int(h) for h in args.net_hidden.split(",") if h.strip()]
                                                       or [2 * args.student_dim]},
                                                epochs=2 if q else args.net_epochs, max_users=pu,
                                                temperature=args.net_temperature, init=args.net_init,
                                                storage=args.net_storage, ablated_share=args.net_ablated,
                                                ablated_weight=args.net_ablated_weight, **ev),
    })
    structured = {"prune-layers", "prune-heads", "prune-heads-layers", "distill-net"}
    # The structured methods' students share the teacher's encoder (with_module / clone_architecture),
    # so the teacher's listwise targets over the same users are the same rows: computed once per run.
    import whyrec_distill.structured as structured_mod

    cache: dict = {}
    compute = structured_mod.teacher_targets

    def cached_targets(teacher, student, data, **kw):
        key = (id(teacher), tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = compute(teacher, student, data, **kw)
        return cache[key]

    structured_mod.teacher_targets = cached_targets
    rows, reports = [], {}
    for tname, teacher in teachers.items():
        for label in methods:
            if label not in factories:
                print(f"[bench] {label}: not available, left out", flush=True)
                continue
            if label in structured and "structured-network" not in teacher.capabilities:
                print(f"[bench] {label}: {tname} has no structured-network capability, left out", flush=True)
                continue
            comp = factories[label]()
            t = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    student, rep = comp.compress(teacher, data)
            except Exception as exc:  # noqa: BLE001  (one failing method must not lose the others' figures)
                reports[f"{label}:{tname}"] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"[bench] {label} on {tname} FAILED: {type(exc).__name__}: {exc}", flush=True)
                continue
            secs = round(time.perf_counter() - t, 1)
            s = rep.summary
            reports[f"{label}:{tname}"] = {"seconds": secs, "summary": s,
                                           "warnings": sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})[:6]}
            agr = rep.tables.get("agreement") if isinstance(getattr(rep, "tables", None), dict) else None
            if agr is not None and len(agr):
                keep = [c for c in agr.columns if c in ("user", "item", "rank", "top3_agreement", "teacher_top3", "student_top3")]
                reports[f"{label}:{tname}"]["agreement_pairs"] = agr[keep].astype(str).to_dict("records")
                also = {}
                for ename in [e.strip() for e in args.also_explainers.split(",") if e.strip()]:
                    also[ename] = extra_agreement(teacher, student, data, agr, ename)
                    print(f"[bench] {label}: top-3 agreement under {ename}: {also[ename]['top3_agreement']:.3f} "
                          f"({also[ename]['seconds']} s)", flush=True)
                if also:
                    reports[f"{label}:{tname}"]["agreement_by_explainer"] = also
            if args.save_dir:
                student.save(Path(args.save_dir) / label)
            for role in [r for r in s["models"] if r != "teacher"]:
                mm = s["models"][role]
                rows.append({"method": label, "teacher": tname, "model": mm["name"], **{k: mm.get(k) for k in KEYS},
                             "teacher_ndcg@10": s["models"]["teacher"].get("ndcg@10"),
                             "teacher_bytes": s["models"]["teacher"].get("bytes"),
                             "teacher_rows_per_second": s["models"]["teacher"].get("rows_per_second"),
                             "explainer": s.get("explainer"), "seconds": secs})
            print(f"[bench] {label} on {tname}: {secs}s", flush=True)
            table([r for r in rows if r["teacher"] == tname and r["method"] == label])

    print("\n== all ==")
    table(rows)
    out = {"command": "python bench/bench_compress_transformer.py " + " ".join(sys.argv[1:]), "python": platform.python_version(),
           "torch": torch.__version__, "threads": args.threads, "eval": ev, "teachers": info,
           "teacher_shape": {"embedding_dim": args.dim, "layers": args.layers, "heads": args.heads, "epochs": args.epochs},
           "rows": rows, "bar": bar(rows), "reports": reports, "seconds": round(time.perf_counter() - t0, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {args.out} ({out['seconds']} s)")


def extra_agreement(teacher, student, data, agr, explainer_name: str) -> dict:
    """Top-3 agreement of teacher and student under another explainer, on the report's pairs."""
    import numpy as np

    from whyrec.data import ITEM, USER
    from whyrec_distill.agreement import agreement, attributions, choose_explainer

    t0 = time.perf_counter()
    pairs = agr[[c for c in agr.columns if c in (USER, ITEM, *data.context_names)]].reset_index(drop=True)
    name, ex = choose_explainer(explainer_name, [teacher, student])
    background = None
    if ex is None:
        background = data.features(data.train.sample(min(len(data.train), 256), random_state=0))
    ta = attributions(teacher, data, pairs, name, ex, background, 0)
    sa = attributions(student, data, pairs, name, ex, background, 0)
    table, _ = agreement(ta, sa, data.schema.of_kind("sequence"), 3)
    return {"explainer": name, "top3_agreement": float(np.nanmean(table["top3_agreement"])),
            "attribution_rank_correlation": float(np.nanmean(table["rank_correlation"])), "pairs": len(pairs),
            "seconds": round(time.perf_counter() - t0, 1)}


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def table(rows: list[dict]) -> None:
    cols = ["method", "teacher", "model", "size_ratio", "parameter_ratio", "speedup", "jaccard@10", "top3_agreement",
            "ndcg@10", "teacher_ndcg@10"]
    heads = ["method", "teacher", "model", "size", "params", "speed-up", "Jacc@10", "top-3 agr", "NDCG@10", "NDCG@10(T)"]
    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(heads)]
    print(" | ".join(h.ljust(w) for h, w in zip(heads, widths)))
    for c, b in zip(cells, bar(rows)):
        miss = [k for k, ok in b["met"].items() if not ok]
        print(" | ".join(x.ljust(w) for x, w in zip(c, widths)) + ("   GOAL MET" if not miss else f"   misses: {', '.join(miss)}"),
              flush=True)


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
