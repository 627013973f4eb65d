"""`shuzhi reforms`: the ledger of major reforms (重大改革"一本账")."""

from __future__ import annotations

import mimetypes
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from shuzhi.cli.common import (
    JsonOption,
    import_workbook,
    print_json,
    print_table,
    read_text_file,
    reading,
    write_export,
    writing,
)
from shuzhi.core.errors import ValidationFailed
from shuzhi.loop import excel, ledger, reforms
from shuzhi.loop.rules import MILESTONE, Batch
from shuzhi.loop.schemas import MilestoneAction, ReformPage
from shuzhi.orgs.schemas import ID_MAX

app = typer.Typer(
    help='The ledger of major reforms (重大改革"一本账"): reforms, milestones, key results, '
    "check-ins and the ledger at any past date.",
    no_args_is_help=True,
)
Code = Annotated[str, typer.Argument(help="Reform code.")]
LIGHTS = {"green": "绿", "yellow": "黄", "red": "红", "no_data": "无数据"}


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _day(text: str | None, option: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{option} {text!r} is not a date (write it like 2025-06-30)"
        ) from None


@app.command()
def apply(
    file: Path = typer.Argument(..., help="A reforms YAML file (a 'reforms:' list)."),
    json: JsonOption = False,
) -> None:
    """Create or update every reform of a YAML file; one bad reform rejects the file."""
    text = read_text_file(file)
    with writing() as (session, actor):
        report = reforms.apply_yaml(session, actor=actor, text=text, source=file.name)
    if json:
        print_json(report)
        return
    typer.echo(f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged")


@app.command("list")
def list_reforms(
    batch: str = typer.Option(None, help=f"One batch: {Batch.choices()}."),
    system: str = typer.Option(None, help="One system (e.g. digital_society)."),
    region: str = typer.Option(None, help="Reforms of this region and the regions under it."),
    query: str = typer.Option(None, "--search", "-q", help="Part of a code or name."),
    as_of: str = typer.Option(
        None, "--as-of", help="The ledger as it stood at the end of this day (YYYY-MM-DD)."
    ),
    json: JsonOption = False,
) -> None:
    """The ledger by batch, with each reform's progress and light."""
    with reading() as (session, _):
        found = ledger.ledger(
            session,
            batch=batch,
            system=system,
            region=region,
            q=query,
            as_of=_day(as_of, "--as-of"),
        )
    if json:
        print_json(found)
        return
    print_table(
        [
            (
                row.code,
                row.name,
                Batch(row.batch).zh,
                row.lead.name,
                row.region.name,
                _percent(row.progress),
                LIGHTS.get(row.light, row.light),
                f"{row.milestones_done}/{row.milestones_total}",
            )
            for row in found.data
        ],
        ["code", "name", "batch", "lead", "region", "progress", "light", "milestones"],
    )


def _show(page: ReformPage) -> None:
    reform = page.reform
    typer.echo(f"{reform.code}  {reform.name}")
    typer.echo(
        f"batch {reform.batch} · system {reform.system} · level {reform.level} · "
        f"lead {reform.lead.name} · region {reform.region.name} · "
        f"{reform.starts_on} – {reform.ends_on}"
    )
    typer.echo(
        f"progress {_percent(reform.progress)} · light {LIGHTS.get(reform.light, reform.light)}"
        f" · version {reform.version}"
    )
    if page.milestones:
        typer.echo("")
        print_table(
            [
                (m.id, m.name, m.due, f"{m.weight:g}", m.state, LIGHTS[m.light], m.evidence_count)
                for m in page.milestones
            ],
            ["id", "milestone", "due", "weight", "state", "light", "evidence"],
        )
    if page.key_results:
        typer.echo("")
        print_table(
            [
                (
                    k.indicator.code,
                    k.region.name,
                    _number(k.baseline),
                    f"{_number(k.current)} ({k.current_period or '-'})",
                    _number(k.expected),
                    f"{_number(k.target)} ({k.target_on})",
                    _percent(k.progress),
                    LIGHTS[k.light],
                )
                for k in page.key_results
            ],
            [
                "indicator",
                "region",
                "baseline",
                "current",
                "expected",
                "target",
                "progress",
                "light",
            ],
        )
    if page.problems:
        typer.echo(
            f"\n{len(page.problems)} linked problems: " + ", ".join(p.code for p in page.problems)
        )


@app.command()
def show(code: Code, json: JsonOption = False) -> None:
    """One reform: milestones, key results against their targets, linked problems."""
    with reading() as (session, _):
        page = ledger.reform_page(session, code)
    if json:
        print_json(page)
        return
    _show(page)


@app.command("check-in")
def check_in(
    code: Code,
    note: str = typer.Option(..., "--note", help="What moved since the last check-in."),
    json: JsonOption = False,
) -> None:
    """Record a periodic update (动态更新) of a reform, as its lead department."""
    with writing() as (session, actor):
        version = ledger.version_public(
            reforms.check_in(session, actor=actor, code=code, note=note)
        )
    if json:
        print_json(version)
        return
    typer.echo(
        f"{code} version {version.version}: progress {_percent(version.progress)}, "
        f"light {LIGHTS.get(version.light, version.light)}"
    )


@app.command()
def milestone(
    code: Code,
    milestone_id: int = typer.Argument(..., min=1, max=ID_MAX, help="Milestone id (see show)."),
    transition: str = typer.Argument(..., help=f"One of {', '.join(MILESTONE.transitions)}."),
    comment: str = typer.Option(None, help="Why (send_back needs one)."),
    evidence: list[Path] = typer.Option(
        None, "--evidence", help="A file given as evidence first (repeatable)."
    ),
    json: JsonOption = False,
) -> None:
    """Submit a milestone as done (with evidence), verify it, or send it back."""
    files = []
    for path in evidence or []:
        if not path.is_file():
            raise ValidationFailed(f"{path}: no such file")
        files.append((path.name, path.read_bytes()))
    with writing() as (session, actor):
        attached = [
            reforms.add_milestone_evidence(
                session,
                actor=actor,
                code=code,
                milestone_id=milestone_id,
                filename=name,
                content=content,
                content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
            ).id
            for name, content in files
        ]
        action = MilestoneAction(transition=transition, comment=comment, attachments=attached)
        reforms.milestone_act(
            session, actor=actor, code=code, milestone_id=milestone_id, action=action
        )
        page = ledger.reform_page(session, code)
    shown = next(m for m in page.milestones if m.id == milestone_id)
    if json:
        print_json(shown)
        return
    typer.echo(
        f"{code} milestone {shown.id} {shown.name}: {shown.state} "
        f"({LIGHTS[shown.light]}); reform progress {_percent(page.reform.progress)}"
    )


@app.command()
def history(code: Code, json: JsonOption = False) -> None:
    """A reform's versions: changes, check-ins, milestone steps and recomputations."""
    with reading() as (session, _):
        rows = ledger.versions(session, ledger.get(session, code))
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    print_table(
        [
            (
                v.version,
                v.at.strftime("%Y-%m-%d %H:%M"),
                v.actor,
                v.kind,
                _percent(v.progress),
                LIGHTS.get(v.light, v.light),
                v.note,
            )
            for v in rows
        ],
        ["version", "at", "actor", "kind", "progress", "light", "note"],
    )


@app.command("export")
def export(
    output: Path = typer.Option(..., "--output", "-o", help="The XLSX file to write."),
    batch: Batch = typer.Option(None, help="Only this batch."),
    system: str = typer.Option(None, help="Only this system."),
    region: str = typer.Option(None, help="Only this region and below."),
    json: JsonOption = False,
) -> None:
    """Write the ledger (and its milestones) to an XLSX workbook with Chinese headers."""
    with reading() as (session, _):
        data = excel.export_reforms(
            session, batch=batch.value if batch else None, system=system, region=region
        )
    write_export(output, data, json)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="An XLSX workbook with a 改革一本账 sheet."),
    good_only: bool = typer.Option(False, "--good-only", help="Import the good rows anyway."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only validate."),
    json: JsonOption = False,
) -> None:
    """Import the ledger; a file with a bad row imports nothing unless --good-only."""
    import_workbook(file, excel.import_reforms, good_only=good_only, dry_run=dry_run, json=json)
