"""`whyrec explain`: a user's top-k with every applicable explanation, and "why A above B"."""
from __future__ import annotations

from typing import Any

from .atomic import plain
from .errors import RunDirError, UnsupportedError


def _explainers(run: Any, model: Any, methods: tuple[str, ...] | list[str], label: str | None = None) -> list[tuple[str, Any]]:
    """The explainers to run on ``model`` (``label``: its name in the run, for messages)."""
    host = run.host
    label = label or model.name
    entries = {e["name"]: e for e in run.spec("explainers")}
    if not methods:
        if not entries:
            raise RunDirError(f"{run.path}: pipeline {run.pipeline!r} ran no 'explainers' stage, which `whyrec explain` needs; add explainers or pass --method NAME")
        wanted = [(n, e["use"], e["params"]) for n, e in entries.items()]
    else:
        wanted = []
        for m in methods:
            e = entries.get(m)
            wanted.append((m, e["use"], e["params"]) if e else (m, m, {}))
    out = []
    caps = getattr(model, "capabilities", ())
    for name, use, params in wanted:
        if not host.may_support(use, caps) and not methods:
            continue  # declared: it needs capabilities this model lacks (never built, nothing imported)
        x = host.create("explainers", use, params)
        if x.supports(model):
            out.append((name, x))
        elif methods:
            others = _supporting(host, model)
            raise UnsupportedError(f"explainer {name!r} does not support model {label!r}; explainers that do: {', '.join(others) or 'none'}")
    if not out:
        others = _supporting(host, model)
        raise UnsupportedError(f"none of the run's explainers support model {label!r}; pass --method with one that does "
                               f"({', '.join(others) or 'none installed'})")
    return out


def _supporting(host: Any, model: Any) -> list[str]:
    """Installed explainers that support ``model`` (for messages); one that cannot even be
    built (its plugin is broken) is left out rather than replace the message."""
    from .errors import WhyrecError

    out = []
    caps = getattr(model, "capabilities", ())
    for n in host.names("explainers"):
        try:
            if host.may_support(n, caps) and host.create("explainers", n).supports(model):
                out.append(n)
        except (WhyrecError, TypeError):
            continue
    return out


def context_block(data: Any, rows: Any) -> dict | None:
    """What context the explained rows were scored in, and where it came from (None: the
    dataset has no context features). Sources: "explicit" (--context), "user-latest" (the
    user's most recent logged context), "typical" (no logged context: the training mode or
    median), "pair" (the row's own)."""
    names = data.context_names
    if not names:
        return None
    source = dict(getattr(rows, "attrs", {}).get("context", {}))
    values = {c: plain(rows[c].iloc[0]) for c in names if c in rows.columns and len(rows)}
    return {"values": values, "source": {c: source.get(c, "pair") for c in names}}


def explain_user(run: Any, user: Any, k: int, model: str | None = None, methods: tuple[str, ...] = (),
                 context: dict | None = None) -> dict:
    """The JSON contract of `whyrec explain --format json` (docs/contracts.md)."""
    data = run.load_data()
    m = run.load_model(model)
    user = data.check_user(user)
    recs = m.recommend(user, k, context=context or None)
    expls = [(name, x.explain(m, data, recs)) for name, x in _explainers(run, m, methods, label=model)]
    mname = model or run.model_names()[0]
    cautions = {name: method_caution(run.path, name, mname) for name, _ in expls}
    out = []
    for i, r in enumerate(recs.itertuples(index=False)):
        entries = []
        for name, e in expls:
            row = e.row(i)
            row["method"] = name
            row["additive"] = bool(e.additive)
            row["caution"] = cautions[name]  # None, or why this method's reasons need care on this model
            entries.append(row)
        out.append({"item": plain(r.item), "title": data.item_title(r.item), "rank": int(r.rank), "score": float(r.score), "explanations": entries})
    res = {"user": plain(user), "model": mname, "recommendations": out}
    ctx = context_block(data, recs)
    if ctx is not None:
        res["context"] = ctx
    return res


def method_caution(run_dir: Any, instance: str, model: str) -> str | None:
    """The caution a method's reasons carry on ``model`` when the run's quality check judged
    it unfaithful there (the report says the same); None otherwise."""
    try:
        from .report.verdicts import caution_for
    except ImportError:  # pragma: no cover - the report package ships with the core
        return None
    try:
        return caution_for(run_dir, instance, model)
    except OSError:
        return None


def _num(v: Any) -> float | None:
    return None if v is None or v != v else float(v)


def format_text(out: dict) -> str:
    lines = [f"Top {len(out['recommendations'])} for user {out['user']} (model {out['model']}):"]
    if out.get("context"):
        lines.append("  context: " + _context_text(out["context"]))
    shown: set[str] = set()
    for rec in out["recommendations"]:
        lines.append(f"{rec['rank']:>3}. {rec['title']}  (item {rec['item']}, score {rec['score']:.3f})")
        for e in rec["explanations"]:
            fields = ", ".join(f"{k} {v:+.3f}" for k, v in sorted(e["field_attributions"].items(), key=lambda kv: -abs(kv[1]))[:4])
            base, output = _num(e.get("base_value")), _num(e.get("output_value"))
            if base is not None and e.get("additive", True):
                # the contributions start from the base value: base + contributions = the explained output
                total = f" -> {output:.3f}" if output is not None else ""
                raw = "" if output is None or abs(output - rec["score"]) < 5e-4 else " (the model's raw output, before the score's link)"
                lines.append(f"       [{e['method']}] base value {base:.3f}, plus contributions (largest: {fields}){total}{raw}")
            else:
                lines.append(f"       [{e['method']}] {fields}" + ("" if e.get("additive", True) else " (not additive: ranks, does not sum to the score)"))
            if e.get("caution") and e["reasons"]:
                lines.append(f"         caution: {e['caution']}" if e["method"] not in shown else
                             "         caution: as above, judged unfaithful on this model")
                shown.add(e["method"])
            for reason in e["reasons"][:4]:
                lines.append(f"         - {reason}")
    return "\n".join(lines)


def _context_text(ctx: dict) -> str:
    words = {"explicit": "as given", "user-latest": "the user's latest logged context", "typical": "the most typical logged value",
             "user-latest/typical": "the user's latest logged context", "pair": "the pair's own"}
    by_source: dict[str, list[str]] = {}
    for c, v in ctx["values"].items():
        by_source.setdefault(words.get(ctx["source"].get(c, ""), ctx["source"].get(c, "")), []).append(f"{c}={v}")
    return "; ".join(f"{', '.join(v)} ({s})" for s, v in by_source.items())


def why_above_json(run: Any, user: Any, item_a: Any, item_b: Any, model: str | None = None, methods: tuple[str, ...] = (),
                   k: int = 10, context: dict | None = None) -> dict:
    """Why does item A score above item B for this user: the difference of two additive
    explanations (it sums to the score gap for additive methods), plus, where the explainer
    plugin offers it, the smallest feature change that moves A into the top-k."""
    import pandas as pd

    data = run.load_data()
    m = run.load_model(model)
    user = data.check_user(user)
    a, b = data.check_item(item_a), data.check_item(item_b)
    name, x = _explainers(run, m, methods, label=model)[0]
    pairs = data.user_pairs(user, [a, b], context or None)  # A and B in the same context
    e = x.explain(m, data, pairs)
    cands = data.candidates(user)
    scores = m.score(data.user_pairs(user, cands, context or None))
    order = {it: r + 1 for r, it in enumerate(cands[(-scores).argsort(kind="stable")])}
    diff = e.difference(0, 1)
    sa, sb = (float(v) for v in e.pairs["output_value"])
    out = {
        "user": plain(user), "model": model or run.model_names()[0], "method": name,
        "item_a": plain(a), "item_b": plain(b), "title_a": data.item_title(a), "title_b": data.item_title(b),
        "score_a": sa, "score_b": sb, "rank_a": order.get(a), "rank_b": order.get(b),
        "seen_a": a not in order, "seen_b": b not in order,  # already interacted with: never recommended, no rank
        "additive": bool(e.additive),
        "score_gap": sa - sb, "base_gap": float(e.pairs["base_value"].iloc[0] - e.pairs["base_value"].iloc[1]),
        "difference": {k: float(v) for k, v in diff.items()},
        "counterfactual": None,
    }
    ctx = context_block(data, pairs)
    if ctx is not None:
        out["context"] = ctx
    if out["seen_a"]:  # no change of features can rank an item the user already has
        out["counterfactual"] = {"found": False, "reason": f"{out['title_a']} is one the user already interacted with, "
                                                           "so it is never among their recommendations"}
        return out
    cf = _counterfactual_explainer(run, m, name, x)
    if cf is not None:
        try:
            out["counterfactual"] = cf.into_top_k(m, data, user, a, k=k, context=context or None)
        except (NotImplementedError, UnsupportedError) as exc:  # models that do not score feature rows
            out["counterfactual"] = {"found": False, "reason": f"not available for model {m.name!r}: {exc}"}
    return out


COUNTERFACTUAL = "top-k-counterfactual"


def _counterfactual_explainer(run: Any, model: Any, name: str, x: Any) -> Any:
    """An explainer that answers "what moves this item into the top-k" for ``model``: the one
    already chosen when its component declares the capability, else any installed one that
    declares it and supports the model (None: no plugin offers it). The core knows the
    capability, never the plugin: ``into_top_k(model, data, user, item, k, context)``."""
    host = run.host
    entries = {e["name"]: e["use"] for e in run.spec("explainers")}
    use = entries.get(name, name)
    if use in host.names("explainers") and COUNTERFACTUAL in host.get("explainers", use).provides and hasattr(x, "into_top_k"):
        return x
    caps = getattr(model, "capabilities", ())
    for n in host.providers("explainers", COUNTERFACTUAL):
        if not host.may_support(n, caps):
            continue
        try:
            other = host.create("explainers", n)
        except Exception:  # noqa: BLE001  (an explainer needing parameters or a broken plugin is skipped)
            continue
        if hasattr(other, "into_top_k") and other.supports(model):
            return other
    return None


def why_above_text(out: dict) -> str:
    def rank(which: str) -> str:
        return "already interacted with, not ranked" if out.get(f"seen_{which}") else f"rank {out[f'rank_{which}']}"

    lines = [f"{out['title_a']} ({rank('a')}, score {out['score_a']:.3f}) vs {out['title_b']} ({rank('b')}, score {out['score_b']:.3f}) for user {out['user']} [{out['method']}]:"]
    if out.get("context"):
        lines.append("  context: " + _context_text(out["context"]))
    if out.get("additive", True):
        base = out["base_gap"]
        lines.append(f"  score gap {out['score_gap']:+.3f} = differences below" + (f" + base gap {base:+.3f}" if base == base and abs(base) > 1e-12 else ""))
    else:
        lines.append(f"  score gap {out['score_gap']:+.3f}; {out['method']} is not additive, so the differences below are in its "
                     "own units and do not sum to the gap")
    for f, v in list(out["difference"].items())[:8]:
        lines.append(f"  {f:<28} {v:+.3f}")
    cf = out.get("counterfactual")
    if cf:
        if cf.get("already_in_top_k"):
            lines.append(f"  {out['title_a']} is already in the top-k.")
        elif cf.get("found"):
            changes = "; ".join(f"{c['feature']}: {c['from']} -> {c['to']}" for c in cf.get("changes", []))
            lines.append(f"  smallest change that moves it into the top-k: {changes} (new rank {cf.get('new_rank')})")
        else:
            lines.append(f"  {cf.get('reason') or 'no small change of its features moves it into the top-k'}")
    return "\n".join(lines)


