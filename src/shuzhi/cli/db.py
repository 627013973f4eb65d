from __future__ import annotations

import typer
from alembic.util import CommandError

from shuzhi.cli.common import JsonOption, database, print_json
from shuzhi.core.errors import ValidationFailed
from shuzhi.orgs import service as orgs_service

app = typer.Typer(help="The metadata store: migrate and inspect.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database to the latest revision and sync the built-in roles."""
    db = database(check=False)
    try:
        db.upgrade(revision)
    except CommandError as exc:
        # an unknown revision, or one that is not ahead of the database
        raise ValidationFailed(f"cannot upgrade to {revision!r}: {exc}") from None
    with db.transaction() as session:
        changed = orgs_service.sync_builtin_roles(session)
    typer.echo(f"database at {db.current_revision()} ({db.backend}); {changed} role(s) synced")


@app.command()
def current(json: JsonOption = False) -> None:
    """Show the database's revision and the one this release needs."""
    db = database(check=False)
    info = {"backend": db.backend, "current": db.current_revision(), "head": db.head_revision()}
    if json:
        print_json(info)
    else:
        typer.echo(f"{info['backend']}: at {info['current']}, release needs {info['head']}")
