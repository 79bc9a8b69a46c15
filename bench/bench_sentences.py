"""Sentences a person reads: the share of MovieLens recommendations with at least one sentence in
each language, what the sentences rest on, and the time the words add to an explanation.

    .venv/bin/python bench/bench_sentences.py runs/<movielens run> [--users 10] [-k 10] [--add-method kg-paths]

For the first ``--users`` explained users of a finished run (the default movielens pipeline)
and each of its models, ``explain_user`` (every explainer of the run that supports the model,
as `whyrec explain` does, plus any ``--add-method`` that supports it) then ``add_text`` in English and in Chinese, in this one process;
prints, per model and language, the share of recommendations with at least one sentence, the
share with one naming something specific (a history item, a genre or a knowledge-graph path: not
only a field), the mean number of sentences, the kinds they come from, the seconds per recommendation of the
explanation and of the words, and their ratio; writes bench/results/sentences.json. The peer
is the explanation itself: the words must cost a small fraction of it.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shap_bench_common as common  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a finished run directory (the default movielens pipeline)")
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--add-method", action="append", default=[], metavar="NAME",
                    help="an explainer to run besides the run's own where it supports the model (e.g. kg-paths)")
    args = ap.parse_args()

    import pandas as pd

    from whyrec.errors import UnsupportedError
    from whyrec.explain import explain_user
    from whyrec.rundir import Run
    from whyrec.sentences import LANGS, add_text

    run = Run(args.run)
    data = run.load_data()
    results = {}
    for model in run.model_names():
        recs = Path(args.run) / "explanations" / f"recommendations__{model}.parquet"
        users = list(pd.read_parquet(recs)["user"].unique()[: args.users]) if recs.exists() else list(data.user_ids[: args.users])
        explain_s, n_recs = 0.0, 0
        per_lang = {lang: {"with_sentence": 0, "with_named": 0, "sentences": 0, "seconds": 0.0, "kinds": Counter()} for lang in LANGS}
        methods: tuple | None = None
        for user in users:
            if methods is None:  # the run's explainers for this model, plus the added ones where they apply
                out = explain_user(run, user, args.k, model=model)
                methods = tuple(e["method"] for e in out["recommendations"][0]["explanations"])
                if args.add_method:
                    try:
                        explain_user(run, user, 1, model=model, methods=methods + tuple(args.add_method))
                        methods += tuple(args.add_method)
                    except UnsupportedError as exc:
                        print(f"{model}: {exc}; without {', '.join(args.add_method)}")
            t = time.perf_counter()
            out = explain_user(run, user, args.k, model=model, methods=methods)
            explain_s += time.perf_counter() - t
            n_recs += len(out["recommendations"])
            for lang in LANGS:
                o = copy.deepcopy(out)
                t = time.perf_counter()
                add_text(o, data, lang)
                r = per_lang[lang]
                r["seconds"] += time.perf_counter() - t
                for rec in o["recommendations"]:
                    r["with_sentence"] += bool(rec["text"])
                    # a sentence naming something specific: a history item, a genre or a path, not only a field
                    r["with_named"] += any(x["kind"] != "field" for x in rec["text"])
                    r["sentences"] += len(rec["text"])
                    r["kinds"].update(s["kind"] for s in rec["text"])
        methods = [e["method"] for e in out["recommendations"][0]["explanations"]] if n_recs else []
        results[model] = {"users": len(users), "recommendations": n_recs, "methods": methods,
                          "explain_s_per_rec": explain_s / max(n_recs, 1),
                          "langs": {lang: {"share_with_sentence": r["with_sentence"] / max(n_recs, 1),
                                           "share_with_named": r["with_named"] / max(n_recs, 1),
                                           "mean_sentences": r["sentences"] / max(n_recs, 1),
                                           "kinds": dict(r["kinds"]), "words_s_per_rec": r["seconds"] / max(n_recs, 1),
                                           "words_over_explain": r["seconds"] / max(explain_s, 1e-12)}
                                    for lang, r in per_lang.items()}}
    print(f"sentences on {args.run}: first {args.users} explained users per model, top-{args.k}")
    print(f"{'model':>16} {'lang':>4} {'recs':>5} {'with sentence':>14} {'naming one':>11} {'mean':>5} {'explain s/rec':>14} "
          f"{'words ms/rec':>13} {'words/explain':>14}  kinds")
    for model, m in results.items():
        for lang, r in m["langs"].items():
            print(f"{model:>16} {lang:>4} {m['recommendations']:5d} {r['share_with_sentence']:14.1%} {r['share_with_named']:11.1%} "
                  f"{r['mean_sentences']:5.2f} "
                  f"{m['explain_s_per_rec']:14.3f} {1000 * r['words_s_per_rec']:13.2f} {r['words_over_explain']:13.4f}x  "
                  + ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items())))
    path = common.write("sentences", {"benchmark": "sentences", "command": "bench/bench_sentences.py " + " ".join(sys.argv[1:]),
                                      "users": args.users, "k": args.k, "results": results, "machine": common.machine()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
