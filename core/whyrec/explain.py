"""`whyrec explain`: a user's top-k with every applicable explanation, and "why A above B"."""
from __future__ import annotations

from typing import Any

from .session import COUNTERFACTUAL, ExplainSession, context_block, method_caution  # noqa: F401  (the one place of each)


def explain_user(run: Any, user: Any, k: int, model: str | None = None, methods: tuple[str, ...] = (),
                 context: dict | None = None, lang: str | None = None, **options: Any) -> dict:
    """The JSON contract of `whyrec explain --format json` (docs/contracts.md): one question to
    a fresh ``ExplainSession`` (``whyrec serve`` keeps one warm and asks it the same way)."""
    return ExplainSession(run).explain(user, k, model=model, methods=methods, context=context, lang=lang, **options)


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
    """Why does item A score above item B for this user (``ExplainSession.why_above``)."""
    return ExplainSession(run).why_above(user, item_a, item_b, model=model, methods=methods, k=k, context=context)


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


