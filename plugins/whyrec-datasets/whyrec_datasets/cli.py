"""``whyrec datasets``: list, describe and fetch data sets."""
from __future__ import annotations

import json
from typing import Any

import click


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r} is not KEY=VALUE", param_hint="--param")
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except ValueError:
            out[k.strip()] = v  # a bare string
    return out


def _host():
    from whyrec.plugins import get_host

    return get_host()


@click.group("datasets", invoke_without_command=True)
@click.pass_context
def datasets(ctx: click.Context) -> None:
    """List, describe and fetch data sets (``whyrec datasets`` lists them)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_datasets)


@datasets.command("list")
def list_datasets() -> None:
    """Every registered data set with a one-line description."""
    host = _host()
    names = host.names("datasets")
    width = max((len(n) for n in names), default=0)
    for n in names:
        comp = host.get("datasets", n)
        click.echo(f"{n:<{width}}  {comp.description}  [{comp.plugin}]")


@datasets.command("describe")
@click.argument("name")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="a dataset parameter (JSON value or bare string), repeatable")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def describe(name: str, params: tuple[str, ...], fmt: str) -> None:
    """Rows, users, items, positive rate, fields and features of data set NAME."""
    from whyrec.registry import check_params

    host = _host()
    comp = host.get("datasets", name)
    given = _parse_params(params)
    check_params(comp.factory, name, given, where=f"datasets describe {name}", key_where=f"datasets describe {name}: -p ")  # as registry.toml
    data = comp.create(**given).load()
    s = data.summary()
    if fmt == "json":
        click.echo(json.dumps(s, indent=2, default=str))
        return
    click.echo(f"{name}: {data.description}")
    pos = "n/a" if s["positive_rate"] is None else f"{s['positive_rate']:.4f}"
    click.echo(f"rows {s['rows']:,}  users {s['users']:,}  items {s['items']:,}  positive rate {pos}")
    if s["train_rows"] is not None:
        neg = data.params.get("sampled_negatives")
        extra = f" ({neg:,} sampled negatives in all)" if neg else ""
        click.echo(f"train {s['train_rows']:,} pairs  test {s['test_rows']:,} pairs{extra}")
    split = data.params.get("split") or data.params.get("split_report")
    if isinstance(split, dict) and split.get("users_without_train"):
        click.echo(f"split: {split['users_without_train']} users have no training data")
    click.echo(f"fields: {', '.join(s['fields'])}")
    groups = data.schema.groups("field")
    for field in data.schema.fields:
        names = groups[field]
        kinds = {}
        for n in names:
            kinds.setdefault(data.schema[n].kind, []).append(n)
        parts = []
        for kind, ns in kinds.items():
            shown = ", ".join(ns) if len(ns) <= 8 else ", ".join(ns[:3]) + f", ... ({len(ns)} in all), " + ns[-1]
            parts.append(f"{kind}: {shown}")
        click.echo(f"  {field:<8} " + "; ".join(parts))
    act = data.schema.actionable()
    if act:
        click.echo(f"actionable: {', '.join(act)}")
    if data.truth:
        g = data.truth["graph"]
        click.echo(f"true DAG: {len(g.edges)} edges: " + ", ".join(f"{e.source}->{e.target}" for e in g.edges))
        for feat, iv in data.truth["interventions"].items():
            vals = ", ".join(f"{v:g}: {y:.3f}" for v, y in zip(iv["values"], iv["expected_outcome"]))
            click.echo(f"E[label | do({feat})]  {vals}")
        click.echo("true contributions: " + ("yes (additive logit)" if data.truth["contributions"] is not None
                                              else "none (outcome not additive)"))


@datasets.command("fetch")
@click.option("--force", is_flag=True, help="download and extract again even if the cache is intact")
@click.option("--source", "sources", multiple=True, type=click.Choice(["ml-100k", "ml-100k-kg", "obd"]),
              help="only this source (repeatable; default: all)")
def fetch(force: bool, sources: tuple[str, ...]) -> None:
    """Download the recbole and obp wheels with pip, verify their sha256 and extract only their
    data into $WHYREC_CACHE (default ~/.cache/whyrec)."""
    from . import cache

    for key in sources or tuple(cache.SOURCES):
        path = cache.fetch(key, force=force, log=lambda m: click.echo(m, err=True))
        n = len(json.loads((path / cache.MANIFEST).read_text())["files"])
        click.echo(f"{key}: {n} files verified in {path}")
