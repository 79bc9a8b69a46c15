"""Context features on data whyrec has never seen: AUC and the share of attribution on context.

Over random `table` data sets (random schemas, random context columns that drive the click,
see whyrec_datasets.random_table) it fits whyrec's `lightgbm` model through the `table`
dataset, evaluates AUC with whyrec.metrics and explains test rows with `tree-shap`; as the peer
it fits LightGBM itself on every declared column of the same train/test rows. If context
reaches the model, whyrec's AUC matches the peer's and context gets a real share of the
attribution; if it is dropped, AUC falls and the share is 0.

    .venv/bin/python bench/bench_context.py --seeds 20 --out bench/results/context.json
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def one(seed: int, rows: int) -> dict:
    import lightgbm as lgb
    import pandas as pd

    import whyrec
    from whyrec.data import LABEL
    from whyrec.metrics import auc
    from whyrec_datasets.random_table import random_table

    with tempfile.TemporaryDirectory() as tmp:
        spec = random_table(tmp, seed=seed, n_rows=rows)
        data = whyrec.component("datasets", "table", **spec.params).load()
        t0 = time.perf_counter()
        model = whyrec.component("models", "lightgbm", n_estimators=100, seed=seed)
        model.fit(data)
        m = model.evaluate(data, max_users=20)
        test = data.test.reset_index(drop=True)
        expl = whyrec.component("explainers", "tree-shap").explain(model, data, test.head(300))
        share = _context_share(expl.attributions, data)
        took = time.perf_counter() - t0
        # peer: LightGBM on every declared column of the same rows
        cols = spec.user + spec.item + spec.context
        full_tr = _join(data.train, data, cols)
        full_te = _join(test, data, cols)
        clf = lgb.LGBMClassifier(n_estimators=100, learning_rate=0.05, verbose=-1, seed=seed)
        clf.fit(full_tr, data.train[LABEL])
        peer_auc = auc(test[LABEL].to_numpy(), clf.predict_proba(full_te)[:, 1])
    return {"seed": seed, "n_context": len(spec.context), "features": len(cols), "auc": m["auc"], "peer_auc": peer_auc,
            "context_share": share, "model_uses": list(model.feature_names), "seconds": took}


def _join(rows, data, cols):
    import pandas as pd

    u = data.users.reindex(rows["user"].to_numpy()).reset_index(drop=True)
    i = data.items.reindex(rows["item"].to_numpy()).reset_index(drop=True)
    out = {}
    for c in cols:
        src = u if c in u.columns else i if c in i.columns else rows.reset_index(drop=True)
        col = src[c]
        out[c] = col.astype("category") if not pd.api.types.is_numeric_dtype(col) else col.to_numpy(float)
    return pd.DataFrame(out)


def _context_share(attributions, data) -> float:
    """Share of the total |attribution| (over the explained rows) that falls on context columns."""
    ctx = set(data.schema.groups().get("context", []))
    a = attributions.abs().sum(axis=0)
    total = float(a.sum())
    return float(a[[f for f in a.index if f in ctx]].sum() / total) if total else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--out", default="bench/results/context.json")
    args = ap.parse_args()
    res = []
    for s in range(args.seeds):
        try:
            r = one(s, args.rows)
        except Exception as exc:  # noqa: BLE001 (a benchmark reports a failing case, it does not stop)
            r = {"seed": s, "error": f"{type(exc).__name__}: {exc}"}
        res.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "model_uses"}))
    ok = [r for r in res if "error" not in r]
    summary = {"cases": len(res), "failed": len(res) - len(ok)}
    if ok:
        for key in ("auc", "peer_auc", "context_share"):
            v = np.array([r[key] for r in ok])
            summary[key] = {"median": float(np.median(v)), "p10": float(np.quantile(v, 0.1)),
                            "p90": float(np.quantile(v, 0.9)), "min": float(v.min())}
        gap = np.array([r["peer_auc"] - r["auc"] for r in ok])
        summary["auc_gap_to_peer"] = {"median": float(np.median(gap)), "max": float(gap.max())}
    print(f"\n{'':<16}{'median':>8}{'p10':>8}{'p90':>8}{'min':>8}")
    for key in ("auc", "peer_auc", "context_share"):
        if key in summary:
            s = summary[key]
            print(f"{key:<16}{s['median']:>8.3f}{s['p10']:>8.3f}{s['p90']:>8.3f}{s['min']:>8.3f}")
    print(json.dumps(summary))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "cases": res}, indent=1))


if __name__ == "__main__":
    main()
