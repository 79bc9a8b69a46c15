"""``whyrec compress RUN --method distill --student mlp``: compress a model of a finished run.

Loads the run's data and teacher, runs the compressor, and writes what the pipeline's
compressor stage would: the report in RUN/compressors/<name>/, the compressed model in
RUN/models/<name>__<teacher>/, a stage record in manifest.json (so ``Run.load_model`` finds
the model as "<name>:<teacher>"), and a refreshed report.html. Only click is imported at
module level: ``whyrec --help`` must stay fast.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

METHODS = ("distill", "prune", "quantize")


def _parse_params(items: tuple[str, ...]) -> dict:
    from whyrec.errors import WhyrecError

    out = {}
    for it in items:
        key, sep, raw = it.partition("=")
        if not sep or not key.strip():
            raise WhyrecError(f"--param {it!r}: write KEY=VALUE (VALUE in JSON/TOML style, e.g. sparsity=0.8, hidden=[16])")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw  # a bare word is a string: explainer=occlusion
    return out


@click.command("compress")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(METHODS), default="distill", show_default=True, help="Compressor to run.")
@click.option("--student", default=None, help="distill only: the student model (mlp or tree-student; default mlp).")
@click.option("--teacher", default=None, help="Model of the run to compress (default: the run's first model).")
@click.option("--name", default=None, help="Instance name (default: the method); the model becomes NAME:TEACHER.")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="Compressor parameter (repeatable), e.g. -p sparsity=0.8.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier compressor stage of the same name.")
@click.option("--no-report", is_flag=True, help="Do not rebuild report.html.")
def compress_command(run_dir: Path, method: str, student: str | None, teacher: str | None, name: str | None,
                     params: tuple[str, ...], overwrite: bool, no_report: bool) -> None:
    """Distil, prune or quantise a model of RUN_DIR and report its fidelity to the teacher."""
    from .runstage import compress_run

    result = compress_run(run_dir, method=method, student=student, teacher=teacher, name=name,
                          params=_parse_params(params), overwrite=overwrite, report=not no_report)
    click.echo(result["text"])
