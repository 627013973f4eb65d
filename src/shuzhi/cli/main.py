"""The `shuzhi` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import typer
from pydantic import ValidationError

from shuzhi import __version__
from shuzhi.cli import brain, catalog, db, gateway, lake, loop, notify, orgs, reforms, regions
from shuzhi.cli.common import JsonOption, database, print_json
from shuzhi.core.errors import ShuzhiError
from shuzhi.core.settings import get_settings, reference_markdown

app = typer.Typer(
    name="shuzhi",
    help="shuzhi (数治): the integrated intelligent public data platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(regions.app, name="regions")
app.add_typer(orgs.departments, name="departments")
app.add_typer(orgs.users, name="users")
app.add_typer(orgs.roles, name="roles")
app.add_typer(catalog.app, name="catalog")
app.command("ingest")(lake.ingest)
app.add_typer(lake.quarantine_app, name="quarantine")
app.add_typer(lake.lake_app, name="lake")
app.add_typer(lake.quality_app, name="quality")
app.add_typer(lake.sources_app, name="sources")
app.add_typer(gateway.app, name="gateway")
app.add_typer(gateway.audit_app, name="audit")
app.add_typer(brain.app, name="brain")
app.add_typer(loop.app, name="problems")
app.add_typer(reforms.app, name="reforms")
app.add_typer(notify.inbox_app, name="inbox")
app.add_typer(notify.webhooks_app, name="webhooks")

demo_app = typer.Typer(help="The demo province.", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
settings_app = typer.Typer(help="Effective settings.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(docs_app, name="docs")
app.add_typer(settings_app, name="settings")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default from settings: 127.0.0.1)."),
    port: int = typer.Option(None, min=1, max=65535, help="Port (default from settings: 8000)."),
) -> None:
    """Serve the API and the cockpit."""
    from shuzhi import server
    from shuzhi.demo.build import logins

    settings = get_settings()
    from shuzhi.lake import service as lake_service

    db = database()  # refuse a database at an unknown or old revision before binding
    # batches killed with the previous process are marked failed before anyone looks
    recovered = lake_service.recover_all(db)
    if recovered:
        typer.echo(f"{recovered} batch(es) interrupted by the last shutdown marked failed")
    host = host or settings.server.host
    port = port or settings.server.port
    typer.echo(
        f"shuzhi {__version__} serving http://{host}:{port}/  (API: /api/v1, "
        f"OpenAPI: /openapi.json)"
    )
    demo = logins(settings.data_dir)
    if demo:
        typer.echo(f"demo province: log in with any of these, password {demo['password']}")
        for login in demo["logins"]:
            typer.echo(
                f"  {login['username']:<14} {login['role']:<17} "
                f"{login['department'] or '(platform-wide)'}"
            )
    server.serve(host=host, port=port, settings=settings)


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Run what is due now, then exit."),
    interval: float = typer.Option(30.0, min=0.1, help="Seconds between looks when idle."),
) -> None:
    """Run background jobs: scheduled pulls (with retries), until stopped."""
    import signal
    import time

    from shuzhi.core.plugins import jobs
    from shuzhi.lake import service as lake_service

    db = database()
    me = lake_service.worker_id()
    lake_service.recover_all(db)
    lake_service.release_dead_claims(db)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"worker {me}: {', '.join(job.name for job in jobs())}", err=True)
    while not stopping:
        done = 0
        for job in jobs():
            try:
                done += job.run(db, me)
            except Exception as exc:  # one failing job must not stop the others
                typer.echo(f"job {job.name} failed: {exc}", err=True)
        if once:
            break
        waited = 0.0
        while not stopping and not done and waited < interval:
            time.sleep(min(0.2, interval))
            waited += 0.2


@demo_app.command("build")
def demo_build(
    seed: int = typer.Option(None, help="Seed of the demo's choices."),
    scale: float = typer.Option(
        1.0, min=0, max=100, help="Size of the departments' data (1: about 150,000 rows; 0: none)."
    ),
    json: JsonOption = False,
) -> None:
    """Build the demo province in the configured data directory (does not serve it)."""
    from shuzhi.demo.build import DEFAULT_SEED, build

    settings = get_settings()
    summary = build(
        database(check=False),
        seed=DEFAULT_SEED if seed is None else seed,
        data_dir=settings.data_dir,
        scale=scale,
    )
    if json:
        print_json(summary)
    else:
        typer.echo(
            f"demo province ready in {settings.data_dir}: {summary['departments']} "
            f"departments, {summary['resources']} resources, "
            f"{len(summary['logins'])} logins (password {summary['password']}); "
            f"{summary['batches']} batches loaded {summary['rows_loaded']:,} rows, "
            f"{summary['rows_quarantined']:,} quarantined"
        )
        brain, loop = summary.get("brain"), summary.get("loop")
        if brain:
            typer.echo(
                f"brain: {brain['indicators']} indicators, {brain['values']:,} values, "
                f"{brain['warnings_firing']} warnings firing"
            )
        if loop:
            from shuzhi.loop import ledger, queries

            with database().session() as session:
                reforms = ledger.ledger(session).count
                problems = queries.stats(session, by="channel").data
            total = sum(row.total for row in problems)
            warned = sum(row.total for row in problems if row.key == "warning")
            typer.echo(
                f"closed loop: {reforms} reforms in the ledger, {total} problems "
                f"({warned} raised by warnings)"
            )
        shown = summary.get("gateway", {})
        if shown.get("access_key"):
            typer.echo(
                f"gateway: consumer {shown['consumer']} signs with key {shown['access_key']} "
                f"and secret {shown['secret']} (see docs/how-to/gateway.md)"
            )


@docs_app.command("generate")
def docs_generate(out: Path = typer.Option(Path("docs/reference"), help="Directory.")) -> None:
    """Write the CLI and settings references."""
    from shuzhi.cli import reference

    out.mkdir(parents=True, exist_ok=True)
    (out / "cli.md").write_text(reference.markdown(app), encoding="utf-8")
    (out / "settings.md").write_text(reference_markdown() + "\n", encoding="utf-8")
    typer.echo(f"wrote {out / 'cli.md'} and {out / 'settings.md'}")


@settings_app.command("show")
def settings_show(json: JsonOption = False) -> None:
    """Print the effective settings (secrets hidden)."""
    settings = get_settings()
    data = settings.model_dump(mode="json")
    data["database"]["url"] = (
        settings.database_url.split("@")[-1]
        if "@" in settings.database_url
        else settings.database_url
    )
    if json:
        print_json(data)
    else:
        for group, values in data.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    typer.echo(f"{group}.{key} = {value}")
            else:
                typer.echo(f"{group} = {values}")


def schema_problem(exc: ValidationError) -> str:
    """The first violation as ``field: message``, as the API names it."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {error['msg']}" if field else error["msg"]


def usage_problem(exc: typer.TyperException) -> str:
    """Click's complaint about the command line, with where to look for help."""
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return exc.format_message() + hint


def fail(message: str) -> NoReturn:
    # one line even when a message from below spans several
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(2)


def main() -> None:
    """Run the command; any error a user can act on is one line on stderr and exit 2."""
    try:
        # not standalone: click raises its usage errors here instead of printing a panel
        outcome = app(standalone_mode=False)
    except ShuzhiError as exc:
        fail(exc.detail)
    except ValidationError as exc:
        fail(schema_problem(exc))
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except typer.TyperException as exc:
        # Typer's own click: recognised by name, as Typer itself does, not by a private import
        if type(exc).__name__ == "NoArgsIsHelpError":
            if exc.format_message():  # without rich, the help is the message
                typer.echo(exc.format_message(), err=True)
            sys.exit(2)
        fail(usage_problem(exc))
    # a command returns None; --help and Ctrl-C come back as their exit status
    sys.exit(outcome if isinstance(outcome, int) else 0)
