from __future__ import annotations

from pathlib import Path

import typer

from shuzhi.cli.common import JsonOption, print_json, reading, writing
from shuzhi.core.errors import ValidationFailed
from shuzhi.regions import queries, service
from shuzhi.regions.schemas import RegionNode

app = typer.Typer(help="Administrative divisions (GB/T 2260).", no_args_is_help=True)


def _render(node: RegionNode, prefix: str = "", last: bool = True, top: bool = True) -> None:
    branch = "" if top else ("└─ " if last else "├─ ")
    typer.echo(f"{prefix}{branch}{node.code} {node.name}")
    child_prefix = prefix + ("" if top else ("   " if last else "│  "))
    for index, child in enumerate(node.children):
        _render(child, child_prefix, index == len(node.children) - 1, top=False)


@app.command()
def tree(
    root: str = typer.Option(None, "--root", help="Code of the subtree's root."),
    json: JsonOption = False,
) -> None:
    """Print the region tree."""
    with reading() as (session, _actor):
        nodes = queries.tree(session, root)
    if json:
        print_json(nodes)
        return
    for node in nodes:
        _render(node)


@app.command()
def load(
    file: Path = typer.Argument(None, help="CSV with columns code,name,level,parent."),
    builtin: str = typer.Option(None, "--builtin", help="Load a shipped tree: zhejiang."),
    json: JsonOption = False,
) -> None:
    """Load a region tree from CSV (idempotent; a bad row rejects the whole file)."""
    if (file is None) == (builtin is None):
        raise ValidationFailed("give either a CSV file or --builtin NAME")
    with writing() as (session, actor):
        if builtin:
            result = service.load_builtin(session, actor=actor, name=builtin)
        else:
            if not file.is_file():
                raise ValidationFailed(f"{file}: no such file")
            try:
                text = file.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError:
                raise ValidationFailed(f"{file}: not UTF-8 text") from None
            result = service.load_csv(session, actor=actor, text=text, source=file.name)
    if json:
        print_json(result)
    else:
        typer.echo(
            f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
        )
