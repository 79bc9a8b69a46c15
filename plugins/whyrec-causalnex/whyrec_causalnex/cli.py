"""``whyrec causal RUN --do feature=level``: answer interventions from a run's saved network.

Reads ``RUN/causal/<name>/bn.json`` (the fitted CPDs as JSON) and rebuilds the CausalNex
network without refitting; no data is loaded. Without ``--do`` it prints the run's effect table.
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
            raise DataError(f"--do {item!r}: expected FEATURE=LEVEL, e.g. --do price=low")
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


@click.command("causal")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--do", "do", multiple=True, metavar="FEATURE=LEVEL",
              help="Intervention, e.g. --do price=low (repeat for several variables). Levels: a state name "
                   "(low/medium/high), an interval, a value or a state code.")
@click.option("--name", default=None, help="The causal stage's name (default: the first causalnex-bn stage).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def causal_command(run_dir: Path, do: tuple[str, ...], name: str | None, fmt: str) -> None:
    """What happens to the outcome if we set FEATURE to LEVEL? (do-interventions on RUN's network)"""
    from .learner import CausalNexLearner

    directory = _stage_dir(run_dir, name)
    learner = CausalNexLearner.load(directory)
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
            click.echo(f"  do({r['description']}): {r['p_do']:.4f}{ci}")
        click.echo("Use --do FEATURE=LEVEL to ask about an intervention.")
        return
    res = learner.intervene(_parse_do(do))
    codes = learner.parse_do(_parse_do(do))
    pos = learner._positive_state()
    ci = None
    ci_outside = False
    if len(codes) == 1:  # the run's bootstrap interval for this single intervention, when it has one
        (var, code), = codes.items()
        for r in _effect_rows(directory):
            if r.get("feature") == var and int(r.get("level", -1)) == code and r.get("p_do_low") is not None:
                if r["p_do_low"] == r["p_do_low"]:  # not NaN
                    ci = [r["p_do_low"], r["p_do_high"]]
                    ci_outside = r.get("estimate_in_interval") is False
    if fmt == "json":
        click.echo(json.dumps({
            "intervention": res["intervention"].iloc[0],
            "outcome": learner.target,
            "distribution": res[["state", "p_do", "p_observed", "change"]].to_dict(orient="records"),
            "positive_state": res["state"].iloc[pos],
            "p_do": float(res["p_do"].iloc[pos]),
            "ci": ci,
            "estimate_in_interval": None if ci is None else not ci_outside,
        }, indent=2, default=str))
        return
    line = learner.effects_text(res)
    if ci is not None:
        line += f"; bootstrap interval of the run [{ci[0]:.4f}, {ci[1]:.4f}]"
        if ci_outside:
            line += " (the estimate lies outside it: the interval is unreliable)"
    click.echo(line)
