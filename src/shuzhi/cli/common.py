"""What every command group shares: the database, the acting user, output."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from shuzhi.core.db import Database, get_database
from shuzhi.core.errors import ValidationFailed
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.orgs import queries as orgs
from shuzhi.orgs import service as orgs_service

TOKEN_ENV = "SHUZHI_TOKEN"

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def database(*, check: bool = True) -> Database:
    db = get_database()
    if check:
        db.check_revision()
    return db


def acting_user(session: Session) -> Actor:
    """The user named by SHUZHI_TOKEN (an API token); without one, the local operator.

    Whoever can run this command against the database holds its credentials anyway, so
    the console acts as the platform operator unless a token says otherwise.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        return SYSTEM
    account = orgs_service.resolve_token(session, plaintext=token)
    return orgs.actor_for(session, account)


def acting() -> tuple[Database, Actor]:
    """The database and the acting user, for use cases that run their own transactions
    (an ingest spans several)."""
    db = database()
    with db.session() as session:
        return db, acting_user(session)


@contextmanager
def writing() -> Iterator[tuple[Session, Actor]]:
    db = database()
    with db.transaction() as session:
        yield session, acting_user(session)


@contextmanager
def reading() -> Iterator[tuple[Session, Actor]]:
    db = database()
    with db.session() as session:
        yield session, acting_user(session)


def read_text_file(file: Path) -> str:
    """A UTF-8 text file given on the command line (a byte-order mark is allowed)."""
    if not file.is_file():
        raise ValidationFailed(f"{file}: no such file")
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(f"{file}: not UTF-8 text") from None


def print_applied(result: Any, json: bool) -> None:
    """What applying a YAML file did: the created, updated and unchanged codes."""
    if json:
        print_json(result)
        return
    typer.echo(
        f"{len(result.created)} created, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), ensure_ascii=False, indent=2, default=str))


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        typer.echo(
            "  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)).rstrip()
        )
        if index == 0:
            typer.echo("  ".join("-" * w for w in widths))


def import_workbook(
    file: Path, importer: Any, *, good_only: bool, dry_run: bool, json: bool
) -> None:
    """Run ``importer(session, actor=, data=, source=, good_only=, dry_run=)`` on a workbook
    in one transaction and say what it did: each bad row on stderr, exit 2 when a file with
    errors imported nothing."""
    if not file.is_file():
        raise ValidationFailed(f"{file}: no such file")
    with writing() as (session, actor):
        result = importer(
            session,
            actor=actor,
            data=file.read_bytes(),
            source=file.name,
            good_only=good_only,
            dry_run=dry_run,
        )
    if json:
        print_json(result)
    else:
        for error in result.errors:
            typer.echo(f"row {error.row}, {error.column}: {error.reason}", err=True)
        typer.echo(
            f"{result.rows} rows: {result.created} created, {result.updated} updated"
            + (" (dry run)" if result.dry_run else "")
        )
    if result.errors and not result.imported:
        raise typer.Exit(2)


def write_export(output: Path, data: bytes, json: bool) -> None:
    output.write_bytes(data)
    if json:
        print_json({"output": str(output), "bytes": len(data)})
    else:
        typer.echo(f"wrote {output} ({len(data)} bytes)")
