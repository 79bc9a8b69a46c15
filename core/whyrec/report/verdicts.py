"""Verdicts on explanation quality, in words, from a quality StageResult's ``summary.json``.

One place decides how far a method can be trusted on a model, so the report's quality table,
the reasons next to it (users section) and ``whyrec explain`` (text and JSON) say the same.
Two summary shapes are understood, and any other that states its own ``verdict``:

* ``kind: faithfulness`` (attention vs leave-one-out, whyrec-torch): ``faithful`` "yes"/"no"
  and a ``verdict`` sentence;
* ``kind: explanation-quality`` (deletion/insertion, stability, sanity; whyrec-shap):
  ``deletion_gain_over_random``, ``insertion_gain_over_random``, ``seed_spearman_mean``,
  ``sanity_passed``.

Levels: "ok" (trust it), "care" (use with care), "unfaithful" (its reasons must carry a caution).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GAIN = 0.05          # deletion/insertion must beat random order by this (share of the rank range)
STABLE = 0.8         # mean Spearman correlation between reruns with other seeds


@dataclass
class Verdict:
    level: str               # "ok", "care" or "unfaithful"
    text: str                # one sentence for people
    numbers: dict            # the few figures it stands on (for the small table)

    @property
    def caution(self) -> str | None:
        """The caution a reason from this method carries where it is shown (None: none)."""
        if self.level != "unfaithful":
            return None
        return f"judged unfaithful on this model: {self.text}"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def verdict(summary: dict) -> Verdict | None:
    """The verdict of one quality summary (None: nothing to judge)."""
    if not isinstance(summary, dict):
        return None
    kind = summary.get("kind")
    if kind == "faithfulness" or "faithful" in summary:
        f = str(summary.get("faithful", "")).lower()
        level = "ok" if f in ("yes", "true") else "unfaithful" if f in ("no", "false") else "care"
        text = str(summary.get("verdict") or {"ok": "agrees with what the score depends on",
                                                "unfaithful": "does not agree with what the score depends on"}.get(level, "unclear"))
        nums = {"median Kendall τ vs leave-one-out": _num(summary.get("kendall_tau_attention_loo_median")),
                "top item agrees": _num(summary.get("top1_agreement"))}
        return Verdict(level, text, {k: v for k, v in nums.items() if v is not None})
    dg, ig = _num(summary.get("deletion_gain_over_random")), _num(summary.get("insertion_gain_over_random"))
    stab = _num(summary.get("seed_spearman_mean"))
    sanity = summary.get("sanity_passed")
    if dg is None and ig is None and stab is None and sanity is None:
        if summary.get("verdict"):
            return Verdict("care", str(summary["verdict"]), {})
        return None
    problems, good = [], []
    gains = [g for g in (dg, ig) if g is not None]
    if gains and min(gains) <= 0:
        problems.append("removing its top-ranked features hurts the item no more than removing random ones")
        level = "unfaithful"
    elif gains and min(gains) < GAIN:
        problems.append("its top-ranked features matter only a little more than random ones")
        level = "care"
    else:
        level = "ok"
        if gains:
            good.append("its top-ranked features move the score more than random ones")
    if stab is not None:
        if stab < STABLE:
            problems.append(f"it changes with the random seed (rank correlation {stab:.2f})")
            level = "care" if level == "ok" else level
        else:
            good.append("stable across seeds")
    if sanity is False:
        problems.append("it barely changes for a model trained on shuffled labels (sanity check failed)")
        level = "unfaithful"
    elif sanity is True:
        good.append("passes the shuffled-label sanity check")
    text = "; ".join(problems) if problems else "; ".join(good) or "no problem found"
    nums = {"deletion gain over random": dg, "insertion gain over random": ig, "stability across seeds": stab,
            "sanity check": None if sanity is None else ("passed" if sanity else "failed")}
    return Verdict(level, text[:1].upper() + text[1:] + ".", {k: v for k, v in nums.items() if v is not None})


LABELS = {"ok": "trust it", "care": "use with care", "unfaithful": "unfaithful on this model"}


def run_verdicts(run_dir: str | Path) -> dict[str, list[Verdict]]:
    """explanations/<instance>__<model> folder name -> the verdicts of its quality checks
    (quality/summary.json, and any quality/*/summary.json)."""
    base = Path(run_dir) / "explanations"
    out: dict[str, list[Verdict]] = {}
    if not base.is_dir():
        return out
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        for sp in [d / "quality" / "summary.json", *sorted((d / "quality").glob("*/summary.json"))]:
            if not sp.is_file():
                continue
            try:
                v = verdict(json.loads(sp.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
            if v is not None:
                out.setdefault(d.name, []).append(v)
    return out


def caution_for(run_dir: str | Path, instance: str, model: str) -> str | None:
    """The caution that reasons of explainer ``instance`` on ``model`` carry, or None."""
    for name in (f"{instance}__{model}", f"{instance}__{str(model).replace(':', '__')}"):
        for v in run_verdicts(run_dir).get(name, []):
            if v.caution:
                return v.caution
    return None
