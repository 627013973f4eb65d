"""Reads: batches, the quarantine, samples, the lake as SQL, quality and coverage."""

from __future__ import annotations

import csv
import os
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shuzhi.catalog import queries as catalog_queries
from shuzhi.catalog.models import Resource
from shuzhi.core import clock
from shuzhi.core.enums import Light, System
from shuzhi.core.errors import Message, NotFound, Unauthenticated, ValidationFailed
from shuzhi.core.masking import mask
from shuzhi.core.permissions import Actor, allowed, require
from shuzhi.core.settings import Settings, get_settings
from shuzhi.lake.connectors import SourceSpec
from shuzhi.lake.engine import DuckDBEngine
from shuzhi.lake.models import Batch, Health, PiiFlag, Quality, Source
from shuzhi.lake.rules import BatchState, freshness, literal, quote, resource_light
from shuzhi.lake.schemas import (
    BatchPublic,
    DataTab,
    HealthPoint,
    PiiFlagPublic,
    QualityPoint,
    QualityReport,
    QuarantineRow,
    QueryResult,
    ResourceHealth,
    Rollup,
    SourcePublic,
)
from shuzhi.lake.storage import Lake
from shuzhi.orgs.models import Department

_LAKES: dict[Path, Lake] = {}


def lake_of(settings: Settings | None = None) -> Lake:
    """One per data directory (resolving the path costs more than a gateway read's
    checks); a relative one is resolved each time, against the directory of the moment."""
    settings = settings or get_settings()
    where = settings.data_dir
    if not where.is_absolute():
        return Lake(settings.lake_dir)
    found = _LAKES.get(where)
    if found is None:
        found = _LAKES[where] = Lake(settings.lake_dir)
    return found


def field_specs(resource: Resource) -> list[dict[str, Any]]:
    return [
        {
            "name": item.name,
            "title": item.title,
            "type": item.type,
            "pii": item.pii,
            "nullable": item.nullable,
            "primary_key": item.primary_key,
            "format": item.format,
            "aliases": list(item.aliases or []),
            "rules": item.rules,
        }
        for item in resource.fields
    ]


LOADED = (BatchState.succeeded.value, BatchState.unchanged.value)


def current_batch(session: Session, resource_id: int) -> Batch | None:
    """The batch whose snapshot is current: the latest one that loaded."""
    return session.scalar(
        select(Batch)
        .where(Batch.resource_id == resource_id, Batch.state.in_(LOADED))
        .order_by(Batch.id.desc())
        .limit(1)
    )


def batch_public(batch: Batch) -> BatchPublic:
    return BatchPublic(
        batch_id=batch.id,
        resource=batch.resource.code,
        source=batch.source,
        connector=batch.connector,
        mode=batch.mode,
        state=batch.state,
        rows_read=batch.rows_read,
        rows_loaded=batch.rows_loaded,
        rows_quarantined=batch.rows_quarantined,
        duplicates=batch.duplicates,
        rule_counts=dict(batch.rule_counts or {}),
        pii_findings=list(batch.pii_findings or []),
        mapping=dict(batch.mapping or {}),
        snapshot=batch.snapshot,
        snapshot_rows=batch.snapshot_rows,
        error=batch.error,
        actor=batch.actor,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
    )


def readable(session: Session, *, actor: Actor, code: str) -> Resource:
    """The resource, if the actor may read its loaded data (batches, quarantine, samples)."""
    resource = catalog_queries.get(session, actor=actor, code=code)
    require(
        actor,
        "lake.read",
        catalog_queries.scope_of(resource),
        what=Message("data of {code}", code=code),
    )
    return resource


def batches(
    session: Session, *, actor: Actor, code: str, limit: int = 50, offset: int = 0
) -> tuple[list[Batch], int]:
    resource = readable(session, actor=actor, code=code)
    where = Batch.resource_id == resource.id
    total = session.scalar(select(func.count()).select_from(Batch).where(where)) or 0
    rows = session.scalars(
        select(Batch).where(where).order_by(Batch.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), total


def batch(session: Session, *, actor: Actor, batch_id: int) -> Batch:
    found = session.get(Batch, batch_id)
    if found is None:
        raise NotFound(Message("no batch {batch_id}", batch_id=batch_id), field="batch")
    readable(session, actor=actor, code=found.resource.code)
    return found


def quarantine_batch(session: Session, *, resource: Resource, batch_id: int | None) -> Batch | None:
    """The batch whose quarantine to show: the one named, or the one that made the current
    snapshot (an unchanged re-run points back to it)."""
    if batch_id is not None:
        found = session.get(Batch, batch_id)
        if found is None or found.resource_id != resource.id:
            raise NotFound(
                Message("no batch {batch_id} of {code}", batch_id=batch_id, code=resource.code),
                field="batch",
            )
        return found
    current = current_batch(session, resource.id)
    if current is None or current.snapshot is None:
        return None
    return session.scalar(
        select(Batch).where(
            Batch.resource_id == resource.id,
            Batch.snapshot == current.snapshot,
            Batch.state == BatchState.succeeded.value,
        )
    )


def _quarantine_sql(path: Path, where: str = "") -> str:
    return f"SELECT * FROM read_parquet({literal(str(path))}) {where} ORDER BY _row"


def quarantine(
    session: Session,
    *,
    actor: Actor,
    code: str,
    batch_id: int | None = None,
    rule: str | None = None,
    limit: int = 100,
    offset: int = 0,
    settings: Settings | None = None,
) -> tuple[list[QuarantineRow], int, Batch | None]:
    resource = readable(session, actor=actor, code=code)
    chosen = quarantine_batch(session, resource=resource, batch_id=batch_id)
    if chosen is None:
        return [], 0, None
    path = lake_of(settings).quarantine_file(code, chosen.id)
    if not path.exists():
        return [], 0, chosen
    where, params = ("WHERE _rule = ?", [rule]) if rule else ("", [])
    fields = [item.name for item in resource.fields]
    with duckdb.connect() as con:
        total = con.execute(
            f"SELECT count(*) FROM read_parquet({literal(str(path))}) {where}", params
        ).fetchone()[0]
        cursor = con.execute(
            f"{_quarantine_sql(path, where)} LIMIT {int(limit)} OFFSET {int(offset)}", params
        )
        columns = [item[0] for item in cursor.description]
        rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    shown = _shown(actor, resource)
    found = [
        QuarantineRow(
            row=row["_row"],
            rule=row["_rule"],
            field=row["_field"],
            value=shown(row["_field"], row.get(row["_field"])) if row["_field"] else None,
            failures=row["_failures"].split(","),
            batch_id=chosen.id,
            record={name: shown(name, row.get(name)) for name in fields},
        )
        for row in rows
    ]
    return found, total, chosen


def _shown(actor: Actor, resource: Resource) -> Any:
    """Refused values as sent to those who load the resource (they fix and resend them);
    personal ones masked for those who may only read it (auditors)."""
    if allowed(actor, "lake.ingest", catalog_queries.scope_of(resource)):
        return lambda name, value: value
    personal = {item.name: item.pii for item in resource.fields if item.pii != "none"}
    return lambda name, value: (
        mask(str(value), personal[name]) if name in personal and value is not None else value
    )


def export_quarantine(
    session: Session,
    *,
    actor: Actor,
    code: str,
    target: Path,
    batch_id: int | None = None,
    settings: Settings | None = None,
) -> int:
    """The refused rows as CSV (UTF-8 with BOM, so Excel opens it), under the source's own
    headers, with the reason first: what a department fixes and sends again."""
    resource = readable(session, actor=actor, code=code)
    chosen = quarantine_batch(session, resource=resource, batch_id=batch_id)
    path = lake_of(settings).quarantine_file(code, chosen.id) if chosen else None
    headers = {field: source for source, field in (chosen.mapping if chosen else {}).items()}
    fields = [item.name for item in resource.fields]
    shown = _shown(actor, resource)
    written = 0
    with open(target, "w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["行号 row", "规则 rule", "字段 field", *[headers.get(f, f) for f in fields]])
        if path is not None and path.exists():
            with duckdb.connect() as con:
                cursor = con.execute(_quarantine_sql(path))
                columns = [item[0] for item in cursor.description]
                while chunk := cursor.fetchmany(10_000):
                    for values in chunk:
                        row = dict(zip(columns, values, strict=True))
                        out.writerow(
                            [row["_row"], row["_failures"], row["_field"]]
                            + [shown(name, row.get(name)) for name in fields]
                        )
                        written += 1
    return written


def quarantine_csv(
    session: Session,
    *,
    actor: Actor,
    code: str,
    batch_id: int | None = None,
    settings: Settings | None = None,
) -> Path:
    """``export_quarantine`` into a new temporary file, which the caller deletes."""
    descriptor, name = tempfile.mkstemp(prefix=f"{code}-quarantine-", suffix=".csv")
    os.close(descriptor)
    target = Path(name)
    try:
        export_quarantine(
            session, actor=actor, code=code, target=target, batch_id=batch_id, settings=settings
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def engine(session: Session, *, actor: Actor, settings: Settings | None = None) -> DuckDBEngine:
    """A read-only DuckDB over the current snapshot of every resource, for operators."""
    require(actor, "lake.query", None, what=Message("the lake"))
    settings = settings or get_settings()
    codes = list(session.scalars(select(Resource.code).order_by(Resource.code)))
    return DuckDBEngine(
        lake_of(settings),
        codes,
        memory_limit=settings.lake.memory_limit,
        threads=settings.lake.threads,
    )


def run_query(
    session: Session,
    *,
    actor: Actor,
    sql: str,
    limit: int | None = None,
    settings: Settings | None = None,
) -> QueryResult:
    settings = settings or get_settings()
    if not sql.strip():
        raise ValidationFailed(Message("give an SQL query"), field="sql")
    with engine(session, actor=actor, settings=settings) as lake_engine:
        table, truncated = lake_engine.query(sql, limit=limit or settings.lake.query_row_limit)
        read = lake_engine.read
    columns = table.column_names
    rows = [list(row.values()) for row in table.to_pylist()]
    return QueryResult(
        columns=columns, rows=rows, count=len(rows), truncated=truncated, snapshots=read
    )


def data_tab(
    session: Session,
    *,
    actor: Actor,
    code: str,
    sample_rows: int = 20,
    settings: Settings | None = None,
) -> DataTab:
    resource = readable(session, actor=actor, code=code)
    lake = lake_of(settings)
    current = current_batch(session, resource.id)
    snapshot = lake.current(code)
    columns = [item.name for item in resource.fields]
    masked = [item.name for item in resource.fields if item.pii != "none"]
    sample: list[list[Any]] = []
    if snapshot is not None:
        path = lake.snapshot_file(code, snapshot)
        relation = f"read_parquet({literal(str(path))})"
        with duckdb.connect() as con:
            # a field added to the catalog since the snapshot was written is shown empty
            present = {
                row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
            }
            names = ", ".join(
                quote(name) if name in present else f"NULL AS {quote(name)}" for name in columns
            )
            values = con.execute(
                f"SELECT {names} FROM {relation} LIMIT {int(sample_rows)}"
            ).fetchall()
        kinds = {item.name: item.pii for item in resource.fields}
        sample = [
            [
                mask(str(value), kinds[name]) if name in masked and value is not None else value
                for name, value in zip(columns, row, strict=True)
            ]
            for row in values
        ]
    recent, _ = batches(session, actor=actor, code=code, limit=20)
    trend = session.scalars(
        select(Quality)
        .where(Quality.resource_id == resource.id)
        .order_by(Quality.id.desc())
        .limit(60)
    )
    return DataTab(
        code=code,
        snapshot=snapshot,
        rows=current.snapshot_rows if current else None,
        columns=columns,
        sample=sample,
        masked=masked,
        batches=[batch_public(item) for item in recent],
        quality=[
            QualityPoint(
                batch_id=point.batch_id,
                measured_at=point.measured_at,
                rows=point.rows,
                completeness=point.completeness,
                validity=point.validity,
                uniqueness=point.uniqueness,
                volume_change=point.volume_change,
            )
            for point in reversed(list(trend))
        ],
        pii_flags=pii_flags(session, resource_ids=[resource.id]),
    )


def pii_flags(session: Session, *, resource_ids: list[int] | None = None) -> list[PiiFlagPublic]:
    query = select(PiiFlag, Resource.code).join(Resource, Resource.id == PiiFlag.resource_id)
    if resource_ids is not None:
        query = query.where(PiiFlag.resource_id.in_(resource_ids))
    return [
        PiiFlagPublic(
            resource=code,
            field=flag.field,
            kind=flag.kind,
            share=flag.share,
            example=flag.example,
            batch_id=flag.batch_id,
            reviewed=flag.reviewed,
            reviewed_by=flag.reviewed_by,
            flagged_at=flag.flagged_at,
        )
        for flag, code in session.execute(query.order_by(Resource.code, PiiFlag.field))
    ]


# ---------------------------------------------------------------------- quality report


def _latest_by_resource(
    session: Session, model: Any, ids: list[int], *conditions: Any
) -> dict[int, Any]:
    """The newest row of ``model`` per resource (among those meeting ``conditions``)."""
    if not ids:
        return {}
    newest = (
        select(func.max(model.id))
        .where(model.resource_id.in_(ids), *conditions)
        .group_by(model.resource_id)
        .scalar_subquery()
    )
    return {
        row.resource_id: row for row in session.scalars(select(model).where(model.id.in_(newest)))
    }


def report(
    session: Session,
    *,
    actor: Actor,
    provider: str | None = None,
    now: datetime | None = None,
) -> QualityReport:
    """Per published resource: light, freshness, quality; roll-ups per provider and system."""
    if not actor.authenticated:
        raise Unauthenticated(Message("log in or present an API token"))
    now = now or clock.now()
    query = select(Resource).where(Resource.state == "published").order_by(Resource.code)
    if provider is not None:
        department = session.scalar(select(Department).where(Department.code == provider))
        if department is None:
            raise NotFound(
                Message("no department {provider!r}", provider=provider), field="provider"
            )
        query = query.where(Resource.provider_id == department.id)
    resources = list(session.scalars(query))
    ids = [resource.id for resource in resources]
    latest = _latest_by_resource(session, Batch, ids)
    qualities = _latest_by_resource(session, Quality, ids)
    loaded = _latest_by_resource(session, Batch, ids, Batch.state.in_(LOADED))
    flags = Counter(
        resource_id
        for resource_id in session.scalars(
            select(PiiFlag.resource_id).where(
                PiiFlag.resource_id.in_(ids or [-1]), PiiFlag.reviewed.is_(False)
            )
        )
    )
    rows: list[ResourceHealth] = []
    for resource in resources:
        good = loaded.get(resource.id)
        last = latest.get(resource.id)
        quality = qualities.get(resource.id)
        loaded_at = good.finished_at if good else None
        fresh = freshness(resource.update_cycle, loaded_at, now)
        light = resource_light(
            fresh=fresh,
            validity=quality.validity if quality else None,
            failed_last=bool(last and last.state == BatchState.failed.value),
        )
        rows.append(
            ResourceHealth(
                code=resource.code,
                name=resource.name,
                provider=resource.provider.code,
                provider_name=resource.provider.name,
                system=resource.system,
                update_cycle=resource.update_cycle,
                light=light.value,
                freshness=fresh.value,
                last_loaded_at=loaded_at,
                snapshot=good.snapshot if good else None,
                rows=good.snapshot_rows if good else None,
                completeness=quality.completeness if quality else None,
                validity=quality.validity if quality else None,
                uniqueness=quality.uniqueness if quality else None,
                volume_change=quality.volume_change if quality else None,
                last_batch_state=last.state if last else None,
                pii_flags=flags.get(resource.id, 0),
            )
        )
    providers = {row.provider: row.provider_name for row in rows}
    systems = {system.value: system.zh for system in System}
    return QualityReport(
        generated_at=now,
        overall=_rollup("all", "全部", rows),
        by_provider=[
            _rollup(code, providers[code], [row for row in rows if row.provider == code])
            for code in sorted(providers)
        ],
        by_system=[
            _rollup(code, name, [row for row in rows if row.system == code])
            for code, name in systems.items()
            if any(row.system == code for row in rows)
        ],
        resources=rows,
        pii_flags=[flag for flag in pii_flags(session, resource_ids=ids) if not flag.reviewed],
    )


def _rollup(key: str, name: str, rows: list[ResourceHealth]) -> Rollup:
    lights = Counter(row.light for row in rows)
    current = sum(1 for row in rows if row.snapshot is not None)
    return Rollup(
        key=key,
        name=name,
        published=len(rows),
        current=current,
        coverage=round(current / len(rows), 4) if rows else 0.0,
        lights={light.value: lights.get(light.value, 0) for light in Light},
    )


def trend(
    session: Session, *, scope: str = "all", key: str = "all", days: int = 90
) -> list[HealthPoint]:
    points = session.scalars(
        select(Health)
        .where(Health.scope == scope, Health.key == key)
        .order_by(Health.day.desc())
        .limit(days)
    )
    return [
        HealthPoint(
            day=point.day,
            published=point.published,
            current=point.current,
            coverage=round(point.current / point.published, 4) if point.published else 0.0,
            lights=dict(point.lights),
        )
        for point in reversed(list(points))
    ]


# ---------------------------------------------------------------------- sources


def source_public(
    source: Source, *, now: datetime | None = None, lease_minutes: int | None = None
) -> SourcePublic:
    now = now or clock.now()
    if lease_minutes is None:
        lease_minutes = get_settings().lake.pull_lease_minutes
    running = bool(
        source.claimed_by
        and source.claimed_at
        and source.claimed_at > now - timedelta(minutes=lease_minutes)
    )
    # a file path as it is; a database URL without its credentials
    location = SourceSpec(location=source.location).describe()
    return SourcePublic(
        id=source.id,
        resource=source.resource.code,
        name=source.name,
        location=location,
        schedule=source.schedule,
        mode=source.mode,
        enabled=source.enabled,
        options=dict(source.options or {}),
        next_run_at=source.next_run_at,
        last_run_at=source.last_run_at,
        last_batch_id=source.last_batch_id,
        last_error=source.last_error,
        attempts=source.attempts,
        running=running,
    )


def sources(session: Session, *, actor: Actor, code: str | None = None) -> list[Source]:
    """Sources of one resource (lake.read on it), or of every resource the actor may read."""
    query = select(Source).order_by(Source.id)
    if code is not None:
        resource = readable(session, actor=actor, code=code)
        query = query.where(Source.resource_id == resource.id)
    found = list(session.scalars(query))
    if code is None:
        found = [
            source
            for source in found
            if allowed(actor, "lake.read", catalog_queries.scope_of(source.resource))
        ]
    return found
