"""The ``whyrec`` command line. User errors print one line on stderr and exit 2 (``--debug``
shows the traceback); plugins add commands through ``register_commands``."""
from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import click

from .errors import RegistryError, WhyrecError, WhyrecWarning


class PluginGroup(click.Group):
    """Loads plugins (and their commands) only when a command is looked up or listed."""

    _loaded = False

    def _load(self) -> None:
        if not PluginGroup._loaded:
            PluginGroup._loaded = True
            from .plugins import get_host

            get_host().pm.hook.register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is None:
            self._load()
            cmd = super().get_command(ctx, name)
        return cmd


@click.group(cls=PluginGroup)
@click.version_option(package_name="whyrec")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(debug: bool) -> None:
    """whyrec: explain what recommender models recommend."""
    if debug:
        os.environ["WHYREC_DEBUG"] = "1"


registry_option = click.option("--registry", "registry", default="registry.toml", show_default=True,
                               type=click.Path(dir_okay=False, path_type=Path), help="The registry file.")


@cli.command("run")
@click.argument("pipeline", required=False)
@registry_option
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False, path_type=Path), help="Parent directory of run directories.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="Override the pipeline's seed (0 to 2^32-1: numpy's range).")
def run_cmd(pipeline: str | None, registry: Path, out: Path, seed: int | None) -> None:
    """Run PIPELINE (default: [defaults] pipeline of the registry)."""
    from .runner import run

    result = run(pipeline, registry=registry, out=out, seed=seed)
    report = result.path / "report.html"
    click.echo(f"run complete: {result.path}")
    if report.exists():
        click.echo(f"report: {report.resolve()}")


@cli.command("validate")
@registry_option
def validate_cmd(registry: Path) -> None:
    """Check the registry file: syntax, pipelines, component names and parameter types."""
    from .registry import load_registry

    reg = load_registry(registry)
    problems = reg.problems()
    if len(problems) > 1:  # all of them, one per line: fixing one at a time would take a run each
        for msg in problems:
            click.echo(f"error: {msg}", err=True)
        raise RegistryError(f"{registry}: {len(problems)} problems (above)")
    if problems:
        raise RegistryError(problems[0])
    click.echo(f"{registry}: {len(reg.pipelines)} pipeline(s) valid: {', '.join(sorted(reg.pipelines))} (default: {reg.default})")


@cli.command("plugins")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plugins_cmd(fmt: str) -> None:
    """List plugins: version, hooks, components, and load errors."""
    from .plugins import get_host

    infos = get_host().plugin_infos()
    if fmt == "json":
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    for info in infos:
        click.echo(f"{info.name} {info.version or ''}".rstrip())
        if info.error:
            click.echo(f"  FAILED TO LOAD: {info.error}")
            continue
        click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")
        for kind, names in sorted(info.components.items()):
            click.echo(f"  {kind}: {', '.join(names)}")


def _open_run(run_dir: Path) -> Any:
    """The run, with one line on stderr when it did not finish (usable, but never silently)."""
    from .rundir import Run

    run = Run(run_dir)
    warning = run.incomplete_warning()
    if warning:
        click.echo(warning, err=True)
    return run


@cli.command("explain")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--user", "-u", required=True, help="User id.")
@click.option("-k", "k", type=int, default=10, show_default=True, help="How many recommendations.")
@click.option("--model", default=None, help="Model of the run (default: the first).")
@click.option("--method", "methods", multiple=True, help="Explainers to run (default: the pipeline's, where they apply).")
@click.option("--why-above", nargs=2, default=None, metavar="A B", help="Explain why item A ranks above item B.")
@click.option("--context", "context", multiple=True, metavar="KEY=VALUE",
              help="A context feature of the request (repeatable), e.g. --context device=ios. "
                   "Default: the user's latest logged context (the output says which was used).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--lang", type=click.Choice(["en", "zh"]), default=None,
              help="Add sentences a person reads, in this language (JSON: a `text` list per recommendation; docs/sentences.md).")
def explain_cmd(run_dir: Path, user: str, k: int, model: str | None, methods: tuple[str, ...], why_above: tuple[str, str] | None,
                context: tuple[str, ...], fmt: str, lang: str | None) -> None:
    """Why were these items recommended to USER? (top-k with reasons)"""
    from .atomic import to_json
    from .data import parse_context_options
    from .explain import explain_user, format_text, why_above_json, why_above_text

    if why_above and lang:  # sentences are written for recommendations, not for a comparison of two items
        raise click.UsageError("--lang adds sentences to recommendations; it does not apply to --why-above")
    ctx_values = parse_context_options(context)
    run = _open_run(run_dir)
    if why_above:
        out = why_above_json(run, user, why_above[0], why_above[1], model=model, methods=methods, k=k, context=ctx_values)
        click.echo(to_json(out, fallback=str) if fmt == "json" else why_above_text(out))
        return
    out = explain_user(run, user, k, model=model, methods=methods, context=ctx_values, lang=lang)
    if lang is None:
        click.echo(to_json(out, fallback=str) if fmt == "json" else format_text(out))
        return
    from .sentences import text_lines

    click.echo(to_json(out, fallback=str) if fmt == "json" else "\n".join([format_text(out), *text_lines(out)]))


@cli.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--open", "open_", is_flag=True, help="Open the report in a browser.")
def report_cmd(run_dir: Path, open_: bool) -> None:
    """Rebuild RUN_DIR/report.html from the run's artifacts (no retraining)."""
    run = _open_run(run_dir)
    try:
        from .report.build import build_report_checked
    except ImportError as exc:  # pragma: no cover
        raise WhyrecError(f"the report builder is not available ({exc})") from exc
    path, missing = build_report_checked(run)
    click.echo(f"report: {path.resolve()}")
    if missing:  # written, but not whole: say which sections, and do not exit as if all were fine
        click.echo(f"warning: {len(missing)} section(s) incomplete ({', '.join(missing[:5])}"
                   f"{', ...' if len(missing) > 5 else ''}); each says in the report how to regenerate it", err=True)
    if open_:
        import webbrowser

        # False when no browser could be started (a server without a desktop): say so rather
        # than return as if a page had opened
        if not webbrowser.open(path.resolve().as_uri()):
            click.echo(f"no browser could be started here; open {path.resolve()} on a machine with one "
                       "(or set BROWSER to a browser command)", err=True)
    if missing:
        sys.exit(1)


def _add_core_extras() -> None:
    try:
        from .batch import explain_batch_command
    except ImportError:
        return
    cli.add_command(explain_batch_command, "explain-batch")


_add_core_extras()


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    """whyrec's own warnings are one line for a person, not Python's file:line dump."""
    if issubclass(category, WhyrecWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> Any:
    debug = os.environ.get("WHYREC_DEBUG") == "1" or "--debug" in (argv if argv is not None else sys.argv[1:])
    warnings.showwarning = _show_warning
    try:
        return cli.main(args=argv, prog_name="whyrec", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except WhyrecError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001
        if debug:
            traceback.print_exc()
        else:
            click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback; please report it)", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
