"""``whyrec feedback record`` and ``whyrec feedback analyze``.

Only click is imported here; the analyzers (scipy, statsmodels, scikit-learn) load when a
command runs, so ``whyrec --help`` stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from whyrec.errors import WhyrecError


@click.group("feedback")
def feedback() -> None:
    """Record user feedback and analyse it (A/B tests, off-policy evaluation)."""


@feedback.command("record")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--event", "event", required=True, type=click.Choice(["impression", "click", "rating", "explanation_feedback"]),
              help="What happened.")
@click.option("--user", required=True, help="User id.")
@click.option("--item", required=True, help="Item id.")
@click.option("--position", type=int, default=None, help="Slot the item was shown in (a whole number, 0 or more).")
@click.option("--variant", default=None, help="Experiment arm the user is in.")
@click.option("--label", type=float, default=None, help="Outcome of an impression when known (1 = clicked).")
@click.option("--value", type=float, default=None, help="The rating of a rating event.")
@click.option("--propensity", type=float, default=None, help="Logging policy's probability of showing this item here, in (0, 1].")
@click.option("--explanation-method", default=None, help="Explainer whose explanation the user saw (e.g. tree-shap).")
@click.option("--explanation-format", default=None, help="How the explanation was shown (e.g. text, bar-chart).")
@click.option("--helpful/--not-helpful", default=None, help="explanation_feedback: did the user find it helpful?")
@click.option("--event-id", default=None, help="Event id (default: a new uuid4). A repeated id is counted once.")
@click.option("--impression-id", default=None, help="For a click or feedback: the event id of its impression.")
@click.option("--timestamp", default=None,
              help="ISO 8601 time (e.g. 2026-11-29T10:00:00Z) or seconds since the epoch (default: now, UTC).")
def record_cmd(log: Path, event: str, user: str, item: str, **fields: Any) -> None:
    """Append one event to the JSON-lines LOG (created if missing), durably (fsync)."""
    from .store import record_event

    ev = record_event(log, event, _id(user), _id(item), **fields)
    click.echo(f"recorded {ev['event']} {ev['event_id']} -> {log}")


def _id(v: str) -> Any:
    # "42" is stored as 42 so that ids match numeric ids of logged data
    try:
        return int(v)
    except ValueError:
        return v


def _parse_params(pairs: tuple[str, ...]) -> dict:
    out = {}
    for p in pairs:
        key, sep, raw = p.partition("=")
        if not sep or not key:
            raise WhyrecError(f"--param {p!r}: expected KEY=VALUE, e.g. --param control=random or --param ranking=[3,1,2]")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw  # a bare word is a string
    return out


@feedback.command("analyze")
@click.argument("events_file", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--analyzer", "-a", default="ab-test", show_default=True, help="A registered feedback analyzer: ab-test or off-policy.")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="Analyzer parameter (VALUE is JSON when it parses, else a string), e.g. -p control=random.")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None,
              help="A whyrec run directory whose models a target \"model:<name>\" refers to.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also save the report (summary.json, tables, figures) into this directory.")
@click.option("--strict", is_flag=True, help="Fail on the first malformed line of a JSON-lines log instead of skipping it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def analyze_cmd(events_file: Path, analyzer: str, params: tuple[str, ...], run_dir: Path | None, out_dir: Path | None,
                strict: bool, fmt: str) -> None:
    """Analyse the events in FILE (.parquet, .csv or .jsonl) and print the result."""
    from whyrec.plugins import get_host

    from .store import read_events

    host = get_host()
    comp = host.get("feedback_analyzers", analyzer, where="--analyzer: ")
    kwargs = _parse_params(params)
    _check_params(comp, analyzer, kwargs)
    obj = comp.create(**kwargs)
    log = read_events(events_file, strict=strict)
    for p in log.problems:
        click.echo(f"warning: {events_file}: {p} (line skipped, the other lines are kept)", err=True)
    ctx = None
    if run_dir is not None:
        ctx = _context_from_run(run_dir, kwargs.get("target"))
    report = obj.analyze(log.events, ctx)
    report.summary["input"] = {**report.summary.get("input", {}), **log.input_summary()}
    if out_dir is not None:
        report.save(out_dir)
    if fmt == "json":
        from whyrec.atomic import to_json

        click.echo(to_json(report.summary))
    else:
        click.echo(format_text(report.summary))
    if out_dir is not None:
        click.echo(f"saved to {out_dir}", err=fmt == "json")


def _check_params(comp: Any, name: str, kwargs: dict) -> None:
    # Names and types against the analyzer's signature, so -p alpha=high is one line, not a crash later.
    from whyrec.errors import RegistryError
    from whyrec.registry import check_params

    try:
        check_params(comp.factory, name, kwargs, "--param", key_where="-p ")
    except RegistryError as exc:
        raise WhyrecError(f"analyzer {name!r}: {exc}") from exc


def _context_from_run(run_dir: Path, target: Any) -> Any:
    from whyrec.context import PipelineContext
    from whyrec.rundir import Run

    run = Run(run_dir)
    models = {}
    if isinstance(target, str) and target.startswith("model:"):
        name = target[len("model:"):]
        models[name] = run.load_model(name)
    return PipelineContext(pipeline=run.pipeline, run_dir=run.path, models=models)


# -- text output ------------------------------------------------------------------------------
def _f(v: Any, nd: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "n/a"
        return f"{v:.{nd}g}"
    return str(v)


def format_text(s: dict) -> str:
    lines = []
    inp = s.get("input", {})
    for p in inp.get("malformed_lines", []):
        lines.append(f"skipped line {p['line']}: {p['error']}")
    if inp.get("duplicate_event_ids"):
        lines.append(f"{inp['duplicate_event_ids']} duplicate event id(s) counted once")
    if s.get("analyzer") == "ab-test":
        rate = "ctr" if s["metric"] == "ctr" else "helpful_rate"
        succ = "clicks" if s["metric"] == "ctr" else "helpful"
        lines.append(f"A/B test of {s['metric']} by {s['arm_column']} (control: {s['control']})")
        for arm, a in s["per_arm"].items():
            lines.append(f"  {arm:>16}: {a['exposures']} exposures, {a[succ]} {succ}, {rate} {_f(a[rate])} "
                         f"[{_f(a['ci_low'])}, {_f(a['ci_high'])}]")
        for arm, c in s["comparisons"].items():
            lines.append(f"  {arm} vs {c['control']}: diff {_f(c['diff'])} [{_f(c['diff_ci_low'])}, {_f(c['diff_ci_high'])}], "
                         f"lift {_f(c['lift'])} [{_f(c['lift_ci_low'])}, {_f(c['lift_ci_high'])}], p = {_f(c['p_value'], 3)}")
        srm = s["srm"]
        lines.append(f"  sample ratio: chi2 {_f(srm['chi2'])}, p = {_f(srm['p_value'], 3)}" + ("  MISMATCH" if srm["mismatch"] else " (ok)"))
        for arm, p in s["power"].items():
            lines.append(f"  power for a {_f(p['mde'])} lift: {_f(p['power_at_current_n'], 3)}; n per arm needed: "
                         f"{p['n_control_needed']} / {p['n_treatment_needed']}; detectable lift now: {_f(p['mde_at_current_n'], 3)}")
        if "cuped" in s:
            cu = s["cuped"]
            lines.append(f"  CUPED on {cu['covariate']}: variance reduction {_f(cu['variance_reduction'], 3)}")
            for arm, c in cu["comparisons"].items():
                lines.append(f"    {arm}: adjusted diff {_f(c['diff_adjusted'])} [{_f(c['ci_low'])}, {_f(c['ci_high'])}], p = {_f(c['p_value'], 3)}")
        if "sequential" in s:
            sq = s["sequential"]
            for arm, a in sq["arms"].items():
                if "p_always_valid" in a:
                    lines.append(f"  sequential (mSPRT, {sq['looks']} looks): always-valid p = {_f(a['p_always_valid'], 3)}, "
                                 f"confidence sequence [{_f(a['cs_low'])}, {_f(a['cs_high'])}]")
        if "explanations" in s:
            lines.append("  explanations found helpful:")
            for m, h in s["explanations"]["helpfulness_by_method"].items():
                lines.append(f"    {m:>24}: {h['helpful']}/{h['feedback']} = {_f(h['helpful_rate'], 3)} [{_f(h['ci_low'], 3)}, {_f(h['ci_high'], 3)}]")
        lines.append(s.get("conclusion", ""))
    elif s.get("analyzer") == "off-policy":
        lines.append(f"off-policy estimate of target {s['target']}: {s['target_description']}")
        lines.append(f"  from {s['logged_events']} logged events ({s['logged_clicks']} clicks, logged CTR {_f(s['logged_ctr'])})")
        ref = s.get("reference")
        for e, r in s["estimates"].items():
            extra = f", relative error {_f(r['relative_error'], 3)}" if ref else ""
            lines.append(f"  {e:>5}: {_f(r['value'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]{extra}")
        if "weights" in s:
            lines.append(f"  effective sample size {_f(s['weights']['ess'])} of {s['logged_events']}, max weight {_f(s['weights']['max'])}")
        if ref:
            lines.append(f"  on-policy CTR of {ref['variant']!r}: {_f(ref['ctr'])} [{_f(ref['ci_low'])}, {_f(ref['ci_high'])}]")
        for n in s.get("notes", []):
            lines.append(f"  note: {n}")
    else:
        from whyrec.atomic import to_json

        lines.append(to_json(s))
    return "\n".join(x for x in lines if x)

