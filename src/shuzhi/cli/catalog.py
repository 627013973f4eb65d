from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shuzhi.catalog import queries, service
from shuzhi.catalog.queries import Filters
from shuzhi.cli.common import (
    JsonOption,
    print_applied,
    print_json,
    print_table,
    read_text_file,
    reading,
    writing,
)

app = typer.Typer(help="The data resource catalog (目录).", no_args_is_help=True)
Code = Annotated[str, typer.Argument(help="Resource code.")]


def _list(filters: Filters, limit: int, json: bool) -> None:
    with reading() as (session, actor):
        found, total = queries.search(session, actor=actor, filters=filters, limit=limit)
        rows = [queries.summary(r) for r in found]
    if json:
        print_json({"data": rows, "count": total})
        return
    print_table(
        [(r.code, r.name, r.provider, r.grade, r.sharing, r.state) for r in rows],
        ["code", "name", "provider", "grade", "sharing", "state"],
    )
    typer.echo(f"{len(rows)} of {total}")


@app.command("list")
def list_resources(
    provider: str = typer.Option(None, help="Provider department code."),
    system: str = typer.Option(None, help="System code."),
    grade: str = typer.Option(None, help="L1, L2, L3 or L4."),
    sharing: str = typer.Option(None, help="unconditional, conditional or none."),
    state: str = typer.Option(None, help="draft, pending_review, published, rejected, withdrawn."),
    limit: int = typer.Option(100, min=1, max=1000),
    json: JsonOption = False,
) -> None:
    """List the resources the caller may see."""
    _list(
        Filters(provider=provider, system=system, grade=grade, sharing=sharing, state=state),
        limit,
        json,
    )


@app.command()
def search(
    query: str = typer.Argument(..., help="Words that must all appear."),
    limit: int = typer.Option(50, min=1, max=1000),
    json: JsonOption = False,
) -> None:
    """Full-text search over names, summaries, fields and tags."""
    _list(Filters(q=query), limit, json)


@app.command()
def show(code: Code, json: JsonOption = False) -> None:
    """Show one resource with its fields and history."""
    with reading() as (session, actor):
        resource = queries.get(session, actor=actor, code=code)
        public = queries.public(session, actor=actor, resource=resource)
        history = queries.history(session, resource=resource)
    if json:
        print_json(
            {
                **public.model_dump(mode="json"),
                "history": [h.model_dump(mode="json") for h in history],
            }
        )
        return
    typer.echo(f"{public.code}  {public.name}  [{public.state}]")
    typer.echo(
        f"provider {public.provider} · system {public.system} · grade {public.grade} · "
        f"sharing {public.sharing} · open {public.open} · region {public.region}"
    )
    if public.summary:
        typer.echo(public.summary)
    print_table(
        [
            (
                f.name,
                f.title,
                f.type.value,
                f.pii.value,
                "pk" if f.primary_key else "",
                "" if f.nullable else "not null",
            )
            for f in public.fields
        ],
        ["field", "title", "type", "pii", "key", "null"],
    )
    for h in history:
        typer.echo(
            f"{h.at:%Y-%m-%d %H:%M} {h.actor} {h.transition}: {h.from_state} -> "
            f"{h.to_state}{' · ' + h.comment if h.comment else ''}"
        )


@app.command()
def apply(
    file: Path = typer.Argument(..., help="A catalog YAML file."), json: JsonOption = False
) -> None:
    """Create or update every resource of a YAML file; one bad resource rejects the file."""
    text = read_text_file(file)
    with writing() as (session, actor):
        result = service.apply(session, actor=actor, text=text, source=file.name)
    print_applied(result, json)


Comment = Annotated[str | None, typer.Option("--comment", "-m", help="A note for the history.")]
Reason = Annotated[str, typer.Option("--comment", "-m", help="Why (required).")]


def _transition(code: str, name: str, comment: str | None, json: bool) -> None:
    with writing() as (session, actor):
        row = service.transition(session, actor=actor, code=code, name=name, comment=comment)
        moved = {
            "code": code,
            "transition": name,
            "from_state": row.from_state,
            "to_state": row.to_state,
            "actor": row.actor_name,
            "at": row.at,
        }
    if json:
        print_json(moved)
    else:
        typer.echo(f"{code}: {row.from_state} -> {row.to_state}")


@app.command()
def submit(code: Code, comment: Comment = None, json: JsonOption = False) -> None:
    """Submit a draft or rejected resource for review."""
    _transition(code, "submit", comment, json)


@app.command()
def approve(code: Code, comment: Comment = None, json: JsonOption = False) -> None:
    """Approve a submitted resource: it is published."""
    _transition(code, "approve", comment, json)


@app.command()
def reject(code: Code, comment: Reason, json: JsonOption = False) -> None:
    """Send a submitted resource back, with the reason."""
    _transition(code, "reject", comment, json)


@app.command()
def withdraw(code: Code, comment: Reason, json: JsonOption = False) -> None:
    """Withdraw a published resource, with the reason."""
    _transition(code, "withdraw", comment, json)


@app.command()
def revise(code: Code, comment: Comment = None, json: JsonOption = False) -> None:
    """Bring a withdrawn resource back to draft for editing."""
    _transition(code, "revise", comment, json)
