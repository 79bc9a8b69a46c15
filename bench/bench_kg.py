"""kg-paths on MovieLens-100K: coverage of LightGBM top-10 recommendations and time per recommendation.

Fits whyrec's `lightgbm` model on MovieLens-100K (history_length 10), takes the top-10 of
``--users`` users (a seeded sample) and explains every recommendation with `kg-paths`:

- coverage: the share of recommendations with at least one graph path from a history item the
  model sees (``pairs_with_path``), and with at least one path whose history item adds to the
  score (``pairs_with_supported_path``: what kg-paths shows by default), for several
  ``max_entity_share`` caps and for ``history = "all"``;
- time per recommendation for leave-one-out and exact-Shapley scoring (graph load reported
  apart: it happens once per dataset), and for `torch-attention`'s top-10 (``--torch-epochs``),
  where ``scoring = "auto"`` picks Shapley;
- peer: the same shared-entity / direct paths found by a pandas merge of the triples (no
  adjacency index); the path sets must agree, and the time ratio is printed.

    .venv/bin/python bench/bench_kg.py --users 100 --out bench/results/kg.json
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def peer_paths(triples, item_entity: dict, pairs: list[tuple], cap: int | None) -> dict:
    """{(history_item, item): {(relation, entity, hops)}} by merging the triples with themselves."""
    import pandas as pd

    ent_item = {e: i for i, e in item_entity.items()}
    linked = set(item_entity.values())
    # undirected edges with orientation: (a, relation, b, a_is_head)
    t = triples
    edges = pd.concat([pd.DataFrame({"a": t["head"], "r": t["relation"], "b": t["tail"], "a_head": True}),
                       pd.DataFrame({"a": t["tail"], "r": t["relation"], "b": t["head"], "a_head": False})])
    item_edges = edges[edges["a"].isin(linked)]
    deg = item_edges.groupby("b")["a"].nunique()
    want = pd.DataFrame(pairs, columns=["h", "t"])
    want["eh"] = want["h"].map(item_entity)
    want["et"] = want["t"].map(item_entity)
    want = want.dropna()
    out: dict = {}
    # shared entity: same relation and orientation on both sides
    left = want.merge(item_edges, left_on="eh", right_on="a")
    both = left.merge(item_edges, left_on=["et", "b", "r", "a_head"], right_on=["a", "b", "r", "a_head"])
    both = both[(both["b"] != both["eh"]) & (both["b"] != both["et"])]
    if cap is not None:
        both = both[both["b"].map(deg).fillna(0).to_numpy() <= cap]
    for (h, it), g in both.groupby(["h", "t"]):
        out.setdefault((h, it), set()).update((2, e) for e in g["b"])
    direct = want.merge(edges, left_on=["eh", "et"], right_on=["a", "b"])
    for (h, it), g in direct.groupby(["h", "t"]):
        out.setdefault((h, it), set()).add((1, ent_item.get(g["b"].iloc[0], g["b"].iloc[0])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--torch-epochs", type=int, default=3, help="also explain torch-attention's top-k (0: skip)")
    ap.add_argument("--out", default="bench/results/kg.json")
    a = ap.parse_args()

    import pandas as pd

    import whyrec
    from whyrec_kg.paths import facts_between
    from whyrec_kg.scoring import item_of_value, sequence_columns

    t0 = time.perf_counter()
    data = whyrec.component("datasets", "movielens-100k", history_length=10).load()
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph = data.knowledge_graph()
    graph.neighbours(graph.entity_of(1))  # build the adjacency index: a one-off cost per dataset
    t_graph = time.perf_counter() - t0
    model = whyrec.component("models", "lightgbm", n_estimators=200)
    model.fit(data)
    rng = np.random.default_rng(a.seed)
    users = rng.choice(data.user_ids, size=min(a.users, len(data.user_ids)), replace=False)
    recs = pd.concat([model.recommend(u, a.k) for u in users], ignore_index=True)
    n = len(recs)
    print(f"{len(users)} users x top-{a.k} = {n} recommendations; data {t_data:.1f}s, graph {t_graph:.1f}s "
          f"({graph.summary()['triples']:,} triples, {graph.summary()['linked_items']:,} linked items)")

    runs = {}
    for label, kw in [("loo share=0.2 (default)", dict(scoring="leave-one-out")),
                      ("shapley share=0.2", dict(scoring="shapley")),
                      ("loo share=0.05", dict(scoring="leave-one-out", max_entity_share=0.05)),
                      ("loo share=1", dict(scoring="leave-one-out", max_entity_share=1.0)),
                      ("loo share=0.2 history=all", dict(scoring="leave-one-out", history="all"))]:
        exp = whyrec.component("explainers", "kg-paths", **kw)
        t0 = time.perf_counter()
        e = exp.explain(model, data, recs)
        took = time.perf_counter() - t0
        s = e.summary
        runs[label] = {"params": kw, "coverage": s["coverage"], "supported_coverage": s["supported_coverage"],
                       "ms_per_recommendation": 1000 * took / n,
                       "mean_paths_shown": float(np.mean([len(e.row(i)["paths"]) for i in range(n)]))}
        print(f"{label:<28} coverage {s['coverage']:.3f}  supported {s['supported_coverage']:.3f}  "
              f"{1000 * took / n:7.2f} ms/rec  paths shown {runs[label]['mean_paths_shown']:.2f}")

    if a.torch_epochs > 0:  # the sequence model: scoring auto = exact Shapley over the history items
        tmodel = whyrec.component("models", "torch-attention", epochs=a.torch_epochs, seed=a.seed)
        tmodel.fit(data)
        trecs = pd.concat([tmodel.recommend(u, a.k) for u in users], ignore_index=True)
        t0 = time.perf_counter()
        e = whyrec.component("explainers", "kg-paths").explain(tmodel, data, trecs)
        took = time.perf_counter() - t0
        s = e.summary
        runs["torch-attention auto"] = {"params": {"scoring": "auto"}, "scoring": s["scoring"], "coverage": s["coverage"],
                                        "supported_coverage": s["supported_coverage"],
                                        "ms_per_recommendation": 1000 * took / len(trecs),
                                        "max_additivity_error": e.max_additivity_error}
        print(f"{'torch-attention (' + s['scoring'] + ')':<28} coverage {s['coverage']:.3f}  supported "
              f"{s['supported_coverage']:.3f}  {1000 * took / len(trecs):7.2f} ms/rec  max additivity error "
              f"{e.max_additivity_error:.1e}")

    # peer: path sets by pandas merges vs kg-paths' adjacency search (default cap, the window items)
    cap = max(1, math.ceil(0.2 * graph.summary()["linked_items"]))
    X = data.features(recs)
    S = X[sequence_columns(data)].to_numpy(float, na_value=np.nan)
    pairs = sorted({(item_of_value(data, v), it) for row, it in zip(S, recs["item"]) for v in row if np.isfinite(v)})
    t0 = time.perf_counter()
    ours = {}
    for h, it in pairs:
        facts = facts_between(graph, h, it, cap)
        if facts:
            ours[(h, it)] = {(f.hops, f.entity if f.hops == 2 else graph.item_of(f.entity)) for f in facts}
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    peer = peer_paths(graph.triples, graph.item_entity, pairs, cap)
    t_peer = time.perf_counter() - t0
    agree = ours == peer
    print(f"path search over {len(pairs):,} (history item, item) pairs: kg-paths {t_ours:.2f}s, pandas merge peer "
          f"{t_peer:.2f}s (ratio {t_peer / max(t_ours, 1e-9):.1f}x); identical path sets: {agree} "
          f"({sum(len(v) for v in ours.values()):,} paths)")
    loo, shap = runs["loo share=0.2 (default)"], runs["shapley share=0.2"]
    print(f"shapley / leave-one-out time: {shap['ms_per_recommendation'] / loo['ms_per_recommendation']:.1f}x")
    out = {"users": len(users), "k": a.k, "recommendations": n, "data_seconds": t_data, "graph_seconds": t_graph,
           "graph": graph.summary(), "runs": runs,
           "peer": {"pairs": len(pairs), "ours_seconds": t_ours, "peer_seconds": t_peer, "identical": agree}}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
