"""`shuzhi problems …`: the problem lists (问题清单) from the console."""

from __future__ import annotations

import mimetypes
from datetime import date
from pathlib import Path

import typer

from shuzhi.cli.common import (
    JsonOption,
    acting,
    import_workbook,
    print_json,
    print_table,
    reading,
    write_export,
    writing,
)
from shuzhi.core.errors import ValidationFailed
from shuzhi.loop import excel, queries, service
from shuzhi.loop.rules import Channel, ProblemSeverity
from shuzhi.loop.schemas import ProblemAction, ProblemCreate, ProblemUpdate

app = typer.Typer(
    help="Problem lists (问题清单): report, assign, rectify, verify and close (销号).",
    no_args_is_help=True,
)
ProblemId = typer.Argument(..., help="The problem's id (see `shuzhi problems list`).")


def _filters(
    state: list[str] | None,
    channel: str | None,
    system: str | None,
    region: str | None,
    department: str | None,
    light: str | None,
    query: str | None,
    warning: bool | None,
) -> queries.Filters:
    return queries.Filters(
        states=tuple(state or ()),
        channel=channel,
        system=system,
        region=region,
        department=department,
        light=light,
        q=query,
        warning=warning,
    )


@app.command("list")
def list_problems(
    state: list[str] = typer.Option(None, help="A state (repeat for several)."),
    channel: str = typer.Option(None, help=f"One of {Channel.choices()}."),
    system: str = typer.Option(None, help="A system code."),
    region: str = typer.Option(None, help="A region and everything below it."),
    department: str = typer.Option(None, help="The responsible department's code."),
    light: str = typer.Option(None, help="green, yellow or red."),
    query: str = typer.Option(None, "--search", "-q", help="Part of the title or number."),
    warning: bool = typer.Option(None, "--warning/--no-warning", help="Raised by a warning."),
    sort: str = typer.Option("-reported", help=", ".join(queries.SORTS)),
    limit: int = typer.Option(50, min=1, max=10_000),
    offset: int = typer.Option(0, min=0),
    json: JsonOption = False,
) -> None:
    """List problems, newest first."""
    where = _filters(state, channel, system, region, department, light, query, warning)
    with reading() as (session, _):
        rows, count = queries.page_of(session, where, limit=limit, offset=offset, sort=sort)
    if json:
        print_json({"data": rows, "count": count, "limit": limit, "offset": offset})
        return
    print_table(
        [
            (
                r.id,
                r.code,
                r.light,
                r.state,
                r.channel,
                r.region.name,
                r.department.name if r.department else "-",
                r.deadline,
                r.title[:40],
            )
            for r in rows
        ],
        ["id", "code", "light", "state", "channel", "region", "department", "deadline", "title"],
    )
    typer.echo(f"{len(rows)} of {count}")


@app.command()
def show(problem_id: int = ProblemId, json: JsonOption = False) -> None:
    """A problem with its timeline and evidence."""
    with reading() as (session, actor):
        page = queries.page(session, service.get(session, problem_id), actor=actor)
    if json:
        print_json(page)
        return
    p = page.problem
    typer.echo(f"{p.code}  {p.title}")
    typer.echo(
        f"{p.state} · {p.light} · {p.channel} · {p.region.name} · "
        f"{p.department.name if p.department else 'unassigned'} · deadline {p.deadline or '-'}"
    )
    if p.warning:
        typer.echo(f"warning {p.warning.id} ({p.warning.state}): {p.warning.message}")
    for step in page.timeline:
        typer.echo(f"  {step.at:%Y-%m-%d %H:%M}  {step.label}  {step.actor}  {step.comment or ''}")
    for item in page.evidence:
        typer.echo(f"  evidence {item.id}: {item.filename} ({item.size} B, {item.sha256[:12]}…)")


@app.command()
def report(
    title: str = typer.Option(..., help="What is wrong."),
    channel: Channel = typer.Option(..., help="Where it came from."),
    system: str = typer.Option(..., help="A system code."),
    region: str = typer.Option(..., help="A region code."),
    department: str = typer.Option(None, help="Assign at once to this department."),
    deadline: str = typer.Option(None, help="YYYY-MM-DD (default: loop.problem_days)."),
    severity: ProblemSeverity = typer.Option(ProblemSeverity.general),
    description: str = typer.Option("", help="The details."),
    indicator: str = typer.Option(None, help="A linked indicator code."),
    json: JsonOption = False,
) -> None:
    """Put a problem on the list."""
    data = ProblemCreate.model_validate(
        {
            "title": title,
            "channel": channel,
            "system": system,
            "region": region,
            "department": department,
            "deadline": _date(deadline),
            "severity": severity,
            "description": description,
            "indicator": indicator,
        }
    )
    with writing() as (session, actor):
        problem = service.report(session, actor=actor, data=data)
        public = queries.public(problem, queries.Names(session))
    if json:
        print_json(public)
    else:
        typer.echo(f"problem {public.id} {public.code}: {public.state}")


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{value!r} is not a date (YYYY-MM-DD)", field="deadline") from None


@app.command("act")
def act(
    problem_id: int = ProblemId,
    transition: str = typer.Argument(
        ..., help="assign, reassign, accept, request_closure, send_back, verify or close."
    ),
    comment: str = typer.Option(None, help="Why (send_back and reassign need one)."),
    department: str = typer.Option(None, help="assign/reassign: to which department."),
    deadline: str = typer.Option(None, help="assign/reassign: by when (YYYY-MM-DD)."),
    evidence: list[int] = typer.Option(None, help="Evidence ids given with it (repeat)."),
    json: JsonOption = False,
) -> None:
    """Fire a transition of a problem; a refused one names the rule that forbids it."""
    action = ProblemAction(
        transition=transition,
        comment=comment,
        department=department,
        deadline=_date(deadline),
        attachments=list(evidence or []),
    )
    with writing() as (session, actor):
        problem = service.act(session, actor=actor, problem_id=problem_id, action=action)
        public = queries.public(problem, queries.Names(session))
    if json:
        print_json(public)
    else:
        typer.echo(f"problem {public.id} {public.code}: {public.state} ({public.light})")


@app.command()
def update(
    problem_id: int = ProblemId,
    measures: str = typer.Option(None, help="Rectification measures."),
    responsible_person: str = typer.Option(None, help="The responsible person."),
    deadline: str = typer.Option(None, help="A new deadline (YYYY-MM-DD)."),
    title: str = typer.Option(None),
    json: JsonOption = False,
) -> None:
    """Change a problem's details."""
    fields = {
        "measures": measures,
        "responsible_person": responsible_person,
        "deadline": _date(deadline),
        "title": title,
    }
    data = ProblemUpdate.model_validate({k: v for k, v in fields.items() if v is not None})
    with writing() as (session, actor):
        problem = service.update(session, actor=actor, problem_id=problem_id, data=data)
        public = queries.public(problem, queries.Names(session))
    if json:
        print_json(public)
    else:
        typer.echo(f"problem {public.id} {public.code} updated")


@app.command()
def evidence(
    problem_id: int = ProblemId,
    file: Path = typer.Argument(..., help="The evidence file."),
    note: str = typer.Option("", help="What it shows."),
    json: JsonOption = False,
) -> None:
    """Attach an evidence file (kept under the data directory by its SHA-256)."""
    if not file.is_file():
        raise ValidationFailed(f"{file}: no such file")
    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    with writing() as (session, actor):
        item = service.add_problem_evidence(
            session,
            actor=actor,
            problem_id=problem_id,
            filename=file.name,
            content=file.read_bytes(),
            content_type=kind,
            note=note,
        )
        result = {
            "id": item.id,
            "filename": item.filename,
            "sha256": item.sha256,
            "size": item.size,
        }
    if json:
        print_json(result)
    else:
        typer.echo(f"evidence {result['id']}: {result['filename']} sha256 {result['sha256']}")


@app.command()
def stats(
    by: str = typer.Option("department", help=", ".join(queries.DIMENSIONS)),
    region: str = typer.Option(None, help="Only this region and below."),
    channel: str = typer.Option(None),
    system: str = typer.Option(None),
    json: JsonOption = False,
) -> None:
    """Counts, closure rate, on-time rate and mean days to 销号, grouped."""
    where = queries.Filters(region=region, channel=channel, system=system)
    with reading() as (session, _):
        result = queries.stats(session, by=by, filters=where)
    if json:
        print_json(result)
        return

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    print_table(
        [
            (
                r.label,
                r.total,
                r.open,
                r.closed,
                r.overdue,
                pct(r.closure_rate),
                pct(r.on_time_rate),
                "-" if r.average_days is None else r.average_days,
            )
            for r in [*result.data, result.total]
        ],
        [by, "total", "open", "closed", "overdue", "closure", "on time", "avg days"],
    )


@app.command()
def board(
    region: str = typer.Option(None),
    department: str = typer.Option(None),
    json: JsonOption = False,
) -> None:
    """How many problems stand in each state."""
    with reading() as (session, _):
        result = queries.board(session, queries.Filters(region=region, department=department))
    if json:
        print_json(result)
        return
    print_table([(c.state, c.label, c.count) for c in result.columns], ["state", "label", "count"])


@app.command("raise")
def raise_problems(json: JsonOption = False) -> None:
    """Raise a problem for every firing warning that has none open (the worker does this
    after each evaluation)."""
    db, _ = acting()
    created = service.raise_from_warnings(db)
    if json:
        print_json({"created": created})
    else:
        typer.echo(f"{created} problem(s) raised from firing warnings")


@app.command("remind")
def remind(json: JsonOption = False) -> None:
    """Send due reminders and escalate overdue problems now (the worker does this)."""
    db, _ = acting()
    handled = service.remind(db)
    if json:
        print_json({"handled": handled})
    else:
        typer.echo(f"{handled} reminder(s) and escalation(s) sent")


@app.command("export")
def export(
    output: Path = typer.Option(..., "--output", "-o", help="The XLSX file to write."),
    state: list[str] = typer.Option(None, help="A state (repeat for several)."),
    channel: str = typer.Option(None),
    system: str = typer.Option(None),
    region: str = typer.Option(None),
    department: str = typer.Option(None),
    light: str = typer.Option(None),
    json: JsonOption = False,
) -> None:
    """Write every problem matching the filters to an XLSX workbook (Chinese headers)."""
    where = _filters(state, channel, system, region, department, light, None, None)
    with reading() as (session, _):
        data = excel.export_problems(session, where)
    write_export(output, data, json)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="An XLSX workbook with a 问题清单 sheet."),
    good_only: bool = typer.Option(False, "--good-only", help="Import the good rows anyway."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only validate."),
    json: JsonOption = False,
) -> None:
    """Import a problem list; a file with a bad row imports nothing unless --good-only."""
    import_workbook(file, excel.import_problems, good_only=good_only, dry_run=dry_run, json=json)
