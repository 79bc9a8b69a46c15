"""``whyrec causal RUN --do feature=value``: answer interventions from a run's saved network.

Reads ``RUN/causal/<name>/bn.json`` (the fitted CPDs as JSON) and rebuilds the CausalNex
network without refitting; no data is loaded. Values are in the data's own units
(``--do price=4.5``, ``--do price=3..5``, ``--do discount=0.1``), or state names. Without
``--do`` it prints the run's effect table; ``--compare`` prints causal effect vs attribution.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _stage_dir(run_dir: Path, name: str | None) -> Path:
    from whyrec.errors import RunDirError
    from whyrec.rundir import Run

    run = Run(run_dir)
    stages = [s for s in run.stages("causal") if s.get("dir")]
    ours = [s for s in stages if s.get("component") == "causalnex-bn"]
    if name is not None:
        pick = [s for s in stages if s["name"] in (name, f"causal:{name}") or Path(s["dir"]).name == name]
        if not pick:
            have = ", ".join(Path(s["dir"]).name for s in stages) or "none"
            raise RunDirError(f"{run_dir}: no causal stage named {name!r} (causal stages: {have})")
        stage = pick[0]
    elif ours:
        stage = ours[0]
    else:
        raise RunDirError(f"{run_dir}: pipeline {run.pipeline!r} ran no causalnex-bn causal stage; add "
                          f"`causal = {{ use = \"causalnex-bn\" }}` to it and rerun")
    if stage.get("status") != "complete":
        raise RunDirError(f"{run_dir}: causal stage {stage['name']!r} {stage.get('status')} "
                          f"({stage.get('error') or 'no error recorded'}); fix it and rerun the pipeline")
    return run.path / stage["dir"]


def _parse_do(items: tuple[str, ...]) -> dict[str, str]:
    from whyrec.errors import DataError

    out: dict[str, str] = {}
    for item in items:
        var, sep, level = item.partition("=")
        if not sep or not var.strip() or not level.strip():
            raise DataError(f"--do {item!r}: expected FEATURE=VALUE, e.g. --do price=4.5, --do price=3..5 or --do price=low")
        if var.strip() in out:
            raise DataError(f"--do {item!r}: {var.strip()!r} is set twice; give one value (or a range lo..hi) per variable")
        out[var.strip()] = level.strip()
    return out


def _effect_rows(directory: Path) -> list[dict[str, Any]]:
    path = directory / "effects.json"
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text()).get("levels", [])
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []


def _compare_table(directory: Path) -> "Any":
    import pandas as pd
    from whyrec.errors import RunDirError

    path = directory / "causal_vs_attribution.parquet"
    try:
        df = pd.read_parquet(path) if path.exists() else None
    except Exception as exc:  # noqa: BLE001 (a truncated or foreign file)
        raise RunDirError(f"{path}: unreadable table ({type(exc).__name__}); rerun the pipeline's causal stage") from exc
    if df is None:
        raise RunDirError(f"{path}: missing or unreadable; it is written by the causalnex-bn causal stage (rerun the "
                          f"pipeline)")
    if "reason" not in df.columns:
        raise RunDirError(f"{path}: written by an earlier whyrec-causalnex without the directions and reasons of the "
                          f"comparison; rerun the pipeline's causal stage")
    return df


def _num(v: Any, fmt: str = "{:+.3f}") -> str:
    try:
        return "n/a" if v is None or v != v else fmt.format(v)
    except (TypeError, ValueError):
        return "n/a"


def _iv(v: Any, lo: Any, hi: Any, fmt: str = "{:+.3f}") -> str:
    if v is None or v != v:
        return "n/a"
    if lo is None or lo != lo:
        return _num(v, fmt)
    return f"{_num(v, fmt)} [{_num(lo, fmt)}, {_num(hi, fmt)}]"


def _print_compare(df: Any, fmt: str, outcome: str) -> None:
    from .attribution import WARNINGS

    cols = ["feature", "model", "method", "causal_effect", "causal_effect_low", "causal_effect_high", "path_to_outcome",
            "causal_direction", "causal_direction_low", "causal_direction_high", "attribution_share", "attribution_rank",
            "attribution_direction", "attribution_direction_low", "attribution_direction_high", "flag", "reason"]
    rows = df[[c for c in cols if c in df.columns]]
    if fmt == "json":
        recs = json.loads(rows.to_json(orient="records"))  # NaN -> null
        click.echo(json.dumps({"outcome": outcome, "rows": recs,
                               "flagged": [r for r in recs if str(r.get("flag", "")).startswith(WARNINGS)]}, indent=2))
        return
    for (model, method), grp in rows.groupby(["model", "method"], sort=False):
        click.echo(f"{model or '(no model)'} / {method or '(no attributions)'}: causal effect on {outcome} vs attribution")
        click.echo(f"  {'feature':<18} {'causal effect [CI]':<26} {'do(high)-do(low) [CI]':<28} {'attr share':>10}  "
                   f"{'attr direction [CI]':<26} flag")
        for r in grp.itertuples():
            eff = _iv(r.causal_effect, r.causal_effect_low, r.causal_effect_high, "{:.3f}")
            cd = _iv(r.causal_direction, r.causal_direction_low, r.causal_direction_high)
            ad = _iv(r.attribution_direction, r.attribution_direction_low, r.attribution_direction_high, "{:+.2f}")
            share = _num(r.attribution_share, "{:.1%}")
            click.echo(f"  {str(r.feature):<18} {eff:<26} {cd:<28} {share:>10}  {ad:<26} {r.flag}")
        flagged = grp[grp["flag"].astype(str).str.startswith(WARNINGS)]
        for r in flagged.itertuples():
            click.echo(f"  ! {r.feature}: {r.flag}: {r.reason}")
    click.echo("causal effect: spread of P(outcome | do) over the levels; do(high)-do(low): its direction (numeric "
               "features); attr direction: correlation of the feature's value with its attribution; [CI]: intervals")


@click.command("causal")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--do", "do", multiple=True, metavar="FEATURE=VALUE",
              help="Intervention in the data's units, e.g. --do price=4.5, a range --do price=3..5, or a state name "
                   "--do price=low (repeat for several variables).")
@click.option("--compare", is_flag=True, help="Print the causal effect vs attribution table with its flags.")
@click.option("--name", default=None, help="The causal stage's name (default: the first causalnex-bn stage).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def causal_command(run_dir: Path, do: tuple[str, ...], compare: bool, name: str | None, fmt: str) -> None:
    """What happens to the outcome if we set FEATURE to VALUE? (do-interventions on RUN's network)"""
    from whyrec.errors import DataError

    from .learner import CausalNexLearner

    if compare and do:
        raise DataError("--compare and --do ask different questions; give one of them")
    directory = _stage_dir(run_dir, name)
    learner = CausalNexLearner.load(directory)
    if compare:
        _print_compare(_compare_table(directory), fmt, learner.target)
        return
    if not do:
        rows = _effect_rows(directory)
        if fmt == "json":
            click.echo(json.dumps({"outcome": learner.target, "baseline": learner.baseline, "effects": rows},
                                  indent=2, default=str))
            return
        click.echo(f"P({learner.target} = 1) observed: {learner.baseline:.4f}")
        for r in rows:
            ci = "" if r.get("p_do_low") is None else f"  [{r['p_do_low']:.4f}, {r['p_do_high']:.4f}]"
            if r.get("estimate_in_interval") is False:
                ci += "  (estimate outside its bootstrap interval: interval unreliable)"
            if r.get("actionable") is False:
                ci += "  (not actionable: what-if only)"
            click.echo(f"  do({r['description']}): {r['p_do']:.4f}{ci}")
        click.echo("Use --do FEATURE=VALUE to ask about an intervention (values in the data's units, ranges lo..hi).")
        return
    asked = _parse_do(do)
    res = learner.intervene(asked)
    sel = res.attrs["selections"]
    not_act = res.attrs["not_actionable"]
    pos = learner._positive_state()
    ci = None
    ci_outside = False
    if len(sel) == 1:  # the run's bootstrap interval for this single-state intervention, when it has one
        (var, s), = sel.items()
        if len(s["states"]) == 1:
            code = s["states"][0]["code"]
            for r in _effect_rows(directory):
                # a g-formula row's interval is that of the state's own value (do_value): not of
                # another value inside the bin
                if r.get("feature") != var or int(r.get("level", -1)) != code:
                    continue
                other_value = (s["how"] == "value" and r.get("do_value") is not None
                               and abs(float(s["asked"]) - float(r["do_value"])) > 1e-9 * max(1.0, abs(float(r["do_value"]))))
                if (r.get("feature") == var and int(r.get("level", -1)) == code and r.get("p_do_low") is not None
                        and not other_value):
                    if r["p_do_low"] == r["p_do_low"]:  # not NaN
                        ci = [r["p_do_low"], r["p_do_high"]]
                        ci_outside = r.get("estimate_in_interval") is False
    label = learner.not_actionable_text(not_act)
    shaky = [t for t in (learner.uncertain_path_text(v) for v in sel) if t]
    if fmt == "json":
        click.echo(json.dumps({
            "intervention": res["intervention"].iloc[0],
            "outcome": learner.target,
            "set": list(sel.values()),
            "distribution": res[["state", "p_do", "p_observed", "change"]].to_dict(orient="records"),
            "positive_state": res["state"].iloc[pos],
            "p_do": float(res["p_do"].iloc[pos]),
            "ci": ci,
            "estimate_in_interval": None if ci is None else not ci_outside,
            "actionable": not not_act,
            "label": label or None,
            "unstable_on_path": {v: [list(e) for e in learner.uncertain_path_edges(v)] for v in sel},
            "estimator": res.attrs.get("estimator"),
        }, indent=2, default=str))
        return
    line = learner.effects_text(res)
    if ci is not None:
        line += f"; bootstrap interval of the run [{ci[0]:.4f}, {ci[1]:.4f}]"
        if ci_outside:
            line += " (the estimate lies outside it: the interval is unreliable)"
    click.echo(line)
    if label:
        click.echo(f"note: {label}")
    for t in shaky:
        click.echo(f"note: {t}")
    if res.attrs.get("estimator"):
        click.echo(f"estimator: {res.attrs['estimator']}")
