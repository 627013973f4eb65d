"""Ingestion, the quarantine, the lake as SQL, and the aggregation quality report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shuzhi.cli.common import (
    JsonOption,
    acting,
    acting_user,
    database,
    print_json,
    print_table,
    reading,
)
from shuzhi.core.errors import Conflict, Message, ValidationFailed
from shuzhi.lake import queries, service
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.pipeline import parse_map
from shuzhi.lake.rules import Mode
from shuzhi.lake.schemas import SourceCreate, SourcePublic
from shuzhi.orgs.schemas import ID_MAX

Code = Annotated[str, typer.Argument(help="Resource code.")]
BatchOption = Annotated[
    int | None,
    typer.Option("--batch", min=1, max=ID_MAX, help="Batch id (default: the current snapshot's)."),
]

quarantine_app = typer.Typer(help="Rows refused by ingestion, with reasons.", no_args_is_help=True)
lake_app = typer.Typer(help="The lake: snapshots, batches and read-only SQL.", no_args_is_help=True)
quality_app = typer.Typer(help="Aggregation quality and coverage (全量归集).", no_args_is_help=True)


def ingest(
    code: Code,
    source: str = typer.Argument(..., help="A file (CSV, XLSX, JSON, JSONL, Parquet) or a URL."),
    mode: Mode = typer.Option(Mode.full, help="full replaces; incremental upserts by key."),
    format: str = typer.Option(None, "--format", help="csv, xlsx, json, jsonl, parquet, sql."),
    sheet: str = typer.Option(None, help="XLSX: sheet name (default: the first)."),
    header_row: int = typer.Option(1, min=1, help="XLSX: the row that holds the headers."),
    encoding: str = typer.Option(None, help="CSV: encoding (default: detect UTF-8 or GBK)."),
    delimiter: str = typer.Option(None, help="CSV: delimiter (default: detect)."),
    table: str = typer.Option(None, help="Database source: the table to read."),
    query: str = typer.Option(None, help="Database source: the query to run."),
    watermark: str = typer.Option(
        None, help="Incremental: skip rows whose FIELD is not newer than the lake's newest."
    ),
    map: list[str] = typer.Option(
        [], "--map", help="'source column=field'; repeat; 'column=' drops a column."
    ),
    json: JsonOption = False,
) -> None:
    """Load a source into a resource: validate, quarantine, snapshot."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    spec = SourceSpec(
        location=source,
        kind=format,
        encoding=encoding,
        sheet=sheet,
        header_row=header_row,
        delimiter=delimiter,
        table=table,
        query=query,
    )
    overrides = parse_map(map)
    db, actor = acting()
    # on stderr, and only for a person at a terminal: stdout stays the summary alone
    console = Console(stderr=True)
    show = not json and console.is_terminal
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show,
    ) as bar:
        task = bar.add_task("reading", rows=0)

        def progress(phase: str, rows: int) -> None:
            bar.update(task, description=phase, rows=rows)

        batch = service.ingest(
            db,
            actor=actor,
            code=code,
            source=spec,
            mode=mode,
            overrides=overrides,
            watermark=watermark,
            progress=progress,
        )
    found = queries.batch_public(batch)
    if json:
        print_json(found)
        return
    state = "unchanged (same input as the current snapshot)" if found.state == "unchanged" else ""
    typer.echo(
        f"batch {found.batch_id} {state or found.state}: read {found.rows_read:,}, "
        f"loaded {found.rows_loaded:,}, quarantined {found.rows_quarantined:,}, "
        f"duplicates {found.duplicates:,}; snapshot {found.snapshot} "
        f"({found.snapshot_rows:,} rows)"
    )
    for rule, count in found.rule_counts.items():
        typer.echo(f"  {rule:<14} {count:,}")
    if found.rows_quarantined:
        typer.echo(f"see them with: shuzhi quarantine list {code}")
    for finding in found.pii_findings:
        typer.echo(
            f"field {finding.field} is declared not personal but {finding.share:.0%} of its "
            f"values look like {finding.kind} (e.g. {finding.example}): reclassify it, or "
            f"shuzhi lake review-pii {code} {finding.field}"
        )


@quarantine_app.command("list")
def quarantine_list(
    code: Code,
    batch: BatchOption = None,
    rule: str = typer.Option(None, help="Only rows refused by this rule."),
    limit: int = typer.Option(50, min=1, max=10_000),
    offset: int = typer.Option(0, min=0),
    json: JsonOption = False,
) -> None:
    """Refused rows: source row number, rule, field and the value that failed."""
    with reading() as (session, actor):
        rows, total, chosen = queries.quarantine(
            session, actor=actor, code=code, batch_id=batch, rule=rule, limit=limit, offset=offset
        )
    if json:
        print_json({"data": rows, "count": total})
        return
    print_table(
        [(r.row, r.rule, r.field, r.value, ",".join(r.failures)) for r in rows],
        ["row", "rule", "field", "value", "failures"],
    )
    where = f" of batch {chosen.id}" if chosen else ""
    typer.echo(f"{len(rows)} of {total}{where}")


@quarantine_app.command("show")
def quarantine_show(code: Code, batch: BatchOption = None, json: JsonOption = False) -> None:
    """The batch's refusals counted per rule."""
    with reading() as (session, actor):
        resource = queries.readable(session, actor=actor, code=code)
        chosen = queries.quarantine_batch(session, resource=resource, batch_id=batch)
        info = (
            {
                "batch_id": chosen.id,
                "rows_read": chosen.rows_read,
                "rows_quarantined": chosen.rows_quarantined,
                "rule_counts": chosen.rule_counts,
            }
            if chosen
            else {"batch_id": None, "rows_read": 0, "rows_quarantined": 0, "rule_counts": {}}
        )
    if json:
        print_json(info)
        return
    typer.echo(
        f"batch {info['batch_id']}: {info['rows_quarantined']:,} of {info['rows_read']:,} "
        "rows quarantined"
    )
    print_table(sorted(info["rule_counts"].items()), ["rule", "rows"])


@quarantine_app.command("export")
def quarantine_export(
    code: Code,
    output: Path = typer.Option(..., "--output", "-o", help="CSV file to write."),
    batch: BatchOption = None,
) -> None:
    """Write the refused rows as CSV under the source's own headers, reason first."""
    with reading() as (session, actor):
        try:
            written = queries.export_quarantine(
                session, actor=actor, code=code, target=output, batch_id=batch
            )
        except (IsADirectoryError, FileNotFoundError, PermissionError) as exc:
            raise ValidationFailed(
                f"cannot write {output}: {exc.strerror}", field="output"
            ) from None
    typer.echo(f"{written:,} row(s) written to {output}")


@lake_app.command("query")
def lake_query(
    sql: str = typer.Argument(..., help="One SELECT; resources are tables named by code."),
    limit: int = typer.Option(None, min=1, help="Most rows to print (default from settings)."),
    json: JsonOption = False,
) -> None:
    """Read-only SQL over the current snapshot of every resource (operators)."""
    with reading() as (session, actor):
        result = queries.run_query(session, actor=actor, sql=sql, limit=limit)
    if json:
        print_json(result)
        return
    print_table(result.rows, result.columns)
    more = " (more rows not shown)" if result.truncated else ""
    typer.echo(f"{result.count} row(s){more}")


@lake_app.command("batches")
def lake_batches(
    code: Code, limit: int = typer.Option(20, min=1, max=1000), json: JsonOption = False
) -> None:
    """A resource's batches, newest first."""
    with reading() as (session, actor):
        found, total = queries.batches(session, actor=actor, code=code, limit=limit)
        rows = [queries.batch_public(item) for item in found]
    if json:
        print_json({"data": rows, "count": total})
        return
    print_table(
        [
            (
                r.batch_id,
                r.state,
                r.mode,
                r.rows_read,
                r.rows_loaded,
                r.rows_quarantined,
                r.duplicates,
                r.snapshot or "",
                r.started_at.strftime("%Y-%m-%d %H:%M"),
            )
            for r in rows
        ],
        ["batch", "state", "mode", "read", "loaded", "quarantined", "dups", "snapshot", "started"],
    )


@lake_app.command("recover")
def lake_recover() -> None:
    """Mark batches killed mid-way as failed and put every current pointer back in line."""
    recovered = service.recover_all(database())
    typer.echo(f"{recovered} interrupted batch(es) marked failed")


@lake_app.command("review-pii")
def lake_review_pii(
    code: Code, field: str = typer.Argument(..., help="The flagged field.")
) -> None:
    """Keep a flagged field's classification: it was looked at and is not personal data."""
    db, actor = acting()
    service.review_pii(db, actor=actor, code=code, field=field)
    typer.echo(f"{code}.{field} marked reviewed")


@quality_app.command("report")
def quality_report(
    provider: str = typer.Option(None, help="Only this provider department's resources."),
    json: JsonOption = False,
) -> None:
    """Lights, freshness and quality per resource; coverage per provider and system."""
    with reading() as (session, actor):
        found = queries.report(session, actor=actor, provider=provider)
    if json:
        print_json(found)
        return
    print_table(
        [
            (
                r.code,
                r.provider,
                r.light,
                r.freshness,
                "" if r.rows is None else f"{r.rows:,}",
                "" if r.validity is None else f"{r.validity:.1%}",
                "" if r.completeness is None else f"{r.completeness:.1%}",
                r.pii_flags or "",
            )
            for r in found.resources
        ],
        ["resource", "provider", "light", "fresh", "rows", "valid", "complete", "pii"],
    )
    typer.echo("")
    print_table(
        [
            (g.key, g.name, g.published, g.current, f"{g.coverage:.0%}")
            for g in [found.overall, *found.by_provider]
        ],
        ["provider", "name", "published", "current", "coverage"],
    )


sources_app = typer.Typer(
    help="Sources pulled on a schedule by `shuzhi worker`.", no_args_is_help=True
)


def _print_sources(rows: list[SourcePublic]) -> None:
    print_table(
        [
            (
                r.id,
                r.resource,
                r.name,
                r.schedule,
                r.mode,
                r.next_run_at.strftime("%Y-%m-%d %H:%M") if r.next_run_at else "",
                r.last_run_at.strftime("%Y-%m-%d %H:%M") if r.last_run_at else "",
                "running" if r.running else (r.last_error or "ok")[:40] if r.last_run_at else "",
            )
            for r in rows
        ],
        ["id", "resource", "name", "schedule", "mode", "next run (UTC)", "last run", "last"],
    )


@sources_app.command("add")
def sources_add(
    code: Code,
    location: str = typer.Argument(..., help="A file under DATA_DIR/inbox, or a database URL."),
    name: str = typer.Option(..., help="What to call the source."),
    schedule: str = typer.Option(
        "cycle", help="Cron expression, or 'cycle' for the resource's update cycle."
    ),
    mode: Mode = typer.Option(Mode.full),
    format: str = typer.Option(None, "--format", help="csv, xlsx, json, jsonl, parquet, sql."),
    sheet: str = typer.Option(None),
    encoding: str = typer.Option(None),
    table: str = typer.Option(None),
    query: str = typer.Option(None),
    watermark: str = typer.Option(None),
    map: list[str] = typer.Option([], "--map", help="'source column=field'; repeat."),
    json: JsonOption = False,
) -> None:
    """Register a source to pull on a schedule."""
    data = SourceCreate(
        name=name,
        location=location,
        schedule=schedule,
        mode=mode.value,
        format=format,
        sheet=sheet,
        encoding=encoding,
        table=table,
        query=query,
        watermark=watermark,
        map=parse_map(map),
    )
    db = database()
    with db.transaction() as session:
        source = service.register_source(session, actor=acting_user(session), code=code, data=data)
        found = queries.source_public(source)
    if json:
        print_json(found)
    else:
        typer.echo(f"source {found.id} registered; next run {found.next_run_at:%Y-%m-%d %H:%M} UTC")


@sources_app.command("list")
def sources_list(
    code: str = typer.Argument(None, help="Only this resource's sources."), json: JsonOption = False
) -> None:
    """Sources with their next and last run."""
    with reading() as (session, actor):
        rows = [
            queries.source_public(item) for item in queries.sources(session, actor=actor, code=code)
        ]
    if json:
        print_json({"data": rows, "count": len(rows)})
        return
    _print_sources(rows)


@sources_app.command("remove")
def sources_remove(
    source_id: int = typer.Argument(..., min=1, max=ID_MAX, help="Source id."),
) -> None:
    """Stop pulling a source (its batches stay)."""
    db = database()
    with db.transaction() as session:
        service.remove_source(session, actor=acting_user(session), source_id=source_id)
    typer.echo(f"source {source_id} removed")


@sources_app.command("run")
def sources_run(
    source_id: int = typer.Argument(..., min=1, max=ID_MAX, help="Source id."),
    json: JsonOption = False,
) -> None:
    """Pull a source now, whatever its schedule."""
    db, actor = acting()
    batch = service.run_source(db, source_id=source_id, actor=actor, force=True)
    if batch is None:
        raise Conflict(
            Message("source {source_id} is being pulled by another worker", source_id=source_id)
        )
    found = queries.batch_public(batch)
    if json:
        print_json(found)
    else:
        typer.echo(
            f"batch {found.batch_id} {found.state}: read {found.rows_read:,}, loaded "
            f"{found.rows_loaded:,}, quarantined {found.rows_quarantined:,}"
        )
